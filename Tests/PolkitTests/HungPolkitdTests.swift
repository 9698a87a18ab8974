import Foundation
import Testing
@testable import Polkit

/// A private bus with its own polkitd, so a test can freeze polkitd (SIGSTOP) without
/// disturbing the machine's polkitd or other tests.
final class PrivatePolkitStack {
    let directory: String
    let address: String
    private let bus: Process
    private let polkitd: Process

    var polkitdPID: Int32 { polkitd.processIdentifier }

    enum Failure: Error { case setup(String) }

    init() throws {
        let directory = "/tmp/vmms-polkit-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755])  // polkitd drops to its own user
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

        bus = Process()
        bus.executableURL = URL(fileURLWithPath: "/usr/bin/dbus-daemon")
        bus.arguments = ["--config-file=\(directory)/bus.conf", "--nofork", "--nopidfile"]
        bus.standardOutput = FileHandle.nullDevice
        bus.standardError = FileHandle.nullDevice
        try bus.run()
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: "\(directory)/bus") {
            usleep(10_000)
        }
        guard FileManager.default.fileExists(atPath: "\(directory)/bus") else {
            throw Failure.setup("private dbus-daemon did not start")
        }

        polkitd = Process()
        polkitd.executableURL = URL(fileURLWithPath: "/usr/lib/polkit-1/polkitd")
        polkitd.arguments = ["--no-debug"]
        polkitd.environment = ["DBUS_SYSTEM_BUS_ADDRESS": address, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        polkitd.standardOutput = FileHandle.nullDevice
        polkitd.standardError = FileHandle.nullDevice
        try polkitd.run()
        for _ in 0..<100 where !nameHasOwner() { usleep(25_000) }
        guard nameHasOwner() else { throw Failure.setup("private polkitd did not claim its name") }
    }

    deinit {
        stop()
    }

    /// Kills both daemons and removes the directory. Idempotent; call it before `exit()`,
    /// which skips deinitializers.
    func stop() {
        // SIGKILL: works while polkitd is SIGSTOPped, and children spawned from an exit test
        // may inherit a signal mask that blocks SIGTERM.
        for process in [polkitd, bus] where process.isRunning && process.processIdentifier > 0 {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Asks the private bus whether polkitd owns its name, with `posix_spawn` and `waitpid`
    /// (Foundation's `Process.waitUntilExit` noticed exits only seconds late in exit tests).
    private func nameHasOwner() -> Bool {
        let arguments = [
            "/usr/bin/dbus-send", "--bus=\(address)", "--print-reply", "--reply-timeout=2000",
            "--dest=org.freedesktop.DBus", "/", "org.freedesktop.DBus.GetNameOwner",
            "string:org.freedesktop.PolicyKit1",
        ]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, arguments[0], &actions, nil, &argv, environ) == 0 else { return false }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        return status == 0
    }
}

@Suite(.enabled(if: LivePolkit.isEnabled, LivePolkit.skipReason))
struct HungPolkitdTests {
    /// In a child process (it points GLib's system bus at a private bus): a frozen polkitd
    /// must turn into a timeout error, not a hang.
    @Test func frozenPolkitdMakesCheckFailWithTimeoutInsteadOfHanging() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            let stack: PrivatePolkitStack
            do {
                stack = try PrivatePolkitStack()
            } catch {
                FileHandle.standardError.write(Data("setup: \(error)\n".utf8))
                exit(10)
            }
            // exit() skips deinitializers, so stop the daemons explicitly on every path.
            func fail(_ code: Int32, _ message: String) -> Never {
                FileHandle.standardError.write(Data("\(message)\n".utf8))
                stack.stop()
                exit(code)
            }
            setenv("DBUS_SYSTEM_BUS_ADDRESS", stack.address, 1)
            let subject = PolkitSubject.unixProcess(pid: getpid(), startTime: 0, uid: 0)
            do throws(PolkitError) {
                let authority = try PolkitAuthority()
                guard authority.ownerName != nil else { fail(11, "private polkitd has no owner") }
                let before = try await authority.check(
                    subject: subject, actionID: LivePolkit.action, timeout: .seconds(10))
                guard before.isAuthorized else { fail(12, "not authorized before freezing") }

                kill(stack.polkitdPID, SIGSTOP)
                let clock = ContinuousClock()
                let start = clock.now
                do throws(PolkitError) {
                    _ = try await authority.check(
                        subject: subject, actionID: LivePolkit.action, timeout: .milliseconds(300))
                    fail(13, "check answered although polkitd is frozen")
                } catch {
                    let elapsed = clock.now - start
                    FileHandle.standardError.write(Data("\(error) after \(elapsed)\n".utf8))
                    guard error.isTimeout, elapsed < .seconds(5) else { fail(14, "wrong failure") }
                }
            } catch {
                fail(15, "unexpected: \(error)")
            }
            stack.stop()
            exit(0)
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("polkitd did not answer within"), "\(stderr)")
    }
}
