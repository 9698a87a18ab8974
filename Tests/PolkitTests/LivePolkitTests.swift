import DBus
import Foundation
import TestSupport
import Testing
@testable import Polkit

/// Whether the tests against a real polkitd may run: they use the system bus and polkitd
/// (`scripts/stack.sh up` starts both), so they need root and an explicit opt-in.
enum LivePolkit {
    static let isEnabled = getuid() == 0 && ProcessInfo.processInfo.environment["VMMS_POLKIT_TESTS"] == "1"

    static let skipReason: Comment =
        "needs root and VMMS_POLKIT_TESTS=1 (uses the system bus and polkitd, as scripts/stack.sh up starts them)"

    /// An action every Debian polkit installs, `auth_admin` for everyone but root.
    static let action = "org.freedesktop.policykit.exec"

    static func pidOfProcess(named name: String) -> Int32? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = Int32(entry),
                  let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .whitespacesAndNewlines) == name,
                  let status = try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8),
                  !status.contains("State:\tZ")
            else { continue }
            return pid
        }
        return nil
    }
}

@Suite(.enabled(if: LivePolkit.isEnabled, LivePolkit.skipReason))
struct LivePolkitTests {
    @Test func thisRootProcessIsAuthorized() async throws {
        let authority = PolkitAuthority()
        defer { authority.close() }
        let result = try await authority.check(subject: try .process(pid: getpid()), actionID: LivePolkit.action,
                                               allowUserInteraction: true, timeout: .seconds(10))
        #expect(result.decision == .authorized)
    }

    @Test func aRootConnectionsBusNameIsAuthorizedWithDetails() async throws {
        let authority = PolkitAuthority()
        defer { authority.close() }
        let caller = try await DBusConnection.connect(.system)
        defer { caller.close() }
        let result = try await authority.check(subject: .systemBusName(caller.uniqueName), actionID: LivePolkit.action,
                                               details: ["vm.name": "test-vm"], timeout: .seconds(10))
        #expect(result.decision == .authorized)
    }

    @Test func anUnprivilegedProcessIsNotAuthorized() async throws {
        // polkitd itself runs as the unprivileged "polkitd" user.
        let pid = try #require(LivePolkit.pidOfProcess(named: "polkitd"))
        let authority = PolkitAuthority()
        defer { authority.close() }
        let result = try await authority.check(subject: try .process(pid: pid), actionID: LivePolkit.action, timeout: .seconds(10))
        #expect(result.decision != .authorized)
    }

    /// polkitd relays the bus's NameHasNoOwner about the subject: a failed check, not an
    /// unreachable polkitd.
    @Test func anUnknownBusNameIsPolkitdsError() async throws {
        let authority = PolkitAuthority()
        defer { authority.close() }
        do {
            _ = try await authority.check(subject: .systemBusName(":1.987654"), actionID: LivePolkit.action, timeout: .seconds(10))
            Issue.record("polkitd answered for a bus name nobody owns")
        } catch {
            #expect(error.code == .failed, "\(error)")
            #expect(error.dbusName == DBusError.Name.nameHasNoOwner, "\(error)")
        }
    }

    @Test func moreChecksThanTheInFlightBoundAllComplete() async throws {
        let authority = PolkitAuthority(limits: .init(checksInFlight: 8))
        defer { authority.close() }
        let subject = try PolkitSubject.process(pid: getpid())
        let decisions = try await withThrowingTaskGroup(of: PolkitDecision.self) { group in
            for index in 0..<100 {
                group.addTask {
                    try await authority.check(subject: subject, actionID: LivePolkit.action, details: ["index": "\(index)"],
                                              timeout: .seconds(20)).decision
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(decisions == Array(repeating: .authorized, count: 100))
    }

    @Test func aDroppedSystemBusConnectionIsMadeAgain() async throws {
        let authority = PolkitAuthority()
        defer { authority.close() }
        let subject = try PolkitSubject.process(pid: getpid())
        #expect(try await authority.check(subject: subject, actionID: LivePolkit.action).isAuthorized)
        try await authority.checks.connection().close()
        #expect(try await authority.check(subject: subject, actionID: LivePolkit.action).isAuthorized)
    }
}
