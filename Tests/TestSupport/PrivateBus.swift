import DBus
import Spawn
import Foundation
import Testing

/// A private `dbus-daemon --session` for one test, so tests exercise a real bus daemon without
/// touching the machine's buses. The daemon dies with the object.
public final class PrivateBus: Sendable {
    public let address: String
    private let daemon: ChildProcess
    private let directory: String

    public init() throws {
        directory = NSTemporaryDirectory() + "vmms-bus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let socket = directory + "/bus"
        daemon = try ChildProcess("/usr/bin/dbus-daemon", ["--session", "--nofork", "--nopidfile", "--address=unix:path=\(socket)"])
        address = "unix:path=\(socket)"
        // The daemon listens once the socket exists; wait for it rather than sleep blindly.
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socket) { usleep(10_000) }
        // The socket file appears at bind(), a moment before listen(): wait for a real answer.
        for _ in 0..<200 {
            if let probe = try? DBusConnection(bus: .address(address)) {
                probe.close()
                return
            }
            usleep(10_000)
        }
        throw DBusError.failed("dbus-daemon did not start")
    }

    deinit {
        if let status = daemon.exitStatusIfExited() {
            // Nothing but this object stops the daemon; an early death breaks the test's calls
            // with Disconnected, so say what killed it.
            Issue.record("the private dbus-daemon (pid \(daemon.pid)) died during the test with status \(status)")
        }
        daemon.signal(SIGTERM)
        daemon.wait()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A new client connection to this bus.
    public func connect() throws -> DBusConnection { try DBusConnection(bus: .address(address)) }
}

/// The result of running a command-line tool.
public typealias CommandResult = CommandOutput

/// Runs a program to completion off the cooperative pool and returns what it printed.
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> CommandResult {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runToCompletion(executable, arguments, environment: environment) })
        }
    }
}

/// Runs a program to completion on the calling thread and returns what it printed. For
/// synchronous test code; async code uses `runCommand`.
public func runCommandSync(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    try runToCompletion(executable, arguments, environment: environment)
}

/// Waits for the first element of `stream` that satisfies `predicate`, or nil after `timeout`.
public func firstMatch<Element: Sendable>(_ stream: AsyncStream<Element>, timeout: Duration = .seconds(5),
                                          where predicate: @escaping @Sendable (Element) -> Bool) async -> Element? {
    await withTaskGroup(of: Element?.self) { group in
        group.addTask {
            for await element in stream where predicate(element) { return element }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// Expects `body` to fail with the D-Bus error `name`; `what` says which call, for the report.
public func expectDBusError(_ name: String, _ what: String = "the call", _ body: () async throws -> Void,
                            sourceLocation: SourceLocation = #_sourceLocation) async {
    do {
        try await body()
        Issue.record("\(what): expected \(name)", sourceLocation: sourceLocation)
    } catch let error as DBusError {
        #expect(error.name == name, "\(what): \(error.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(what): unexpected \(error)", sourceLocation: sourceLocation)
    }
}
