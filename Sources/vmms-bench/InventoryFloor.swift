import DBus
import Foundation
import Spawn
import Synchronization

/// What moving vmms's GetManagedObjects reply costs without vmms: the same marshalled reply,
/// copied and sent by a responder that does nothing else, through a dbus-daemon of the
/// bench's own (`--session` configuration, which lets method calls through), received and
/// decoded by the same client code. Any service's inventory of these VMs sits on this floor:
/// dbus-daemon reading, checking and writing the message, libdbus demarshalling it.
enum InventoryFloor {
    static func measure(reply body: [DBusValue], rounds: Int) async throws -> [Double] {
        let directory = Scratch.file("floor-bus")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let socket = directory + "/bus"
        let daemon = try ChildProcess("/usr/bin/dbus-daemon", ["--session", "--nofork", "--nopidfile", "--address=unix:path=\(socket)"],
                                      stdoutPath: directory + "/out", stderrPath: directory + "/err")
        defer {
            daemon.signal(SIGTERM)
            _ = daemon.wait()
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while !FileManager.default.fileExists(atPath: socket) {
            guard ContinuousClock.now < deadline, daemon.exitStatusIfExited() == nil else {
                throw BenchError("the floor's dbus-daemon did not start: \((try? String(contentsOfFile: directory + "/err", encoding: .utf8)) ?? "")")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let responder = try DBusConnection(bus: .address("unix:path=\(socket)"))
        defer { responder.close() }
        let client = try DBusConnection(bus: .address("unix:path=\(socket)"))
        defer { client.close() }
        // On the responder's loop thread: the reply is marshalled once, at the first call (the
        // untimed warm-up), as vmms's GetManagedObjects cache does; each call gets a copy of it,
        // addressed to it, sent at once.
        let template = Template()
        responder.setMethodCallHandler { [responder] call in
            let reply = template.message.withLock { made -> DBusMessage? in
                if made == nil { made = try? call.makeReturn(body) }
                return try? made?.copyAsReply(to: call)
            }
            if let reply { responder.send(reply) }
        }
        _ = try await client.vmmsInventory(destination: responder.uniqueName)
        var times: [Double] = []
        for _ in 0..<rounds {
            times.append(try await timed { _ = try await client.vmmsInventory(destination: responder.uniqueName) })
        }
        return times
    }

    private final class Template: Sendable {
        let message = Mutex<DBusMessage?>(nil)
    }
}
