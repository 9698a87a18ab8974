import DBus
import Foundation
import TestSupport
import Testing
@testable import VMMSService

@Suite(.serialized) struct HostObjectTests {
    @Test func hostPropertiesComeFromLibvirt() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let all = try await f.call(Paths.host, "org.freedesktop.DBus.Properties", "GetAll", [.string("org.example.VMMS1.Host")])
        let props = try #require(all.first?.stringKeyedDictionary)
        // libvirt's test driver describes a fixed host: 16 CPUs, 3 GiB, hypervisor "test".
        #expect(props["Hypervisor"] == .string("test"))
        #expect(props["ConnectionURI"] == .string("test:///default"))
        #expect(props["Connected"] == .boolean(true))
        #expect(props["LogicalProcessorCount"] == .uint32(16))
        #expect(props["MemoryCapacityBytes"] == .uint64(3 * 1024 * 1024 * 1024))
        #expect(props["SecureBootAvailable"] == .boolean(false))
        #expect(props["ServiceVersion"] == .string(ServiceVersion.current))
        #expect(props["Hostname"]?.string?.isEmpty == false)
    }

    @Test func introspectionMatchesTheXMLFiles() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let vm = try #require(try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string("test")]).first?.objectPath)
        let files: [(file: String, path: ObjectPath)] = [("org.example.VMMS1.Host.xml", Paths.host), ("org.example.VMMS1.VM.xml", vm)]
            + [("org.example.VMMS1.Switch.xml", Paths.switch(name: "default"))]  // the test driver's own network
        for (file, path) in files {
            let expected = try InterfaceShape.parse(String(contentsOfFile: repositoryRoot + "/dbus/" + file, encoding: .utf8))
            let live = try InterfaceShape.parse(try #require(try await f.call(path, "org.freedesktop.DBus.Introspectable", "Introspect").first?.string))
            #expect(!expected.isEmpty)
            for (name, shape) in expected {
                #expect(live[name] == shape, "\(name) in \(file) differs from what \(path) introspects")
            }
        }
    }

    @Test func rootIsTheObjectManagerAndListsTheHost() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let managed = try await f.call(Paths.root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        guard case .dictionary(_, _, let entries)? = managed.first else { Issue.record("no dictionary"); return }
        #expect(entries.contains { $0.key == .objectPath(Paths.host) })
    }

    @Test func storagePathIsPersistedAndAnnounced() async throws {
        let state = NSTemporaryDirectory() + "vmms-state-\(UUID().uuidString)"
        let target = NSTemporaryDirectory() + "vmms-vms-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        do {
            let f = try await ServiceFixture(stateDirectory: state)
            let signals = try await f.client.signals(matching: MatchRule(path: Paths.host, interface: "org.freedesktop.DBus.Properties",
                                                                         member: "PropertiesChanged"))
            _ = try await f.call(Paths.host, "org.freedesktop.DBus.Properties", "Set",
                                 [.string("org.example.VMMS1.Host"), .string("VirtualMachinePath"), .variant(.string(target))])
            // Other suites share the in-process test driver, so VirtualMachines may change too.
            let changed = await firstMatch(signals) { $0.body.dropFirst().first?.stringKeyedDictionary?["VirtualMachinePath"] != nil }
            #expect(changed?.body[1].stringKeyedDictionary == ["VirtualMachinePath": .string(target)])
            f.close()
        }
        // A new service over the same state directory reads the setting back.
        let again = try await ServiceFixture(stateDirectory: state)
        defer { again.close() }
        #expect(try await again.hostProperty("VirtualMachinePath") == .string(target))
    }

    /// Sets of both host paths, many at once: every one is announced, and the settings file a
    /// new service reads back holds the last value of each (no write lost to another).
    @Test func concurrentSetsOfHostPathsLoseNothing() async throws {
        let state = NSTemporaryDirectory() + "vmms-state-\(UUID().uuidString)"
        let folders = (0..<8).map { NSTemporaryDirectory() + "vmms-paths-\($0)-\(UUID().uuidString.prefix(8))" }
        for folder in folders { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        defer { for folder in folders { try? FileManager.default.removeItem(atPath: folder) } }
        let (machines, disks) = (folders[3], folders[7])
        do {
            let f = try await ServiceFixture(stateDirectory: state)
            defer { f.close() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, folder) in folders.enumerated() {
                    // Machines get folders 0-3, disks 4-7; the last of each is set after the others.
                    let property = index < 4 ? "VirtualMachinePath" : "VirtualHardDiskPath"
                    if folder == machines || folder == disks { continue }
                    group.addTask {
                        _ = try await f.call(Paths.host, "org.freedesktop.DBus.Properties", "Set",
                                             [.string("org.example.VMMS1.Host"), .string(property), .variant(.string(folder))])
                    }
                }
                try await group.waitForAll()
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (property, folder) in [("VirtualMachinePath", machines), ("VirtualHardDiskPath", disks)] {
                    group.addTask {
                        _ = try await f.call(Paths.host, "org.freedesktop.DBus.Properties", "Set",
                                             [.string("org.example.VMMS1.Host"), .string(property), .variant(.string(folder))])
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await f.hostProperty("VirtualMachinePath") == .string(machines))
            #expect(try await f.hostProperty("VirtualHardDiskPath") == .string(disks))
        }
        let again = try await ServiceFixture(stateDirectory: state)
        defer { again.close() }
        #expect(try await again.hostProperty("VirtualMachinePath") == .string(machines), "a concurrent Set lost the machines path")
        #expect(try await again.hostProperty("VirtualHardDiskPath") == .string(disks), "a concurrent Set lost the disks path")
    }

    @Test(arguments: ["", "relative/path", "/does/not/exist/\(UUID().uuidString)", "/tmp/../etc", "/etc/passwd", "/"])
    func badStoragePathIsRefusedAndChangesNothing(path: String) async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let before = try await f.hostProperty("VirtualHardDiskPath")
        await #expect(throws: DBusError.self) {
            _ = try await f.call(Paths.host, "org.freedesktop.DBus.Properties", "Set",
                                 [.string("org.example.VMMS1.Host"), .string("VirtualHardDiskPath"), .variant(.string(path))])
        }
        do {
            _ = try await f.call(Paths.host, "org.freedesktop.DBus.Properties", "Set",
                                 [.string("org.example.VMMS1.Host"), .string("VirtualHardDiskPath"), .variant(.string(path))])
        } catch let error as DBusError {
            #expect(error.name == DBusError.Name.invalidArgs)
        }
        #expect(try await f.hostProperty("VirtualHardDiskPath") == before)
        #expect(!FileManager.default.fileExists(atPath: f.stateDirectory + "/host-settings.json"))
    }

    @Test func readOnlyHostPropertyCannotBeSet() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        do {
            _ = try await f.call(Paths.host, "org.freedesktop.DBus.Properties", "Set",
                                 [.string("org.example.VMMS1.Host"), .string("Hostname"), .variant(.string("x"))])
            Issue.record("Set succeeded")
        } catch let error as DBusError {
            #expect(error.name == DBusError.Name.propertyReadOnly)
        }
    }

    @Test func busctlAndGdbusSeeTheHost() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let introspect = try await runCommand("/usr/bin/busctl", ["--address=\(f.bus.address)", "introspect", Paths.busName, Paths.host.rawValue])
        #expect(introspect.status == 0)
        #expect(introspect.stdout.contains("org.example.VMMS1.Host"))
        #expect(introspect.stdout.contains(".LogicalProcessorCount"))
        let hypervisor = try await runCommand("/usr/bin/gdbus", ["call", "--address", f.bus.address, "--dest", Paths.busName,
                                                                 "--object-path", Paths.host.rawValue, "--method",
                                                                 "org.freedesktop.DBus.Properties.Get", "org.example.VMMS1.Host", "Hypervisor"])
        #expect(hypervisor.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "(<'test'>,)")
    }
}
