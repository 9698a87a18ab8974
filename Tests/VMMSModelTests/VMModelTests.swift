import Synchronization
import Testing
import VMMSModel

/// The VM model's rules: order, fresh over stale, failed reads, one operation at a time,
/// transitions, names.
@Suite struct VMModelTests {
    final class Recorder: Sendable {
        let changes = Mutex<[String]>([])
        var sink: ChangeSink<VMRecord> {
            { [self] batch in
                changes.withLock { log in
                    for change in batch {
                        switch change {
                        case .added(let r): log.append("+\(r.name) \(r.state.rawValue)")
                        case .updated(let old, let new):
                            log.append(old.state != new.state ? "~\(new.name) \(new.state.rawValue)" : "~\(new.name)")
                        case .removed(let r): log.append("-\(r.name)")
                        }
                    }
                }
            }
        }
        var log: [String] { changes.withLock { $0 } }
    }

    static func reading(_ uuid: String, _ name: String, _ state: VMState = .off, autostart: Bool = false,
                        disks: [String: UInt64] = [:]) -> VMFullReading {
        let configuration = VMConfiguration(name: name, uuid: uuid,
                                            hardDisks: disks.keys.sorted().map { .init(path: $0, format: "qcow2", device: "vda") })
        return VMFullReading(record: VMRecord(uuid: uuid, name: name, state: state, configuration: configuration,
                                              autostart: autostart, diskCapacities: disks))
    }

    @Test func aReadingOlderThanTheLastAppliedIsDropped() {
        let recorder = Recorder()
        let model = VMModel(sink: recorder.sink)
        let listing = model.beginReading()          // a reconnect listing begins…
        let event = model.beginReading()            // …an event's reading begins after it
        model.apply(uuid: "u1", .full(Self.reading("u1", "web", .running)), number: event)
        model.applyListing(["u1": Self.reading("u1", "web", .off)], unreadable: [], known: ["u1"], number: listing)
        #expect(model.record(uuid: "u1")?.state == .running)
        #expect(recorder.log == ["+web Running"])
    }

    /// Pause's reply does not wait for a re-read: the outcome libvirt vouched for is shown at
    /// once, a reading begun before the pause cannot undo it, and one begun after decides.
    @Test func anOutcomeWinsOverOlderReadingsAndYieldsToNewerOnes() {
        let recorder = Recorder()
        let model = VMModel(sink: recorder.sink)
        var running = Self.reading("u1", "web", .running)
        running.record.memoryAssignedBytes = 64 << 20
        model.apply(uuid: "u1", .full(running), number: model.beginReading())
        let before = model.beginReading()        // an event's reading, begun before the pause
        model.applyOutcome(uuid: "u1", state: .paused)
        #expect(model.record(uuid: "u1")?.state == .paused)
        #expect(model.record(uuid: "u1")?.memoryAssignedBytes == 64 << 20, "memory is kept")
        model.apply(uuid: "u1", .runState(VMRunState(state: .running, memoryAssignedBytes: 64 << 20)), number: before)
        #expect(model.record(uuid: "u1")?.state == .paused, "the older reading was dropped")
        model.apply(uuid: "u1", .runState(VMRunState(state: .running, memoryAssignedBytes: 64 << 20)), number: model.beginReading())
        #expect(model.record(uuid: "u1")?.state == .running, "a newer reading (someone resumed it) wins")
        model.applyOutcome(uuid: "gone", state: .paused)
        #expect(!model.contains(uuid: "gone"), "no outcome makes a VM")
        #expect(recorder.log == ["+web Running", "~web Paused", "~web Running"])
    }

    @Test func aStaleReadingCannotBringBackARemovedVM() {
        let recorder = Recorder()
        let model = VMModel(sink: recorder.sink)
        model.apply(uuid: "u1", .full(Self.reading("u1", "web")), number: model.beginReading())
        let stale = model.beginReading()
        model.apply(uuid: "u1", .full(nil), number: model.beginReading())
        model.apply(uuid: "u1", .full(Self.reading("u1", "web")), number: stale)
        #expect(!model.contains(uuid: "u1"))
        #expect(recorder.log == ["+web Off", "-web"])
    }

    @Test func whatCouldNotBeReadKeepsItsOldValue() {
        let recorder = Recorder()
        let model = VMModel(sink: recorder.sink)
        model.apply(uuid: "u1", .full(Self.reading("u1", "web", .saved, autostart: true, disks: ["/d/a.qcow2": 1 << 30])),
                    number: model.beginReading())
        var failed = Self.reading("u1", "web", .off, autostart: false, disks: ["/d/a.qcow2": 0])
        failed.autostartKnown = false
        failed.savedStateKnown = false
        failed.unreadCapacities = ["/d/a.qcow2"]
        model.apply(uuid: "u1", .full(failed), number: model.beginReading())
        let record = model.record(uuid: "u1")
        #expect(record?.autostart == true)
        #expect(record?.state == .saved)
        #expect(record?.diskCapacities["/d/a.qcow2"] == 1 << 30)
        #expect(recorder.log == ["+web Saved"], "a failed read announced a change")
        model.apply(uuid: "u1", .runState(VMRunState(state: .off, savedStateKnown: false, memoryAssignedBytes: 0)),
                    number: model.beginReading())
        #expect(model.record(uuid: "u1")?.state == .saved)
    }

    @Test func oneOperationHoldsTheVMAndOnlyItsOwnFinishReleasesIt() throws {
        let model = VMModel(sink: Recorder().sink)
        model.apply(uuid: "u1", .full(Self.reading("u1", "web", .off)), number: model.beginReading())
        let (start, _) = try model.beginOperation(uuid: "u1", verb: "Start", allowed: [.off], showing: .starting)
        #expect(throws: VMModelError.self) {
            try model.beginOperation(uuid: "u1", verb: "Start", allowed: [.off], showing: .starting)
        }
        // TurnOff may run beside it, but its end must not release the Start's hold.
        let (turnOff, _) = try model.beginOperation(uuid: "u1", verb: "TurnOff", allowed: [.starting, .running], showing: nil, beside: true)
        #expect(!turnOff.holdsVM)
        model.operationActed(turnOff)
        model.finishOperation(turnOff)
        #expect(model.operation(uuid: "u1") == "Start")
        #expect(throws: VMModelError.self) {
            try model.beginOperation(uuid: "u1", verb: "Start", allowed: [.off, .starting], showing: nil)
        }
        model.finishOperation(start)
        #expect(model.operation(uuid: "u1") == nil)
    }

    @Test func aTransitionShowsUntilTheFirstReadingBegunAfterTheOperationActed() throws {
        let recorder = Recorder()
        let model = VMModel(sink: recorder.sink)
        model.apply(uuid: "u1", .full(Self.reading("u1", "web", .off)), number: model.beginReading())
        let (token, _) = try model.beginOperation(uuid: "u1", verb: "Start", allowed: [.off], showing: .starting)
        let midway = model.beginReading()
        model.operationActed(token)
        model.apply(uuid: "u1", .runState(VMRunState(state: .off, memoryAssignedBytes: 0)), number: midway)
        #expect(model.record(uuid: "u1")?.state == .starting, "a reading begun mid-operation surfaced")
        model.apply(uuid: "u1", .runState(VMRunState(state: .running, memoryAssignedBytes: 64 << 20)), number: model.beginReading())
        model.finishOperation(token)
        #expect(recorder.log == ["+web Off", "~web Starting", "~web Running"])
    }

    @Test func aNameIsTakenByAVMOrByOneReservation() throws {
        let model = VMModel(sink: Recorder().sink)
        model.apply(uuid: "u1", .full(Self.reading("u1", "web")), number: model.beginReading())
        #expect(throws: VMModelError.self) { try model.reserveName("web") }
        let own = try model.reserveName("web", owner: "u1")
        model.release(own)
        let reservation = try model.reserveName("db")
        #expect(throws: VMModelError.self) { try model.reserveName("db") }
        model.release(reservation)
        _ = try model.reserveName("db")
    }

    @Test func refusalsSayWhatToDo() {
        let model = VMModel(sink: Recorder().sink)
        model.apply(uuid: "u1", .full(Self.reading("u1", "web", .running)), number: model.beginReading())
        #expect(throws: VMModelError.invalidState(current: .running,
                message: "cannot Delete web while it is Running; turn it off first, or pass Force")) {
            try model.beginOperation(uuid: "u1", verb: "Delete", allowed: [.off], showing: nil, hint: "turn it off first, or pass Force")
        }
    }

    @Test func changesReachTheSinkInTheOrderTheyWereMade() async {
        let recorder = Recorder()
        let model = VMModel(sink: recorder.sink)
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let uuid = "u\(i % 5)"
                    let number = model.beginReading()
                    model.apply(uuid: uuid, .full(Self.reading(uuid, "vm\(i % 5)", i % 2 == 0 ? .running : .off)), number: number)
                    if i % 7 == 0 { model.apply(uuid: uuid, .full(nil), number: model.beginReading()) }
                }
            }
        }
        // Replaying the log must give the model's final set: nothing follows a removal.
        var present: Set<String> = []
        for entry in recorder.log {
            let name = String(entry.dropFirst().split(separator: " ")[0])
            switch entry.first {
            case "+": #expect(!present.contains(name)); present.insert(name)
            case "~": #expect(present.contains(name), "\(entry) after its removal")
            case "-": #expect(present.contains(name)); present.remove(name)
            default: Issue.record("unexpected \(entry)")
            }
        }
        #expect(present == Set(model.records().map(\.name)))
    }
}
