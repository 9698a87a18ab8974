import Foundation
import TestSupport
import Testing
@testable import Polkit

/// Whether the tests against a real polkitd may run: they start system daemons, so they need
/// root and an explicit opt-in.
enum LivePolkit {
    static let isEnabled = getuid() == 0 && ProcessInfo.processInfo.environment["VMMS_POLKIT_TESTS"] == "1"

    static let skipReason: Comment =
        "needs root and VMMS_POLKIT_TESTS=1 (uses or starts dbus-daemon --system and polkitd)"

    /// Starts the system bus at /run/dbus/system_bus_socket and polkitd unless already running.
    /// Done once per process; returns the shell's exit status (0 = both are up).
    static let stackStatus: Int32 = {
        let script = """
            set -u
            owner() { dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
                org.freedesktop.DBus.GetNameOwner string:org.freedesktop.PolicyKit1 >/dev/null 2>&1; }
            if ! dbus-send --system --print-reply --dest=org.freedesktop.DBus / \
                org.freedesktop.DBus.GetId >/dev/null 2>&1; then
                mkdir -p /run/dbus && rm -f /run/dbus/pid && dbus-daemon --system --fork || exit 1
            fi
            if ! owner; then
                /usr/lib/polkit-1/polkitd --no-debug >/dev/null 2>&1 </dev/null &
                i=0; while ! owner; do i=$((i+1)); [ $i -gt 100 ] && exit 2; sleep 0.05; done
            fi
            exit 0
            """
        // Not Foundation's Process: its waitUntilExit spins off the main thread on Linux.
        return (try? runCommandSync("/bin/sh", ["-c", script]).status) ?? -1
    }()

    static func authority() throws -> PolkitAuthority {
        try #require(stackStatus == 0, "could not start dbus-daemon --system and polkitd")
        return try PolkitAuthority()
    }

    /// An action every Debian polkit installs.
    static let action = "org.freedesktop.policykit.exec"
}

@Suite(.enabled(if: LivePolkit.isEnabled, LivePolkit.skipReason))
struct LivePolkitTests {
    @Test func authorityReportsPolkitdAsOwnerWhenItRuns() throws {
        let authority = try LivePolkit.authority()
        let owner = try #require(authority.ownerName)
        #expect(owner.hasPrefix(":"))
        #expect(authority.backendName != nil)
        #expect(authority.backendVersion != nil)
    }

    @Test func rootTestProcessBusNameIsAuthorized() throws {
        let authority = try LivePolkit.authority()
        let ownName = try #require(authority.connectionUniqueName)
        let result = try authority.checkAuthorization(
            subject: .systemBusName(ownName), actionID: LivePolkit.action,
            details: ["vm": "test-vm"], allowUserInteraction: false, timeout: .seconds(10))
        #expect(result.isAuthorized)
        #expect(result.decision == .authorized)
    }

    @Test func rootTestProcessIsAuthorizedThroughAsyncCheck() async throws {
        let authority = try LivePolkit.authority()
        let result = try await authority.check(
            subject: .unixProcess(pid: getpid(), startTime: 0, uid: Int32(bitPattern: getuid())),
            actionID: LivePolkit.action, details: [:], allowUserInteraction: true,
            timeout: .seconds(10))
        #expect(result.decision == .authorized)
    }

    @Test func manyConcurrentAsyncChecksAllComplete() async throws {
        let authority = try LivePolkit.authority()
        let ownName = try #require(authority.connectionUniqueName)
        let decisions = try await withThrowingTaskGroup(of: PolkitDecision.self) { group in
            for index in 0..<20 {
                group.addTask {
                    try await authority.check(
                        subject: .systemBusName(ownName), actionID: LivePolkit.action,
                        details: ["index": "\(index)"], timeout: .seconds(10)).decision
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(decisions == Array(repeating: .authorized, count: 20))
    }

    @Test func nonRootProcessIsNotAuthorizedForAdminAction() throws {
        // polkitd itself runs as the unprivileged "polkitd" user.
        let authority = try LivePolkit.authority()
        let pid = try #require(Self.pidOfProcess(named: "polkitd"))
        let result = try authority.checkAuthorization(
            subject: .unixProcess(pid: pid, startTime: 0, uid: -1), actionID: LivePolkit.action,
            details: [:], allowUserInteraction: false, timeout: .seconds(10))
        #expect(!result.isAuthorized)
        #expect(result.decision != .authorized)
    }

    @Test func unknownBusNameYieldsPolkitErrorFromPolkitd() throws {
        let authority = try LivePolkit.authority()
        #expect {
            _ = try authority.checkAuthorization(
                subject: .systemBusName(":1.987654"), actionID: LivePolkit.action,
                details: [:], allowUserInteraction: false, timeout: .seconds(10))
        } throws: { error in
            guard let error = error as? PolkitError else { return false }
            return error.function == "polkit_authority_check_authorization_sync"
                && !error.isTimeout && !error.message.isEmpty
        }
    }

    @Test func zeroTimeoutFailsWithTimeoutError() throws {
        let authority = try LivePolkit.authority()
        #expect {
            _ = try authority.checkAuthorization(
                subject: .unixProcess(pid: getpid(), startTime: 0, uid: 0), actionID: LivePolkit.action,
                details: [:], allowUserInteraction: false, timeout: .zero)
        } throws: { error in
            (error as? PolkitError)?.isTimeout == true
        }
    }

    @Test func cancellingTheTaskCancelsTheCheck() async throws {
        let authority = try LivePolkit.authority()
        let task = Task { () async throws(PolkitError) -> PolkitResult in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await authority.check(
                subject: .unixProcess(pid: getpid(), startTime: 0, uid: 0),
                actionID: LivePolkit.action, timeout: .seconds(10))
        }
        let result = await task.result
        #expect(throws: PolkitError.self) { try result.get() }
        if case .failure(let error) = result {
            #expect((error as? PolkitError)?.isCancelled == true, "\(error)")
        }
    }

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
