import Foundation
import Synchronization
import Testing
@testable import Polkit

/// Tests that need neither a system bus nor polkitd.
@Suite struct PolkitConversionTests {
    @Test func detailsDictionarySurvivesRoundTripThroughPolkitDetails() throws {
        let dictionary = [
            "vm": "web-01",
            "operation": "start",
            "unicode": "Grüße, 仮想マシン",
            "empty": "",
            "with spaces and = signs": "a = b",
        ]
        let details = try OwnedPolkitDetails(dictionary)
        #expect(details.dictionary == dictionary)
    }

    @Test func emptyDetailsDictionaryRoundTripsToEmpty() throws {
        #expect(try OwnedPolkitDetails([:]).dictionary == [:])
        #expect(OwnedPolkitDetails.dictionary(borrowing: nil) == [:])
    }

    @Test func resultDecisionReflectsAuthorizedChallengeAndDenied() {
        #expect(PolkitResult(isAuthorized: true, isChallenge: false).decision == .authorized)
        #expect(PolkitResult(isAuthorized: false, isChallenge: true).decision == .challenge)
        #expect(PolkitResult(isAuthorized: false, isChallenge: false).decision == .notAuthorized)
        #expect(PolkitResult(isAuthorized: false, isChallenge: false, details: ["polkit.dismissed": "true"]).isDismissed)
    }

    @Test func validSubjectsConvertToPolkitObjects() throws {
        _ = try OwnedSubject(.systemBusName(":1.42"))
        _ = try OwnedSubject(.unixProcess(pid: getpid(), startTime: 0, uid: Int32(bitPattern: getuid())))
    }

    @Test func malformedBusNameIsRejectedWithInvalidArgumentError() {
        #expect {
            _ = try OwnedSubject(.systemBusName("not a bus name"))
        } throws: { error in
            guard let error = error as? PolkitError else { return false }
            return error.domain == PolkitError.invalidArgumentDomain
                && error.function == "polkit_system_bus_name_new"
                && error.message.contains("not a bus name")
        }
    }

    @Test func nonPositivePIDIsRejectedWithInvalidArgumentError() {
        #expect(throws: PolkitError.self) {
            _ = try OwnedSubject(.unixProcess(pid: 0, startTime: 0, uid: 0))
        }
    }

    @Test func errorWithoutGErrorGetsInternalDomainAndNamesTheFunction() {
        let error = PolkitError(consuming: nil, function: "polkit_details_new")
        #expect(error.domain == PolkitError.internalDomain)
        #expect(error.function == "polkit_details_new")
        #expect(error.description.hasPrefix("polkit_details_new: "))
    }
}

/// Tests of the timeout and threading machinery, without polkitd.
@Suite struct PolkitTimeoutAndThreadingTests {
    @Test func timerCancelsTheGCancellableAfterTheTimeout() async throws {
        let cancellable = try OwnedCancellable()
        let timer = CancellationTimer(cancelling: cancellable, after: .milliseconds(20))
        for _ in 0..<200 where !cancellable.isCancelled {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(cancellable.isCancelled)
        #expect(cancellable.reason == .timeout(.milliseconds(20)))
        timer.invalidate()
    }

    @Test func invalidatedTimerNeverCancels() async throws {
        let cancellable = try OwnedCancellable()
        let timer = CancellationTimer(cancelling: cancellable, after: .milliseconds(30))
        timer.invalidate()
        try await Task.sleep(for: .milliseconds(120))
        #expect(!cancellable.isCancelled)
        #expect(cancellable.reason == nil)
    }

    @Test func firstCancellationReasonWins() throws {
        let cancellable = try OwnedCancellable()
        cancellable.cancel(.taskCancelled)
        cancellable.cancel(.timeout(.seconds(1)))
        #expect(cancellable.reason == .taskCancelled)
    }

    @Test func timeoutIntervalIsClampedInsteadOfOverflowing() {
        #expect(CancellationTimer.interval(.seconds(-5)) == .nanoseconds(0))
        #expect(CancellationTimer.interval(.milliseconds(1500)) == .nanoseconds(1_500_000_000))
        #expect(CancellationTimer.interval(.seconds(Int64.max)) == .seconds(100 * 365 * 24 * 3600))
    }

    @Test func workerPoolRunsBlockingJobsOnItsOwnNamedThreadsUpToItsLimit() async {
        let pool = BlockingWorkerPool(name: "pk-test", maximumThreads: 2)
        let recorder = ThreadNameRecorder()
        let gate = DispatchSemaphore(value: 0)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        pool.submit {
                            gate.wait()  // blocks only a pool thread
                            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
                            recorder.record(name.trimmingCharacters(in: .whitespacesAndNewlines))
                            continuation.resume()
                        }
                    }
                }
            }
            // Let all five jobs queue up behind the two blocked threads, then release them.
            try? await Task.sleep(for: .milliseconds(50))
            #expect(pool.startedThreads == 2)
            for _ in 0..<5 { gate.signal() }
        }
        let seen = recorder.names
        #expect(seen.count == 5)
        #expect(seen.allSatisfy { $0.hasPrefix("pk-test-") }, "\(seen)")
        #expect(pool.startedThreads == 2)
    }
}

/// Failures of real C calls.
@Suite struct PolkitErrorTests {
    /// Runs in a fresh child process so that GLib has no cached system-bus connection and no
    /// other test is affected by the environment change.
    @Test func authorityInitThrowsPolkitErrorWhenNoSystemBusIsReachable() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            await Task.yield()  // the body is async; keeps the macro's `await` meaningful
            setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/vmms-polkit-test", 1)
            do throws(PolkitError) {
                _ = try PolkitAuthority()
                FileHandle.standardError.write(Data("unexpectedly connected\n".utf8))
                exit(2)
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                let ok = error.function == "polkit_authority_get_sync"
                    && !error.message.isEmpty && !error.domain.isEmpty
                exit(ok ? 0 : 3)
            }
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("polkit_authority_get_sync: "))
        #expect(stderr.contains("g-io-error-quark"))
    }
}

/// Collects the names of the threads jobs ran on.
final class ThreadNameRecorder: Sendable {
    private let storage = Mutex<[String]>([])

    func record(_ name: String) {
        storage.withLock { $0.append(name) }
    }

    var names: [String] {
        storage.withLock { $0 }
    }
}
