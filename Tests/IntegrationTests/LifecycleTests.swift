import DBus
import Foundation
import TestSupport
import Testing

/// VMs on a real libvirtd with QEMU under TCG, through the real system bus.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct LifecycleTests {
    static let vmInterface = "org.example.VMMS1.VM"
    static let props = "org.freedesktop.DBus.Properties"

    struct Client {
        let bus: DBusConnection
        func call(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue] = []) async throws -> [DBusValue] {
            try await bus.call(destination: "org.example.VMMS1", path: path, interface: interface, member: member, body,
                               timeout: .seconds(120))
        }
        func vm(_ path: ObjectPath, _ member: String, _ body: [DBusValue] = []) async throws {
            _ = try await call(path, LifecycleTests.vmInterface, member, body)
        }
        func state(_ path: ObjectPath) async throws -> String? {
            try await call(path, LifecycleTests.props, "Get", [.string(LifecycleTests.vmInterface), .string("State")]).first?.variant?.string
        }
        /// The host's VirtualHardDiskPath, created if missing.
        func diskDirectory() async throws -> String {
            let reply = try await call("/org/example/VMMS1/Host", LifecycleTests.props, "Get",
                                       [.string("org.example.VMMS1.Host"), .string("VirtualHardDiskPath")])
            guard let directory = reply.first?.variant?.string else { throw TestFailure("VirtualHardDiskPath: \(reply)") }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return directory
        }
        func create(_ name: String, _ settings: [String: DBusValue]) async throws -> ObjectPath {
            let reply = try await call("/org/example/VMMS1/Host", "org.example.VMMS1.Host", "CreateVM", [.string(name), .vardict(settings)])
            guard let path = reply.first?.objectPath else { throw TestFailure("CreateVM returned \(reply)") }
            return path
        }
    }

    static func domstate(_ name: String) async throws -> String {
        try await virsh(["domstate", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func disklessVMWalksTheWholeLifecycleAndLibvirtAgrees() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let name = Names.unique("walk")
            let path = try await client.create(name, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 << 20)])
            #expect(try await Self.domstate(name) == "shut off")
            let signals = try await client.bus.signals(matching: MatchRule(sender: "org.example.VMMS1", path: path,
                                                                           interface: Self.props, member: "PropertiesChanged"))
            let log = Log()
            let collector = Task {
                for await signal in signals {
                    if let state = signal.body.dropFirst().first?.stringKeyedDictionary?["State"]?.string { await log.append(state) }
                }
            }
            let steps: [(String, String)] = [("Start", "running"), ("Pause", "paused"), ("Resume", "running"), ("Reset", "running"),
                                             ("Save", "shut off"), ("Start", "running"), ("TurnOff", "shut off")]
            for (method, virshState) in steps {
                try await client.vm(path, method)
                #expect(try await Self.domstate(name) == virshState, "after \(method)")
            }
            #expect(try await virsh(["dominfo", name]).stdout.contains("Managed save:   no"))
            let newName = name + "-renamed"
            try await client.vm(path, "Rename", [.string(newName)])
            #expect(try await virsh(["domstate", newName]).status == 0)
            #expect(try await virsh(["domstate", name]).status != 0)
            try await Task.sleep(for: .milliseconds(300))
            collector.cancel()
            let seen = await log.values
            #expect(seen == ["Starting", "Running", "Paused", "Running", "Saving", "Saved", "Starting", "Running", "Off"], "\(seen)")
            try await client.vm(path, "Delete", [.vardict([:])])
            #expect(try await virsh(["domstate", newName]).status != 0)
        }
    }

    @Test func virshBehindTheServicesBackShowsTheRightState() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let name = Names.unique("virsh")
            let path = try await client.create(name, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 << 20)])
            for (command, state) in [("start", "Running"), ("suspend", "Paused"), ("resume", "Running"), ("destroy", "Off")] {
                #expect(try await virsh([command, name]).status == 0)
                var seen = try await client.state(path)
                for _ in 0..<100 where seen != state {
                    try await Task.sleep(for: .milliseconds(20))
                    seen = try await client.state(path)
                }
                #expect(seen == state, "after virsh \(command)")
            }
            #expect(try await virsh(["undefine", name]).status == 0)
            var gone = false
            for _ in 0..<100 where !gone {
                do { _ = try await client.state(path) } catch let error as DBusError { gone = error.name == "org.example.VMMS1.Error.NotFound" }
                if !gone { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(gone)
        }
    }

    @Test func badInputLeavesLibvirtAndTheDiskDirectoryAsTheyWere() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let diskDirectory = try await client.diskDirectory()
            let vmName = Names.unique("input")
            let vm = try await client.create(vmName, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 << 20)])
            let domainsBefore = try await virsh(["list", "--all", "--name"]).stdout
            let disksBefore = try FileManager.default.contentsOfDirectory(atPath: diskDirectory).sorted()

            let name = Names.unique("bad")
            let badCreates: [[String: DBusValue]] = [
                ["Unknown": .boolean(true)], ["ProcessorCount": .uint64(2)], ["MemoryStartupBytes": .uint64(31 << 20)],
                ["DiskPath": .string("/etc/shadow.nope")], ["InstallMedia": .string("/nonexistent.iso")],
                ["NewDiskSizeBytes": .uint64(1 << 20), "DiskPath": .string("/x.qcow2")],
                ["Generation": .uint32(2), "SecureBoot": .string("yes")],
                ["Switch": .objectPath("/org/example/VMMS1/Switch/none")],
            ]
            for settings in badCreates {
                do {
                    _ = try await client.create(name, settings)
                    Issue.record("CreateVM accepted \(settings)")
                } catch let error as DBusError {
                    #expect(error.name == DBusError.Name.invalidArgs || error.name == "org.example.VMMS1.Error.NotFound", "\(settings): \(error)")
                }
            }
            // A taken name is refused before any disk is made.
            do {
                _ = try await client.create(vmName, ["NewDiskSizeBytes": .uint64(16 << 20)])
                Issue.record("duplicate CreateVM succeeded")
            } catch let error as DBusError {
                #expect(error.name == "org.example.VMMS1.Error.AlreadyExists")
            }
            let badCalls: [(String, [DBusValue], String)] = [
                ("Shutdown", [.vardict(["Bogus": .boolean(true)])], DBusError.Name.invalidArgs),
                ("Shutdown", [.vardict(["TimeoutSeconds": .uint32(99999)])], DBusError.Name.invalidArgs),
                ("Rename", [.string("../../etc")], DBusError.Name.invalidArgs),
                ("Rename", [.string(String(repeating: "a", count: 300))], DBusError.Name.invalidArgs),
                ("Delete", [.vardict(["Force": .uint32(1)])], DBusError.Name.invalidArgs),
                ("Pause", [], "org.example.VMMS1.Error.InvalidState"),
                ("Resume", [], "org.example.VMMS1.Error.InvalidState"),
                ("Start", [.string("extra")], DBusError.Name.invalidArgs),
            ]
            for (method, body, expected) in badCalls {
                do {
                    try await client.vm(vm, method, body)
                    Issue.record("\(method) accepted \(body)")
                } catch let error as DBusError {
                    #expect(error.name == expected, "\(method): \(error)")
                }
            }
            let domainsAfter = try await virsh(["list", "--all", "--name"]).stdout
            #expect(domainsAfter == domainsBefore, "before:\n\(domainsBefore)\nafter:\n\(domainsAfter)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: diskDirectory).sorted() == disksBefore)
            try await client.vm(vm, "Delete", [.vardict([:])])
        }
    }
}

actor Log {
    var values: [String] = []
    func append(_ value: String) { values.append(value) }
}
