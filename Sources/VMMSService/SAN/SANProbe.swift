import Dispatch
import Foundation
import Libvirt
import Spawn
import Synchronization
import VMMSModel

/// Asking an iSCSI portal directly, with short time limits: libiscsi inside libvirtd has
/// none of its own (a connect to a host that drops packets hangs for minutes), and its
/// errors do not say which target they are about.
enum SANProbe {
    /// How long a portal gets to accept a TCP connection, and `qemu-img` to read a LUN's size.
    static let connectTimeout: Duration = .seconds(3)
    static let capacityTimeoutSeconds = 5

    /// Whether `portal` accepts a TCP connection within `connectTimeout`; nil when it does,
    /// else why not (`connection refused`, `no answer within 3 seconds`, …). Off the
    /// cooperative pool: name resolution and the connect may block.
    static func reach(_ portal: SANAddress.Portal) async -> String? {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: TCPProbe.reach(host: portal.host, port: portal.port, timeout: connectTimeout))
            }
        }
    }

    /// The contract's error for a target that cannot be used, naming portal and target
    /// rather than libiscsi's "Can not reconnect right now".
    static func unreachable(_ san: SANRecord, libvirt error: LibvirtError, inactive: Bool) -> VMMSError {
        let state = inactive ? "; the SAN \(san.name) is inactive until the target answers and Refresh is called" : ""
        let libvirt = error.message.trimmingCharacters(in: .whitespacesAndNewlines)
        guard san.type == .iSCSI else {
            return .failed("the vHBA \(san.target) of the SAN \(san.name) cannot be used\(state) (libvirt: \(libvirt))")
        }
        return .failed("the iSCSI target \(san.target) at \(san.portal) \(describe(libvirtMessage: error.message))\(state) (libvirt: \(libvirt))")
    }

    /// libiscsi's messages in words that say what to check.
    static func describe(libvirtMessage message: String) -> String {
        if message.contains("Target not found") { return "does not exist on that portal: check the target's IQN" }
        if message.contains("Authorization failure") || message.contains("Authentication failure") || message.contains("(514)")
            || message.contains("(513)") {
            return "refused this host's initiator: allow it in the target's ACL"
        }
        if message.contains("reconnect") || message.contains("connect") {
            return "does not answer: check that the target runs and listens on that portal"
        }
        return "cannot be used"
    }

    /// The exact size of an iSCSI LUN as QEMU sees it. libvirt 9.0's iscsi-direct backend
    /// reports the last block's address times the block size, one block short; `qemu-img`
    /// (QEMU's own libiscsi driver) reads READ CAPACITY right. nil when it cannot tell.
    static func capacity(portal: String, target: String, lun: UInt32, initiator: String) -> UInt64? {
        var options = "driver=iscsi,transport=tcp,portal=\(portal),target=\(target),lun=\(lun)"
        if !initiator.isEmpty { options += ",initiator-name=\(initiator)" }
        guard !options.contains(",,"),
              let output = try? runToCompletion("/usr/bin/timeout", ["\(capacityTimeoutSeconds)", "qemu-img", "info", "--output=json", "--image-opts", options]),
              output.status == 0,
              let data = output.stdout.data(using: .utf8),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let size = json["virtual-size"] as? NSNumber else { return nil }
        return size.uint64Value
    }
}

/// What `SANProbe.capacity` found, by LUN source and the size libvirt reported (a LUN that
/// grows is asked again). VM disks on iSCSI LUNs take their capacity from here too.
final class LUNCapacities: Sendable {
    static let shared = LUNCapacities()
    private struct Key: Hashable { var source: String; var reported: UInt64 }
    private let known = Mutex<[Key: UInt64]>([:])
    private let bySource = Mutex<[String: UInt64]>([:])

    /// The exact capacity of `source`, probing only what was not probed before.
    func capacity(source: String, reported: UInt64, probe: () -> UInt64?) -> UInt64 {
        let key = Key(source: source, reported: reported)
        if let value = known.withLock({ $0[key] }) { return value }
        let value = probe() ?? reported
        known.withLock { $0[key] = value }
        bySource.withLock { $0[source] = value }
        return value
    }

    /// The last capacity known for a LUN source (`iscsi://…`), for a VM's HardDisks.
    func capacity(of source: String) -> UInt64? { bySource.withLock { $0[source] } }
}
