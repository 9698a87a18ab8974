import Foundation
import Glibc

/// A child process started with `posix_spawn` and reaped with `waitpid` on its own pid.
///
/// Foundation's `Process.waitUntilExit()` spins or hangs on Linux when called off the main
/// thread, which is where Swift Testing runs everything, so the tests do not use it.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var reaped: Int32?

    /// Starts `executable` with stdout and stderr sent to the given files (nil: /dev/null).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                stdoutPath: String? = nil, stderrPath: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Children must not inherit a blocked SIGTERM from the test runner's threads.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        pid = child
    }

    /// Sends a signal to the child.
    public func signal(_ number: Int32) { kill(pid, number) }

    /// Waits for the child to exit and returns its exit status (128 + signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        if let reaped { return reaped }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        reaped = code
        return code
    }

    /// Exit status if the child has already exited, without waiting.
    public func exitStatusIfExited() -> Int32? {
        if let reaped { return reaped }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        reaped = code
        return code
    }
}

/// Runs a program to completion on the calling thread and returns what it printed. For
/// synchronous test code; async code uses `runCommand`.
public func runCommandSync(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    let base = NSTemporaryDirectory() + "vmms-cmd-\(UUID().uuidString)"
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let child = try ChildProcess(executable, arguments, environment: environment, stdoutPath: base + ".out", stderrPath: base + ".err")
    let status = child.wait()
    return CommandResult(status: status,
                         stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
}
