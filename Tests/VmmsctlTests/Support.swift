import DBus
import Foundation
import Glibc
import Spawn
import Testing
import TestSupport

/// How one vmmsctl run ended.
struct Run: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    init(_ result: CommandResult) { self.init(status: result.status, stdout: result.stdout, stderr: result.stderr) }
}

/// Runs the built vmmsctl as a subprocess, as an administrator would.
enum Ctl {
    /// The vmmsctl built next to vmmsd.
    static var binary: String {
        URL(fileURLWithPath: builtVMMSD).deletingLastPathComponent().appendingPathComponent("vmmsctl").path
    }

    /// The environment the runs get: no colour settings of ours leak in.
    static var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = nil
        environment["TERM"] = "xterm"
        return environment
    }

    /// `vmmsctl ARGUMENTS` as `user` (root directly, others through runuser), stdin from
    /// /dev/null and stdout/stderr into files: no terminal anywhere.
    static func run(_ arguments: [String], as user: String = "root", environment extra: [String: String] = [:]) async throws -> Run {
        let environment = Self.environment.merging(extra) { $1 }
        if user == "root" { return Run(try await runCommand(binary, arguments, environment: environment)) }
        return Run(try await runCommand("/usr/sbin/runuser", ["-u", user, "--", binary] + arguments, environment: environment))
    }

    /// `vmmsctl ARGUMENTS` on a pseudo-terminal made by `script` (as `user`). Whenever the
    /// terminal shows `prompt` once more (at most `answers` times), `reply` is typed; then
    /// the input ends. What the terminal showed comes back in stdout, with \r\n line ends.
    static func onTerminal(_ arguments: [String], as user: String = "root", prompt: String? = nil, reply: String = "",
                           answers: Int = 1, environment extra: [String: String] = [:],
                           timeout: Duration = .seconds(60)) async throws -> Run {
        let command = ([binary] + arguments).map(shellQuoted).joined(separator: " ")
        let directory = NSTemporaryDirectory() + "vmmsctl-tty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A FIFO as script's stdin: typing happens when the prompt is there, as a person would.
        let fifo = directory + "/input", output = directory + "/output"
        guard mkfifo(fifo, 0o600) == 0 else { throw TestFailure("mkfifo: errno \(errno)") }
        let writer = open(fifo, O_RDWR | O_CLOEXEC)
        guard writer >= 0 else { throw TestFailure("open \(fifo): errno \(errno)") }
        var writerOpen = true
        defer { if writerOpen { close(writer) } }
        let environment = Self.environment.merging(extra) { $1 }
        // -e: script exits with the command's status; -q: no "Script started" lines.
        let script = ["/usr/bin/script", "-qec", command, "/dev/null"]
        let child = user == "root"
            ? try ChildProcess(script[0], Array(script.dropFirst()), environment: environment, stdinPath: fifo,
                               stdoutPath: output, stderrPath: directory + "/errors")
            : try ChildProcess("/usr/sbin/runuser", ["-u", user, "--"] + script, environment: environment, stdinPath: fifo,
                               stdoutPath: output, stderrPath: directory + "/errors")
        var answered = 0
        let deadline = ContinuousClock.now + timeout
        while child.exitStatusIfExited() == nil, ContinuousClock.now < deadline {
            let shown = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let prompt, answered < answers, shown.components(separatedBy: prompt).count - 1 > answered {
                _ = reply.utf8CString.withUnsafeBufferPointer { write(writer, $0.baseAddress, $0.count - 1) }
                answered += 1
            } else if prompt == nil || answered == answers, writerOpen {
                if prompt == nil, !reply.isEmpty {
                    _ = reply.utf8CString.withUnsafeBufferPointer { write(writer, $0.baseAddress, $0.count - 1) }
                }
                close(writer)   // end of input: script passes it on and waits for the command
                writerOpen = false
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        if child.exitStatusIfExited() == nil { child.signal(SIGKILL) }
        let status = await withCheckedContinuation { done in Thread.detachNewThread { done.resume(returning: child.wait()) } }
        return Run(status: status, stdout: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "",
                   stderr: (try? String(contentsOfFile: directory + "/errors", encoding: .utf8)) ?? "")
    }

    static func shellQuoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Expects exit status `status` and says what vmmsctl printed when it is not.
    static func expect(_ result: Run, _ status: Int32, _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == status, "\(what): exit \(result.status)\nstdout: \(result.stdout)\nstderr: \(result.stderr)",
                sourceLocation: sourceLocation)
    }

    /// Runs vmmsctl and fails the test unless it exits 0.
    @discardableResult
    static func ok(_ arguments: [String], as user: String = "root", sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let result = try await run(arguments, as: user)
        expect(result, 0, "vmmsctl \(arguments.joined(separator: " "))", sourceLocation: sourceLocation)
        return result.stdout
    }
}

/// The service's own answers, read with our D-Bus client, to check vmmsctl against.
struct Service {
    let bus: DBusConnection

    init() throws { bus = try DBusConnection(bus: .system) }

    func call(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue] = []) async throws -> [DBusValue] {
        try await bus.call(destination: "org.example.VMMS1", path: path, interface: interface, member: member, body,
                           timeout: .seconds(120))
    }

    /// GetManagedObjects as path → interface → property → value.
    func managedObjects() async throws -> [ObjectPath: [String: [String: DBusValue]]] {
        let reply = try await call("/org/example/VMMS1", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        guard case .dictionary(_, _, let entries)? = reply.first else { throw TestFailure("GetManagedObjects: \(reply)") }
        var objects: [ObjectPath: [String: [String: DBusValue]]] = [:]
        for entry in entries {
            guard let path = entry.key.objectPath, let interfaces = entry.value.stringKeyedDictionary else { continue }
            objects[path] = interfaces.compactMapValues(\.stringKeyedDictionary)
        }
        return objects
    }

    func vms() async throws -> [ObjectPath: [String: DBusValue]] {
        try await managedObjects().compactMapValues { $0["org.example.VMMS1.VM"] }
    }

    func properties(_ path: ObjectPath, _ interface: String = "org.example.VMMS1.VM") async throws -> [String: DBusValue] {
        let reply = try await call(path, "org.freedesktop.DBus.Properties", "GetAll", [.string(interface)])
        guard let values = reply.first?.stringKeyedDictionary else { throw TestFailure("GetAll: \(reply)") }
        return values
    }

    func lookup(_ name: String) async throws -> ObjectPath {
        let reply = try await call("/org/example/VMMS1/Host", "org.example.VMMS1.Host", "LookupVM", [.string(name)])
        guard let path = reply.first?.objectPath else { throw TestFailure("LookupVM \(name): \(reply)") }
        return path
    }

    func vm(named name: String) async throws -> [String: DBusValue] { try await properties(try await lookup(name)) }

    func exists(_ name: String) async throws -> Bool {
        do {
            _ = try await lookup(name)
            return true
        } catch let error as DBusError where error.name == "org.example.VMMS1.Error.NotFound" {
            return false
        }
    }

    func host() async throws -> [String: DBusValue] { try await properties("/org/example/VMMS1/Host", "org.example.VMMS1.Host") }

    /// The host's VirtualHardDiskPath, created if missing.
    func diskDirectory() async throws -> String {
        guard let directory = try await host()["VirtualHardDiskPath"]?.string else { throw TestFailure("no VirtualHardDiskPath") }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }
}

/// Parses what `vmmsctl list` prints: the header names the columns, the dashed rule goes,
/// cells are separated by two or more spaces.
func parseTable(_ text: String) -> [[String: String]] {
    let lines = text.split(separator: "\n").map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
    guard lines.count >= 2 else { return [] }
    let split: (String) -> [String] = { line in
        line.components(separatedBy: "  ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    let header = split(lines[0])
    return lines.dropFirst(2).map { line in
        Dictionary(uniqueKeysWithValues: zip(header, split(line)).map { ($0, $1) })
    }
}

func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}

/// Compares one JSON value vmmsctl printed with the D-Bus value it came from.
func jsonMatches(_ json: Any?, _ value: DBusValue) -> Bool {
    switch value {
    case .string(let s): return json as? String == s
    case .objectPath(let p): return json as? String == p.rawValue
    case .boolean(let b): return json as? Bool == b
    case .uint32(let n): return (json as? NSNumber)?.uint64Value == UInt64(n)
    case .uint64(let n): return (json as? NSNumber)?.uint64Value == n
    case .int32(let n): return (json as? NSNumber)?.int64Value == Int64(n)
    case .array(_, let items):
        guard let array = json as? [Any], array.count == items.count else { return false }
        return zip(array, items).allSatisfy { jsonMatches($0, $1) }
    case .structure(let fields):
        // HardDisks and NetworkAdapters become objects with named fields.
        if let object = json as? [String: Any] {
            let values = object.keys.sorted().compactMap { object[$0] }
            return values.count == fields.count && fields.allSatisfy { field in values.contains { jsonMatches($0, field) } }
        }
        guard let array = json as? [Any], array.count == fields.count else { return false }
        return zip(array, fields).allSatisfy { jsonMatches($0, $1) }
    default:
        return false
    }
}

enum Names {
    static func unique(_ prefix: String) -> String { "ctl-\(prefix)-\(UUID().uuidString.prefix(6).lowercased())" }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// `virsh -c qemu:///system`.
func virsh(_ arguments: [String]) async throws -> CommandResult {
    try await runCommand("/usr/bin/virsh", ["-c", "qemu:///system"] + arguments)
}

/// The arguments that make a small diskless generation-1 VM, which boots under TCG.
let smallVM = ["--generation", "1", "--memory", "64M"]

/// Runs `body`, then deletes the VMs named (with their disks), whatever `body` did: through
/// vmmsctl, and with virsh for whatever that left, so a failing test leaves libvirt clean.
/// Must run while the test's vmmsd is still up.
func cleaningUp<T>(_ names: [String], _ body: () async throws -> T) async throws -> T {
    let result: Result<T, any Error>
    do { result = .success(try await body()) } catch { result = .failure(error) }
    _ = try? await Ctl.run(["delete", "--force", "--yes", "--delete-disks"] + names)
    for name in names where (try? await virsh(["dominfo", name]))?.status == 0 {
        _ = try? await virsh(["destroy", name])
        _ = try? await virsh(["undefine", "--managed-save", "--nvram", name])
    }
    return try result.get()
}
