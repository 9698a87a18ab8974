import Foundation
import Glibc
import Synchronization

/// A child process started with `posix_spawnp` and reaped with `waitpid` on its own pid.
/// Foundation's `Process` hangs on Linux off the main thread, so it is not used.
final class Child: @unchecked Sendable {
    let pid: pid_t
    private let reaped = Mutex<Int32?>(nil)

    /// Starts `executable` (searched in PATH) with stdin/stdout/stderr from/to the given files.
    init(_ executable: String, _ arguments: [String], stdinPath: String? = nil,
         stdoutPath: String? = nil, stderrPath: String? = nil) throws {
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
        let env = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw BenchError("cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Blocks until the child exits; call from a `Thread`, never from a task.
    @discardableResult
    func waitBlocking() -> Int32 {
        if let done = reaped.withLock({ $0 }) { return done }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        reaped.withLock { $0 = code }
        return code
    }

    /// Waits for the exit on a dedicated thread.
    func wait() async -> Int32 {
        await withCheckedContinuation { done in
            let thread = Thread { [self] in done.resume(returning: self.waitBlocking()) }
            thread.start()
        }
    }
}

struct CommandResult: Sendable {
    var status: Int32
    var started: ContinuousClock.Instant
    var wall: Duration
    var stdout: String
    var stderr: String
}

enum Scratch {
    private static let counter = Atomic<Int>(0)
    static let directory: String = {
        let dir = NSTemporaryDirectory() + "vmms-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func file(_ stem: String) -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return "\(directory)/\(stem)-\(n)"
    }
}

/// Runs a program to completion on its own thread. `started` is taken just before the spawn.
func runCommand(_ executable: String, _ arguments: [String], stdinPath: String? = nil) async throws -> CommandResult {
    let out = Scratch.file("out")
    let err = Scratch.file("err")
    let result: CommandResult = try await withCheckedThrowingContinuation { done in
        let thread = Thread {
            do {
                let started = ContinuousClock.now
                let child = try Child(executable, arguments, stdinPath: stdinPath, stdoutPath: out, stderrPath: err)
                let status = child.waitBlocking()
                let wall = started.duration(to: .now)
                let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
                done.resume(returning: CommandResult(status: status, started: started, wall: wall, stdout: stdout, stderr: stderr))
            } catch {
                done.resume(throwing: error)
            }
        }
        thread.start()
    }
    try? FileManager.default.removeItem(atPath: out)
    try? FileManager.default.removeItem(atPath: err)
    return result
}

/// Runs a program and fails unless it exits with 0.
@discardableResult
func runChecked(_ executable: String, _ arguments: [String], stdinPath: String? = nil) async throws -> CommandResult {
    let result = try await runCommand(executable, arguments, stdinPath: stdinPath)
    guard result.status == 0 else {
        throw BenchError("\(executable) \(arguments.joined(separator: " ")) exited with \(result.status): \(result.stderr.prefix(2000))")
    }
    return result
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func log(_ text: String) {
    FileHandle.standardError.write(Data("bench: \(text)\n".utf8))
}
