import DBus
import Foundation
import Libvirt
import TestSupport
import Testing
@testable import VMMSService

/// The VM objects over libvirt's test driver: lifecycle, events from behind the service's
/// back, and refusal of bad input with nothing changed.
@Suite(.serialized) struct VMLifecycleTests {
    static let vmInterface = "org.example.VMMS1.VM"
    static let props = "org.freedesktop.DBus.Properties"

    static func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8))" }

    func create(_ f: ServiceFixture, _ name: String, _ settings: [String: DBusValue] = [:]) async throws -> ObjectPath {
        let reply = try await f.call(Paths.host, "org.example.VMMS1.Host", "CreateVM", [.string(name), .vardict(settings)])
        return try #require(reply.first?.objectPath)
    }

    func state(_ f: ServiceFixture, _ path: ObjectPath) async throws -> String? {
        try await f.call(path, Self.props, "Get", [.string(Self.vmInterface), .string("State")]).first?.variant?.string
    }

    func vm(_ f: ServiceFixture, _ path: ObjectPath, _ method: String, _ body: [DBusValue] = []) async throws {
        _ = try await f.call(path, Self.vmInterface, method, body)
    }

    @Test func domainsThatExistBeforeStartArePublished() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        // The test driver always has one running domain called "test".
        let path = try #require(try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string("test")]).first?.objectPath)
        #expect(try await state(f, path) == "Running")
        let vms = try await f.hostProperty("VirtualMachines")
        #expect(vms?.arrayElements?.contains(.objectPath(path)) == true)
        let managed = try await f.call(Paths.root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        guard case .dictionary(_, _, let entries)? = managed.first else { Issue.record("no objects"); return }
        #expect(entries.contains { $0.key == .objectPath(path) })
    }

    @Test func lifecycleWalkAnnouncesEveryStateInOrder() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = Self.uniqueName("walk")
        let path = try await create(f, name, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 << 20)])
        let signals = try await f.client.signals(matching: MatchRule(path: path, interface: Self.props, member: "PropertiesChanged"))
        let states = StateLog()
        let collector = Task {
            for await signal in signals {
                if let state = signal.body.dropFirst().first?.stringKeyedDictionary?["State"]?.string { await states.append(state) }
            }
        }
        #expect(try await state(f, path) == "Off")
        for method in ["Start", "Pause", "Resume", "Reset", "Save", "Start", "TurnOff"] {
            try await vm(f, path, method)
        }
        try await vm(f, path, "Rename", [.string(name + "-renamed")])
        #expect(try await f.call(path, Self.props, "Get", [.string(Self.vmInterface), .string("Name")]).first?.variant == .string(name + "-renamed"))
        try await Task.sleep(for: .milliseconds(200))
        collector.cancel()
        // Reset keeps the VM running, so it announces nothing.
        #expect(await states.values == ["Starting", "Running", "Paused", "Running", "Saving", "Saved", "Starting", "Running", "Off"])
        try await vm(f, path, "Delete", [.vardict([:])])
        await expectDBusError(VMMSError.prefix + "NotFound") { _ = try await self.state(f, path) }
    }

    @Test func wrongStateIsRefusedAndNamesTheState() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let path = try await create(f, Self.uniqueName("state"), ["Generation": .uint32(1)])
        for method in ["Pause", "Resume", "Save", "Reset", "Reboot", "TurnOff"] {
            do {
                try await vm(f, path, method)
                Issue.record("\(method) on an Off VM succeeded")
            } catch let error as DBusError {
                #expect(error.name == VMMSError.prefix + "InvalidState")
                #expect(error.message.contains("current state: Off"))
            }
        }
        await expectDBusError(VMMSError.prefix + "InvalidState") { try await vm(f, path, "Shutdown", [.vardict([:])]) }
        try await vm(f, path, "Start")
        await expectDBusError(VMMSError.prefix + "InvalidState") { try await vm(f, path, "Start") }
        await expectDBusError(VMMSError.prefix + "InvalidState") { try await vm(f, path, "Rename", [.string("other-name")]) }
        await expectDBusError(VMMSError.prefix + "InvalidState") { try await vm(f, path, "Delete", [.vardict([:])]) }
        try await vm(f, path, "Delete", [.vardict(["Force": .boolean(true)])])
    }

    @Test func shutdownReachesOffOnTheTestDriver() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let path = try await create(f, Self.uniqueName("shut"), ["Generation": .uint32(1), "Start": .boolean(true)])
        #expect(try await state(f, path) == "Running")
        try await vm(f, path, "Shutdown", [.vardict(["TimeoutSeconds": .uint32(10)])])
        #expect(try await state(f, path) == "Off")
        try await vm(f, path, "Delete", [.vardict([:])])
    }

    @Test func changesBehindTheServicesBackAreAnnounced() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = Self.uniqueName("behind")
        // A second connection to the same in-memory test host plays virsh.
        let virsh = try LibvirtConnection(uri: "test:///default")
        let added = try await f.client.signals(matching: MatchRule(path: Paths.root, interface: "org.freedesktop.DBus.ObjectManager"))
        let domain = try virsh.defineDomain(xml: "<domain type='test'><name>\(name)</name><memory unit='KiB'>65536</memory><os><type>hvm</type></os></domain>")
        let uuid = try domain.uuid
        let path = Paths.vm(uuid: uuid)
        let announcement = await firstMatch(added) { $0.member == "InterfacesAdded" && $0.body.first == .objectPath(path) }
        #expect(announcement != nil)

        let changes = try await f.client.signals(matching: MatchRule(path: path, interface: Self.props, member: "PropertiesChanged"))
        try domain.start()
        let running = await firstMatch(changes) { $0.body.dropFirst().first?.stringKeyedDictionary?["State"] == .string("Running") }
        #expect(running != nil)
        try domain.suspend()
        let paused = await firstMatch(changes) { $0.body.dropFirst().first?.stringKeyedDictionary?["State"] == .string("Paused") }
        #expect(paused != nil)
        try domain.destroy()
        try domain.undefine()
        let removed = await firstMatch(added) { $0.member == "InterfacesRemoved" && $0.body.first == .objectPath(path) }
        #expect(removed != nil)
        await expectDBusError(VMMSError.prefix + "NotFound") { try await vm(f, path, "Start") }
    }

    @Test func createValidatesEverythingFirstAndLeavesNothingBehind() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = Self.uniqueName("bad")
        let bad: [(String, [String: DBusValue])] = [
            (name, ["Bogus": .boolean(true)]),
            (name, ["Generation": .string("2")]),
            (name, ["Generation": .uint32(3)]),
            (name, ["ProcessorCount": .uint32(0)]),
            (name, ["MemoryStartupBytes": .uint64(1)]),
            (name, ["MemoryStartupBytes": .uint64(1 << 50)]),
            (name, ["DiskPath": .string("relative.qcow2")]),
            (name, ["NewDiskSizeBytes": .uint64(0)]),
            (name, ["Generation": .int32(2)]),
            ("", [:]), ("-starts-with-dash", [:]), (".dot", [:]), (String(repeating: "x", count: 65), [:]),
            ("semi;colon", [:]), ("new\nline", [:]),
        ]
        for (vmName, settings) in bad {
            await expectDBusError(DBusError.Name.invalidArgs) { _ = try await create(f, vmName, settings) }
        }
        await expectDBusError(VMMSError.prefix + "NotSupported") {
            _ = try await create(f, name, ["Generation": .uint32(1), "SecureBoot": .boolean(true)])
        }
        // Only this test's names: other suites share the in-process test driver.
        let virsh = try LibvirtConnection(uri: "test:///default")
        #expect((try? virsh.domain(name: name)) == nil)
        await expectDBusError(VMMSError.prefix + "NotFound", "LookupVM of the refused VM") {
            _ = try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string(name)])
        }
    }

    @Test func duplicateNameIsAlreadyExists() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = Self.uniqueName("dup")
        let path = try await create(f, name)
        await expectDBusError(VMMSError.prefix + "AlreadyExists") { _ = try await create(f, name) }
        await expectDBusError(VMMSError.prefix + "AlreadyExists") { _ = try await create(f, "test") }
        try await vm(f, path, "Delete", [.vardict([:])])
    }

    @Test func badArgumentsToVMMethodsAreInvalidArgs() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let path = try await create(f, Self.uniqueName("args"))
        await expectDBusError(DBusError.Name.invalidArgs) { try await vm(f, path, "Shutdown", [.vardict(["Forse": .boolean(true)])]) }
        await expectDBusError(DBusError.Name.invalidArgs) { try await vm(f, path, "Shutdown", [.vardict(["Force": .string("yes")])]) }
        await expectDBusError(DBusError.Name.invalidArgs) { try await vm(f, path, "Shutdown", [.vardict(["TimeoutSeconds": .uint32(0)])]) }
        await expectDBusError(DBusError.Name.invalidArgs) { try await vm(f, path, "Delete", [.vardict(["DeleteDisks": .uint32(1)])]) }
        await expectDBusError(DBusError.Name.invalidArgs) { try await vm(f, path, "Rename", [.string("")]) }
        await expectDBusError(DBusError.Name.invalidArgs) { try await vm(f, path, "Rename", [.string("a/b")]) }
        await expectDBusError(DBusError.Name.invalidArgs) { try await vm(f, path, "Start", [.string("unexpected")]) }
        await expectDBusError(DBusError.Name.invalidArgs) {
            _ = try await f.call(path, Self.props, "Set", [.string(Self.vmInterface), .string("Notes"), .variant(.uint32(1))])
        }
        await expectDBusError(DBusError.Name.invalidArgs) {
            _ = try await f.call(path, Self.props, "Set", [.string(Self.vmInterface), .string("Notes"), .variant(.string(String(repeating: "n", count: 5000)))])
        }
        #expect(try await state(f, path) == "Off")
        try await vm(f, path, "Delete", [.vardict([:])])
    }

    @Test func notesAndAutostartAreWritable() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let path = try await create(f, Self.uniqueName("notes"), ["Notes": .string("first")])
        #expect(try await f.call(path, Self.props, "Get", [.string(Self.vmInterface), .string("Notes")]).first?.variant == .string("first"))
        _ = try await f.call(path, Self.props, "Set", [.string(Self.vmInterface), .string("Notes"), .variant(.string("web <tier> & co"))])
        #expect(try await f.call(path, Self.props, "Get", [.string(Self.vmInterface), .string("Notes")]).first?.variant == .string("web <tier> & co"))
        _ = try await f.call(path, Self.props, "Set", [.string(Self.vmInterface), .string("Autostart"), .variant(.boolean(true))])
        #expect(try await f.call(path, Self.props, "Get", [.string(Self.vmInterface), .string("Autostart")]).first?.variant == .boolean(true))
        try await vm(f, path, "Delete", [.vardict([:])])
    }

    @Test func lookupFindsByNameAndUUIDAndReportsNotFound() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = Self.uniqueName("look")
        let path = try await create(f, name)
        let uuid = try #require(try await f.call(path, Self.props, "Get", [.string(Self.vmInterface), .string("UUID")]).first?.variant?.string)
        for key in [name, uuid, uuid.uppercased(), uuid.replacingOccurrences(of: "-", with: "")] {
            #expect(try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string(key)]).first?.objectPath == path)
        }
        await expectDBusError(VMMSError.prefix + "NotFound") {
            _ = try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string("no-such-vm")])
        }
        try await vm(f, path, "Delete", [.vardict([:])])
    }
}

actor StateLog {
    var values: [String] = []
    func append(_ value: String) { values.append(value) }
}
