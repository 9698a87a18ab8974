import DBus
import Foundation
import Polkit
import Spawn
import Synchronization
import TestSupport
import Testing

/// What one local user can do to the root daemon's resources: file descriptors sent with
/// calls, and password dialogs left unanswered. Clients are python3 scripts run as the test
/// users (python3-dbus, python3-gi), so they send exactly what a hostile client would.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct ResourceBoundsTests {
    static let host = "/org/example/VMMS1/Host"

    /// Regression: every call carrying an `h` argument (Introspect included) left the received
    /// descriptor open in vmmsd, 1,000 calls → 1,000 more entries in /proc/PID/fd.
    @Test func callsCarryingDescriptorsFromAnUnprivilegedUserLeaveVmmsdsDescriptorsAsTheyWere() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let scratch = try Scratch()
            let marker = scratch.path("marker")
            try Data("marker".utf8).write(to: URL(fileURLWithPath: marker))
            let script = try scratch.write("fds.py", Self.descriptorClient)
            func send(_ count: Int) async throws -> [String: Int] {
                let run = try await runCommand("/usr/sbin/runuser", ["-u", "bob", "--", "/usr/bin/python3", script, marker, "\(count)"])
                guard run.status == 0, let replies = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Int] else {
                    throw TestFailure("the client as bob failed (\(run.status)): \(run.stdout) \(run.stderr)")
                }
                return replies
            }
            let pid = "\(service.process.pid)"
            // A first round opens whatever vmmsd opens once (its uid lookups, buffers).
            _ = try await send(7)
            let before = try await Self.settledDescriptorCount(of: pid, expecting: nil)

            let started = ContinuousClock.now
            let replies = try await send(1000)
            let took = started.duration(to: .now)
            let after = try await Self.settledDescriptorCount(of: pid, expecting: before)
            print("vmmsd descriptors: \(before) before, \(after) after 1,000 calls with an h argument from bob (in \(took)); replies: \(replies)")
            #expect(replies == [DBusError.Name.invalidArgs: 1000])
            #expect(after == before)
            let held = Self.descriptors(of: pid).filter { $0 == marker }.count
            #expect(held == 0, "vmmsd still holds \(held) descriptors of the file bob sent")
        }
    }

    /// Regression: four password dialogs nobody answers held all four polkit threads, and every
    /// other non-root call waited behind them, reads included. Here carol (sudo: polkit asks for
    /// her password) sends eight interactive calls to an agent that never answers; meanwhile
    /// alice (vmms-admins) reads, powers a VM and changes it, and bob is refused, all as usual.
    @Test func unansweredPasswordDialogsDoNotHoldUpAnyoneElse() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let root = GDBus(user: "root")
            let vm = try await root.createVM(Names.unique("bounds"))
            do {
                try await Self.othersGoOnWhileCarolIsAsked(vm: vm)
            } catch {
                _ = try? await root.call(vm, "org.example.VMMS1.VM.Delete", ["{'Force': <true>}"])
                throw error
            }
            _ = try await root.call(vm, "org.example.VMMS1.VM.Delete", ["{'Force': <true>}"])
        }
    }

    /// The part of `unansweredPasswordDialogsDoNotHoldUpAnyoneElse` that runs with its VM.
    static func othersGoOnWhileCarolIsAsked(vm: String) async throws {
        let agent = try await TestAgent()
        defer { agent.stop() }
        let scratch = try Scratch()
        let go = scratch.path("go")
        let output = scratch.path("carol.out")
        let script = try scratch.write("interactive.py", Self.interactiveClient)
        let carol = try ChildProcess("/usr/sbin/runuser", ["-u", "carol", "--", "/usr/bin/python3", script, go, "8"],
                                     stdoutPath: output, stderrPath: scratch.path("carol.err"))
        defer { carol.signal(SIGTERM); carol.wait() }
        func carolSaid() -> [String] {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        var pidLine = carolSaid().first { $0.hasPrefix("pid ") }
        for _ in 0..<500 where pidLine == nil {
            try await Task.sleep(for: .milliseconds(20))
            pidLine = carolSaid().first { $0.hasPrefix("pid ") }
        }
        let carolPID = try #require(pidLine.flatMap { Int32($0.dropFirst(4)) }, "carol's client did not start")
        try await agent.register(for: try PolkitSubject.process(pid: carolPID))
        guard FileManager.default.createFile(atPath: go, contents: nil) else { throw TestFailure("cannot create \(go)") }

        // Four dialogs open (carol's share); the agent answers none of them.
        try await agent.waitUntil { $0.begun >= 4 }
        #expect(agent.begun == 4, "dialogs opened for carol: \(agent.begun)")

        let alice = GDBus(user: "alice"), bob = GDBus(user: "bob")
        let started = ContinuousClock.now
        var aliceCalls: [(String, GDBus.Outcome)] = []
        for _ in 0..<5 {
            aliceCalls.append(("Get Hostname", try await alice.get(Self.host, "org.example.VMMS1.Host", "Hostname")))
            aliceCalls.append(("Get State", try await alice.get(vm, "org.example.VMMS1.VM", "State")))
        }
        aliceCalls.append(("GetManagedObjects", try await alice.call("/org/example/VMMS1", "org.freedesktop.DBus.ObjectManager.GetManagedObjects")))
        for method in ["Start", "Pause", "Resume", "TurnOff"] {
            aliceCalls.append((method, try await alice.call(vm, "org.example.VMMS1.VM.\(method)")))
        }
        aliceCalls.append(("Set Notes", try await alice.call(vm, "org.freedesktop.DBus.Properties.Set",
                                                             ["org.example.VMMS1.VM", "Notes", "<'while carol is asked'>"])))
        let aliceTook = started.duration(to: .now)
        for (what, outcome) in aliceCalls { #expect(outcome.ok, "alice \(what): \(outcome)") }
        let bobStarted = ContinuousClock.now
        for outcome in [try await bob.get(Self.host, "org.example.VMMS1.Host", "Hostname"),
                        try await bob.call(vm, "org.example.VMMS1.VM.Start")] {
            #expect(outcome.errorName == "org.example.VMMS1.Error.NotAuthorized", "bob: \(outcome)")
        }
        print("while carol's dialogs were open: alice's \(aliceCalls.count) calls took \(aliceTook), bob's 2 refusals \(bobStarted.duration(to: .now))")
        #expect(agent.begun == 4, "the dialogs stayed open throughout")

        // Carol's four calls beyond her share were refused at once; once the agent goes
        // away, polkitd ends the four dialogs and vmmsd answers those calls too.
        #expect(carolSaid().filter { $0.hasSuffix(DBusError.Name.limitsExceeded) }.count == 4, "\(carolSaid())")
        agent.stop()
        for _ in 0..<500 where carolSaid().filter({ $0.hasPrefix("reply ") }).count < 8 { try await Task.sleep(for: .milliseconds(20)) }
        let replies = carolSaid().filter { $0.hasPrefix("reply ") }.map { $0.split(separator: " ").last.map(String.init) ?? "" }
        #expect(Dictionary(replies.map { ($0, 1) }, uniquingKeysWith: +)
                    == [DBusError.Name.limitsExceeded: 4, "org.example.VMMS1.Error.NotAuthorized": 4], "\(carolSaid())")
    }

    // MARK: Helpers

    /// Where each open descriptor of process `pid` leads.
    static func descriptors(of pid: String) -> [String] {
        let directory = "/proc/\(pid)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + $0) }
    }

    /// The descriptor count once it has stopped changing (or has reached `expected`), bounded.
    static func settledDescriptorCount(of pid: String, expecting expected: Int?) async throws -> Int {
        var count = descriptors(of: pid).count
        for _ in 0..<50 {
            try await Task.sleep(for: .milliseconds(100))
            let now = descriptors(of: pid).count
            if now == count && (expected == nil || now == expected) { break }
            count = now
        }
        return count
    }

    /// A directory the test users can read, removed afterwards.
    final class Scratch {
        let directory = "/tmp/vmms-bounds-\(UUID().uuidString)"
        init() throws {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            // The test users write their output here.
            chmod(directory, 0o777)
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
        func write(_ name: String, _ text: String) throws -> String {
            try text.write(toFile: path(name), atomically: true, encoding: .utf8)
            return path(name)
        }
    }

    /// `fds.py MARKER COUNT`: COUNT calls, each with a descriptor of MARKER as its only
    /// argument, to standard and custom methods in turn; prints the replies' names as JSON.
    static let descriptorClient = #"""
        import dbus, json, os, sys
        marker, count = sys.argv[1], int(sys.argv[2])
        bus = dbus.SystemBus()
        fd = os.open(marker, os.O_RDONLY)
        host, root = "/org/example/VMMS1/Host", "/org/example/VMMS1"
        calls = [(host, "org.freedesktop.DBus.Introspectable", "Introspect"),
                 (host, "org.freedesktop.DBus.Properties", "Get"),
                 (host, "org.freedesktop.DBus.Properties", "GetAll"),
                 (host, "org.freedesktop.DBus.Properties", "Set"),
                 (root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"),
                 (host, "org.example.VMMS1.Host", "LookupVM"),
                 (host, "org.example.VMMS1.Host", "CreateVM")]
        replies = {}
        for i in range(count):
            path, interface, member = calls[i % len(calls)]
            try:
                bus.call_blocking("org.example.VMMS1", path, interface, member, "h", (dbus.types.UnixFd(fd),), timeout=30)
                name = "ok"
            except dbus.exceptions.DBusException as e:
                name = e.get_dbus_name()
            replies[name] = replies.get(name, 0) + 1
        print(json.dumps(replies))
        """#

    /// `interactive.py GO COUNT`: prints its pid, waits for the file GO, then sends COUNT
    /// interactive property reads at once and prints `reply INDEX NAME` for each answer.
    static let interactiveClient = #"""
        import os, sys, time
        from gi.repository import Gio, GLib
        go, count = sys.argv[1], int(sys.argv[2])
        bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
        print("pid", os.getpid(), flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                sys.exit(3)
            time.sleep(0.05)
        loop = GLib.MainLoop()
        left = [count]
        def done(connection, result, index):
            try:
                connection.call_finish(result)
                name = "ok"
            except GLib.Error as e:
                name = Gio.DBusError.get_remote_error(e) or e.message
            print("reply", index, name, flush=True)
            left[0] -= 1
            if left[0] == 0:
                loop.quit()
        for i in range(count):
            bus.call("org.example.VMMS1", "/org/example/VMMS1/Host", "org.freedesktop.DBus.Properties", "Get",
                     GLib.Variant("(ss)", ("org.example.VMMS1.Host", "Hostname")), None,
                     Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION, 170000, None, done, i)
        GLib.timeout_add_seconds(180, loop.quit)
        loop.run()
        """#
}

/// A polkit authentication agent that opens every dialog and answers none, exported on the
/// test's own root connection and registered for one process: polkitd looks an agent up by
/// the process behind the subject's bus name, and root may register for anyone's process.
final class TestAgent: DBusInterface, ObjectTree {
    static let path: ObjectPath = "/org/example/VMMS1Test/Agent"
    let description = InterfaceDescription(name: "org.freedesktop.PolicyKit1.AuthenticationAgent", methods: [
        .init("BeginAuthentication", in: [.init("action_id", "s"), .init("message", "s"), .init("icon_name", "s"),
                                          .init("details", "a{ss}"), .init("cookie", "s"), .init("identities", "a(sa{sv})")]),
        .init("CancelAuthentication", in: [.init("cookie", "s")]),
    ])
    private let connection: DBusConnection
    private let counts = Mutex<(begun: Int, cancelled: Int)>((0, 0))
    private let released = Atomic<Bool>(false)

    init() async throws {
        connection = try await DBusConnection.connect(.system)
        _ = ObjectServer(connection: connection, objectManagerPath: Self.path, tree: self)
    }

    var begun: Int { counts.withLock { $0.begun } }

    func register(for subject: PolkitSubject) async throws {
        _ = try await connection.call(destination: PolkitAuthority.busName, path: PolkitAuthority.objectPath,
                                      interface: PolkitAuthority.interface, member: "RegisterAuthenticationAgent",
                                      [try subject.dbusValue(), .string("C"), .string(Self.path.rawValue)])
    }

    /// Leaves the bus: polkitd then ends every dialog it opened here.
    func stop() {
        released.store(true, ordering: .sequentiallyConsistent)
        connection.close()
    }

    func waitUntil(_ condition: @Sendable (TestAgent) -> Bool) async throws {
        for _ in 0..<1500 where !condition(self) { try await Task.sleep(for: .milliseconds(20)) }
    }

    func interfaces(at path: ObjectPath) async -> [any DBusInterface]? { path == Self.path ? [self] : nil }
    func objectPaths() async -> [ObjectPath] { [Self.path] }
    func authorizeRead(_ call: MethodCall) async throws {}
    func properties() async -> [String: DBusValue] { [:] }

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        if call.member == "CancelAuthentication" {
            counts.withLock { $0.cancelled += 1 }
            return []
        }
        counts.withLock { $0.begun += 1 }
        // Never answers while the test runs (bounded, so nothing outlives it by long).
        for _ in 0..<1800 where !released.load(ordering: .sequentiallyConsistent) { try await Task.sleep(for: .milliseconds(100)) }
        throw DBusError("org.freedesktop.PolicyKit1.Error.Cancelled", "the test agent never answers")
    }
}
