import DBus
import Foundation
import TestSupport
import Testing

/// The VM setters on real QEMU through libvirtd: what `virsh dumpxml` shows, the signals,
/// the refusals that leave the definition alone, path confinement for non-root admins, and a
/// generation 2 VM booting OVMF with Secure Boot (under TCG) and without it.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct ConfigurationTests {
    static let vm = "org.example.VMMS1.VM"
    static let props = "org.freedesktop.DBus.Properties"
    static let mib: UInt64 = 1 << 20
    typealias Client = LifecycleTests.Client

    static func inactiveXML(_ name: String) async throws -> String {
        try await virsh(["dumpxml", "--inactive", name]).stdout
    }

    static func waitForState(_ client: Client, _ path: ObjectPath, _ state: String) async throws {
        for _ in 0..<400 {
            if try await client.state(path) == state { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestFailure("the VM did not reach \(state)")
    }

    @Test func settersReachTheQemuDefinitionAndBadValuesChangeNothing() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let diskDirectory = try await client.diskDirectory()
            let name = Names.unique("cfg")
            let path = try await client.create(name, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 * Self.mib)])
            let changes = try await client.bus.signals(matching: MatchRule(sender: "org.example.VMMS1", path: path,
                                                                           interface: Self.props, member: "PropertiesChanged"))

            _ = try await client.call(path, Self.vm, "SetProcessor", [.uint32(2), .vardict(["Maximum": .uint32(50), "RelativeWeight": .uint32(200)])])
            let announced = await firstMatch(changes) { $0.body.dropFirst().first?.stringKeyedDictionary?["ProcessorCount"] == .uint32(2) }
            #expect(announced != nil, "no PropertiesChanged for ProcessorCount")
            var xml = try await Self.inactiveXML(name)
            #expect(xml.contains("<vcpu placement='static'>2</vcpu>"), "\(xml)")
            #expect(xml.contains("<shares>2048</shares>") && xml.contains("<period>100000</period>") && xml.contains("<quota>50000</quota>"), "\(xml)")

            _ = try await client.call(path, Self.vm, "SetMemory", [.uint64(128 * Self.mib),
                .vardict(["DynamicMemory": .boolean(true), "MinimumBytes": .uint64(64 * Self.mib), "MaximumBytes": .uint64(256 * Self.mib)])])
            xml = try await Self.inactiveXML(name)
            #expect(xml.contains("<memory unit='KiB'>262144</memory>") && xml.contains("<currentMemory unit='KiB'>131072</currentMemory>"), "\(xml)")

            let added = try #require(try await client.call(path, Self.vm, "AddHardDisk", [.vardict(["SizeBytes": .uint64(16 * Self.mib)])]).first?.string)
            #expect(added.hasPrefix(diskDirectory) && FileManager.default.fileExists(atPath: added), "\(added)")
            #expect(try await Self.inactiveXML(name).contains("<source file='\(added)'/>"))

            // Refusals leave the definition exactly as it was.
            let before = try await Self.inactiveXML(name)
            let invalid = DBusError.Name.invalidArgs
            await expectDBusError(invalid, "0 processors") { _ = try await client.call(path, Self.vm, "SetProcessor", [.uint32(0), .vardict([:])]) }
            await expectDBusError(invalid, "Reserve above Maximum") {
                _ = try await client.call(path, Self.vm, "SetProcessor", [.uint32(1), .vardict(["Reserve": .uint32(80)])])
            }
            await expectDBusError(invalid, "memory not in MiB") { _ = try await client.call(path, Self.vm, "SetMemory", [.uint64(100_000_000), .vardict([:])]) }
            await expectDBusError(invalid, "minimum above startup") {
                _ = try await client.call(path, Self.vm, "SetMemory", [.uint64(128 * Self.mib), .vardict(["MinimumBytes": .uint64(192 * Self.mib)])])
            }
            await expectDBusError("org.example.VMMS1.Error.NotSupported", "Secure Boot on generation 1") {
                _ = try await client.call(path, Self.vm, "SetSecureBoot", [.boolean(true)])
            }
            await expectDBusError("org.example.VMMS1.Error.AlreadyExists", "the same disk twice") {
                _ = try await client.call(path, Self.vm, "AddHardDisk", [.vardict(["Path": .string(added)])])
            }
            await expectDBusError(invalid, "deleting a file outside the roots") {
                _ = try await client.call(path, Self.vm, "RemoveHardDisk", [.string("/etc/hostname"), .vardict(["DeleteFile": .boolean(true)])])
            }
            #expect(try await Self.inactiveXML(name) == before)

            // Running: the balloon may move, the maximum may not.
            try await client.vm(path, "Start")
            await expectDBusError("org.example.VMMS1.Error.InvalidState", "a new maximum while running") {
                _ = try await client.call(path, Self.vm, "SetMemory", [.uint64(128 * Self.mib), .vardict(["MaximumBytes": .uint64(512 * Self.mib)])])
            }
            // QEMU cannot unplug these (not hot-pluggable) vCPUs: InvalidState.
            await expectDBusError("org.example.VMMS1.Error.InvalidState", "fewer vCPUs while running") {
                _ = try await client.call(path, Self.vm, "SetProcessor", [.uint32(1), .vardict([:])])
            }
            // Weight and limit apply to the running VM at once.
            _ = try await client.call(path, Self.vm, "SetProcessor", [.uint32(2), .vardict(["RelativeWeight": .uint32(300), "Maximum": .uint32(100)])])
            let schedinfo = try await virsh(["schedinfo", name]).stdout
            #expect(schedinfo.contains("cpu_shares     : 3072"), "\(schedinfo)")
            #expect(try await Self.inactiveXML(name).contains("<shares>3072</shares>"))
            try await client.vm(path, "TurnOff")

            _ = try await client.call(path, Self.vm, "RemoveHardDisk", [.string(added), .vardict(["DeleteFile": .boolean(true)])])
            #expect(!FileManager.default.fileExists(atPath: added))
            #expect(!(try await Self.inactiveXML(name).contains(added)))
            try await client.vm(path, "Delete", [.vardict([:])])
        }
    }

    /// New disks go where VirtualHardDiskPath points now, and every directory in use keeps
    /// a pool: disks left in the old directory keep their capacity and are still deleted.
    @Test func everyDiskDirectoryInUseKeepsAPool() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let host: ObjectPath = "/org/example/VMMS1/Host"
            let directory = NSTemporaryDirectory() + "vmms-disks-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            func poolNames(at path: String) async throws -> [String] {
                var found: [String] = []
                for pool in try await virsh(["pool-list", "--all", "--name"]).stdout.split(separator: "\n")
                    .map({ $0.trimmingCharacters(in: .whitespaces) }) where !pool.isEmpty {
                    if try await virsh(["pool-dumpxml", pool]).stdout.contains("<path>\(path)</path>") { found.append(pool) }
                }
                return found
            }
            defer {
                // The pool vmms made for the temporary directory goes with it.
                let pools = (try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "pool-list", "--all", "--name"]).stdout) ?? ""
                for pool in pools.split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) where !pool.isEmpty {
                    if let xml = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "pool-dumpxml", pool]).stdout,
                       xml.contains("<path>\(directory)</path>") {
                        _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "pool-destroy", pool])
                        _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "pool-undefine", pool])
                    }
                }
                try? FileManager.default.removeItem(atPath: directory)
            }
            let original = try #require(try await client.call(host, Self.props, "Get",
                                                              [.string("org.example.VMMS1.Host"), .string("VirtualHardDiskPath")]).first?.variant?.string)
            let oldName = Names.unique("poolold")
            let old = try await client.create(oldName, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 * Self.mib),
                                                        "NewDiskSizeBytes": .uint64(16 * Self.mib)])
            let oldDisk = original + "/\(oldName).qcow2"
            #expect(FileManager.default.fileExists(atPath: oldDisk))

            _ = try await client.call(host, Self.props, "Set", [.string("org.example.VMMS1.Host"), .string("VirtualHardDiskPath"), .variant(.string(directory))])
            let name = Names.unique("pool")
            let path = try await client.create(name, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 * Self.mib),
                                                      "NewDiskSizeBytes": .uint64(16 * Self.mib)])
            let added = try #require(try await client.call(path, Self.vm, "AddHardDisk", [.vardict(["SizeBytes": .uint64(16 * Self.mib)])]).first?.string)
            #expect(FileManager.default.fileExists(atPath: directory + "/\(name).qcow2"))
            #expect(added == directory + "/\(name)-2.qcow2" && FileManager.default.fileExists(atPath: added), "\(added)")
            let newPools = try await poolNames(at: directory), oldPools = try await poolNames(at: original)
            #expect(newPools.count == 1, "\(newPools)")
            #expect(oldPools.count == 1, "the old directory keeps its pool: \(oldPools)")

            // The disk left in the old directory still shows its size and is deleted with its VM.
            let disks = try await client.call(old, Self.props, "Get", [.string(Self.vm), .string("HardDisks")]).first?.variant
            #expect(disks == .array("(sst)", [.structure([.string(oldDisk), .string("qcow2"), .uint64(16 * Self.mib)])]), "\(String(describing: disks))")
            try await client.vm(old, "Delete", [.vardict(["DeleteDisks": .boolean(true)])])
            #expect(!FileManager.default.fileExists(atPath: oldDisk))

            try await client.vm(path, "Delete", [.vardict(["DeleteDisks": .boolean(true)])])
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
            _ = try await client.call(host, Self.props, "Set", [.string("org.example.VMMS1.Host"), .string("VirtualHardDiskPath"), .variant(.string(original))])
        }
    }

    @Test func nonRootAdminsCannotAttachFilesOutsideTheStorageRoots() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let alice = GDBus(user: "alice")
            let name = Names.unique("confine")
            let vm = try await alice.createVM(name)
            let diskDirectory = try await GDBus(user: "root").get("/org/example/VMMS1/Host", "org.example.VMMS1.Host", "VirtualHardDiskPath")
                .output.split(separator: "'").dropFirst().first.map(String.init) ?? ""
            #expect(diskDirectory.hasPrefix("/"))
            let link = diskDirectory + "/\(name)-shadow.qcow2"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/etc/shadow")
            defer { try? FileManager.default.removeItem(atPath: link) }
            let before = try await Self.inactiveXML(name)
            for target in ["/etc/shadow", link, "/dev/sda", diskDirectory + "/../../../etc/shadow"] {
                let outcome = try await alice.call(vm, "\(Self.vm).AddHardDisk", ["{'Path': <'\(target)'>}"])
                #expect(outcome.errorName == DBusError.Name.invalidArgs, "alice attaching \(target): \(outcome)")
            }
            // Inside the root but still refused: an image with a backing file (QEMU would open
            // it), one below a directory others may write to (swappable after the check), and
            // another VM's disk.
            let backed = diskDirectory + "/\(name)-backed.qcow2"
            #expect(try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw", backed]).status == 0)
            defer { try? FileManager.default.removeItem(atPath: backed) }
            let open = diskDirectory + "/\(name)-open"
            try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
            defer { try? FileManager.default.removeItem(atPath: open) }
            #expect(try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", open + "/x.qcow2", "16M"]).status == 0)
            let other = Names.unique("other")
            let otherVM = try await GDBus(user: "root").createVM(other, extra: ", 'NewDiskSizeBytes': <uint64 16777216>")
            for target in [backed, open + "/x.qcow2", diskDirectory + "/\(other).qcow2"] {
                let outcome = try await alice.call(vm, "\(Self.vm).AddHardDisk", ["{'Path': <'\(target)'>}"])
                #expect(outcome.errorName == DBusError.Name.invalidArgs, "alice attaching \(target): \(outcome)")
            }
            let shared = try await alice.call("/org/example/VMMS1/Host", "org.example.VMMS1.Host.CreateVM",
                                              [Names.unique("thief"), "{'Generation': <uint32 1>, 'DiskPath': <'\(diskDirectory)/\(other).qcow2'>}"])
            #expect(shared.errorName == DBusError.Name.invalidArgs, "CreateVM on another VM's disk: \(shared)")
            #expect(try await Self.inactiveXML(name) == before)
            // A proper image inside the root is fine for her.
            let image = diskDirectory + "/\(name)-ok.qcow2"
            #expect(try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image, "16M"]).status == 0)
            defer { try? FileManager.default.removeItem(atPath: image) }
            let ok = try await alice.call(vm, "\(Self.vm).AddHardDisk", ["{'Path': <'\(image)'>}"])
            #expect(ok.ok, "\(ok)")
            #expect(try await Self.inactiveXML(name).contains(image))
            _ = try await GDBus(user: "root").call(vm, "\(Self.vm).Delete", ["{}"])
            _ = try await GDBus(user: "root").call(otherVM, "\(Self.vm).Delete", ["{'DeleteDisks': <true>}"])
        }
    }

    @Test func generationTwoBootsOVMFWithSecureBootAndWithout() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let name = Names.unique("uefi")
            let path = try await client.create(name, ["Generation": .uint32(2), "MemoryStartupBytes": .uint64(256 * Self.mib)])
            #expect(try await client.call(path, Self.props, "Get", [.string(Self.vm), .string("SecureBoot")]).first?.variant == .boolean(true))

            try await client.vm(path, "Start")
            var live = try await virsh(["dumpxml", name]).stdout
            #expect(live.contains("secure='yes'"), "\(live)")
            try await Task.sleep(for: .seconds(2))
            #expect(try await client.state(path) == "Running")
            #expect(try await virsh(["domstate", name]).stdout.contains("running"))

            await expectDBusError("org.example.VMMS1.Error.InvalidState", "Secure Boot while running") {
                _ = try await client.call(path, Self.vm, "SetSecureBoot", [.boolean(false)])
            }
            try await client.vm(path, "TurnOff")
            _ = try await client.call(path, Self.vm, "SetSecureBoot", [.boolean(false)])
            #expect(try await client.call(path, Self.props, "Get", [.string(Self.vm), .string("SecureBoot")]).first?.variant == .boolean(false))
            #expect(try await Self.inactiveXML(name).contains("<feature enabled='no' name='secure-boot'/>"))

            try await client.vm(path, "Start")
            live = try await virsh(["dumpxml", name]).stdout
            #expect(!live.contains("secure='yes'") && live.contains("<loader"), "\(live)")
            #expect(!(try await Self.inactiveXML(name).contains("resetNVRAM")), "the NVRAM reset request outlived the start")
            try await Task.sleep(for: .seconds(2))
            #expect(try await client.state(path) == "Running")
            try await client.vm(path, "TurnOff")
            try await client.vm(path, "Delete", [.vardict([:])])
        }
    }
}
