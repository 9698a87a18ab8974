import DBus
import Libvirt
import Synchronization
import TestSupport
import Testing
import VMMSModel
@testable import VMMSService

/// The publisher on a real private bus: signals in change order, reads from the published
/// view, one host-list announcement per batch, nothing after a removal.
@Suite(.serialized) struct PublisherTests {
    struct Fixture {
        let bus: PrivateBus
        let server: DBusConnection
        let client: DBusConnection
        let publisher: Publisher
        let vms: VMModel
        let host: HostModel

        init() throws {
            bus = try PrivateBus()
            server = try bus.connect()
            client = try bus.connect()
            let emitter = SignalEmitter(connection: server, objectManagerPath: Paths.root)
            publisher = Publisher(emitter: emitter, hostPath: Paths.host, hostInterface: HostKind.interface.name,
                                  hostLists: HostKind.lists)
            host = HostModel(HostRecord(info: HostInfo(connectionURI: "test:///default"), settings: .defaults),
                             sink: publisher.sink(for: HostKind.self))
            vms = VMModel(sink: publisher.sink(for: VMKind.self))
        }

        func close() { client.close(); server.close() }
    }

    static func reading(_ uuid: String, _ name: String, _ state: VMState = .off) -> VMFullReading {
        VMFullReading(record: VMRecord(uuid: uuid, name: name, state: state, configuration: VMConfiguration(name: name, uuid: uuid)))
    }

    @Test func theViewHoldsAnObjectWithAllItsPropertiesOrNothing() throws {
        let f = try Fixture()
        defer { f.close() }
        let uuid = "00000000-0000-0000-0000-000000000001"
        f.vms.apply(uuid: uuid, .full(Self.reading(uuid, "web")), number: f.vms.beginReading())
        let values = try #require(f.publisher.properties(at: Paths.vm(uuid: uuid), interface: VMKind.interface.name))
        #expect(Set(values.keys) == Set(VMKind.interface.properties.map(\.name)))
        #expect(f.publisher.properties(at: Paths.host, interface: HostKind.interface.name)?["VirtualMachines"]
                == .objectPaths([Paths.vm(uuid: uuid)]))
        f.vms.apply(uuid: uuid, .full(nil), number: f.vms.beginReading())
        #expect(f.publisher.properties(at: Paths.vm(uuid: uuid), interface: VMKind.interface.name) == nil)
        #expect(f.publisher.managedObjects(below: Paths.root).map(\.path) == [Paths.host])
    }

    @Test func signalsLeaveInChangeOrderAndNothingFollowsARemoval() async throws {
        let f = try Fixture()
        defer { f.close() }
        let signals = try await f.client.signals(matching: MatchRule(sender: f.server.uniqueName))
        let uuids = (1...5).map { "00000000-0000-0000-0000-00000000000\($0)" }
        // Five VMs, churned from many tasks at once.
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<300 {
                group.addTask {
                    let uuid = uuids[i % uuids.count]
                    if i % 11 == 10 {
                        f.vms.apply(uuid: uuid, .full(nil), number: f.vms.beginReading())
                    } else {
                        f.vms.apply(uuid: uuid, .full(Self.reading(uuid, "vm\(i % 5)", i % 3 == 0 ? .running : .off)), number: f.vms.beginReading())
                    }
                }
            }
        }
        // A marker change, to know when every signal before it has arrived.
        f.host.update { $0.info.hostname = "done" }
        var present: Set<ObjectPath> = [], problems: [String] = []
        for await signal in signals {
            let body = signal.body
            switch signal.member {
            case "InterfacesAdded":
                if let path = body.first?.objectPath, !present.insert(path).inserted { problems.append("added twice: \(path)") }
            case "InterfacesRemoved":
                if let path = body.first?.objectPath, present.remove(path) == nil { problems.append("removed unknown \(path)") }
            case "PropertiesChanged":
                guard let path = signal.path else { continue }
                if path == Paths.host {
                    if body.dropFirst().first?.stringKeyedDictionary?["Hostname"] == .string("done") { break }
                    if let list = body.dropFirst().first?.stringKeyedDictionary?["VirtualMachines"]?.arrayElements {
                        let listed = Set(list.compactMap(\.objectPath))
                        if listed != present { problems.append("VirtualMachines \(listed) while the signals said \(present)") }
                    }
                } else if !present.contains(path) {
                    problems.append("PropertiesChanged from \(path) after its removal or before its addition")
                }
            default: continue
            }
            if signal.path == Paths.host, body.dropFirst().first?.stringKeyedDictionary?["Hostname"] == .string("done") { break }
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(present == Set(f.vms.uuids.map(Paths.vm(uuid:))))
    }

    @Test func aListingOfManyVMsAnnouncesTheHostListOnce() async throws {
        let f = try Fixture()
        defer { f.close() }
        let signals = try await f.client.signals(matching: MatchRule(sender: f.server.uniqueName, path: Paths.host,
                                                                     member: "PropertiesChanged"))
        var readings: [String: VMFullReading] = [:]
        for i in 0..<100 {
            let uuid = String(format: "00000000-0000-0000-0000-%012d", i)
            readings[uuid] = Self.reading(uuid, "vm\(i)")
        }
        f.vms.applyListing(readings, unreadable: [], known: [], number: f.vms.beginReading())
        f.host.update { $0.info.hostname = "done" }
        var listAnnouncements = 0
        for await signal in signals {
            let changed = signal.body.dropFirst().first?.stringKeyedDictionary ?? [:]
            if changed["VirtualMachines"] != nil { listAnnouncements += 1 }
            if changed["Hostname"] == .string("done") { break }
        }
        #expect(listAnnouncements == 1)
    }
}

/// Every path of the contract, built and read back in one place.
@Suite struct PathsTests {
    @Test(arguments: ["lab", "Lab Switch 1", "", "ü-net", "a_b.c"])
    func namedObjectPathsRoundTrip(name: String) {
        #expect(Paths.switchName(of: Paths.switch(name: name)) == name)
        #expect(Paths.sanName(of: Paths.san(name: name)) == name)
        let uuid = "0d3f1f1e-1111-2222-3333-444455556666"
        let id = Paths.checkpointID(of: Paths.checkpoint(vm: uuid, name: name))
        #expect(id?.vm == uuid && id?.name == name)
    }

    @Test func escapingFollowsSystemd() {
        #expect(Paths.switch(name: "Lab Switch").rawValue == "/org/example/VMMS1/Switch/Lab_20Switch")
        #expect(Paths.switch(name: "").rawValue == "/org/example/VMMS1/Switch/_")
        #expect(Paths.job(7).rawValue == "/org/example/VMMS1/Job/7")
        #expect(Paths.jobNumber(of: "/org/example/VMMS1/Job/7") == 7)
        #expect(Paths.vmUUID(of: Paths.checkpoint(vm: "0d3f1f1e-1111-2222-3333-444455556666", name: "x")) == nil)
    }
}

/// Which libvirt events the monitor may show without reading libvirt back.
@Suite struct EventReadingTests {
    @Test func onlyAPlainResumeIsShownAsIsAndAPlainPauseReadsItsReason() {
        let u = "6f1a6c3e-0000-4000-8000-000000000001"
        #expect(VMMonitor.runStateFromEvent(.lifecycle(uuid: u, event: LifecycleEvent.resumed.rawValue, detail: 0)) == .known(.running))
        #expect(VMMonitor.runStateFromEvent(.lifecycle(uuid: u, event: LifecycleEvent.suspended.rawValue, detail: 0)) == .stateOnly,
                "a save or snapshot pauses with the same detail; only the reason tells")
        // Resumed after a migration or a snapshot revert, suspended on an I/O error: read again.
        #expect(VMMonitor.runStateFromEvent(.lifecycle(uuid: u, event: LifecycleEvent.resumed.rawValue, detail: 1)) == .read)
        #expect(VMMonitor.runStateFromEvent(.lifecycle(uuid: u, event: LifecycleEvent.resumed.rawValue, detail: 2)) == .read)
        #expect(VMMonitor.runStateFromEvent(.lifecycle(uuid: u, event: LifecycleEvent.suspended.rawValue, detail: 2)) == .read)
        #expect(VMMonitor.runStateFromEvent(.lifecycle(uuid: u, event: LifecycleEvent.started.rawValue, detail: 0)) == .read)
        #expect(VMMonitor.runStateFromEvent(.reboot(uuid: u)) == .read)
        // A plain pause is read for its reason only when vmms did not make it and libvirt did
        // not show the VM paused already.
        #expect(VMMonitor.pauseNeedsItsReason(operation: nil, shown: .running))
        #expect(VMMonitor.pauseNeedsItsReason(operation: "Save", shown: .running))
        #expect(!VMMonitor.pauseNeedsItsReason(operation: "Pause", shown: .running))
        #expect(!VMMonitor.pauseNeedsItsReason(operation: nil, shown: .paused))
    }
}
