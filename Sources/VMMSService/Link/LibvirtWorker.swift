import Libvirt

/// Where the service's blocking libvirt calls run: fixed pools of threads of their own,
/// never Swift's cooperative pool, each with a bounded queue and a deadline per call. A
/// libvirtd that stops answering (SIGSTOP, a hung QEMU monitor) therefore costs a bounded
/// number of threads, and every caller is answered: HypervisorUnavailable when the queue is
/// full, Timeout when libvirt did not answer in time.
///
/// - `calls`: everything quick (lookups, XML, define, power operations), 8 threads.
/// - `long`: what may take minutes (saving memory to disk, block jobs, migration), 4 threads,
///   so it cannot starve the quick calls.
/// - `connect`: opening connections, one thread, so a connect that hangs on a frozen
///   libvirtd holds one thread at most however often the reconnect loop tries.
final class LibvirtWorker: Sendable {
    let calls: LibvirtWorkerPool
    let long: LibvirtWorkerPool
    let connect: LibvirtWorkerPool
    /// The deadline of a quick call.
    let timeout: Duration
    static let longTimeout: Duration = .seconds(3600)

    init(timeout: Duration = .seconds(30)) {
        calls = LibvirtWorkerPool(name: "vmms-libvirt", threads: 8, queueLimit: 256)
        long = LibvirtWorkerPool(name: "vmms-longop", threads: 4, queueLimit: 64)
        connect = LibvirtWorkerPool(name: "vmms-connect", threads: 1, queueLimit: 1)
        self.timeout = timeout
    }

    /// Runs a quick call.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await run(on: calls, timeout: timeout, body)
    }

    /// Runs a call that may take minutes.
    func runLong<T: Sendable>(timeout: Duration = LibvirtWorker.longTimeout, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await run(on: long, timeout: timeout, body)
    }

    /// Opens a connection.
    func runConnect<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await run(on: connect, timeout: timeout, body)
    }

    private func run<T: Sendable>(on pool: LibvirtWorkerPool, timeout: Duration,
                                  _ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await pool.run(timeout: timeout, body)
        } catch let error as LibvirtWorkerPoolError {
            switch error {
            case .saturated:
                throw VMMSError.hypervisorUnavailable("libvirt is not answering: \(pool.threadLimit) calls are waiting for it and \(pool.queueLimit) more are queued; try again later")
            case .timedOut:
                throw VMMSError.timeout("libvirt did not answer within \(timeout); the call may still complete, check the VM's state")
            case .cancelled:
                throw VMMSError.cancelled("the libvirt call was cancelled")
            }
        }
    }
}
