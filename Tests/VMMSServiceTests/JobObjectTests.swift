import DBus
import Foundation
import Logging
import TestSupport
import Testing
@testable import VMMSService

/// Job objects on the test driver: what a job publishes through its life, the introspection
/// against dbus/org.example.VMMS1.Job.xml, Cancel of a finished job, the expiry.
@Suite(.serialized) struct JobObjectTests {
    static let jobInterface = "org.example.VMMS1.Job"
    static let props = "org.freedesktop.DBus.Properties"

    /// A service on a private bus whose finished jobs stay `retention`, and a folder inside
    /// its VirtualMachinePath to export into.
    struct Fixture {
        let bus: PrivateBus
        let service: VMMSService
        let client: DBusConnection
        let folder: String

        init(retention: Duration) async throws {
            bus = try PrivateBus()
            var logger = Logger(label: "test")
            logger.logLevel = .warning
            var options = ServiceOptions(bus: .address(bus.address), libvirtURI: "test:///default", accelerator: .auto,
                                         stateDirectory: NSTemporaryDirectory() + "vmms-state-\(UUID().uuidString)",
                                         authorizer: SessionBusAuthorizer())
            options.jobRetention = retention
            service = try await VMMSService.start(options, logger: logger)
            client = try bus.connect()
            folder = NSTemporaryDirectory() + "vmms-export-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            _ = try await call(Paths.host, Self.propsName, "Set", [.string("org.example.VMMS1.Host"), .string("VirtualMachinePath"), .variant(.string(folder))])
        }
        static let propsName = "org.freedesktop.DBus.Properties"

        func call(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue] = []) async throws -> [DBusValue] {
            try await client.call(destination: Paths.busName, path: path, interface: interface, member: member, body)
        }

        func close() {
            client.close()
            service.stop()
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    /// The test driver's running "test" VM has no real disk, so libvirt refuses its backup:
    /// the job fails, says why, announces it with Completed and leaves no folder.
    @Test func aFailingJobPublishesFailedWithTheErrorAndCompleted() async throws {
        let f = try await Fixture(retention: .seconds(60))
        defer { f.close() }
        let vm = try #require(try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string("test")]).first?.objectPath)
        let completed = try await f.client.signals(matching: MatchRule(interface: Self.jobInterface, member: "Completed"))
        let job = try #require(try await f.call(vm, "org.example.VMMS1.VM", "Export", [.string(f.folder), .vardict([:])]).first?.objectPath)
        #expect(Paths.jobNumber(of: job) != nil)
        let signal = await firstMatch(completed, timeout: .seconds(20)) { $0.path == job }
        let body = signal?.body.compactMap(\.string) ?? []
        #expect(body.first == "Failed" && body.dropFirst().first?.hasPrefix("org.example.VMMS1.Error.") == true, "\(body)")
        let all = try #require(try await f.call(job, Self.props, "GetAll", [.string(Self.jobInterface)]).first?.stringKeyedDictionary)
        #expect(all["State"] == .string("Failed"))
        #expect(all["Operation"] == .string("Export"))
        #expect(all["Target"] == .objectPath(vm))
        #expect(all["ErrorMessage"]?.string?.isEmpty == false)
        #expect(all["PercentComplete"]?.uint32 ?? 100 < 100)
        #expect(all["StartTime"]?.uint64 ?? 0 > 0)
        let jobs = try await f.call(Paths.host, Self.props, "Get", [.string("org.example.VMMS1.Host"), .string("Jobs")]).first?.variant
        #expect(jobs == .objectPaths([job]))
        #expect((try FileManager.default.contentsOfDirectory(atPath: f.folder)).isEmpty)
        // A finished job cannot be cancelled.
        await #expect(throws: DBusError.self) { _ = try await f.call(job, Self.jobInterface, "Cancel") }
    }

    @Test func introspectionMatchesTheJobXML() async throws {
        let f = try await Fixture(retention: .seconds(60))
        defer { f.close() }
        let vm = try #require(try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string("test")]).first?.objectPath)
        let job = try #require(try await f.call(vm, "org.example.VMMS1.VM", "Export", [.string(f.folder), .vardict([:])]).first?.objectPath)
        let expected = try InterfaceShape.parse(String(contentsOfFile: repositoryRoot + "/dbus/org.example.VMMS1.Job.xml", encoding: .utf8))
        let live = try InterfaceShape.parse(try #require(try await f.call(job, "org.freedesktop.DBus.Introspectable", "Introspect").first?.string))
        #expect(expected[Self.jobInterface] != nil)
        #expect(live[Self.jobInterface] == expected[Self.jobInterface])
    }

    @Test func aFinishedJobDisappearsAfterItsRetention() async throws {
        let f = try await Fixture(retention: .seconds(1))
        defer { f.close() }
        let vm = try #require(try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string("test")]).first?.objectPath)
        let removed = try await f.client.signals(matching: MatchRule(path: Paths.root, interface: "org.freedesktop.DBus.ObjectManager",
                                                                     member: "InterfacesRemoved"))
        let job = try #require(try await f.call(vm, "org.example.VMMS1.VM", "Export", [.string(f.folder), .vardict([:])]).first?.objectPath)
        let gone = await firstMatch(removed, timeout: .seconds(20)) { $0.body.first?.objectPath == job }
        #expect(gone != nil)
        await #expect(throws: DBusError.self) { _ = try await f.call(job, Self.props, "Get", [.string(Self.jobInterface), .string("State")]) }
        let jobs = try await f.call(Paths.host, Self.props, "Get", [.string("org.example.VMMS1.Host"), .string("Jobs")]).first?.variant
        #expect(jobs == .objectPaths([]))
    }

    @Test func badExportArgumentsAreRefusedWithoutAJob() async throws {
        let f = try await Fixture(retention: .seconds(60))
        defer { f.close() }
        let vm = try #require(try await f.call(Paths.host, "org.example.VMMS1.Host", "LookupVM", [.string("test")]).first?.objectPath)
        for (directory, options) in [("relative/dir", [String: DBusValue]()), ("/nonexistent-\(UUID().uuidString)", [:]),
                                     (f.folder, ["Bogus": .boolean(true)])] {
            do {
                _ = try await f.call(vm, "org.example.VMMS1.VM", "Export", [.string(directory), .vardict(options)])
                Issue.record("Export to \(directory) \(options) was accepted")
            } catch let error as DBusError {
                #expect(error.name == DBusError.Name.invalidArgs, "\(error)")
            }
        }
        do {
            _ = try await f.call(vm, "org.example.VMMS1.VM", "Move", [.string("qemu+tcp://127.0.0.1:1/system"), .vardict([:])])
            Issue.record("Move to a URI was accepted")
        } catch let error as DBusError {
            #expect(error.name == "org.example.VMMS1.Error.HypervisorUnavailable", "\(error)")
        }
        let jobs = try await f.call(Paths.host, Self.props, "Get", [.string("org.example.VMMS1.Host"), .string("Jobs")]).first?.variant
        #expect(jobs == .objectPaths([]))
    }
}
