import DBus
import Foundation
import Spawn
import TestSupport
import Testing
@testable import Polkit

/// A private bus with its own real polkitd, so a test can freeze (SIGSTOP) or kill polkitd
/// without disturbing the machine's or other tests.
final class PrivatePolkitStack: Sendable {
    let directory: String
    let address: String
    private let bus: ChildProcess
    private let polkitd: ChildProcess

    var polkitdPID: Int32 { polkitd.pid }

    init() async throws {
        let directory = "/tmp/vmms-polkit-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        // polkitd drops to its own user, which must reach the socket.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        self.directory = directory
        address = "unix:path=\(directory)/bus"
        let config = """
            <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
             "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
            <busconfig>
              <type>system</type>
              <listen>\(address)</listen>
              <auth>EXTERNAL</auth>
              <policy context="default">
                <allow user="*"/>
                <allow own="*"/>
                <allow send_destination="*"/>
                <allow receive_sender="*"/>
              </policy>
            </busconfig>
            """
        try config.write(toFile: "\(directory)/bus.conf", atomically: true, encoding: .utf8)
        bus = try ChildProcess("/usr/bin/dbus-daemon", ["--config-file=\(directory)/bus.conf", "--nofork", "--nopidfile"])
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: "\(directory)/bus") { try await Task.sleep(for: .milliseconds(10)) }
        polkitd = try ChildProcess("/usr/lib/polkit-1/polkitd", ["--no-debug"],
                                   environment: ["DBUS_SYSTEM_BUS_ADDRESS": address, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        let probe = try await DBusConnection.connect(.address(address))
        defer { probe.close() }
        for _ in 0..<200 {
            let owner = try? await probe.call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                                              interface: "org.freedesktop.DBus", member: "NameHasOwner",
                                              [.string(PolkitAuthority.busName)])
            if owner?.first?.boolean == true { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        stop()
        throw TestFailure("the private polkitd did not take its name")
    }

    deinit { stop() }

    /// Kills both daemons (SIGKILL also ends a stopped polkitd) and removes the directory.
    func stop() {
        for process in [polkitd, bus] where process.exitStatusIfExited() == nil {
            process.signal(SIGKILL)
            process.wait()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    func killPolkitd() {
        polkitd.signal(SIGKILL)
        polkitd.wait()
    }
}

@Suite(.enabled(if: LivePolkit.isEnabled, LivePolkit.skipReason))
struct HungPolkitdTests {
    /// A frozen polkitd turns checks into `.noAnswer` within their timeouts, queued ones
    /// included, instead of hanging; once it thaws, checks are answered again.
    @Test func frozenPolkitdMakesChecksFailWithNoAnswerAndThawedItAnswersAgain() async throws {
        let stack = try await PrivatePolkitStack()
        defer { stack.stop() }
        let authority = PolkitAuthority(bus: .address(stack.address), limits: .init(checksInFlight: 2))
        defer { authority.close() }
        let subject = try PolkitSubject.process(pid: getpid())
        #expect(try await authority.check(subject: subject, actionID: LivePolkit.action, timeout: .seconds(10)).isAuthorized)

        kill(stack.polkitdPID, SIGSTOP)
        let outcomes = await withTaskGroup(of: PolkitError.Code?.self) { group in
            for _ in 0..<5 {
                group.addTask {
                    do {
                        _ = try await authority.check(subject: subject, actionID: LivePolkit.action, timeout: .milliseconds(500))
                        return nil
                    } catch let error as PolkitError {
                        return error.code
                    } catch {
                        return .failed
                    }
                }
            }
            return await group.reduce(into: [PolkitError.Code?]()) { $0.append($1) }
        }
        kill(stack.polkitdPID, SIGCONT)
        #expect(outcomes == Array(repeating: PolkitError.Code.noAnswer, count: 5))
        // The withdrawn checks' late answers free their places again.
        #expect(try await authority.check(subject: subject, actionID: LivePolkit.action, timeout: .seconds(10)).isAuthorized)
    }

    @Test func killedPolkitdMakesChecksUnreachable() async throws {
        let stack = try await PrivatePolkitStack()
        defer { stack.stop() }
        let authority = PolkitAuthority(bus: .address(stack.address))
        defer { authority.close() }
        let subject = try PolkitSubject.process(pid: getpid())
        #expect(try await authority.check(subject: subject, actionID: LivePolkit.action, timeout: .seconds(10)).isAuthorized)
        stack.killPolkitd()
        do {
            _ = try await authority.check(subject: subject, actionID: LivePolkit.action, timeout: .seconds(10))
            Issue.record("a check was answered without polkitd")
        } catch {
            #expect(error.code == .unreachable, "\(error)")
        }
    }
}
