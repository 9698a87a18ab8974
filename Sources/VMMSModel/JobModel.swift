import Synchronization

/// The `State` of a job (Hyper-V's Msvm_ConcreteJob JobState, reduced to what a client acts on).
public enum JobState: String, Sendable, CaseIterable {
    case running = "Running"
    case completed = "Completed"
    case failed = "Failed"
    case cancelled = "Cancelled"

    public var isFinished: Bool { self != .running }
}

/// How a job ended: its final state, and for Failed/Cancelled the D-Bus error name and message.
public struct JobOutcome: Sendable, Equatable {
    public var state: JobState
    public var errorName: String
    public var errorMessage: String

    public init(state: JobState, errorName: String = "", errorMessage: String = "") {
        self.state = state
        self.errorName = errorName
        self.errorMessage = errorMessage
    }

    public static let completed = JobOutcome(state: .completed)
}

/// Everything a job object publishes.
public struct JobRecord: Sendable, Equatable {
    public var number: UInt64
    /// `Export`, `Import`, `Move`.
    public var operation: String
    /// The object path of the VM the job works on (for an import, the VM it makes, once known;
    /// "/" until then).
    public var target: String
    /// The UUID of the VM the job holds, if any (one job per VM).
    public var vmUUID: String?
    /// The VM's name for polkit rules and messages.
    public var vmName: String
    public var state: JobState
    public var percentComplete: UInt32
    public var errorName: String
    public var errorMessage: String
    public var startedByUID: UInt32
    /// Unix seconds.
    public var startTime: UInt64
    /// Unix seconds when it finished; 0 while it runs.
    public var finishTime: UInt64

    public init(number: UInt64, operation: String, target: String, vmUUID: String?, vmName: String,
                startedByUID: UInt32, startTime: UInt64) {
        self.number = number
        self.operation = operation
        self.target = target
        self.vmUUID = vmUUID
        self.vmName = vmName
        state = .running
        percentComplete = 0
        errorName = ""
        errorMessage = ""
        self.startedByUID = startedByUID
        self.startTime = startTime
        finishTime = 0
    }

    /// Progress only moves forward, and reaches 100 only by completing.
    public mutating func advance(to percent: UInt32) {
        guard state == .running else { return }
        percentComplete = max(percentComplete, min(percent, 99))
    }

    /// Ends the job once; later calls change nothing. False when it had ended already.
    @discardableResult
    public mutating func finish(_ outcome: JobOutcome, at time: UInt64) -> Bool {
        guard state == .running, outcome.state != .running else { return false }
        state = outcome.state
        errorName = outcome.errorName
        errorMessage = outcome.errorMessage
        if outcome.state == .completed { percentComplete = 100 }
        finishTime = time
        return true
    }
}

/// Why the job model refused to start a job.
public enum JobModelError: Error, Sendable, Equatable {
    /// The VM already has a running job (its number and operation).
    case vmBusy(job: UInt64, operation: String)
}

/// The jobs in memory: numbered from 1, at most one running job per VM, each change handed
/// to the sink in order (like every model). Finished jobs stay until `expire` removes them.
public final class JobModel: Sendable {
    private let store: ObjectStore<UInt64, JobRecord>
    private struct State {
        var next: UInt64 = 1
        /// VM UUID → the number of its running job.
        var byVM: [String: UInt64] = [:]
    }
    private let state = Mutex(State())

    public init(sink: @escaping ChangeSink<JobRecord>) {
        store = ObjectStore(sink: sink)
    }

    public func record(_ number: UInt64) -> JobRecord? { store[number] }
    public var all: [JobRecord] { store.all.sorted { $0.number < $1.number } }

    /// The running job of a VM, if any.
    public func runningJob(vm uuid: String) -> JobRecord? {
        state.withLock { $0.byVM[uuid] }.flatMap { store[$0] }
    }

    /// Publishes a new running job; for a VM that already has one, `vmBusy`.
    public func start(operation: String, target: String, vmUUID: String?, vmName: String, startedByUID: UInt32,
                      startTime: UInt64) throws(JobModelError) -> JobRecord {
        let result: Result<JobRecord, JobModelError> = state.withLock { s in
            if let uuid = vmUUID, let busy = s.byVM[uuid] {
                return .failure(.vmBusy(job: busy, operation: store[busy]?.operation ?? "a job"))
            }
            let record = JobRecord(number: s.next, operation: operation, target: target, vmUUID: vmUUID, vmName: vmName,
                                   startedByUID: startedByUID, startTime: startTime)
            s.next += 1
            if let uuid = vmUUID { s.byVM[uuid] = record.number }
            store.set(record.number, record)
            return .success(record)
        }
        return try result.get()
    }

    /// Takes a second VM for a running job (an import, once it knows the VM it makes).
    public func claim(_ number: UInt64, vm uuid: String, target: String) throws(JobModelError) {
        let result: Result<Void, JobModelError> = state.withLock { s in
            if let busy = s.byVM[uuid], busy != number {
                return .failure(.vmBusy(job: busy, operation: store[busy]?.operation ?? "a job"))
            }
            s.byVM[uuid] = number
            store.update { batch in
                guard var record = batch[number] else { return }
                record.vmUUID = uuid
                record.target = target
                batch[number] = record
            }
            return .success(())
        }
        try result.get()
    }

    public func progress(_ number: UInt64, percent: UInt32) {
        store.update { batch in
            guard var record = batch[number] else { return }
            record.advance(to: percent)
            batch[number] = record
        }
    }

    /// Ends a job and frees its VM; returns the finished record, nil when it had ended already.
    @discardableResult
    public func finish(_ number: UInt64, _ outcome: JobOutcome, at time: UInt64) -> JobRecord? {
        state.withLock { s in
            let finished: JobRecord? = store.update { batch in
                guard var record = batch[number], record.finish(outcome, at: time) else { return nil }
                batch[number] = record
                return record
            }
            if let uuid = finished?.vmUUID, s.byVM[uuid] == number { s.byVM[uuid] = nil }
            return finished
        }
    }

    /// Removes the finished jobs that ended at or before `cutoff` (Unix seconds).
    public func expire(finishedBefore cutoff: UInt64) {
        store.update { batch in
            for record in batch.records.values where record.state.isFinished && record.finishTime <= cutoff {
                batch[record.number] = nil
            }
        }
    }
}
