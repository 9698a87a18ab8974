import DBus
import Synchronization
import TestSupport

/// A small exported object for the bus tests: methods that echo, sleep, fail and report the
/// caller, and one read-write property that announces its changes.
final class TestObject: DBusInterface {
    static let interface = InterfaceDescription(name: "org.example.Test", methods: [
        .init("Echo", in: [.init("value", "v")], out: [.init("value", "v")]),
        .init("Sleep", in: [.init("milliseconds", "u")]),
        .init("Fail", in: [.init("name", "s"), .init("message", "s")]),
        .init("WhoAmI", out: [.init("uid", "u"), .init("interactive", "b"), .init("sender", "s")]),
        .init("Hold"),
    ], properties: [
        .init("Name", "s"),
        .init("Counter", "u", access: .readwrite),
    ], signals: [])

    let description = TestObject.interface
    let name: String
    let counter = Mutex<UInt32>(0)
    let completedSleeps = Mutex<Int>(0)
    /// `Hold` waits until this opens (or 20 s pass, so no test can hang on it).
    let gate = Gate()
    let onChange: @Sendable (String, DBusValue) -> Void

    init(name: String, onChange: @escaping @Sendable (String, DBusValue) -> Void) {
        self.name = name
        self.onChange = onChange
    }

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        switch call.member {
        case "Echo": return call.arguments
        case "Sleep":
            try await Task.sleep(for: .milliseconds(Int(call.arguments[0].uint32 ?? 0)))
            completedSleeps.withLock { $0 += 1 }
            return []
        case "Fail": throw DBusError(call.arguments[0].string ?? "", call.arguments[1].string ?? "")
        case "Hold":
            await gate.wait(atMost: .seconds(20))
            return []
        case "WhoAmI":
            return [.uint32(try await call.callerUID()), .boolean(call.allowsInteractiveAuthorization), .string(call.sender)]
        default: throw DBusError(DBusError.Name.unknownMethod, call.member)
        }
    }

    func properties() async -> [String: DBusValue] {
        ["Name": .string(name), "Counter": .uint32(counter.withLock { $0 })]
    }

    func setProperty(_ name: String, _ value: DBusValue, _ call: MethodCall) async throws {
        guard let new = value.uint32, new <= 1000 else { throw DBusError.invalidArgs("Counter must be at most 1000") }
        counter.withLock { $0 = new }
        onChange(name, value)
    }
}

/// Opens once; everyone waiting then goes on.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var expired: Set<UInt64> = []
        var next: UInt64 = 0
    }
    private let state = Mutex(State())

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// How many wait now.
    var waiting: Int { state.withLock { $0.waiters.count } }

    func wait(atMost limit: Duration) async {
        let id = state.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        let timer = Task { [self] in
            try? await Task.sleep(for: limit)
            state.withLock { state -> CheckedContinuation<Void, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.expired.insert(id)
                return nil
            }?.resume()
        }
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.open || state.expired.remove(id) != nil { return true }
                state.waiters[id] = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer.cancel()
    }
}

actor TestTree: ObjectTree {
    var objects: [ObjectPath: TestObject] = [:]
    var readsAllowed = true

    func add(_ path: ObjectPath, _ object: TestObject) { objects[path] = object }
    func remove(_ path: ObjectPath) { objects[path] = nil }
    func setReadsAllowed(_ allowed: Bool) { readsAllowed = allowed }

    /// Values `immediateProperties` answers from (per path and interface), nil: none.
    nonisolated let immediate = Mutex<[ObjectPath: [String: DBusValue]]?>(nil)

    nonisolated func immediateProperties(at path: ObjectPath, interface: String, name: String?, sender: String, uid: UInt32?) -> DBusValue? {
        guard interface == TestObject.interface.name, let values = immediate.withLock({ $0?[path] }) else { return nil }
        guard let name else { return .vardict(values) }
        return values[name]
    }

    func interfaces(at path: ObjectPath) async -> [any DBusInterface]? { objects[path].map { [$0] } }
    func objectPaths() async -> [ObjectPath] { Array(objects.keys) }
    func authorizeRead(_ call: MethodCall) async throws {
        guard readsAllowed else { throw DBusError("org.example.Error.NotAuthorized", "reads are off") }
    }
}

/// A private bus with a server exporting `TestTree` under `/org/example/T` and a client.
struct BusFixture {
    static let busName = "org.example.TestService"
    static let root: ObjectPath = "/org/example/T"
    let bus: PrivateBus
    let serverConnection: DBusConnection
    let server: ObjectServer
    let tree: TestTree
    let client: DBusConnection
    let object: TestObject

    init(limits: ObjectServer.Limits = .init(),
         clientMaxPendingReplies: Int = DBusConnection.defaultMaxPendingReplies) async throws {
        bus = try PrivateBus()
        serverConnection = try bus.connect()
        tree = TestTree()
        let server = ObjectServer(connection: serverConnection, objectManagerPath: Self.root, tree: tree, limits: limits)
        self.server = server
        let path = Self.root.appending(element: "One")
        object = TestObject(name: "one") { name, value in
            server.emitPropertiesChanged(path: path, interface: TestObject.interface.name, changed: [name: value])
        }
        await tree.add(path, object)
        try await serverConnection.requestName(Self.busName)
        client = try DBusConnection(bus: .address(bus.address), maxPendingReplies: clientMaxPendingReplies)
    }

    /// Calls a method of `org.example.Test` on the fixture's object.
    func call(_ member: String, _ body: [DBusValue] = [], timeout: Duration = .seconds(10)) async throws -> [DBusValue] {
        try await call(Self.root.appending(element: "One"), "org.example.Test", member, body, timeout: timeout)
    }

    func call(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue] = [],
              timeout: Duration = .seconds(10)) async throws -> [DBusValue] {
        try await client.call(destination: Self.busName, path: path, interface: interface, member: member, body, timeout: timeout)
    }

    func close() {
        client.close()
        serverConnection.close()
    }
}
