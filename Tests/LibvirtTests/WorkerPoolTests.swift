import Dispatch
import Foundation
import Libvirt
import Synchronization
import Testing

/// A latch a pool job blocks on; released by the test, and by itself after 10 s so that a
/// failing test cannot leave a thread blocked forever.
final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let entered = Flag()

    /// Called by the job: records that it runs, then waits to be opened.
    func block() {
        entered.set()
        _ = semaphore.wait(timeout: .now() + 10)
    }

    /// Waits (bounded, without blocking a cooperative thread) until the job called `block()`.
    func waitUntilEntered() async -> Bool {
        await eventually { entered.isSet }
    }

    func open(count: Int = 1) {
        for _ in 0..<count { semaphore.signal() }
    }
}

/// A flag set from a pool thread.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}

/// Counts bodies running at once and remembers the most.
final class Concurrency: Sendable {
    private let counts = Mutex((now: 0, peak: 0))
    func enter() { counts.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
    func leave() { counts.withLock { $0.now -= 1 } }
    var peak: Int { counts.withLock { $0.peak } }
}

/// Polls `condition` until it holds or 5 s pass.
func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(5)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return condition()
}

/// The names of this process's threads (from /proc/self/task/*/comm).
func threadNames() -> [String] {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.compactMap { try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8) }
        .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
}

func uniquePoolName() -> String { "lt\(UInt32.random(in: 0..<100_000))" }

@Suite("LibvirtWorkerPool", .timeLimit(.minutes(1)))
struct WorkerPoolTests {
    @Test func runReturnsTheBodysResultFromAPoolThread() async throws {
        let name = uniquePoolName()
        let pool = LibvirtWorkerPool(name: name, threads: 2, queueLimit: 4)
        let thread = try await pool.run(timeout: .seconds(10)) {
            (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
        }
        #expect(thread.trimmingCharacters(in: .whitespacesAndNewlines) == "\(name)-1")
    }

    @Test func runRethrowsTheBodysError() async throws {
        let pool = LibvirtWorkerPool(name: uniquePoolName(), threads: 1)
        let error = await #expect(throws: LibvirtError.self) {
            try await pool.run(timeout: .seconds(10)) { () throws -> Int in
                throw LibvirtError(code: .noDomain, domain: .test, message: "gone", function: "f")
            }
        }
        #expect(error?.code == .noDomain)
    }

    @Test func aFullQueueIsRefusedAtOnceWithSaturated() async throws {
        let pool = LibvirtWorkerPool(name: uniquePoolName(), threads: 1, queueLimit: 2)
        let gate = Gate()
        defer { gate.open(count: 3) }
        let blocker = Task { try await pool.run(timeout: .seconds(20)) { gate.block() } }
        #expect(await gate.waitUntilEntered())
        let queued = (0..<2).map { index in Task { try await pool.run(timeout: .seconds(20)) { index } } }
        #expect(await eventually { pool.queuedCalls == 2 })

        let error = await #expect(throws: LibvirtWorkerPoolError.self) {
            try await pool.run(timeout: .seconds(20)) { 99 }
        }
        #expect(error == .saturated)

        gate.open()
        try await blocker.value
        #expect(try await queued[0].value == 0)
        #expect(try await queued[1].value == 1)
    }

    @Test func aCallThatOutlivesItsTimeoutIsAnsweredAtTheDeadlineAndItsLateResultDropped() async throws {
        let pool = LibvirtWorkerPool(name: uniquePoolName(), threads: 1, queueLimit: 1)
        let gate = Gate()
        defer { gate.open() }
        let finished = Flag()
        let error = await #expect(throws: LibvirtWorkerPoolError.self) {
            try await pool.run(timeout: .milliseconds(200)) { () -> Int in
                gate.block()
                finished.set()
                return 1
            }
        }
        #expect(error == .timedOut)
        // The thread is still blocked in the body when the caller hears back.
        #expect(!finished.isSet)
        gate.open()
        #expect(await eventually { finished.isSet })
        // The thread is free again once libvirt (here: the body) returns.
        #expect(try await pool.run(timeout: .seconds(10)) { 2 } == 2)
    }

    @Test func aCallWhoseDeadlinePassesWhileQueuedNeverRuns() async throws {
        let pool = LibvirtWorkerPool(name: uniquePoolName(), threads: 1, queueLimit: 4)
        let gate = Gate()
        defer { gate.open() }
        let blocker = Task { try await pool.run(timeout: .seconds(20)) { gate.block() } }
        #expect(await gate.waitUntilEntered())
        let ran = Flag()
        let error = await #expect(throws: LibvirtWorkerPoolError.self) {
            try await pool.run(timeout: .milliseconds(100)) { ran.set() }
        }
        #expect(error == .timedOut)
        #expect(pool.queuedCalls == 0)
        gate.open()
        try await blocker.value
        // FIFO: once a later call has run, the expired one would have run before it.
        try await pool.run(timeout: .seconds(10)) {}
        #expect(!ran.isSet)
    }

    @Test func aPastDeadlineIsRefusedWithoutRunning() async throws {
        let pool = LibvirtWorkerPool(name: uniquePoolName(), threads: 1)
        let ran = Flag()
        let error = await #expect(throws: LibvirtWorkerPoolError.self) {
            try await pool.run(deadline: .now - .seconds(1)) { ran.set() }
        }
        #expect(error == .timedOut)
        try await pool.run(timeout: .seconds(10)) {}
        #expect(!ran.isSet)
    }

    @Test func cancellingTheCallerAnswersItWithCancelled() async throws {
        let pool = LibvirtWorkerPool(name: uniquePoolName(), threads: 1)
        let gate = Gate()
        defer { gate.open() }
        let call = Task { try await pool.run(timeout: .seconds(20)) { gate.block() } }
        #expect(await gate.waitUntilEntered())
        call.cancel()
        let error = await #expect(throws: LibvirtWorkerPoolError.self) { try await call.value }
        #expect(error == .cancelled)
    }

    @Test func everyCallIsAnsweredExactlyOnceWhenTimeoutsRaceCompletion() async throws {
        let pool = LibvirtWorkerPool(name: uniquePoolName(), threads: 3, queueLimit: 1000)
        let results = await withTaskGroup(of: Result<Int, LibvirtWorkerPoolError>.self) { group in
            for index in 0..<300 {
                group.addTask {
                    do {
                        return .success(try await pool.run(timeout: .microseconds(Int64(index % 7) * 150)) {
                            usleep(UInt32(index % 5) * 100)
                            return index
                        })
                    } catch let error as LibvirtWorkerPoolError {
                        return .failure(error)
                    } catch {
                        return .failure(.cancelled)
                    }
                }
            }
            var all: [Result<Int, LibvirtWorkerPoolError>] = []
            for await result in group { all.append(result) }
            return all
        }
        // A second resume of a checked continuation would have trapped the process.
        #expect(results.count == 300)
        let values = results.compactMap { try? $0.get() }
        #expect(Set(values).count == values.count)
        #expect(results.allSatisfy { result in
            if case .failure(let error) = result { return error == .timedOut }
            return true
        })
    }

    @Test func threadCountNeverExceedsTheLimitUnderAThousandCalls() async throws {
        let name = uniquePoolName()
        let pool = LibvirtWorkerPool(name: name, threads: 3, queueLimit: 1000)
        let concurrency = Concurrency()
        let sum = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<1000 {
                group.addTask {
                    try await pool.run(timeout: .seconds(30)) {
                        concurrency.enter()
                        usleep(50)
                        concurrency.leave()
                        return index
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(sum == (0..<1000).reduce(0, +))
        #expect(concurrency.peak <= 3)
        #expect(pool.startedThreads <= 3)
        #expect(threadNames().filter { $0.hasPrefix("\(name)-") }.count <= 3)
    }
}
