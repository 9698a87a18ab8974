import DBus
import Libvirt
import Logging
import Synchronization
import VMMSModel

/// The in-memory model of every VM, kept current by libvirt events.
///
/// Reads (property Get, GetManagedObjects) take a lock and never reach libvirt. Writers are
/// refreshes: after a libvirt event, or after one of our own operations, the domain is read
/// again on the worker and the difference is announced — `InterfacesAdded` for a new VM,
/// `PropertiesChanged` for a changed one, `InterfacesRemoved` for one that is gone. Refreshes
/// of one VM run one at a time and a refresh requested meanwhile runs once more afterwards,
/// so the last announcement always matches libvirt.
final class VMInventory: Sendable {
    private struct Entry {
        var record: VMRecord
        /// A state shown while one of our operations runs (Starting, Saving, Stopping).
        var transition: VMState?
        /// Set when the operation has ended: the first reading of libvirt that began at or
        /// after this epoch replaces the transition. Readings begun earlier may be stale
        /// (taken mid-operation) and must not surface as a state.
        var clearTransitionAt: Int?
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var refreshing: Set<String> = []
        /// VMs to read once more after the running refresh; true: in full.
        var dirty: [String: Bool] = [:]
        var refreshWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// Counts libvirt readings, to tell stale ones from fresh ones.
        var epoch = 0
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
    }

    private struct Waiter {
        let uuid: String
        let predicate: @Sendable (VMRecord?) -> Bool
        let continuation: CheckedContinuation<Void, Never>
    }

    private let state = Mutex(State())
    let link: HypervisorLink
    let server: ObjectServer
    let logger: Logger
    /// Told when the set of VMs changes, for `Host.VirtualMachines`.
    let onMembershipChange: @Sendable () -> Void

    init(link: HypervisorLink, server: ObjectServer, logger: Logger, onMembershipChange: @escaping @Sendable () -> Void) {
        self.link = link
        self.server = server
        self.logger = logger
        self.onMembershipChange = onMembershipChange
    }

    // MARK: Reads

    func record(uuid: String) -> VMRecord? {
        state.withLock { s in
            guard var entry = s.entries[uuid] else { return nil }
            if let transition = entry.transition { entry.record.state = transition }
            return entry.record
        }
    }

    func contains(uuid: String) -> Bool { state.withLock { $0.entries[uuid] != nil } }

    var uuids: [String] { state.withLock { Array($0.entries.keys) } }

    var paths: [ObjectPath] { state.withLock { $0.entries.keys.map(Paths.vm(uuid:)).sorted() } }

    /// Every VM but `except`, as `record(uuid:)` shows it, taken under one lock.
    func records(except: String? = nil) -> [VMRecord] {
        state.withLock { s in
            s.entries.filter { $0.key != except }.map { _, entry in
                var record = entry.record
                if let transition = entry.transition { record.state = transition }
                return record
            }
        }
    }

    /// The name of a VM other than `except` with `path` (symlinks resolved) as a hard disk.
    func vmUsingDisk(_ path: String, except: String? = nil) -> String? {
        let resolved = StorageRoots.resolve(path) ?? path
        return records(except: except).first { record in
            record.configuration.hardDisks.contains { (StorageRoots.resolve($0.path) ?? $0.path) == resolved }
        }?.name
    }

    func uuid(named name: String) -> String? {
        state.withLock { $0.entries.first { $0.value.record.name == name }?.key }
    }

    // MARK: Loading and refreshing

    /// Concurrent libvirt readers for `synchronize`.
    static let synchronizeReaders = 4

    /// Reads every domain and brings the model in line with it: at start-up, and after a
    /// reconnect, when VMs may have come, gone or changed while libvirtd was away.
    func synchronize(_ connection: LibvirtConnection) async throws {
        // Only VMs known before the listing can be missing from it: one defined meanwhile
        // (a CreateVM during a reconnect) is added by its own refresh, not removed here.
        let knownBefore = Set(uuids)
        let domains = try await link.worker.run { try connection.allDomains() }
        // Each reading is a few libvirt round trips, mostly spent waiting for libvirtd; several
        // readers on the (thread-safe) connection overlap those waits.
        let readers = min(Self.synchronizeReaders, max(1, domains.count / 16))
        let (records, unreadable) = try await withThrowingTaskGroup(of: ([VMRecord], [String]).self) { group in
            for reader in 0..<readers {
                let share = stride(from: reader, to: domains.count, by: readers).map { domains[$0] }
                group.addTask {
                    try await self.link.worker.run {
                        var records: [VMRecord] = [], failed: [String] = []
                        for domain in share {
                            do {
                                records.append(try DomainReader.read(domain, connection: connection))
                            } catch {
                                // Not read now (undefined meanwhile, or a passing error): its
                                // events or the next refresh decide, not its absence here.
                                failed.append((try? domain.uuid) ?? "")
                            }
                        }
                        return (records, failed)
                    }
                }
            }
            var all: [VMRecord] = [], failed: Set<String> = []
            all.reserveCapacity(domains.count)
            for try await part in group {
                all += part.0
                failed.formUnion(part.1)
            }
            return (all, failed)
        }
        let fresh = Dictionary(records.map { ($0.uuid, $0) }, uniquingKeysWith: { a, _ in a })
        // One Host.VirtualMachines announcement for the whole pass, not one per VM: each
        // carries the full list, so N of them cost O(N²) (about 2 s of CPU at 1000 VMs).
        var membershipChanged = false
        for uuid in knownBefore.union(fresh.keys) where fresh[uuid] != nil || !unreadable.contains(uuid) {
            if apply(uuid: uuid, .full(fresh[uuid]), announcingMembership: false) { membershipChanged = true }
        }
        if membershipChanged { onMembershipChange() }
        logger.info("\(records.count) virtual machines in libvirt")
    }

    /// Subscribes to the connection's domain events; every event refreshes its VM.
    func watchEvents(_ connection: LibvirtConnection) throws -> EventRegistration {
        try connection.registerDomainEvents { [self] event in
            let uuid = event.uuid
            let full = Self.changesDefinition(event)
            Task { await self.refresh(uuid: uuid, full: full) }
        }
    }

    /// Whether an event may have changed the definition (then the VM is read in full) or only
    /// its run state: power transitions, the balloon, guest events.
    static func changesDefinition(_ event: DomainEvent) -> Bool {
        switch event {
        case .lifecycle:
            // Defined and undefined; the others are run-state changes.
            return event.lifecycleEvent == .defined || event.lifecycleEvent == .undefined
        case .balloonChange, .reboot, .rtcChange, .watchdog, .ioError, .controlError,
             .pmWakeup, .pmSuspend, .pmSuspendDisk, .jobCompleted, .agentLifecycle, .blockJob:
            return false
        case .deviceAdded, .deviceRemoved, .deviceRemovalFailed, .metadataChange:
            return true
        }
    }

    /// Reads one VM again from libvirt and announces what changed. `full: false` reads only
    /// its run state (three libvirt calls instead of the XML and everything else), for
    /// events and operations that cannot have changed the definition.
    func refresh(uuid: String, full: Bool = true) async {
        let proceed = state.withLock { s -> Bool in
            if s.refreshing.contains(uuid) {
                s.dirty[uuid] = (s.dirty[uuid] ?? false) || full
                return false
            }
            s.refreshing.insert(uuid)
            return true
        }
        guard proceed else {
            // The running refresh reads libvirt once more for us; return when it has.
            await withCheckedContinuation { continuation in
                let done = state.withLock { s -> Bool in
                    guard s.refreshing.contains(uuid) else { return true }
                    s.refreshWaiters[uuid, default: []].append(continuation)
                    return false
                }
                if done { continuation.resume() }
            }
            return
        }
        var full = full
        while true {
            await refreshOnce(uuid: uuid, full: full)
            let finished = state.withLock { s -> [CheckedContinuation<Void, Never>]? in
                if let again = s.dirty.removeValue(forKey: uuid) {
                    full = again
                    return nil
                }
                s.refreshing.remove(uuid)
                return s.refreshWaiters.removeValue(forKey: uuid) ?? []
            }
            if let finished {
                finished.forEach { $0.resume() }
                break
            }
        }
    }

    private func refreshOnce(uuid: String, full: Bool) async {
        let (epoch, known) = state.withLock { s -> (Int, Bool) in
            s.epoch += 1
            return (s.epoch, s.entries[uuid] != nil)
        }
        let reading: Reading
        do {
            reading = try await link.run { connection -> Reading in
                do {
                    let domain = try connection.domain(uuid: uuid)
                    if !full, known { return .runState(try DomainReader.readRunState(domain)) }
                    return .full(try DomainReader.read(domain, connection: connection))
                } catch let error as LibvirtError where error.isNoDomain {
                    return .full(nil)
                }
            }
        } catch let error as VMMSError {
            // No connection: the resynchronisation after the reconnect catches up.
            logger.debug("cannot refresh VM \(uuid): \(error)")
            return
        } catch {
            logger.warning("cannot refresh VM \(uuid): \(error)")
            return
        }
        apply(uuid: uuid, reading, epoch: epoch)
    }

    /// What a refresh read: the whole VM (nil: it is gone), or only its run state.
    private enum Reading: Sendable {
        case full(VMRecord?)
        case runState(DomainReader.RunState)
    }

    /// Stores a fresh reading and emits the signals that tell clients about it. Returns
    /// whether the set of VMs changed; `announcingMembership: false` leaves telling
    /// `onMembershipChange` about that to the caller.
    @discardableResult
    private func apply(uuid: String, _ reading: Reading, epoch: Int = .max, announcingMembership: Bool = true) -> Bool {
        enum Change { case added([String: DBusValue]), changed([String: DBusValue]), removed, none }
        let change: Change = state.withLock { s in
            let fresh: VMRecord?
            switch reading {
            case .full(let record):
                fresh = record
            case .runState(let run):
                // Patches the record as it is now, not as it was when the reading began: a
                // full reading may have landed in between.
                fresh = s.entries[uuid].map { entry in
                    var record = entry.record
                    record.state = run.state
                    record.memoryAssignedBytes = run.memoryAssignedBytes
                    return record
                }
            }
            switch (s.entries[uuid], fresh) {
            case (nil, let record?):
                s.entries[uuid] = Entry(record: record)
                return .added(VMObject.values(record, transition: nil))
            case (var entry?, let record?):
                let before = VMObject.values(entry.record, transition: entry.transition)
                entry.record = record
                if let clearAt = entry.clearTransitionAt, epoch >= clearAt {
                    entry.transition = nil
                    entry.clearTransitionAt = nil
                }
                s.entries[uuid] = entry
                let after = VMObject.values(record, transition: entry.transition)
                let changed = after.filter { before[$0.key] != $0.value }
                return changed.isEmpty ? .none : .changed(changed)
            case (_?, nil):
                s.entries[uuid] = nil
                return .removed
            case (nil, nil):
                return .none
            }
        }
        var membershipChanged = false
        switch change {
        case .added(let properties):
            server.emitInterfacesAdded(path: Paths.vm(uuid: uuid), interfaces: [VMObject.interface.name: properties])
            membershipChanged = true
        case .changed(let properties):
            server.emitPropertiesChanged(path: Paths.vm(uuid: uuid), interface: VMObject.interface.name, changed: properties)
        case .removed:
            server.emitInterfacesRemoved(path: Paths.vm(uuid: uuid), interfaces: [VMObject.interface.name])
            membershipChanged = true
        case .none:
            break
        }
        if membershipChanged && announcingMembership { onMembershipChange() }
        notifyWaiters(uuid: uuid)
        return membershipChanged
    }

    // MARK: Operations in progress

    /// Marks `uuid` busy with an operation shown as `showing` (nil: the state stays as it
    /// is). Fails with InvalidState when the VM is not in one of the `allowed` states or
    /// another operation runs (unless `evenWhileBusy`, for TurnOff, which may cut a Shutdown
    /// short). Check and mark happen under one lock, so two callers cannot both pass.
    @discardableResult
    func beginOperation(uuid: String, verb: String, allowed: Set<VMState>, showing: VMState?,
                        evenWhileBusy: Bool = false) throws -> VMRecord {
        let result: Result<(VMRecord, [String: DBusValue]), VMMSError> = state.withLock { s in
            guard var entry = s.entries[uuid] else { return .failure(.notFound("the virtual machine \(uuid) no longer exists")) }
            let current = entry.transition ?? entry.record.state
            if entry.transition != nil && !evenWhileBusy {
                return .failure(.invalidState(current: current.rawValue,
                                              message: "cannot \(verb) \(entry.record.name) while another operation is in progress"))
            }
            guard allowed.contains(current) || (evenWhileBusy && allowed.contains(entry.record.state)) else {
                return .failure(.invalidState(current: current.rawValue, message: "cannot \(verb) \(entry.record.name) in its current state"))
            }
            if entry.transition != nil { return .success((entry.record, [:])) }
            let before = VMObject.values(entry.record, transition: nil)
            entry.transition = showing ?? entry.record.state
            entry.clearTransitionAt = nil
            s.entries[uuid] = entry
            let after = VMObject.values(entry.record, transition: entry.transition)
            return .success((entry.record, after.filter { before[$0.key] != $0.value }))
        }
        let (record, changed) = try result.get()
        if !changed.isEmpty {
            server.emitPropertiesChanged(path: Paths.vm(uuid: uuid), interface: VMObject.interface.name, changed: changed)
        }
        return record
    }

    /// Ends the operation and re-reads the VM; the transition gives way to the first
    /// reading taken from now on, so the reply follows the final announcement and clients
    /// see Starting → Running, never a stale state in between.
    func endOperation(uuid: String, full: Bool = false) async {
        state.withLock { s in
            s.entries[uuid]?.clearTransitionAt = s.epoch + 1
        }
        // A power operation changes the run state only (`full: false`); the definition's own
        // events read it in full later, but an operation that changes it and replies with the
        // result (Rename) asks for the full reading now.
        await refresh(uuid: uuid, full: full)
        // When libvirt could not be read (connection lost), drop the transition anyway: the
        // VM must not stay busy, and the resynchronisation after the reconnect corrects it.
        let changed = state.withLock { s -> [String: DBusValue] in
            guard var entry = s.entries[uuid], entry.clearTransitionAt != nil else { return [:] }
            let before = VMObject.values(entry.record, transition: entry.transition)
            entry.transition = nil
            entry.clearTransitionAt = nil
            s.entries[uuid] = entry
            let after = VMObject.values(entry.record, transition: nil)
            return after.filter { before[$0.key] != $0.value }
        }
        if !changed.isEmpty {
            server.emitPropertiesChanged(path: Paths.vm(uuid: uuid), interface: VMObject.interface.name, changed: changed)
        }
    }

    // MARK: Waiting for a state

    /// Waits until the VM satisfies `predicate` (nil record: the VM is gone) or `timeout`
    /// passes; returns whether it did.
    @discardableResult
    func wait(uuid: String, timeout: Duration, until predicate: @escaping @Sendable (VMRecord?) -> Bool) async -> Bool {
        // Waiters look at libvirt's state, not at a transition we show meanwhile.
        func libvirtRecord() -> VMRecord? { state.withLock { $0.entries[uuid]?.record } }
        if predicate(libvirtRecord()) { return true }
        let id = state.withLock { s -> Int in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resumeWaiter(id)
        }
        await withCheckedContinuation { continuation in
            let satisfiedAlready = state.withLock { s -> Bool in
                if predicate(s.entries[uuid]?.record) { return true }
                s.waiters[id] = Waiter(uuid: uuid, predicate: predicate, continuation: continuation)
                return false
            }
            if satisfiedAlready { continuation.resume() }
        }
        timer.cancel()
        return predicate(libvirtRecord())
    }

    private func resumeWaiter(_ id: Int) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.continuation.resume()
    }

    private func notifyWaiters(uuid: String) {
        let ready = state.withLock { s -> [Waiter] in
            let record = s.entries[uuid]?.record
            let due = s.waiters.filter { $0.value.uuid == uuid && $0.value.predicate(record) }
            for id in due.keys { s.waiters[id] = nil }
            return Array(due.values)
        }
        for waiter in ready { waiter.continuation.resume() }
    }
}
