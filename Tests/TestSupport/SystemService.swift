import Foundation
import Glibc

/// Whether the real-stack tests may run: as root, with `VMMS_INTEGRATION=1` (set by
/// `make test` after `scripts/stack.sh up` has started the system bus, polkitd and libvirtd).
public let realStackAvailable: Bool = getuid() == 0 && ProcessInfo.processInfo.environment["VMMS_INTEGRATION"] == "1"
public let realStackReason: Comment = "needs root and VMMS_INTEGRATION=1 (make test sets both after scripts/stack.sh up)"

import Testing
import Spawn

/// Serializes every test that owns `org.example.VMMS1` on the system bus or disturbs the
/// shared stack (stops libvirtd or polkitd), across suites and test targets in one process
/// (there can only be one owner) and across processes: a second `swift test` on the machine
/// (another work tree) waits on an `flock` of `/run/vmms-stack/tests.lock`.
public actor SystemBusNameLock {
    public static let shared = SystemBusNameLock()
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var lockFD: Int32 = -1

    /// Takes the lock; a task cancelled while waiting (a time limit) gets CancellationError
    /// and holds nothing.
    public func acquire() async throws {
        if !held {
            held = true
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
        do {
            try await lockAcrossProcesses()
        } catch {
            handOn()
            throw error
        }
    }

    public func release() {
        if lockFD >= 0 {
            flock(lockFD, LOCK_UN)
            close(lockFD)
            lockFD = -1
        }
        handOn()
    }

    private func handOn() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }

    /// Polls a non-blocking flock: a blocking one would hold a thread of the cooperative pool.
    private func lockAcrossProcesses() async throws {
        mkdir("/run/vmms-stack", 0o755)
        let fd = open("/run/vmms-stack/tests.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            do {
                try await Task.sleep(for: .milliseconds(100))
            } catch {
                close(fd)
                throw error
            }
        }
        lockFD = fd
    }

    /// Runs `body` holding the lock.
    public static func with<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await shared.acquire()
        do {
            let result = try await body()
            await shared.release()
            return result
        } catch {
            await shared.release()
            throw error
        }
    }
}

/// Guards the machine's libvirtd between tests that use it (shared) and tests that stop,
/// restart or freeze it (exclusive), within one test process and across processes, with an
/// `flock` of `/run/vmms-stack/libvirtd.lock` (each holder opens its own descriptor, so
/// shared holders in one process do not exclude each other). Tests
/// take it before `SystemBusNameLock` when holding both (the traits below do), never the
/// other way round.
public enum LibvirtdLock {
    public static func shared<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await with(exclusive: false, body)
    }

    public static func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await with(exclusive: true, body)
    }

    private static func with<T: Sendable>(exclusive: Bool, _ body: () async throws -> T) async throws -> T {
        try await Gate.shared.enter(exclusive: exclusive)
        let fd: Int32
        do {
            fd = try await lockFile(exclusive ? LOCK_EX : LOCK_SH)
        } catch {
            await Gate.shared.leave(exclusive: exclusive)
            throw error
        }
        defer { if fd >= 0 { close(fd) } }
        do {
            let result = try await body()
            await Gate.shared.leave(exclusive: exclusive)
            return result
        } catch {
            await Gate.shared.leave(exclusive: exclusive)
            throw error
        }
    }

    /// The flock across processes; polled, not blocking (a blocking flock would hold a thread
    /// of the cooperative pool), and given up when the task is cancelled.
    private static func lockFile(_ mode: Int32) async throws -> Int32 {
        mkdir("/run/vmms-stack", 0o755)
        let fd = open("/run/vmms-stack/libvirtd.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return fd }
        while flock(fd, mode | LOCK_NB) != 0 {
            do {
                try await Task.sleep(for: .milliseconds(100))
            } catch {
                close(fd)
                throw error
            }
        }
        return fd
    }

    /// Within this process, a readers-writer gate that prefers writers: once a test waits to
    /// stop libvirtd, new users wait behind it instead of keeping it out until the run ends.
    private actor Gate {
        static let shared = Gate()
        private var readers = 0
        private var writing = false
        private var waitingWriters: [CheckedContinuation<Void, Never>] = []
        private var waitingReaders: [CheckedContinuation<Void, Never>] = []

        func enter(exclusive: Bool) async throws {
            if exclusive {
                if writing || readers > 0 || !waitingWriters.isEmpty {
                    await withCheckedContinuation { waitingWriters.append($0) }
                } else {
                    writing = true
                }
            } else {
                if writing || !waitingWriters.isEmpty {
                    await withCheckedContinuation { waitingReaders.append($0) }
                } else {
                    readers += 1
                }
            }
        }

        func leave(exclusive: Bool) {
            if exclusive { writing = false } else { readers -= 1 }
            guard !writing, readers == 0 else { return }
            if !waitingWriters.isEmpty {
                writing = true
                waitingWriters.removeFirst().resume()
            } else {
                readers += waitingReaders.count
                waitingReaders.forEach { $0.resume() }
                waitingReaders.removeAll()
            }
        }
    }
}

/// A trait for suites and tests that need libvirtd running throughout (`.usesLibvirtd`) or
/// that stop or freeze it (`.disturbsLibvirtd`).
public struct LibvirtdTrait: TestTrait, SuiteTrait, TestScoping {
    let exclusive: Bool
    public var isRecursive: Bool { true }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        // A suite's trait wraps each of its test cases (recursive), not the whole suite.
        guard testCase != nil || !test.isSuite else { return try await function() }
        if exclusive { try await LibvirtdLock.exclusive(function) } else { try await LibvirtdLock.shared(function) }
    }
}

extension Trait where Self == LibvirtdTrait {
    public static var usesLibvirtd: Self { LibvirtdTrait(exclusive: false) }
    public static var disturbsLibvirtd: Self { LibvirtdTrait(exclusive: true) }
}

/// The built `vmmsd` binary next to the test bundle.
public var builtVMMSD: String {
    var url = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    if url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
    return url.appendingPathComponent("vmmsd").path
}

/// `vmmsd --system` over qemu:///system under TCG, as the real service runs.
public final class SystemVMMSD: Sendable {
    public let process: ChildProcess
    public let logPath: String
    public let stateDirectory: String

    /// `stateDirectory`: reuse one (a restart after a crash); `environment`: added to ours
    /// (`VMMSD_TEST_CRASH_AT`).
    public init(extraArguments: [String] = [], stateDirectory: String? = nil, environment: [String: String] = [:]) async throws {
        self.stateDirectory = stateDirectory ?? NSTemporaryDirectory() + "vmms-system-\(UUID().uuidString)"
        logPath = self.stateDirectory + ".log-\(UUID().uuidString.prefix(4))"
        Self.killOrphans()
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process = try ChildProcess(builtVMMSD, ["--system", "--connect", "qemu:///system", "--accelerator", "tcg",
                                                "--state-dir", self.stateDirectory] + extraArguments,
                                   environment: env, stderrPath: logPath)
        do {
            for _ in 0..<200 {
                let owner = try await runCommand("/usr/bin/busctl", ["--system", "status", "org.example.VMMS1"])
                // Our child must be the owner: a leftover vmmsd holding the name is a failure,
                // not a service to test against.
                if owner.status == 0, owner.stdout.split(separator: "\n").contains("PID=\(process.pid)") { return }
                if process.exitStatusIfExited() != nil { break }
                try await Task.sleep(for: .milliseconds(50))
            }
        } catch {
            // Cancelled or failed while waiting: the child must not outlive this attempt.
            process.signal(SIGKILL)
            _ = process.wait()
            throw error
        }
        process.signal(SIGKILL)
        _ = process.wait()
        throw TestFailure("vmmsd did not take org.example.VMMS1: \(log)")
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// A test process that died (a time limit, a crash) leaves its vmmsd behind, adopted by
    /// init and holding the bus name, so every later test would fail with AddressInUse: such
    /// an orphan — a vmmsd whose parent is pid 1 and whose state directory is a test's — is
    /// killed before a new one starts.
    ///
    /// Also the test vmmsd that owns the name right now: whoever creates a SystemVMMSD holds
    /// `SystemBusNameLock`, so a test daemon still on the bus was left by a test that lost
    /// track of it (cancelled while it started, in another work tree's older test code).
    static func killOrphans() {
        let temporary = NSTemporaryDirectory() + "vmms-"
        let owner = (try? runCommandSync("/usr/bin/busctl", ["--system", "status", "org.example.VMMS1"]))?.stdout
            .split(separator: "\n").first { $0.hasPrefix("PID=") }.flatMap { Int32($0.dropFirst(4)) }
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"), stat[...close].hasSuffix("(vmmsd)") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, fields[1] == "1" || pid == owner,
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if let index = arguments.firstIndex(of: "--state-dir"), index + 1 < arguments.count,
               arguments[index + 1].hasPrefix(temporary) {
                kill(pid, SIGKILL)
                for _ in 0..<100 where kill(pid, 0) == 0 { usleep(20_000) }
            }
        }
    }

    /// SIGTERM, and SIGKILL after 10 s: a daemon that does not exit on SIGTERM is a bug the
    /// test records, not a reason to hang the run.
    public func stop() {
        process.signal(SIGTERM)
        for _ in 0..<400 {
            if process.exitStatusIfExited() != nil { return }
            usleep(25_000)
        }
        process.signal(SIGKILL)
        _ = process.wait()
        Issue.record("vmmsd did not exit within 10 s of SIGTERM: \(log)")
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `busctl --system …` as `user` (root runs it directly).
public func busctl(as user: String, _ arguments: [String]) async throws -> CommandResult {
    if user == "root" { return try await runCommand("/usr/bin/busctl", ["--system"] + arguments) }
    return try await runCommand("/usr/sbin/runuser", ["-u", user, "--", "/usr/bin/busctl", "--system"] + arguments)
}
