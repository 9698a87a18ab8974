import DBus
import Foundation
import Glibc
import VMMSModel

/// `Host.CheckHealth`: gathers the facts `HealthRules` judge from the models, the published
/// objects (switches, SANs, checkpoints as clients see them) and the host itself (file
/// systems, devices, groups, the bus), then evaluates the rules. File-system work runs on
/// `BlockingIO`; the polkitd check is one bounded bus call. Nothing here calls libvirt: a
/// host whose libvirtd hangs still gets its answer.
struct HealthCheck: Sendable {
    let host: HostModel
    let vms: VMModel
    let publisher: Publisher
    let connection: DBusConnection
    /// Whether the service is on the system bus (polkit consulted, a unit to start it).
    let systemBus: Bool

    static let switchInterface = "org.example.VMMS1.Switch"
    static let sanInterface = "org.example.VMMS1.SAN"

    func findings() async throws -> [HealthRules.Finding] {
        var facts = HealthFacts()
        let record = host.record
        facts.libvirtConnected = record.info.connected
        facts.connectionURI = record.info.connectionURI
        facts.hypervisor = record.info.hypervisor
        facts.hostMemoryBytes = record.info.memoryCapacityBytes
        facts.polkitdRunning = systemBus ? await polkitdOnBus() : nil

        let vmRecords = vms.records(except: nil)
        facts.pausedVMs = vmRecords.filter { $0.state == .paused }.map(\.name).sorted()
        facts.runningMemoryBytes = vmRecords.filter { $0.state == .running || $0.state == .paused }
            .reduce(0) { $0 + max($1.memoryAssignedBytes, $1.configuration.memoryStartupBytes) }
        facts.vmsWithCheckpoints = vmRecords.filter { vm in
            !(publisher.properties(at: Paths.vm(uuid: vm.uuid), interface: VMKind.interface.name)?["Checkpoints"]?
                .arrayElements?.isEmpty ?? true)
        }.map(\.name).sorted()

        let published = publisher.managedObjects(below: Paths.root)
        let switches = published.compactMap { $0.interfaces[Self.switchInterface] }
        let sans = published.compactMap { object in object.interfaces[Self.sanInterface].map { (object.path, $0) } }
        facts.needsDnsmasq = switches.isEmpty
            || switches.contains { ["Internal", "NAT"].contains($0["Type"]?.string ?? "") }
        facts.sans = sans.map { path, san in
            HealthFacts.SAN(name: san["Name"]?.string ?? "", path: path.rawValue,
                            detail: [san["Portal"]?.string, san["Target"]?.string].compactMap { $0 }.filter { !$0.isEmpty }
                                .joined(separator: " "),
                            active: san["Active"]?.boolean ?? true)
        }.sorted { $0.name < $1.name }

        let settings = record.settings
        let disks = vmRecords.flatMap { vm in
            vm.configuration.hardDisks.map { (vm: vm.name, path: $0.path, format: $0.format, capacity: vm.diskCapacities[$0.path] ?? 0) }
        }
        let switchFacts = switches.map { sw in
            let name = sw["Name"]?.string ?? ""
            return (name: name, bridge: sw["Bridge"]?.string ?? "", interface: sw["Interface"]?.string ?? "",
                    active: sw["Active"]?.boolean ?? true,
                    usedBy: vmRecords.filter { vm in vm.configuration.networkAdapters.contains { $0.network == name } }.map(\.name).sorted())
        }
        let systemBus = self.systemBus
        let hypervisor = facts.hypervisor, secureBoot = record.info.secureBootAvailable
        let gathered = facts
        facts = try await BlockingIO.run {
            var facts = gathered
            facts.kvmDevice = FileManager.default.fileExists(atPath: "/dev/kvm")
            facts.ovmfInstalled = secureBoot || hypervisor == "test" || HostFiles.ovmfInstalled
            facts.dnsmasqInstalled = HostFiles.executableExists("dnsmasq")
            facts.adminGroupExists = getgrnam("vmms-admins") != nil
            facts.serviceEnabled = systemBus ? HostFiles.serviceEnabled(unit: "vmms.service") : nil
            facts.storagePaths = [("VirtualMachinePath", settings.virtualMachinePath),
                                  ("VirtualHardDiskPath", settings.virtualHardDiskPath)].map { property, path in
                var isDirectory: ObjCBool = false
                let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                return HealthFacts.StoragePath(property: property, path: path, exists: exists, isDirectory: isDirectory.boolValue,
                                               writable: exists && access(path, W_OK) == 0)
            }
            var missing: [(vm: String, path: String)] = []
            var growth: [UInt64: (mount: String, bytes: UInt64)] = [:]
            for disk in disks where disk.path.hasPrefix("/") {
                var info = stat()
                guard stat(disk.path, &info) == 0 else {
                    missing.append((disk.vm, disk.path))
                    continue
                }
                guard (info.st_mode & S_IFMT) == S_IFREG else { continue }
                let allocated = UInt64(max(0, info.st_blocks)) * 512
                let more = disk.format == "qcow2" && disk.capacity > allocated ? disk.capacity - allocated : 0
                let device = UInt64(info.st_dev)
                let mount = growth[device]?.mount ?? HostFiles.mountPoint(of: disk.path, device: info.st_dev)
                growth[device] = (mount, (growth[device]?.bytes ?? 0) + more)
            }
            for path in [settings.virtualMachinePath, settings.virtualHardDiskPath] {
                var info = stat()
                guard stat(path, &info) == 0, growth[UInt64(info.st_dev)] == nil else { continue }
                growth[UInt64(info.st_dev)] = (HostFiles.mountPoint(of: path, device: info.st_dev), 0)
            }
            facts.missingDisks = missing
            facts.fileSystems = growth.values.compactMap { fs in
                var space = statvfs()
                guard statvfs(fs.mount, &space) == 0 else { return nil }
                return HealthFacts.FileSystem(mountPoint: fs.mount, freeBytes: UInt64(space.f_bavail) * UInt64(space.f_frsize),
                                              potentialGrowthBytes: fs.bytes)
            }.sorted { $0.mountPoint < $1.mountPoint }
            facts.switches = switchFacts.map { sw in
                HealthFacts.Switch(name: sw.name, network: sw.name, bridge: sw.bridge, interface: sw.interface, active: sw.active,
                                   bridgeExists: sw.bridge.isEmpty || HostFiles.netDeviceExists(sw.bridge),
                                   interfaceExists: sw.interface.isEmpty || HostFiles.netDeviceExists(sw.interface),
                                   usedBy: sw.usedBy)
            }.sorted { $0.name < $1.name }
            return facts
        }
        return HealthRules.evaluate(facts)
    }

    /// Whether polkitd owns its name, asked with a short timeout: a stuck bus is a finding too.
    private func polkitdOnBus() async -> Bool {
        do {
            let reply = try await connection.call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                                                  interface: "org.freedesktop.DBus", member: "NameHasOwner",
                                                  [.string("org.freedesktop.PolicyKit1")], timeout: .seconds(2))
            return reply.first?.boolean ?? false
        } catch {
            return false
        }
    }
}

/// Facts about the host's files, for the health rules. Blocking: call on `BlockingIO`.
enum HostFiles {
    static let ovmfCodeFiles = ["/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_CODE.fd",
                                "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd", "/usr/share/qemu/OVMF.fd"]
    static var ovmfInstalled: Bool { ovmfCodeFiles.contains { FileManager.default.fileExists(atPath: $0) } }

    static func executableExists(_ name: String) -> Bool {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
            .contains { access("\($0)/\(name)", X_OK) == 0 }
    }

    static func netDeviceExists(_ name: String) -> Bool {
        !name.contains("/") && FileManager.default.fileExists(atPath: "/sys/class/net/\(name)")
    }

    /// Whether systemd would start `unit` at boot: a symlink to it in a `.wants` directory of
    /// /etc/systemd/system (what `systemctl enable` makes). nil when no such unit is installed.
    static func serviceEnabled(unit: String) -> Bool? {
        let unitDirectories = ["/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]
        guard unitDirectories.contains(where: { FileManager.default.fileExists(atPath: "\($0)/\(unit)") }) else { return nil }
        let wants = (try? FileManager.default.contentsOfDirectory(atPath: "/etc/systemd/system")) ?? []
        return wants.filter { $0.hasSuffix(".wants") }
            .contains { FileManager.default.fileExists(atPath: "/etc/systemd/system/\($0)/\(unit)") }
    }

    /// The top of the file system holding `path`: the last ancestor on the same device.
    static func mountPoint(of path: String, device: dev_t) -> String {
        var current = URL(fileURLWithPath: path).standardizedFileURL.path
        while current != "/" {
            let parent = (current as NSString).deletingLastPathComponent
            var info = stat()
            guard stat(parent, &info) == 0, info.st_dev == device else { return current }
            current = parent.isEmpty ? "/" : parent
        }
        return "/"
    }
}
