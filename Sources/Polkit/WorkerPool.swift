import Foundation

/// A small pool of dedicated OS threads for blocking C calls, so that they never occupy a
/// thread of Swift's cooperative executor. Threads are started on demand (at most
/// `maximumThreads`) and then live for the rest of the process.
final class BlockingWorkerPool: @unchecked Sendable {
    /// The pool `PolkitAuthority.check` uses.
    static let shared = BlockingWorkerPool(name: "vmms-polkit", maximumThreads: 4)

    /// Thread-name prefix; keep it under 12 characters (Linux truncates thread names to 15).
    let name: String
    let maximumThreads: Int

    // All mutable state is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var nextJob = 0
    private var idleThreads = 0
    private var threadCount = 0

    init(name: String, maximumThreads: Int) {
        self.name = name
        self.maximumThreads = max(1, maximumThreads)
    }

    /// Number of threads started so far (for tests and diagnostics).
    var startedThreads: Int {
        condition.lock()
        defer { condition.unlock() }
        return threadCount
    }

    /// Runs `job` on one of the pool's threads, as soon as one is free.
    func submit(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        let pending = jobs.count - nextJob
        var startThread = false
        if pending > idleThreads && threadCount < maximumThreads {
            threadCount += 1
            startThread = true
        }
        let threadNumber = threadCount
        condition.signal()
        condition.unlock()

        if startThread {
            let threadName = "\(name)-\(threadNumber)"
            let thread = Thread { [self] in
                // The kernel's thread name, set from inside (Foundation's Thread.name is not
                // reliable on Linux: it sometimes reports a dispatch thread's name).
                try? threadName.write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
                run()
            }
            thread.start()
        }
    }

    private func run() {
        while true {
            condition.lock()
            while nextJob == jobs.count {
                idleThreads += 1
                condition.wait()
                idleThreads -= 1
            }
            let job = jobs[nextJob]
            nextJob += 1
            if nextJob == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                nextJob = 0
            } else if nextJob >= 1024 {
                jobs.removeFirst(nextJob)
                nextJob = 0
            }
            condition.unlock()
            job()
        }
    }
}
