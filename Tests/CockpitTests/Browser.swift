import Foundation
import Glibc
import Spawn
import Synchronization
import TestSupport
import Testing

/// Headless Chromium through `cockpit_browser.py serve`: commands go as JSON lines into a
/// FIFO, answers come back as JSON lines in its stdout file. Every command has a deadline in
/// the script and a longer one here; `close` ends the browser, chromedriver and the script,
/// by process group and by the profile directory's unique tag, whatever state they are in.
final class Browser: Sendable {
    static let python = "/usr/bin/python3"
    static let script = repositoryRoot + "/Tests/CockpitTests/cockpit_browser.py"

    let base: String
    private let process: ChildProcess
    private let tag: String
    private let directory: String
    private let commands: Int32
    private let nextID = Mutex(1)

    init(base: String) async throws {
        self.base = base
        tag = UUID().uuidString.prefix(12).lowercased()
        directory = NSTemporaryDirectory() + "vmms-browser-\(tag)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fifo = directory + "/commands"
        guard mkfifo(fifo, 0o600) == 0 else { throw TestFailure("mkfifo \(fifo): errno \(errno)") }
        // Read-write, so the open does not wait for the reader; close-on-exec, so the script's
        // end of input is this descriptor's close alone.
        commands = open(fifo, O_RDWR | O_CLOEXEC)
        guard commands >= 0 else { throw TestFailure("open \(fifo): errno \(errno)") }
        // setsid: the script leads a new process group holding chromedriver and Chromium.
        process = try ChildProcess("/usr/bin/setsid", [Self.python, Self.script, "serve", "--base", base, "--commands", fifo,
                                                       "--tag", tag],
                                   stdoutPath: directory + "/replies", stderrPath: directory + "/stderr")
        do {
            _ = try await reply(to: 0, within: .seconds(90))
        } catch {
            let text = diagnostics
            close()
            throw TestFailure("the browser did not start: \(error)\n\(text)")
        }
    }

    // MARK: commands

    /// Sends one command; returns its value or throws with the browser's console.
    @discardableResult
    func send(_ command: [String: JSON], timeout: Double = 10) async throws -> JSON {
        let id = nextID.withLock { value in
            defer { value += 1 }
            return value
        }
        var message = command
        message["id"] = .number(Double(id))
        message["timeout"] = .number(timeout)
        let line = JSON.object(message).text + "\n"
        let written = line.utf8CString.withUnsafeBufferPointer { write(commands, $0.baseAddress, $0.count - 1) }
        guard written == line.utf8.count else { throw TestFailure("writing to the browser failed: errno \(errno)") }
        return try await reply(to: id, within: .seconds(timeout + 30))
    }

    func login(_ user: String, _ password: String) async throws {
        try await send(["cmd": "login", "user": .string(user), "password": .string(password)], timeout: 30)
    }

    func get(_ path: String) async throws {
        try await send(["cmd": "get", "url": .string(path)], timeout: 60)
    }

    /// Waits until the JavaScript expression is truthy; returns its value. The default bound
    /// is generous because the whole of `make test` shares two cores with these pages: a wait
    /// that holds returns at once, so only a failing one pays for it.
    @discardableResult
    func wait(_ expression: String, timeout: Double = 30) async throws -> JSON {
        try await send(["cmd": "wait", "js": .string("return (\(expression));")], timeout: timeout)
    }

    @discardableResult
    func eval(_ expression: String) async throws -> JSON {
        try await send(["cmd": "eval", "js": .string("return (\(expression));")])
    }

    func click(_ css: String) async throws {
        try await send(["cmd": "click", "css": .string(css)])
    }

    func type(_ css: String, _ text: String) async throws {
        try await send(["cmd": "type", "css": .string(css), "text": .string(text)])
    }

    /// Selenium key names (ARROW_DOWN, SPACE, ENTER, …) or text, to `css` or the focused element.
    func keys(_ keys: [String], to css: String? = nil) async throws {
        var command: [String: JSON] = ["cmd": "keys", "keys": .array(keys.map { .string($0) })]
        if let css { command["css"] = .string(css) }
        try await send(command)
    }

    func screenshot(_ path: String) async throws {
        try await send(["cmd": "screenshot", "path": .string(path)])
    }

    func window(width: Int, height: Int) async throws {
        try await send(["cmd": "window", "width": .number(Double(width)), "height": .number(Double(height))])
    }

    /// Switches into the iframe matching `css` (nil: back to the top document).
    func frame(_ css: String?) async throws {
        var command: [String: JSON] = ["cmd": "frame"]
        if let css { command["css"] = .string(css) }
        try await send(command, timeout: 20)
    }

    // MARK: replies

    private func reply(to id: Int, within limit: Duration) async throws -> JSON {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            for line in ((try? String(contentsOfFile: directory + "/replies", encoding: .utf8)) ?? "").split(separator: "\n") {
                guard case .object(let reply) = JSON.parse(String(line)), reply["id"]?.number == Double(id) else { continue }
                if reply["ok"] == .bool(true) { return reply["value"] ?? .null }
                let console = reply["console"]?.array?.compactMap(\.string).joined(separator: "\n") ?? ""
                throw TestFailure("browser: \(reply["error"]?.string ?? "?")\(console.isEmpty ? "" : "\nconsole:\n" + console)")
            }
            if let status = process.exitStatusIfExited() {
                throw TestFailure("the browser script exited with status \(status)")
            }
            try await Task.sleep(for: .milliseconds(40))
        }
        throw TestFailure("no answer from the browser to command \(id) within \(limit)")
    }

    var diagnostics: String {
        let errors = (try? String(contentsOfFile: directory + "/stderr", encoding: .utf8)) ?? ""
        return errors.isEmpty ? "" : "browser script stderr:\n\(errors.suffix(4000))"
    }

    // MARK: teardown

    /// Ends the input (the script quits the browser), then kills whatever is left.
    func close() {
        Glibc.close(commands)
        for _ in 0..<300 where process.exitStatusIfExited() == nil { usleep(50_000) }
        if process.exitStatusIfExited() == nil {
            kill(-process.pid, SIGKILL)
            process.wait()
        }
        // Chromium processes that left the group: found by the profile directory's tag.
        for pid in processes(matching: "vmms-chromium-\(tag)") { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func processes(matching needle: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = pid_t(entry),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  String(decoding: data, as: UTF8.self).contains(needle) else { return nil }
            return pid
        }
    }
}

/// The JSON the script speaks.
enum JSON: Sendable, Equatable, Decodable, ExpressibleByStringLiteral {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    init(stringLiteral value: String) { self = .string(value) }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSON].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSON].self)) }
    }

    var string: String? { if case .string(let value) = self { value } else { nil } }
    var number: Double? { if case .number(let value) = self { value } else { nil } }
    var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    var array: [JSON]? { if case .array(let value) = self { value } else { nil } }
    var strings: [String] { array?.compactMap(\.string) ?? [] }

    static func parse(_ text: String) -> JSON? {
        try? JSONDecoder().decode(JSON.self, from: Data(text.utf8))
    }

    var text: String {
        switch self {
        case .null: "null"
        case .bool(let value): value ? "true" : "false"
        case .number(let value): value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .string(let value): JSON.quote(value)
        case .array(let values): "[" + values.map(\.text).joined(separator: ",") + "]"
        case .object(let members): "{" + members.map { JSON.quote($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    /// A JSON (and so JavaScript) string literal.
    static func quote(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
