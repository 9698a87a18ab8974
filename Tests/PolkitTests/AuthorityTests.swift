import DBus
import Foundation
import Testing
import TestSupport
@testable import Polkit

/// `PolkitAuthority` against a fake polkitd on a private bus: what it sends, how it bounds
/// and withdraws checks, and how it reports a polkitd that is missing or misbehaves.
@Suite struct AuthorityTests {
    static let allowed = PolkitResult(isAuthorized: true, isChallenge: false)
    static let subject = PolkitSubject.systemBusName(":1.42")

    @Test func checkSendsWhatPolkitdExpectsAndReadsItsAnswer() async throws {
        let fake = try await FakePolkitd(.answer(PolkitResult(isAuthorized: false, isChallenge: true, details: ["a": "b"])))
        defer { fake.stop() }
        let authority = fake.authority()
        defer { authority.close() }
        let result = try await authority.check(subject: Self.subject, actionID: "org.example.vmms1.read", details: ["verb": "Get"])
        #expect(result == PolkitResult(isAuthorized: false, isChallenge: true, details: ["a": "b"]))
        _ = try await authority.check(subject: Self.subject, actionID: "org.example.vmms1.vm.power", allowUserInteraction: true)
        let checks = fake.checks
        #expect(checks.count == 2)
        #expect(checks.first?.subject == (try Self.subject.dbusValue()))
        #expect(checks.first?.actionID == "org.example.vmms1.read")
        #expect(checks.first?.details == .dictionary(key: "s", value: "s", [.init(.string("verb"), .string("Get"))]))
        #expect(checks.map(\.flags) == [0, 1])
        #expect(Set(checks.map(\.cancellationID)).count == 2, "every check has its own cancellation id")
    }

    @Test func interactiveChecksBeyondAUsersShareOrTheTotalAreRefusedAtOnceWhileOthersGoOn() async throws {
        let fake = try await FakePolkitd(.hold(interactiveOnly: true, then: Self.allowed))
        defer { fake.stop() }
        let authority = fake.authority(.init(interactivePerUser: 2, interactiveTotal: 3))
        defer { authority.close() }
        func interactive(_ uid: UInt32) -> Task<PolkitResult, any Error> {
            Task { try await authority.check(subject: Self.subject, actionID: "a.b", allowUserInteraction: true, user: uid, timeout: .seconds(30)) }
        }
        let pending = [interactive(1000), interactive(1000), interactive(1001)]
        try await fake.waitUntil { $0.heldNow == 3 }
        #expect(fake.heldNow == 3)
        for uid: UInt32 in [1000, 1002] {
            do {
                _ = try await authority.check(subject: Self.subject, actionID: "a.b", allowUserInteraction: true, user: uid)
                Issue.record("uid \(uid) got a fourth interactive check")
            } catch {
                #expect(error.code == .tooManyPending, "\(error)")
                #expect(error.message.contains(uid == 1000 ? "the most one user may have" : "the most the service keeps"), "\(error)")
            }
        }
        // Quick checks are not held up by the dialogs nobody answers.
        for _ in 0..<20 { #expect(try await authority.check(subject: Self.subject, actionID: "a.b").isAuthorized) }
        fake.release()
        for task in pending { #expect(try await task.value.isAuthorized) }
        #expect(authority.interactiveChecksPending == 0)
        #expect(try await authority.check(subject: Self.subject, actionID: "a.b", allowUserInteraction: true, user: 1000).isAuthorized)
    }

    @Test func checksBeyondTheInFlightBoundWaitTheirTurnEachWithinItsTimeout() async throws {
        let fake = try await FakePolkitd(.hold(interactiveOnly: false, then: Self.allowed))
        defer { fake.stop() }
        let authority = fake.authority(.init(checksInFlight: 2))
        defer { authority.close() }
        let waiting = (0..<5).map { _ in
            Task { try await authority.check(subject: Self.subject, actionID: "a.b", timeout: .seconds(30)) }
        }
        try await fake.waitUntil { $0.heldNow == 2 }
        // A queued check with a short timeout gives up in the queue; polkitd never saw it.
        do {
            _ = try await authority.check(subject: Self.subject, actionID: "a.b", timeout: .milliseconds(200))
            Issue.record("a queued check was answered")
        } catch {
            #expect(error.code == .noAnswer, "\(error)")
        }
        #expect(fake.checks.count == 2)
        fake.release()
        for task in waiting { #expect(try await task.value.isAuthorized) }
        #expect(fake.mostHeldAtOnce == 2)
        #expect(fake.checks.count == 5)
    }

    @Test func aCheckThatRunsOutOfTimeIsWithdrawn() async throws {
        let fake = try await FakePolkitd()
        defer { fake.stop() }
        let authority = fake.authority()
        defer { authority.close() }
        // Connected first, so that the short timeout is spent waiting for polkitd only.
        #expect(try await authority.check(subject: Self.subject, actionID: "a.b", allowUserInteraction: true).isAuthorized)
        fake.setBehaviour(.hold(interactiveOnly: false, then: Self.allowed))
        let held = Task {
            try await authority.check(subject: Self.subject, actionID: "a.b", allowUserInteraction: true, timeout: .seconds(1))
        }
        try await fake.waitUntil { $0.checks.count == 2 }
        try await Self.expectWithdrawn(held, failingWith: .noAnswer, by: fake)
        #expect(authority.interactiveChecksPending == 0)
    }

    @Test func cancellingTheCallingTaskWithdrawsTheCheck() async throws {
        let fake = try await FakePolkitd(.hold(interactiveOnly: false, then: Self.allowed))
        defer { fake.stop() }
        let authority = fake.authority()
        defer { authority.close() }
        let task = Task { try await authority.check(subject: Self.subject, actionID: "a.b", allowUserInteraction: true, timeout: .seconds(30)) }
        try await fake.waitUntil { $0.heldNow == 1 }
        task.cancel()
        try await Self.expectWithdrawn(task, failingWith: .cancelled, by: fake)
    }

    /// `check`, polkitd's last one, fails with `code`, and polkitd is told to forget it (and only it).
    static func expectWithdrawn(_ check: Task<PolkitResult, any Error>, failingWith code: PolkitError.Code,
                                by fake: FakePolkitd) async throws {
        do {
            _ = try await check.value
            Issue.record("the withdrawn check was answered")
        } catch let error as PolkitError {
            #expect(error.code == code, "\(error)")
        }
        let id = try #require(fake.checks.last?.cancellationID)
        try await fake.waitUntil { $0.cancellations.contains(id) }
        #expect(fake.cancellations == [id])
    }

    @Test func aDroppedConnectionIsMadeAgainForTheNextCheck() async throws {
        let fake = try await FakePolkitd()
        defer { fake.stop() }
        let authority = fake.authority()
        defer { authority.close() }
        #expect(try await authority.check(subject: Self.subject, actionID: "a.b").isAuthorized)
        let first = try await authority.checks.connection()
        first.close()
        #expect(try await authority.check(subject: Self.subject, actionID: "a.b").isAuthorized)
        let second = try await authority.checks.connection()
        #expect(first !== second)
        #expect(first.uniqueName != second.uniqueName)
    }

    @Test func polkitdsErrorsAndMalformedAnswersAreFailures() async throws {
        let fake = try await FakePolkitd(.fail(DBusError("org.freedesktop.PolicyKit1.Error.Failed", "no such action")))
        defer { fake.stop() }
        let authority = fake.authority()
        defer { authority.close() }
        await #expect(throws: PolkitError(.failed, "no such action", dbusName: "org.freedesktop.PolicyKit1.Error.Failed")) {
            try await authority.check(subject: Self.subject, actionID: "a.b")
        }
        fake.setBehaviour(.malformed)
        do {
            _ = try await authority.check(subject: Self.subject, actionID: "a.b")
            Issue.record("a malformed answer was taken")
        } catch {
            #expect(error.code == .failed && error.message.contains("(bba{ss})"), "\(error)")
        }
    }

    @Test func withoutPolkitdOrWithoutABusTheCheckIsUnreachable() async throws {
        let bus = try PrivateBus()
        let nobody = PolkitAuthority(bus: .address(bus.address))
        defer { nobody.close() }
        do {
            _ = try await nobody.check(subject: Self.subject, actionID: "a.b")
            Issue.record("a check without polkitd was answered")
        } catch {
            #expect(error.code == .unreachable, "\(error)")
        }
        let nowhere = PolkitAuthority(bus: .address("unix:path=/nonexistent/vmms-polkit-test"))
        do {
            _ = try await nowhere.check(subject: Self.subject, actionID: "a.b")
            Issue.record("a check without a bus was answered")
        } catch {
            #expect(error.code == .unreachable, "\(error)")
        }
    }

    @Test func aTimeoutThatHasPassedFailsAtOnce() async {
        let authority = PolkitAuthority(bus: .address("unix:path=/nonexistent/vmms-polkit-test"))
        await #expect(throws: PolkitError.self) { try await authority.check(subject: Self.subject, actionID: "a.b", timeout: .zero) }
    }
}
