import Foundation
import Glibc
import Synchronization

/// A child process started with `posix_spawnp` and reaped with `waitpid` on its own pid.
///
/// Foundation's `Process.waitUntilExit()` spins or hangs on Linux when called off the main
/// thread, which is where Swift Testing and Swift concurrency run everything, so the tests and
/// the benchmark start their helpers with this instead.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` (searched in PATH unless it contains a `/`) with stdin, stdout and
    /// stderr connected to the given files (nil: /dev/null), in `environment` (nil: ours) and
    /// with no signal blocked, whatever the calling thread blocks.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                stdinPath: String? = nil, stdoutPath: String? = nil, stderrPath: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
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
        let rc = posix_spawnp(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EINVAL) }
        pid = child
    }

    /// Sends a signal to the child.
    public func signal(_ number: Int32) { kill(pid, number) }

    /// Blocks until the child exits and returns its exit status (128 + signal when killed).
    /// Call it from a thread of one's own, never from a task.
    @discardableResult
    public func wait() -> Int32 {
        if let done = reaped.withLock({ $0 }) { return done }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return record(status)
    }

    /// The exit status if the child has exited, without waiting.
    public func exitStatusIfExited() -> Int32? {
        if let done = reaped.withLock({ $0 }) { return done }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        return record(status)
    }

    private func record(_ status: Int32) -> Int32 {
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        reaped.withLock { $0 = code }
        return code
    }
}

/// What a program printed and how it ended.
public struct CommandOutput: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// Taken just before the spawn.
    public var started: ContinuousClock.Instant
    /// From `started` until the exit was reaped.
    public var wall: Duration
}

/// Runs a program to completion on the calling thread, its output collected through
/// temporary files (pipes would need a reader thread to avoid filling up).
public func runToCompletion(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                            stdinPath: String? = nil) throws -> CommandOutput {
    let base = NSTemporaryDirectory() + "vmms-cmd-\(UUID().uuidString)"
    defer {
        try? FileManager.default.removeItem(atPath: base + ".out")
        try? FileManager.default.removeItem(atPath: base + ".err")
    }
    let started = ContinuousClock.now
    let child = try ChildProcess(executable, arguments, environment: environment, stdinPath: stdinPath,
                                 stdoutPath: base + ".out", stderrPath: base + ".err")
    let status = child.wait()
    let wall = started.duration(to: .now)
    return CommandOutput(status: status,
                         stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "",
                         started: started, wall: wall)
}
