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

    public func acquire() async {
        if !held {
            held = true
        } else {
            await withCheckedContinuation { waiting.append($0) }
        }
        await lockAcrossProcesses()
    }

    public func release() {
        if lockFD >= 0 {
            flock(lockFD, LOCK_UN)
            close(lockFD)
            lockFD = -1
        }
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }

    /// Polls a non-blocking flock: a blocking one would hold a thread of the cooperative pool.
    private func lockAcrossProcesses() async {
        mkdir("/run/vmms-stack", 0o755)
        let fd = open("/run/vmms-stack/tests.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            try? await Task.sleep(for: .milliseconds(100))
        }
        lockFD = fd
    }

    /// Runs `body` holding the lock.
    public static func with<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await shared.acquire()
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
        try await with(LOCK_SH, body)
    }

    public static func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await with(LOCK_EX, body)
    }

    private static func with<T: Sendable>(_ mode: Int32, _ body: () async throws -> T) async throws -> T {
        mkdir("/run/vmms-stack", 0o755)
        let fd = open("/run/vmms-stack/libvirtd.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        defer { if fd >= 0 { close(fd) } }
        if fd >= 0 {
            // Polled, not blocking: a blocking flock would hold a thread of the cooperative pool.
            while flock(fd, mode | LOCK_NB) != 0 { try? await Task.sleep(for: .milliseconds(100)) }
        }
        return try await body()
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
        for _ in 0..<200 {
            let owner = try await runCommand("/usr/bin/busctl", ["--system", "status", "org.example.VMMS1"])
            // Our child must be the owner: a leftover vmmsd holding the name is a failure, not
            // a service to test against.
            if owner.status == 0, owner.stdout.split(separator: "\n").contains("PID=\(process.pid)") { return }
            if process.exitStatusIfExited() != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("vmmsd did not take org.example.VMMS1: \(log)")
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// A test process that died (a time limit, a crash) leaves its vmmsd behind, adopted by
    /// init and holding the bus name, so every later test would fail with AddressInUse: such
    /// an orphan — a vmmsd whose parent is pid 1 and whose state directory is a test's — is
    /// killed before a new one starts.
    static func killOrphans() {
        let temporary = NSTemporaryDirectory() + "vmms-"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")"), stat[...close].hasSuffix("(vmmsd)") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, fields[1] == "1",
                  let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
            let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if let index = arguments.firstIndex(of: "--state-dir"), index + 1 < arguments.count,
               arguments[index + 1].hasPrefix(temporary) {
                kill(pid, SIGKILL)
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
