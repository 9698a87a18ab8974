import Libvirt
import Logging
import Synchronization
import VMMSModel

/// Keeps the VM model current: reads domains from libvirt after its events, after vmms's own
/// operations, at start-up and after a reconnect, and hands the readings to the model.
///
/// Refreshes of one VM run one at a time; one requested meanwhile runs once more afterwards,
/// so the last reading always matches libvirt. Reads never reach libvirt: they are answered
/// from the model (through the publisher).
final class VMMonitor: Sendable {
    private struct RefreshState {
        var running: Set<String> = []
        /// VMs to read once more after the running refresh; true: in full.
        var again: [String: Bool] = [:]
        var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]
    }

    /// A device the service waits to see leave a running VM (RemoveHardDisk, adapters).
    private struct DeviceKey: Hashable {
        let uuid: String
        let alias: String
    }

    private enum DeviceWait {
        case pending(CheckedContinuation<Bool, Never>?)
        case done(Bool)
    }

    let link: HypervisorLink
    let vms: VMModel
    let logger: Logger
    /// `qemu:///system` on this machine: start times come from the QEMU processes.
    let localQEMU: Bool
    private let refreshes = Mutex(RefreshState())
    private let devices = Mutex<[DeviceKey: DeviceWait]>([:])
    /// The last CPU time sample per running VM, for CPUUsage.
    private let cpuSamples = Mutex<[String: (cpuNs: UInt64, at: ContinuousClock.Instant)]>([:])

    init(link: HypervisorLink, vms: VMModel, logger: Logger) {
        self.link = link
        self.vms = vms
        self.logger = logger
        localQEMU = link.uri == "qemu:///system"
    }

    // MARK: CPU usage

    /// How often CPU usage is sampled (and at most announced) per VM.
    static let usageInterval: Duration = .seconds(2)

    /// One `virConnectGetAllDomainStats` for every running VM: CPUUsage is the CPU time used
    /// since the last sample over the wall time passed, per virtual processor, in percent.
    func sampleUsage() async {
        guard let records = try? await link.run({ try $0.allDomainStats(groups: [.cpuTotal], flags: [.active]) }) else { return }
        let now = ContinuousClock.now
        let previous = cpuSamples.withLock { samples -> [String: (cpuNs: UInt64, at: ContinuousClock.Instant)] in
            defer { samples = Dictionary(records.compactMap { r in r.cpu.map { (r.uuid, ($0.timeNs, now)) } }) { a, _ in a } }
            return samples
        }
        var usage: [String: UInt32] = [:]
        for record in records {
            guard let cpu = record.cpu, let last = previous[record.uuid], cpu.timeNs >= last.cpuNs else { continue }
            let processors = UInt64(max(vms.libvirtRecord(uuid: record.uuid)?.configuration.processorCount ?? 1, 1))
            let wall = last.at.duration(to: now)
            let wallNs = UInt64(max(wall.components.seconds, 0)) * 1_000_000_000 + UInt64(max(wall.components.attoseconds, 0) / 1_000_000_000)
            guard wallNs > 0 else { continue }
            usage[record.uuid] = UInt32(min(100, (cpu.timeNs - last.cpuNs) * 100 / (wallNs * processors)))
        }
        vms.applyUsage(usage)
    }

    // MARK: Start-up and reconnect

    /// Concurrent libvirt readers for `synchronize`.
    static let synchronizeReaders = 4

    /// Reads every domain and brings the model in line with it. Readings that events bring
    /// meanwhile are newer and win (the model drops older ones).
    func synchronize(_ connection: LibvirtConnection) async throws {
        let number = vms.beginReading()
        // Only VMs known before the listing can be missing from it: one defined meanwhile is
        // added by its own refresh, not removed here.
        let known = Set(vms.uuids)
        let (domains, listed) = try await link.worker.run { (try connection.allDomains(), ListedFacts.read(connection)) }
        // Each reading is a few libvirt round trips, mostly spent waiting for libvirtd; several
        // readers on the (thread-safe) connection overlap those waits.
        let readers = min(Self.synchronizeReaders, max(1, domains.count / 16))
        let (readings, unreadable) = try await withThrowingTaskGroup(of: ([VMFullReading], [String]).self) { group in
            for reader in 0..<readers {
                let share = stride(from: reader, to: domains.count, by: readers).map { domains[$0] }
                group.addTask {
                    try await self.link.worker.run {
                        var readings: [VMFullReading] = [], failed: [String] = []
                        for domain in share {
                            do {
                                readings.append(try DomainReader.read(domain, connection: connection, localQEMU: self.localQEMU, listed: listed))
                            } catch {
                                // Not read now (undefined meanwhile, or a passing error): its
                                // events or the next refresh decide, not its absence here.
                                failed.append((try? domain.uuid) ?? "")
                            }
                        }
                        return (readings, failed)
                    }
                }
            }
            var all: [String: VMFullReading] = [:], failed: Set<String> = []
            all.reserveCapacity(domains.count)
            for try await part in group {
                for reading in part.0 { all[reading.record.uuid] = reading }
                failed.formUnion(part.1)
            }
            return (all, failed)
        }
        vms.applyListing(readings, unreadable: unreadable, known: known, number: number)
        logger.info("\(readings.count) virtual machines in libvirt")
    }

    /// Reads every VM again in full, one after the other: the slow net under what neither
    /// events nor the definition watch announce.
    func reconcile() async {
        for uuid in vms.uuids {
            if Task.isCancelled { return }
            await refresh(uuid: uuid)
        }
    }

    // MARK: Events

    /// Subscribes to the connection's domain events; every event refreshes its VM.
    func watchEvents(_ connection: LibvirtConnection) throws -> EventRegistration {
        try connection.registerDomainEvents { [self] event in
            switch event {
            case .deviceRemoved(let uuid, let alias): deviceLeft(DeviceKey(uuid: uuid, alias: alias), removed: true)
            case .deviceRemovalFailed(let uuid, let alias): deviceLeft(DeviceKey(uuid: uuid, alias: alias), removed: false)
            default: break
            }
            let uuid = event.uuid
            let full = Self.changesDefinition(event)
            if case .lifecycle = event, full { link.forgetDomain(uuid: uuid) }
            switch Self.runStateFromEvent(event) {
            case .known(let state):
                vms.applyOutcome(uuid: uuid, state: state)
            case .stateOnly:
                guard Self.pauseNeedsItsReason(operation: vms.operation(uuid: uuid), shown: vms.libvirtRecord(uuid: uuid)?.state) else { return }
                Task { await self.refreshState(uuid: uuid) }
            case .read:
                Task { await self.refresh(uuid: uuid, full: full) }
            }
        }
    }

    enum EventReading: Equatable {
        /// The event says it all: shown without asking libvirt.
        case known(VMState)
        /// Only the state and its reason changed: one libvirt call (`refreshState`).
        case stateOnly
        /// Read the VM again (`refresh`).
        case read
    }

    /// What a pause or resume needs to be shown: a resume (`RESUMED_UNPAUSED`) leaves the guest
    /// running, nothing else changed; a pause (`SUSPENDED_PAUSED`) may be a user's pause or a
    /// save or snapshot under way, which only the state's reason tells apart. Memory and start
    /// time stay as they were in both. Everything else is read again.
    static func runStateFromEvent(_ event: DomainEvent) -> EventReading {
        guard case .lifecycle(_, let kind, let detail) = event, detail == 0 else { return .read }
        switch LifecycleEvent(rawValue: kind) {
        case .resumed: return .known(.running)
        case .suspended: return .stateOnly
        default: return .read
        }
    }

    /// Whether a plain pause event needs the state's reason read: not for vmms's own Pause
    /// (`operation`), which shows its outcome itself, nor for a VM libvirt already showed
    /// paused (`shown`; a save of a paused VM sends no pause). A pause from elsewhere does:
    /// it may be a save or a snapshot under way.
    static func pauseNeedsItsReason(operation: String?, shown: VMState?) -> Bool {
        operation != "Pause" && shown != .paused
    }

    /// Reads only the domain's state and reason (one libvirt call) after a pause; anything
    /// unexpected (not paused any more, an error) falls back to a full run-state refresh.
    func refreshState(uuid: String) async {
        let number = vms.beginReading()
        let state = try? await link.run { connection -> VMState? in
            let (state, reason) = try self.link.domain(uuid: uuid, on: connection).state()
            return state == .paused ? VMState.from(libvirtState: state.rawValue, reason: reason, hasManagedSave: false) : nil
        }
        guard let state = state.flatMap({ $0 }), let memory = vms.record(uuid: uuid)?.memoryAssignedBytes else {
            await refresh(uuid: uuid, full: false)
            return
        }
        vms.apply(uuid: uuid, .runState(VMRunState(state: state, memoryAssignedBytes: memory)), number: number)
    }

    /// Whether an event may have changed the definition (then the VM is read in full) or only
    /// its run state: power transitions, the balloon, guest events.
    static func changesDefinition(_ event: DomainEvent) -> Bool {
        switch event {
        case .lifecycle:
            return event.lifecycleEvent == .defined || event.lifecycleEvent == .undefined
        case .balloonChange, .reboot, .rtcChange, .watchdog, .ioError, .controlError,
             .pmWakeup, .pmSuspend, .pmSuspendDisk, .jobCompleted, .agentLifecycle, .blockJob:
            return false
        case .deviceAdded, .deviceRemoved, .deviceRemovalFailed, .metadataChange:
            return true
        }
    }

    // MARK: Devices leaving a running VM

    /// Starts listening for the removal of device `alias` from `uuid`; call before asking
    /// libvirt to detach it, then `waitForRemoval`.
    func expectRemoval(uuid: String, alias: String) {
        devices.withLock { $0[DeviceKey(uuid: uuid, alias: alias)] = .pending(nil) }
    }

    /// Waits for libvirt's device-removed event for a device `expectRemoval` named: true when
    /// the guest let it go, false when it refused or `timeout` passed.
    func waitForRemoval(uuid: String, alias: String, timeout: Duration) async -> Bool {
        let key = DeviceKey(uuid: uuid, alias: alias)
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.deviceLeft(key, removed: false)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let early = devices.withLock { waits -> Bool? in
                switch waits[key] {
                case .done(let removed)?:
                    waits[key] = nil
                    return removed
                case .pending?:
                    waits[key] = .pending(continuation)
                    return nil
                case nil:
                    return false
                }
            }
            if let early { continuation.resume(returning: early) }
        }
    }

    private func deviceLeft(_ key: DeviceKey, removed: Bool) {
        let waiting = devices.withLock { waits -> CheckedContinuation<Bool, Never>? in
            guard case .pending(let continuation)? = waits[key] else { return nil }
            if let continuation {
                waits[key] = nil
                return continuation
            }
            waits[key] = .done(removed)
            return nil
        }
        waiting?.resume(returning: removed)
    }

    // MARK: Refreshing

    /// Reads one VM again from libvirt and hands the reading to the model. `full: false` reads
    /// only its run state (three libvirt calls instead of the XML and everything else), for
    /// events and operations that cannot have changed the definition.
    func refresh(uuid: String, full: Bool = true) async {
        let proceed = refreshes.withLock { s -> Bool in
            if s.running.contains(uuid) {
                s.again[uuid] = (s.again[uuid] ?? false) || full
                return false
            }
            s.running.insert(uuid)
            return true
        }
        guard proceed else {
            // The running refresh reads libvirt once more for us; return when it has.
            await withCheckedContinuation { continuation in
                let done = refreshes.withLock { s -> Bool in
                    guard s.running.contains(uuid) else { return true }
                    s.waiters[uuid, default: []].append(continuation)
                    return false
                }
                if done { continuation.resume() }
            }
            return
        }
        var full = full
        while true {
            await refreshOnce(uuid: uuid, full: full)
            let finished = refreshes.withLock { s -> [CheckedContinuation<Void, Never>]? in
                if let again = s.again.removeValue(forKey: uuid) {
                    full = again
                    return nil
                }
                s.running.remove(uuid)
                return s.waiters.removeValue(forKey: uuid) ?? []
            }
            if let finished {
                finished.forEach { $0.resume() }
                break
            }
        }
    }

    private func refreshOnce(uuid: String, full: Bool) async {
        let number = vms.beginReading()
        let known = vms.contains(uuid: uuid)
        let reading: VMReading
        do {
            reading = try await link.run { connection -> VMReading in
                do {
                    let domain = try self.link.domain(uuid: uuid, on: connection)
                    if !full, known { return .runState(try DomainReader.readRunState(domain, localQEMU: self.localQEMU)) }
                    return .full(try DomainReader.read(domain, connection: connection, localQEMU: self.localQEMU))
                } catch let error as LibvirtError where error.isNoDomain {
                    return .full(nil)
                }
            }
        } catch let error as VMMSError {
            // No connection: the resynchronisation after the reconnect catches up.
            logger.debug("cannot refresh VM \(uuid): \(error)")
            return
        } catch {
            // A failed reading changes nothing; the next event or refresh tries again.
            logger.warning("cannot refresh VM \(uuid): \(error)")
            return
        }
        vms.apply(uuid: uuid, reading, number: number)
    }
}
