import DBus
import Foundation
import Libvirt
import Synchronization
import VMMSModel

/// Runs Export, Import and Move as Job objects: the call replies with the job's path at once,
/// the work runs in a task whose blocking steps (file copies, waits on libvirt's block jobs)
/// run on the job threads (a fixed pool of their own, never the cooperative pool and never
/// the libvirt call workers), and the job publishes its progress, its end and the Completed
/// signal. A finished job stays on the bus for `retention`, then disappears.
final class JobRunner: Sendable {
    let jobs: JobModel
    let publisher: Publisher
    /// Where the jobs' blocking steps run: 4 at a time, 64 waiting.
    let pool = LibvirtWorkerPool(name: "vmms-jobs", threads: 4, queueLimit: 64)
    let retention: Duration
    private let contexts = Mutex<[UInt64: JobContext]>([:])

    /// `VMMSD_TEST_JOB_RETENTION_SECONDS` shortens the 300 s for tests.
    static let defaultRetention: Duration = {
        if let text = ProcessInfo.processInfo.environment["VMMSD_TEST_JOB_RETENTION_SECONDS"], let seconds = Int(text) {
            return .seconds(seconds)
        }
        return .seconds(300)
    }()

    init(jobs: JobModel, publisher: Publisher, retention: Duration = JobRunner.defaultRetention) {
        self.jobs = jobs
        self.publisher = publisher
        self.retention = retention
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970) }

    /// Publishes a running job for `operation` on `vm` (nil: none yet) and starts `work`.
    /// A VM with a running job is InvalidState naming that job. `action` is what Cancel is
    /// authorized as. `finally` runs after the work, whatever happened (releases holds).
    func start(operation: String, vm: (uuid: String, name: String)?, target: ObjectPath, uid: UInt32, action: Action,
               work: @escaping @Sendable (JobContext) async throws -> Void,
               finally: @escaping @Sendable () async -> Void = {}) throws -> ObjectPath {
        let record: JobRecord
        do {
            record = try jobs.start(operation: operation, target: target.rawValue, vmUUID: vm?.uuid, vmName: vm?.name ?? "",
                                    startedByUID: uid, startTime: Self.now())
        } catch {
            guard case .vmBusy(let number, let running) = error else { throw error }
            throw VMMSError.invalidState(current: "\(running) running",
                message: "\(vm?.name ?? "the VM") already has a running job, \(Paths.job(number)) (\(running)); wait for it or cancel it")
        }
        let context = JobContext(number: record.number, action: action, runner: self)
        contexts.withLock { $0[record.number] = context }
        Task {
            let outcome: JobOutcome
            do {
                try await work(context)
                try context.checkCancelled()
                outcome = .completed
            } catch {
                outcome = Self.outcome(of: error, cancelled: context.isCancelled)
            }
            await finally()
            self.finish(record.number, outcome)
        }
        return Paths.job(record.number)
    }

    /// The job's end in the contract's words: Cancelled when Cancel was called (whatever the
    /// interrupted step threw), otherwise Failed with the error's D-Bus name and message.
    static func outcome(of error: any Error, cancelled: Bool) -> JobOutcome {
        if cancelled {
            return JobOutcome(state: .cancelled, errorName: VMMSError.prefix + "Cancelled", errorMessage: "the job was cancelled")
        }
        let vmms: VMMSError = switch error {
        case let error as VMMSError: error
        case let error as LibvirtError: VMMSError(error)
        case let error as VMModelError: VMMSError(error)
        default: .failed(String(describing: error))
        }
        let dbus = vmms.dbusError
        return JobOutcome(state: .failed, errorName: dbus.name, errorMessage: dbus.message)
    }

    private func finish(_ number: UInt64, _ outcome: JobOutcome) {
        contexts.withLock { _ = $0.removeValue(forKey: number) }
        guard jobs.finish(number, outcome, at: Self.now()) != nil else { return }
        publisher.signal(path: Paths.job(number), interface: JobKind.interface.name, member: "Completed",
                         [.string(outcome.state.rawValue), .string(outcome.errorName), .string(outcome.errorMessage)])
        let (jobs, retention) = (self.jobs, self.retention)
        Task {
            try? await Task.sleep(for: retention)
            jobs.expire(finishedBefore: Self.now())
        }
    }

    /// The action Cancel of a running job is authorized as; nil when it is not running.
    func action(of number: UInt64) -> Action? { contexts.withLock { $0[number]?.action } }

    /// Asks a running job to stop; false when it is not running (any more).
    func cancel(_ number: UInt64) -> Bool {
        guard let context = contexts.withLock({ $0[number] }) else { return false }
        context.cancel()
        return true
    }
}

/// What a job's work sees: its progress, whether it was cancelled, and handlers that stop a
/// step in flight (kill a copy, abort libvirt's block job) when Cancel comes.
final class JobContext: Sendable {
    let number: UInt64
    let action: Action
    private let runner: JobRunner
    private struct State {
        var cancelled = false
        var handlers: [Int: @Sendable () -> Void] = [:]
        var nextHandler = 0
    }
    private let state = Mutex(State())

    fileprivate init(number: UInt64, action: Action, runner: JobRunner) {
        self.number = number
        self.action = action
        self.runner = runner
    }

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func checkCancelled() throws {
        if isCancelled { throw VMMSError.cancelled("the job was cancelled") }
    }

    fileprivate func cancel() {
        let handlers = state.withLock { s -> [@Sendable () -> Void] in
            guard !s.cancelled else { return [] }
            s.cancelled = true
            return Array(s.handlers.values)
        }
        for handler in handlers { handler() }
    }

    /// Runs `handler` if Cancel comes while `body` runs (at once if it came already).
    func onCancel<T>(_ handler: @escaping @Sendable () -> Void, _ body: () async throws -> T) async rethrows -> T {
        let (id, already) = state.withLock { s -> (Int, Bool) in
            s.nextHandler += 1
            s.handlers[s.nextHandler] = handler
            return (s.nextHandler, s.cancelled)
        }
        if already { handler() }
        defer { _ = state.withLock { $0.handlers.removeValue(forKey: id) } }
        return try await body()
    }

    /// Publishes progress: `done` of `total` units of the whole job (monotonic, below 100
    /// until the job completes).
    func progress(_ done: UInt64, of total: UInt64) {
        guard total > 0 else { return }
        let percent = UInt32(min(99, Double(done) / Double(total) * 100))
        runner.jobs.progress(number, percent: percent)
    }

    /// Runs a blocking step on the job threads.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await runner.pool.run(timeout: LibvirtWorker.longTimeout, body)
        } catch let error as LibvirtWorkerPoolError {
            switch error {
            case .saturated: throw VMMSError.insufficientResources("too many jobs are waiting; try again when some have finished")
            case .timedOut: throw VMMSError.timeout("a step of the job did not finish within \(LibvirtWorker.longTimeout)")
            case .cancelled: throw VMMSError.cancelled("the job was cancelled")
            }
        }
    }
}
