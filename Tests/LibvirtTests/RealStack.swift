import Foundation
import Libvirt
import TestSupport
import Testing

// Helpers for the tests that need the real libvirtd (qemu:///system, guests under TCG):
// for the calls libvirt's test driver does not implement. Gated by `realStackAvailable`.
// Every object they make has a unique `lt-` name and is removed by the test's `defer`.

/// The real libvirtd, opened after the event loop so that events arrive.
func openSystem() throws -> LibvirtConnection {
    try LibvirtEventLoop.start()
    return try LibvirtConnection(uri: "qemu:///system")
}

/// "lt-<kind>-<6 hex>", unique per call.
func uniqueName(_ kind: String) -> String {
    "lt-\(kind)-\(UUID().uuidString.prefix(6).lowercased())"
}

/// A bridge name of at most 15 characters: "vmlt" and 6 hex digits.
func uniqueBridgeName() -> String {
    "vmlt\(UUID().uuidString.prefix(6).lowercased())"
}

/// Runs a tool and fails the test with its output when it does not exit 0.
@discardableResult
func run(_ executable: String, _ arguments: [String]) async throws -> String {
    let result = try await runCommand(executable, arguments)
    guard result.status == 0 else {
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")) failed: \(result.stdout)\(result.stderr)")
    }
    return result.stdout
}

/// A /24 in 10.251.0.0/16 that no host address or route uses now, as its third octet, from
/// `octets` (suites running at the same time use disjoint ranges).
func unusedSubnet(in octets: ClosedRange<Int>) async throws -> Int {
    let addresses = try await run("/usr/sbin/ip", ["-o", "-4", "addr", "show"])
    let routes = try await run("/usr/sbin/ip", ["-4", "route", "show", "table", "all"])
    for _ in 0..<50 {
        let octet = Int.random(in: octets)
        let prefix = "10.251.\(octet)."
        if !addresses.contains(prefix) && !routes.contains(prefix) { return octet }
    }
    throw TestFailure("no unused 10.251.x.0/24 found")
}

/// A directory under /tmp for one test's images, removed by `remove()`.
struct ScratchDirectory {
    let url: URL

    init() throws {
        url = try makeTemporaryDirectory()
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// `qemu-img create -f qcow2 PATH SIZE` (optionally over a backing file).
func makeQcow2(_ path: String, size: String = "64M", backing: String? = nil) async throws {
    var arguments = ["create", "-q", "-f", "qcow2"]
    if let backing { arguments += ["-F", "qcow2", "-b", backing] }
    try await run("/usr/bin/qemu-img", arguments + [path] + (backing == nil ? [size] : []))
}

/// Writes a byte pattern into an image that no guest uses: `qemu-io -c 'write -P …'`.
func writePattern(_ path: String, byte: UInt8 = 0x5a, offset: String = "0", length: String = "4M") async throws {
    try await run("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -q -P \(byte) \(offset) \(length)", path])
}

/// A tiny TCG guest: 64 MiB, no OS (SeaBIOS finds nothing to boot and waits), ACPI, one
/// qcow2 disk `sda` on virtio-scsi (so a detach is immediate), optionally a NIC on `network`.
func tinyDomainXML(name: String, disk: String, network: String? = nil, bootFromNetwork: Bool = false) -> String {
    let interface = network.map {
        "<interface type='network'><source network='\($0)'/><model type='virtio'/></interface>"
    } ?? ""
    let boot = bootFromNetwork ? "<boot dev='network'/>" : "<boot dev='hd'/>"
    return """
    <domain type='qemu'><name>\(name)</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
    <os><type arch='x86_64' machine='pc'>hvm</type>\(boot)</os><features><acpi/></features>
    <devices><controller type='scsi' index='0' model='virtio-scsi'/>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='\(disk)'/>\
    <target dev='sda' bus='scsi'/></disk>\(interface)<memballoon model='virtio'/></devices></domain>
    """
}

/// Removes a domain whatever its state: destroy if running, undefine with everything it may
/// hold. Errors are ignored (it may be gone already).
func removeDomain(named name: String, on connection: LibvirtConnection) {
    guard let domain = try? connection.domain(name: name) else { return }
    if (try? domain.isActive) == true { try? domain.destroy() }
    try? domain.undefine(flags: [.managedSave, .snapshotsMetadata, .checkpointsMetadata, .nvram])
}

/// Stops and removes a network; errors are ignored (it may be gone already).
func removeNetwork(named name: String, on connection: LibvirtConnection) {
    guard let network = try? connection.network(name: name) else { return }
    if (try? network.isActive) == true { try? network.destroy() }
    try? network.undefine()
}

/// Stops and removes a storage pool (its directory stays); errors are ignored.
func removePool(named name: String, on connection: LibvirtConnection) {
    guard let pool = try? connection.pool(name: name) else { return }
    if (try? pool.isActive) == true { try? pool.destroy() }
    try? pool.undefine()
}

/// Polls `condition` (which may call libvirt) every 50 ms until it holds or `timeout` passes.
func poll(timeout: Duration = .seconds(30), _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}

/// A tiny TCG guest with its disk image in a scratch directory; `remove()` destroys and
/// undefines it and deletes the directory.
struct ScratchDomain {
    let connection: LibvirtConnection
    let directory: ScratchDirectory
    let name: String
    let domain: LibvirtDomain
    let uuid: String

    /// The disk image behind `sda`.
    var diskPath: String { directory.path("disk.qcow2") }

    /// Makes the image (with `pattern` MiB of data written first, if any), defines the
    /// domain (persistent unless `transient`) and starts it unless `start` is false.
    static func make(on connection: LibvirtConnection, transient: Bool = false, start: Bool = true,
                     patternMiB: Int = 0) async throws -> ScratchDomain {
        let directory = try ScratchDirectory()
        let name = uniqueName("dom")
        do {
            let disk = directory.path("disk.qcow2")
            try await makeQcow2(disk)
            if patternMiB > 0 { try await writePattern(disk, length: "\(patternMiB)M") }
            let xml = tinyDomainXML(name: name, disk: disk)
            let domain: LibvirtDomain
            if transient {
                domain = try connection.createDomain(xml: xml)
            } else {
                domain = try connection.defineDomain(xml: xml)
                if start { try domain.start() }
            }
            return ScratchDomain(connection: connection, directory: directory, name: name, domain: domain,
                                 uuid: try domain.uuid)
        } catch {
            removeDomain(named: name, on: connection)
            directory.remove()
            throw error
        }
    }

    func remove() {
        removeDomain(named: name, on: connection)
        directory.remove()
    }

    /// The `<source file=…>` of `sda` in the live (or inactive) definition.
    func diskSource(inactive: Bool = false) throws -> String? {
        let xml = try domain.xml(flags: inactive ? .inactive : [])
        guard let disk = xml.firstMatch(of: /<disk type='file' device='disk'>[\s\S]*?<target dev='sda'/) else { return nil }
        return disk.output.firstMatch(of: /<source file='([^']+)'/).map { String($0.1) }
    }
}
