import Foundation
import Glibc
import Spawn

/// A user-space iSCSI target (tgtd) of a test's own on 127.0.0.1: its own control socket and
/// a free loopback port, one target with LUNs backed by sparse files in a temporary
/// directory (../shared/notes/san.md). Traffic stays on loopback.
/// Files and daemon are gone after `stop(removeFiles: true)`.
public final class ISCSITarget: @unchecked Sendable {
    public let directory: String
    public let control: Int
    public let port: UInt16
    public let iqn: String
    private var daemon: ChildProcess?
    public var luns: [(number: Int, mib: UInt64)] = []

    public init(luns: [(Int, UInt64)]) async throws {
        directory = NSTemporaryDirectory() + "vmms-san-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        control = Int.random(in: 100...900)
        port = try freeLoopbackPort()
        iqn = "iqn.2026-12.test.vmms:\(UUID().uuidString.prefix(8).lowercased())"
        let route = try await runCommand("/usr/sbin/ip", ["route", "get", "127.0.0.1"]).stdout
        guard route.contains("dev lo") else { throw TestFailure("127.0.0.1 is not routed via lo: \(route)") }
        self.luns = luns.map { (number: $0.0, mib: $0.1) }
        do {
            for (number, mib) in luns { try createFile(number, mib) }
            try await start()
        } catch {
            await stop(removeFiles: true)
            throw error
        }
    }

    /// Runs `body` with a new target, which is stopped and removed afterwards, also when
    /// `body` fails.
    public static func with(luns: [(Int, UInt64)], _ body: (ISCSITarget) async throws -> Void) async throws {
        let target = try await ISCSITarget(luns: luns)
        do {
            try await body(target)
        } catch {
            await target.stop(removeFiles: true)
            throw error
        }
        await target.stop(removeFiles: true)
    }

    public func file(_ number: Int) -> String { directory + "/lun\(number).img" }

    private func createFile(_ number: Int, _ mib: UInt64) throws {
        guard FileManager.default.createFile(atPath: file(number), contents: nil),
              truncate(file(number), off_t(mib << 20)) == 0 else { throw TestFailure("cannot create \(file(number))") }
    }

    public func tgtadm(_ arguments: [String]) async throws {
        let result = try await runCommand("/usr/sbin/tgtadm", ["-C", String(control)] + arguments)
        guard result.status == 0 else { throw TestFailure("tgtadm \(arguments): \(result.stdout) \(result.stderr)") }
    }

    /// Starts tgtd on 127.0.0.1:port and sets up the target with every LUN file.
    public func start() async throws {
        daemon = try ChildProcess("/usr/sbin/tgtd", ["-f", "-C", String(control), "--iscsi", "portal=127.0.0.1:\(port)"],
                                  stderrPath: directory + "/tgtd.log")
        var ready = false
        for _ in 0..<50 where !ready {
            ready = try await runCommand("/usr/sbin/tgtadm", ["-C", String(control), "--op", "show", "--mode", "system"]).status == 0
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard ready else { throw TestFailure("tgtd did not answer on control socket \(control)") }
        try await tgtadm(["--lld", "iscsi", "--op", "new", "--mode", "target", "--tid", "1", "-T", iqn])
        for lun in luns { try await tgtadm(["--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", String(lun.number), "-b", file(lun.number)]) }
        try await tgtadm(["--lld", "iscsi", "--op", "bind", "--mode", "target", "--tid", "1", "-I", "127.0.0.1"])
    }

    public func addLUN(_ number: Int, mib: UInt64) async throws {
        try createFile(number, mib)
        luns.append((number: number, mib: mib))
        try await tgtadm(["--lld", "iscsi", "--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", String(number), "-b", file(number)])
    }

    /// tgtd ignores SIGTERM: offline, delete the target, delete the system (it exits);
    /// SIGKILL when it has not within 5 s.
    public func stop(removeFiles: Bool = false) async {
        if let daemon {
            let c = ["-C", String(control)]
            _ = try? await runCommand("/usr/sbin/tgtadm", c + ["--op", "update", "--mode", "sys", "--name", "State", "-v", "offline"])
            _ = try? await runCommand("/usr/sbin/tgtadm", c + ["--lld", "iscsi", "--op", "delete", "--mode", "target", "--tid", "1", "--force"])
            _ = try? await runCommand("/usr/sbin/tgtadm", c + ["--op", "delete", "--mode", "system"])
            for _ in 0..<50 where daemon.exitStatusIfExited() == nil { try? await Task.sleep(for: .milliseconds(100)) }
            if daemon.exitStatusIfExited() == nil {
                daemon.signal(SIGKILL)
                _ = daemon.wait()
            }
            self.daemon = nil
        }
        if removeFiles { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// A port nothing listens on now: bind port 0 on loopback and let the kernel choose.
public func freeLoopbackPort() throws -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestFailure("bind 127.0.0.1:0: errno \(errno)") }
    return UInt16(bigEndian: address.sin_port)
}
