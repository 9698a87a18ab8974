import Foundation

/// Why `LibvirtWorkerPool.run` gave up on a call without its result.
public enum LibvirtWorkerPoolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Every thread was busy and `queueLimit` calls were already waiting; the call was not
    /// queued and will never run.
    case saturated
    /// The deadline passed first. A call still queued then is dropped and never runs; one
    /// already running keeps its thread until libvirt returns, and its result is discarded.
    case timedOut
    /// The awaiting task was cancelled; the same holds as for `timedOut`.
    case cancelled

    /// A sentence for logs and error messages.
    public var description: String {
        switch self {
        case .saturated: "every libvirt worker thread is busy and the queue is full"
        case .timedOut: "libvirt did not answer in time"
        case .cancelled: "the libvirt call was cancelled"
        }
    }
}

/// A fixed number of dedicated threads for blocking libvirt calls, fed by a bounded queue.
///
/// libvirt calls block until libvirtd answers, so they must not run on Swift's cooperative
/// pool (a stopped libvirtd would starve every task) nor on an unbounded queue (it would grow
/// a thread per call). Here at most `threadLimit` threads exist (started on demand, named
/// `<name>-<n>` for `top -H` and /proc, alive for the rest of the process), at most
/// `queueLimit` calls wait for one, and every call has a deadline: the caller is answered by
/// then, whatever libvirt does. Each call is answered exactly once.
///
/// libvirt keeps its last error per thread; a `body` made of this module's wrappers reads it
/// on the thread that made the call, as it must.
public final class LibvirtWorkerPool: Sendable {
    /// Thread-name prefix; Linux keeps 15 characters of a thread name.
    public let name: String
    /// The most threads this pool ever runs.
    public let threadLimit: Int
    /// The most calls that wait for a thread; one more is refused with `.saturated`.
    public let queueLimit: Int

    private let core: PoolCore

    /// A pool of at most `threads` threads named `<name>-1`, `<name>-2`, … and a queue of at
    /// most `queueLimit` waiting calls (both at least 1; 0 for `queueLimit` is allowed and
    /// means a call runs only if a thread is idle).
    public init(name: String = "vmms-libvirt", threads: Int = 4, queueLimit: Int = 64) {
        self.name = name
        threadLimit = max(1, threads)
        self.queueLimit = max(0, queueLimit)
        core = PoolCore(name: name, threadLimit: threadLimit, queueLimit: self.queueLimit)
    }

    /// Runs `body` on one of the pool's threads and returns its result, or throws
    /// `LibvirtWorkerPoolError` when the queue is full, `timeout` passes first or the task is
    /// cancelled.
    public func run<T: Sendable>(timeout: Duration, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await run(deadline: .now + timeout, body)
    }

    /// Runs `body` on one of the pool's threads and returns its result, or throws
    /// `LibvirtWorkerPoolError` when the queue is full, `deadline` passes first or the task
    /// is cancelled.
    public func run<T: Sendable>(deadline: ContinuousClock.Instant,
                                 _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let call = PoolCall(deadline: deadline, body: body)
        let core = core
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                core.submit(call, continuation: continuation)
            }
        } onCancel: {
            core.abandon(call, because: .cancelled)
        }
    }

    /// Threads started so far (never more than `threadLimit`).
    public var startedThreads: Int { core.counts().threads }

    /// Calls waiting for a thread right now (never more than `queueLimit`).
    public var queuedCalls: Int { core.counts().queued }
}

// MARK: - Plumbing

/// One call's bookkeeping. `state`, `timer` and the subclass's continuation are guarded by
/// the pool's condition; whoever moves `state` to `.finished` answers the caller, once.
class PoolJob: @unchecked Sendable {
    enum State { case new, queued, running, finished }

    let deadline: ContinuousClock.Instant
    var state = State.new
    var timer: Task<Void, Never>?

    init(deadline: ContinuousClock.Instant) {
        self.deadline = deadline
    }

    /// Runs the body on a worker thread and answers through `core` unless already answered.
    func execute(in core: PoolCore) {}

    /// Answers the caller with `error`; called once, by the owner of the `.finished` move.
    func fail(_ error: LibvirtWorkerPoolError) {}
}

final class PoolCall<T: Sendable>: PoolJob, @unchecked Sendable {
    let body: @Sendable () throws -> T
    var continuation: CheckedContinuation<T, any Error>?

    init(deadline: ContinuousClock.Instant, body: @escaping @Sendable () throws -> T) {
        self.body = body
        super.init(deadline: deadline)
    }

    override func execute(in core: PoolCore) {
        let result = Result { try body() }
        // A call abandoned meanwhile was answered already; its late result is dropped here.
        if core.finish(self) { continuation?.resume(with: result) }
    }

    override func fail(_ error: LibvirtWorkerPoolError) {
        continuation?.resume(throwing: error)
    }
}

/// The queue and the threads. All mutable state is guarded by `condition`.
final class PoolCore: @unchecked Sendable {
    private let name: String
    private let threadLimit: Int
    private let queueLimit: Int
    private let condition = NSCondition()
    private var queue: [PoolJob] = []
    private var threads = 0
    private var idle = 0
    /// Jobs executing on a thread now.
    private var running = 0

    init(name: String, threadLimit: Int, queueLimit: Int) {
        self.name = name
        self.threadLimit = threadLimit
        self.queueLimit = queueLimit
    }

    func counts() -> (threads: Int, queued: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (threads, queue.count)
    }

    /// Queues `call` (or answers it at once: cancelled before it got here, queue full, or
    /// already past its deadline) and arms its deadline.
    func submit<T>(_ call: PoolCall<T>, continuation: CheckedContinuation<T, any Error>) {
        condition.lock()
        call.continuation = continuation
        var refusal: LibvirtWorkerPoolError?
        var startThread = false
        if call.state == .finished {
            refusal = .cancelled
        } else if ContinuousClock.now >= call.deadline {
            refusal = .timedOut
        } else if queue.count >= queueLimit + (threadLimit - running) {
            // Threads not running a job take queued calls at once, so only the excess waits.
            refusal = .saturated
        } else {
            call.state = .queued
            queue.append(call)
            if queue.count > idle && threads < threadLimit {
                threads += 1
                startThread = true
            }
            condition.signal()
        }
        if refusal != nil { call.state = .finished }
        let threadNumber = threads
        condition.unlock()

        if let refusal {
            call.fail(refusal)
            return
        }
        if startThread { spawnThread(number: threadNumber) }
        let timer = Task { [self] in
            guard (try? await Task.sleep(until: call.deadline, clock: .continuous)) != nil else { return }
            abandon(call, because: .timedOut)
        }
        condition.lock()
        let finished = call.state == .finished
        if !finished { call.timer = timer }
        condition.unlock()
        if finished { timer.cancel() }
    }

    /// Answers `job` with `error` unless it was answered already; a queued job leaves the
    /// queue, so it never runs. Safe from any thread, any number of times.
    func abandon(_ job: PoolJob, because error: LibvirtWorkerPoolError) {
        condition.lock()
        let state = job.state
        if state == .queued, let index = queue.firstIndex(where: { $0 === job }) {
            queue.remove(at: index)
        }
        // `.new`: not submitted yet; `submit` answers it when it sees `.finished`.
        job.state = .finished
        let timer = job.timer
        job.timer = nil
        condition.unlock()
        timer?.cancel()
        if state == .queued || state == .running { job.fail(error) }
    }

    /// Called by the worker once a job's body returned (so its thread is free before the
    /// caller hears back): marks it answered; false when it was answered (abandoned) before.
    func finish(_ job: PoolJob) -> Bool {
        condition.lock()
        running -= 1
        let owner = job.state == .running
        job.state = .finished
        let timer = job.timer
        job.timer = nil
        condition.unlock()
        timer?.cancel()
        return owner
    }

    private func spawnThread(number: Int) {
        let threadName = "\(name)-\(number)"
        let thread = Thread { [self] in
            // The kernel's thread name, set from inside (Foundation's Thread.name is not
            // reliable on Linux).
            try? threadName.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            work()
        }
        thread.start()
    }

    private func work() {
        while true {
            condition.lock()
            while queue.isEmpty {
                idle += 1
                condition.wait()
                idle -= 1
            }
            let job = queue.removeFirst()
            // Past its deadline already (its timer has not fired yet): drop it unrun.
            let expired = ContinuousClock.now >= job.deadline
            job.state = expired ? .finished : .running
            let timer = expired ? job.timer : nil
            if !expired { running += 1 }
            condition.unlock()
            if expired {
                timer?.cancel()
                job.fail(.timedOut)
                continue
            }
            job.execute(in: self)
        }
    }
}
