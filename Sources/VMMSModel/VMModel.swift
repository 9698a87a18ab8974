import Foundation
import Synchronization

/// Why the VM model refused something; the service maps these onto the contract's errors.
public enum VMModelError: Error, Sendable, Equatable {
    case notFound(String)
    case invalidState(current: VMState, message: String)
    case alreadyExists(String)
}

/// Holds a VM (or a name) for one operation; hand it back with `finishOperation` /
/// `release`.
public struct OperationToken: Sendable, Hashable {
    public let uuid: String
    let id: Int
    /// False for an operation that runs beside the one holding the VM (TurnOff cutting a
    /// Shutdown short): it must not end the other's hold.
    public let holdsVM: Bool
}

/// A VM name claimed by a create, import or rename until its domain carries it.
public struct NameReservation: Sendable, Hashable {
    public let name: String
    let id: Int
}

/// The in-memory model of every VM: what libvirt said, plus what vmms's own operations show
/// meanwhile. No bus, no libvirt: readings come in, typed changes go out.
///
/// Rules it enforces:
/// - **Order.** Every change reaches the sink inside the model's lock, so changes are
///   published in the order they were made, and nothing follows a VM's removal.
/// - **Fresh over stale.** Each reading is numbered when it begins (`beginReading`); a
///   reading that began before the last one applied to a VM (or before its removal) is
///   dropped, so a listing taken at reconnect cannot overwrite what an event brought since.
/// - **Failed reads change nothing.** A reading says what it could not read
///   (`VMFullReading`), and the model keeps the old value of that part.
/// - **One operation at a time.** `beginOperation` checks the state and takes the VM under
///   one lock; only the holder's `finishOperation` releases it. An operation that may run
///   beside another (TurnOff) gets a token that does not hold the VM.
/// - **Transitions.** An operation may show a state of its own (Starting, Saving, Stopping)
///   until the first reading begun after `operationActed`: readings taken mid-operation
///   never surface as a state.
/// - **Names.** A name is taken by a VM or by a reservation, never by two.
public final class VMModel: Sendable {
    private struct Entry {
        var record: VMRecord
        var transition: VMState?
        /// The operation holding the VM, its verb for messages, and the verb of an operation
        /// that ran beside it (TurnOff cutting it short).
        var holder: (id: Int, verb: String, interruptedBy: String?)?
        /// The first reading begun at or after this number replaces the transition.
        var clearTransitionAt: Int?
        /// The number of the last reading applied.
        var readAt: Int

        var presented: VMRecord {
            guard let transition else { return record }
            var shown = record
            shown.state = transition
            return shown
        }
    }

    private struct Waiter {
        let uuid: String
        let predicate: @Sendable (VMRecord?) -> Bool
        let continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var entries: [String: Entry] = [:]
        /// Reading numbers at which VMs were removed, so an older reading cannot bring one back.
        var removedAt: [String: Int] = [:]
        var readings = 0
        var nextID = 0
        var reservations: [String: Int] = [:]
        var waiters: [Int: Waiter] = [:]
        /// Checkpoint names by VM, kept apart from readings (libvirt knows nothing of them).
        var checkpoints: [String: [String]] = [:]
    }

    private let state = Mutex(State())
    private let sink: ChangeSink<VMRecord>
    private let clock: @Sendable () -> UInt64

    /// `sink` receives the records as clients see them (transitions applied); `clock` gives
    /// Unix seconds (for start times first seen).
    public init(sink: @escaping ChangeSink<VMRecord>,
                clock: @escaping @Sendable () -> UInt64 = { UInt64(Date().timeIntervalSince1970) }) {
        self.sink = sink
        self.clock = clock
    }

    // MARK: Reads

    /// The VM as clients see it, nil when there is none.
    public func record(uuid: String) -> VMRecord? { state.withLock { $0.entries[uuid]?.presented } }

    /// The VM as libvirt last said, without a transition.
    public func libvirtRecord(uuid: String) -> VMRecord? { state.withLock { $0.entries[uuid]?.record } }

    public func contains(uuid: String) -> Bool { state.withLock { $0.entries[uuid] != nil } }

    public var uuids: [String] { state.withLock { Array($0.entries.keys) } }

    /// Every VM but `except`, as clients see it, under one lock.
    public func records(except: String? = nil) -> [VMRecord] {
        state.withLock { s in s.entries.compactMap { $0.key == except ? nil : $0.value.presented } }
    }

    public func uuid(named name: String) -> String? {
        state.withLock { $0.entries.first { $0.value.record.name == name }?.key }
    }

    /// The verb of the operation holding the VM, if any.
    public func operation(uuid: String) -> String? { state.withLock { $0.entries[uuid]?.holder?.verb } }

    // MARK: Readings

    /// Numbers a reading about to begin; pass the number to `apply`.
    public func beginReading() -> Int {
        state.withLock { s in
            s.readings += 1
            return s.readings
        }
    }

    /// What a libvirt call that succeeded left the VM in (Pause → Paused), without reading it
    /// back: a run-state reading numbered now, so a reading begun before it cannot undo it, and
    /// one begun after (libvirt's event) confirms or corrects it. Memory and start time stay.
    public func applyOutcome(uuid: String, state outcome: VMState) {
        state.withLock { s in
            guard let entry = s.entries[uuid] else { return }
            s.readings += 1
            var changes: [StoreChange<VMRecord>] = []
            let run = VMRunState(state: outcome, memoryAssignedBytes: entry.record.memoryAssignedBytes)
            Self.apply(uuid: uuid, .runState(run), number: s.readings, now: clock(), to: &s, changes: &changes)
            if !changes.isEmpty { sink(changes) }
            notifyWaiters(uuid: uuid, in: &s)
        }
    }

    /// Applies one reading of `uuid` begun as number `number`; a stale one is dropped.
    public func apply(uuid: String, _ reading: VMReading, number: Int) {
        state.withLock { s in
            var changes: [StoreChange<VMRecord>] = []
            Self.apply(uuid: uuid, reading, number: number, now: clock(), to: &s, changes: &changes)
            if !changes.isEmpty { sink(changes) }
            notifyWaiters(uuid: uuid, in: &s)
        }
    }

    /// Applies a listing of every domain, begun as number `number`: `readings` holds what was
    /// read; VMs in `known` but neither read nor `unreadable` are gone. One sink call for all.
    public func applyListing(_ readings: [String: VMFullReading], unreadable: Set<String>, known: Set<String>, number: Int) {
        state.withLock { s in
            var changes: [StoreChange<VMRecord>] = []
            let now = clock()
            for (uuid, reading) in readings {
                Self.apply(uuid: uuid, .full(reading), number: number, now: now, to: &s, changes: &changes)
            }
            for uuid in known where readings[uuid] == nil && !unreadable.contains(uuid) {
                Self.apply(uuid: uuid, .full(nil), number: number, now: now, to: &s, changes: &changes)
            }
            if !changes.isEmpty { sink(changes) }
            for uuid in Set(readings.keys).union(known) { notifyWaiters(uuid: uuid, in: &s) }
        }
    }

    private static func apply(uuid: String, _ reading: VMReading, number: Int, now: UInt64, to s: inout State,
                              changes: inout [StoreChange<VMRecord>]) {
        if let entry = s.entries[uuid], entry.readAt > number { return }
        if s.entries[uuid] == nil, let removed = s.removedAt[uuid], removed > number { return }
        switch (s.entries[uuid], reading) {
        case (nil, .full(let fresh?)):
            s.removedAt[uuid] = nil
            var entry = Entry(record: fresh.merged(into: nil, now: now), readAt: number)
            entry.record.checkpoints = s.checkpoints[uuid] ?? []
            s.entries[uuid] = entry
            changes.append(.added(entry.presented))
        case (var entry?, .full(let fresh?)):
            let before = entry.presented
            entry.record = fresh.merged(into: entry.record, now: now)
            entry.record.checkpoints = s.checkpoints[uuid] ?? []
            entry.readAt = number
            settleTransition(&entry, number: number)
            s.entries[uuid] = entry
            if entry.presented != before { changes.append(.updated(old: before, new: entry.presented)) }
        case (var entry?, .runState(let run)):
            let before = entry.presented
            let old = entry.record
            if run.savedStateKnown || !(run.state == .off && entry.record.state == .saved) {
                entry.record.state = run.state
            }
            entry.record.memoryAssignedBytes = run.memoryAssignedBytes
            entry.record.settleRunTimes(startTime: run.startTime, old: old, now: now)
            entry.readAt = number
            settleTransition(&entry, number: number)
            s.entries[uuid] = entry
            if entry.presented != before { changes.append(.updated(old: before, new: entry.presented)) }
        case (let entry?, .full(nil)):
            s.entries[uuid] = nil
            s.removedAt[uuid] = number
            if s.removedAt.count > 10_000 { s.removedAt = s.removedAt.filter { $0.value > number - 1_000_000 } }
            changes.append(.removed(entry.presented))
        case (nil, .full(nil)), (nil, .runState):
            // A run state needs a record to patch; the VM's full reading brings it.
            break
        }
    }

    private static func settleTransition(_ entry: inout Entry, number: Int) {
        if let clearAt = entry.clearTransitionAt, number >= clearAt {
            entry.transition = nil
            entry.clearTransitionAt = nil
        }
    }

    /// Sets the CPU usage of the VMs sampled (percent of their processors), and 0 for the
    /// others: one sink call for all.
    public func applyUsage(_ usage: [String: UInt32]) {
        state.withLock { s in
            var changes: [StoreChange<VMRecord>] = []
            for (uuid, var entry) in s.entries {
                let value = entry.record.state.isActive ? usage[uuid] ?? 0 : 0
                guard entry.record.cpuUsage != value else { continue }
                let before = entry.presented
                entry.record.cpuUsage = value
                s.entries[uuid] = entry
                changes.append(.updated(old: before, new: entry.presented))
            }
            if !changes.isEmpty { sink(changes) }
        }
    }

    /// Sets the names of a VM's checkpoints (creation order); kept for a VM not read yet.
    public func setCheckpoints(uuid: String, names: [String]) {
        state.withLock { s in
            s.checkpoints[uuid] = names.isEmpty ? nil : names
            guard var entry = s.entries[uuid], entry.record.checkpoints != names else { return }
            let before = entry.presented
            entry.record.checkpoints = names
            s.entries[uuid] = entry
            sink([.updated(old: before, new: entry.presented)])
        }
    }

    // MARK: Operations

    /// Takes the VM for an operation `verb` allowed in `allowed`, shown as `showing` while it
    /// runs (nil: the state stays). `beside`: the operation may run while another holds the
    /// VM (then it gets a token that does not hold it) — TurnOff may cut a Shutdown short.
    /// `hint` says what to do when the state does not fit (default: by state).
    public func beginOperation(uuid: String, verb: String, allowed: Set<VMState>, showing: VMState?,
                               beside: Bool = false, hint: String? = nil) throws(VMModelError) -> (OperationToken, VMRecord) {
        let result: Result<(OperationToken, VMRecord), VMModelError> = state.withLock { s in
            guard var entry = s.entries[uuid] else {
                return .failure(.notFound("the virtual machine \(uuid) no longer exists"))
            }
            let shown = entry.presented.state
            s.nextID += 1
            let id = s.nextID
            if let holder = entry.holder {
                guard beside else {
                    return .failure(.invalidState(current: shown, message:
                        "cannot \(verb) \(entry.record.name) while \(holder.verb) is in progress; wait for it to finish, or turn the VM off"))
                }
                guard allowed.contains(entry.record.state) || allowed.contains(shown) else {
                    return .failure(.invalidState(current: shown, message: Self.refusal(verb, entry.record.name, shown, hint)))
                }
                entry.holder?.interruptedBy = verb
                s.entries[uuid] = entry
                return .success((OperationToken(uuid: uuid, id: id, holdsVM: false), entry.presented))
            }
            guard allowed.contains(shown) else {
                return .failure(.invalidState(current: shown, message: Self.refusal(verb, entry.record.name, shown, hint)))
            }
            let before = entry.presented
            entry.holder = (id, verb, nil)
            // Held, the VM shows `showing` or the state it had: readings taken mid-operation
            // (a domain passing through "shutdown" while destroyed) do not surface.
            entry.transition = showing ?? shown
            entry.clearTransitionAt = nil
            s.entries[uuid] = entry
            if entry.presented != before { sink([.updated(old: before, new: entry.presented)]) }
            return .success((OperationToken(uuid: uuid, id: id, holdsVM: true), entry.presented))
        }
        return try result.get()
    }

    /// What to say when `verb` does not fit the state.
    static func refusal(_ verb: String, _ name: String, _ state: VMState, _ given: String?) -> String {
        let hint: String = if let given { given } else {
            switch state {
        case .running: "shut it down or turn it off first"
        case .paused: "resume it or turn it off first"
        case .off: "start it first"
        case .saved: "start it first (it resumes where it was saved)"
        case .starting, .saving, .stopping: "wait until it has finished \(state.rawValue.lowercased())"
        case .crashed: "turn it off first"
            }
        }
        return "cannot \(verb) \(name) while it is \(state.rawValue); \(hint)"
    }

    /// The operation has done its libvirt part: the first reading begun from now on replaces
    /// its transition.
    public func operationActed(_ token: OperationToken) {
        guard token.holdsVM else { return }
        state.withLock { s in
            guard var entry = s.entries[token.uuid], entry.holder?.id == token.id else { return }
            entry.clearTransitionAt = s.readings + 1
            s.entries[token.uuid] = entry
        }
    }

    /// Ends the operation: releases the VM and, when no reading came to replace the
    /// transition (libvirt could not be read), drops the transition anyway. Returns the verb
    /// of an operation that ran beside it meanwhile, if any (a TurnOff that cut it short).
    @discardableResult
    public func finishOperation(_ token: OperationToken) -> String? {
        guard token.holdsVM else { return nil }
        return state.withLock { s -> String? in
            guard var entry = s.entries[token.uuid], let holder = entry.holder, holder.id == token.id else { return nil }
            let before = entry.presented
            entry.holder = nil
            entry.transition = nil
            entry.clearTransitionAt = nil
            s.entries[token.uuid] = entry
            if entry.presented != before { sink([.updated(old: before, new: entry.presented)]) }
            return holder.interruptedBy
        }
    }

    // MARK: Names

    /// Claims `name` for a VM about to carry it (`owner`: the VM being renamed, which may keep
    /// its own name). AlreadyExists when another VM has it or another operation claimed it.
    public func reserveName(_ name: String, owner: String? = nil) throws(VMModelError) -> NameReservation {
        let result: Result<NameReservation, VMModelError> = state.withLock { s in
            if let other = s.entries.first(where: { $0.value.record.name == name && $0.key != owner }) {
                return .failure(.alreadyExists("a virtual machine named \(name) already exists (\(other.key))"))
            }
            if s.reservations[name] != nil {
                return .failure(.alreadyExists("a virtual machine named \(name) is being created or renamed right now"))
            }
            s.nextID += 1
            s.reservations[name] = s.nextID
            return .success(NameReservation(name: name, id: s.nextID))
        }
        return try result.get()
    }

    public func release(_ reservation: NameReservation) {
        state.withLock { s in
            if s.reservations[reservation.name] == reservation.id { s.reservations[reservation.name] = nil }
        }
    }

    // MARK: Waiting

    /// Waits until libvirt's view of the VM satisfies `predicate` (nil: the VM is gone) or
    /// `timeout` passes; returns whether it did.
    @discardableResult
    public func wait(uuid: String, timeout: Duration, until predicate: @escaping @Sendable (VMRecord?) -> Bool) async -> Bool {
        if predicate(libvirtRecord(uuid: uuid)) { return true }
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.continuation.resume()
        }
        await withCheckedContinuation { continuation in
            let satisfied = state.withLock { s -> Bool in
                if predicate(s.entries[uuid]?.record) { return true }
                s.waiters[id] = Waiter(uuid: uuid, predicate: predicate, continuation: continuation)
                return false
            }
            if satisfied { continuation.resume() }
        }
        timer.cancel()
        return predicate(libvirtRecord(uuid: uuid))
    }

    private func notifyWaiters(uuid: String, in s: inout State) {
        let record = s.entries[uuid]?.record
        for (id, waiter) in s.waiters where waiter.uuid == uuid && waiter.predicate(record) {
            s.waiters[id] = nil
            waiter.continuation.resume()
        }
    }
}
