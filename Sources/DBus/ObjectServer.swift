import Synchronization

/// Exports an `ObjectTree` on a connection: routes method calls, answers the standard
/// interfaces (Introspectable, Properties, ObjectManager; libdbus itself answers Peer), checks
/// signatures, and replies exactly once to every call that expects a reply.
///
/// Two rules keep one caller from exhausting the service:
/// - a call's signature is checked against the declared one before any of its body is decoded
///   (decoding duplicates every file descriptor in it);
/// - at most `limits.perSender` calls of one sender and `limits.total` calls in all are handled
///   at once; beyond that a call is answered at once with `LimitsExceeded` and no task starts.
///
/// Property reads the tree can answer at once (`ObjectTree.immediateProperties`: a caller
/// already allowed, values at hand) are answered on the dispatch thread itself, like libdbus's
/// `Peer.Ping`: they hold nothing, so they take no call slot.
public final class ObjectServer: Sendable {
    /// Bounds on the method calls being handled at once.
    public struct Limits: Sendable, Hashable {
        public var perSender: Int
        public var total: Int
        public init(perSender: Int = 64, total: Int = 1024) {
            self.perSender = max(1, perSender)
            self.total = max(1, total)
        }
    }

    public let connection: DBusConnection
    public let objectManagerPath: ObjectPath
    /// Sends this tree's signals; its count keys the cached GetManagedObjects reply.
    public let emitter: SignalEmitter
    public let limits: Limits
    private let tree: any ObjectTree
    private let inFlight = Mutex<InFlight>(InFlight())

    private struct InFlight {
        var total = 0
        var bySender: [String: Int] = [:]
    }
    private let uids = Mutex<[String: UInt32]>([:])
    /// The last GetManagedObjects reply, never sent itself, with the signal count it was built
    /// at: repeated inventories (a console polling 1000 VMs) are answered by copying it.
    private let managedObjects = Mutex<(changes: UInt64, template: DBusMessage)?>(nil)

    /// `emitter`: the one every signal of the tree goes through (a model that publishes its
    /// own changes holds it); nil makes one.
    public init(connection: DBusConnection, objectManagerPath: ObjectPath, tree: any ObjectTree,
                emitter: SignalEmitter? = nil, limits: Limits = Limits()) {
        self.connection = connection
        self.objectManagerPath = objectManagerPath
        self.emitter = emitter ?? SignalEmitter(connection: connection, objectManagerPath: objectManagerPath)
        self.tree = tree
        self.limits = limits
        connection.setMethodCallHandler { [self] message in
            if let reply = immediateReply(message) {
                connection.send(reply)
                return
            }
            let sender = message.sender ?? ""
            if let refusal = admit(sender) {
                if message.expectsReply, let reply = message.makeError(refusal) { connection.send(reply) }
                return
            }
            // Leave the loop thread at once; the handler may wait on polkit or libvirt.
            Task.detached { await self.handle(message, admittedFor: sender) }
        }
    }

    // MARK: Reads answered at once

    /// `Properties.Get`/`GetAll` of a caller the tree already knows may read, answered on the
    /// dispatch thread from values at hand: no task, no admission, as cheap as libdbus's own
    /// `Peer.Ping`. Only a body of exactly the declared signature is decoded (two strings
    /// or one: no file descriptors), and anything else — another method, a refusal, an unknown
    /// object, interface or property — takes the ordinary path, which says why.
    private func immediateReply(_ message: DBusMessage) -> DBusMessage? {
        guard message.expectsReply, message.interface == InterfaceDescription.properties.name,
              let member = message.member, member == "Get" || member == "GetAll", let path = message.path else { return nil }
        let get = member == "Get"
        guard message.signature == (get ? "ss" : "s") else { return nil }
        let arguments = message.body
        guard let interface = arguments.first?.string else { return nil }
        let name = get ? arguments.dropFirst().first?.string : nil
        if get, name == nil { return nil }
        let sender = message.sender ?? ""
        let uid = uids.withLock { $0[sender] }
        guard let value = tree.immediateProperties(at: path, interface: interface, name: name, sender: sender, uid: uid) else {
            return nil
        }
        return try? message.makeReturn([get ? .variant(value) : value])
    }

    // MARK: Bounds

    /// Counts the call in, or returns the error to answer it with. Runs on the loop thread.
    private func admit(_ sender: String) -> DBusError? {
        inFlight.withLock { state in
            let mine = state.bySender[sender, default: 0]
            if mine >= limits.perSender {
                return DBusError(DBusError.Name.limitsExceeded,
                                 "\(sender) has \(mine) calls in progress, the most one connection may have; wait for their replies first")
            }
            if state.total >= limits.total {
                return DBusError(DBusError.Name.limitsExceeded,
                                 "the service is handling \(state.total) calls, the most it takes at once; try again shortly")
            }
            state.total += 1
            state.bySender[sender] = mine + 1
            return nil
        }
    }

    private func finish(_ sender: String) {
        inFlight.withLock { state in
            state.total -= 1
            let mine = state.bySender[sender, default: 1] - 1
            state.bySender[sender] = mine > 0 ? mine : nil
        }
    }

    /// Calls being handled now, in all and for `sender` (for tests and diagnostics).
    public func callsInProgress(from sender: String? = nil) -> Int {
        inFlight.withLock { state in sender.map { state.bySender[$0, default: 0] } ?? state.total }
    }

    // MARK: Signals

    /// Emits a signal from `path`.
    public func emit(path: ObjectPath, interface: String, member: String, _ body: [DBusValue]) throws {
        try emitter.emit(path: path, interface: interface, member: member, body)
    }

    /// `org.freedesktop.DBus.Properties.PropertiesChanged`.
    public func emitPropertiesChanged(path: ObjectPath, interface: String, changed: [String: DBusValue],
                                      invalidated: [String] = []) {
        emitter.emitPropertiesChanged(path: path, interface: interface, changed: changed, invalidated: invalidated)
    }

    /// `org.freedesktop.DBus.ObjectManager.InterfacesAdded` for the object at `path`.
    public func emitInterfacesAdded(path: ObjectPath, interfaces: [any DBusInterface]) async {
        var values: [String: [String: DBusValue]] = [:]
        for implementation in interfaces { values[implementation.description.name] = await implementation.properties() }
        emitter.emitInterfacesAdded(path: path, interfaces: values)
    }

    /// `InterfacesAdded` from property values already at hand.
    public func emitInterfacesAdded(path: ObjectPath, interfaces: [String: [String: DBusValue]]) {
        emitter.emitInterfacesAdded(path: path, interfaces: interfaces)
    }

    /// `org.freedesktop.DBus.ObjectManager.InterfacesRemoved`.
    public func emitInterfacesRemoved(path: ObjectPath, interfaces: [String]) {
        emitter.emitInterfacesRemoved(path: path, interfaces: interfaces)
    }

    // MARK: Caller identity

    /// Unique names are never reused on a bus, so a uid learnt once stays right.
    func unixUser(of sender: String) async throws -> UInt32 {
        if let cached = uids.withLock({ $0[sender] }) { return cached }
        let uid = try await connection.unixUser(of: sender)
        uids.withLock { cache in
            if cache.count > 4096 { cache.removeAll() }
            cache[sender] = uid
        }
        return uid
    }

    // MARK: Dispatch

    /// Handles one admitted call. Its place is given back before the reply goes out: a caller
    /// that sends its next call on receiving this reply must find the place free.
    func handle(_ message: DBusMessage, admittedFor sender: String) async {
        let reply: DBusMessage?
        do {
            reply = try await route(message)
        } catch let error as DBusError {
            reply = message.makeError(error)
        } catch {
            reply = message.makeError(.failed(String(describing: error)))
        }
        finish(sender)
        // A caller that has gone away makes the bus answer us with an error we ignore.
        if message.expectsReply, let reply { connection.send(reply) }
    }

    private func route(_ message: DBusMessage) async throws -> DBusMessage {
        guard let path = message.path, let member = message.member else {
            throw DBusError.invalidArgs("a method call needs a path and a member")
        }
        let interfaceName = message.interface
        /// The call as handlers see it: only built once the signature is known to be the
        /// declared one, so nothing is decoded from a body of the wrong type.
        func makeCall(_ interface: InterfaceDescription) throws -> MethodCall {
            guard let method = interface.method(named: member) else {
                throw DBusError(DBusError.Name.unknownMethod, "no method \(member) on \(interface.name) of \(path)")
            }
            try Self.checkSignature(message, expected: method.inputSignature, method: member)
            return MethodCall(message: message, path: path, interface: interface.name, member: member, arguments: message.body,
                              sender: message.sender ?? "", allowsInteractiveAuthorization: message.allowsInteractiveAuthorization,
                              server: self)
        }
        switch interfaceName {
        case InterfaceDescription.introspectable.name:
            return try message.makeReturn(try await introspect(makeCall(.introspectable)))
        case InterfaceDescription.properties.name:
            return try message.makeReturn(try await properties(makeCall(.properties)))
        case InterfaceDescription.objectManager.name where path == objectManagerPath:
            return try await objectManager(makeCall(.objectManager))
        default:
            break
        }
        guard let implementations = await tree.interfaces(at: path) else { throw tree.missingObjectError(at: path) }
        let implementation: (any DBusInterface)?
        if let interfaceName {
            implementation = implementations.first { $0.description.name == interfaceName }
            guard implementation != nil else {
                throw DBusError(DBusError.Name.unknownInterface, "object \(path) has no interface \(interfaceName)")
            }
        } else {
            implementation = implementations.first { $0.description.method(named: member) != nil }
        }
        guard let implementation else {
            throw DBusError(DBusError.Name.unknownMethod, "no method \(member) on any interface of \(path)")
        }
        return try message.makeReturn(try await implementation.call(makeCall(implementation.description)))
    }

    private static func checkSignature(_ message: DBusMessage, expected: DBusSignature, method: String) throws {
        guard message.signature == expected else {
            throw DBusError.invalidArgs("\(method) takes arguments of type '\(expected)', not '\(message.signature)'")
        }
    }

    private func introspect(_ call: MethodCall) async throws -> [DBusValue] {
        let implementations = await tree.interfaces(at: call.path)
        let paths = await tree.objectPaths()
        let isIntermediate = call.path == objectManagerPath || objectManagerPath.isDescendant(of: call.path)
            || paths.contains { $0.isDescendant(of: call.path) }
        guard implementations != nil || isIntermediate else {
            throw DBusError(DBusError.Name.unknownObject, "no object at \(call.path)")
        }
        // Child nodes name VMs, so only readers see them; the interfaces themselves are public.
        let readable = (try? await tree.authorizeRead(call)) != nil
        let children = call.path.childNodes(among: readable ? paths + [objectManagerPath] : [objectManagerPath])
        var described = implementations.map { InterfaceDescription.standard + $0.map(\.description) } ?? []
        if call.path == objectManagerPath {
            if described.isEmpty { described = InterfaceDescription.standard }
            described.append(.objectManager)
        }
        return [.string(InterfaceDescription.introspectionDocument(interfaces: described, children: children))]
    }

    private func properties(_ call: MethodCall) async throws -> [DBusValue] {
        let args = call.arguments
        switch call.member {
        case "Get":
            guard let interface = args[0].string, let name = args[1].string else { throw DBusError.invalidArgs("bad arguments") }
            let implementation = try await implementation(call.path, interface)
            guard implementation.description.property(named: name) != nil else {
                throw DBusError(DBusError.Name.unknownProperty, "\(interface) has no property \(name)")
            }
            try await tree.authorizeRead(call)
            // Gone while polkit answered: the object is either there with all its properties or missing.
            guard let values = await tree.properties(at: call.path, interface: interface) else {
                throw tree.missingObjectError(at: call.path)
            }
            guard let value = values[name] else {
                throw DBusError(DBusError.Name.unknownProperty, "\(interface) has no property \(name)")
            }
            return [.variant(value)]
        case "GetAll":
            guard let interface = args[0].string else { throw DBusError.invalidArgs("bad arguments") }
            if (InterfaceDescription.standard + [.objectManager]).contains(where: { $0.name == interface }) { return [.vardict([:])] }
            _ = try await implementation(call.path, interface)
            try await tree.authorizeRead(call)
            guard let values = await tree.properties(at: call.path, interface: interface) else {
                throw tree.missingObjectError(at: call.path)
            }
            return [.vardict(values)]
        case "Set":
            guard let interface = args[0].string, let name = args[1].string, let value = args[2].variant else {
                throw DBusError.invalidArgs("bad arguments")
            }
            let implementation = try await implementation(call.path, interface)
            guard let property = implementation.description.property(named: name) else {
                throw DBusError(DBusError.Name.unknownProperty, "\(interface) has no property \(name)")
            }
            guard property.access == .readwrite else {
                throw DBusError(DBusError.Name.propertyReadOnly, "property \(name) is read-only")
            }
            guard value.signature == property.signature else {
                throw DBusError.invalidArgs("property \(name) has type '\(property.signature)', not '\(value.signature)'")
            }
            try await implementation.setProperty(name, value, call)
            return []
        default:
            throw DBusError(DBusError.Name.unknownMethod, "no method \(call.member) on \(call.interface)")
        }
    }

    private func implementation(_ path: ObjectPath, _ interface: String) async throws -> any DBusInterface {
        guard let implementations = await tree.interfaces(at: path) else { throw tree.missingObjectError(at: path) }
        guard let implementation = implementations.first(where: { $0.description.name == interface }) else {
            throw DBusError(DBusError.Name.unknownInterface, "object \(path) has no interface \(interface)")
        }
        return implementation
    }

    /// GetManagedObjects, authorized like any call and answered from the cached reply while
    /// no signal has been emitted since it was built.
    private func objectManager(_ call: MethodCall) async throws -> DBusMessage {
        do {
            try await tree.authorizeRead(call)
        } catch {
            // Not a reader of the whole tree: perhaps of some objects in it.
            guard let some = try await tree.readableManagedObjects(below: objectManagerPath, for: call, refusal: error) else {
                throw error
            }
            return try call.message.makeReturn(Self.managedObjectsBody(some))
        }
        // Read before building: a change while building leaves a template that is already stale.
        let version = emitter.version
        if let cached = managedObjects.withLock({ $0 }), cached.changes == version {
            return try cached.template.copyAsReply(to: call.message)
        }
        let template = try call.message.makeReturn(try await managedObjectsBody())
        managedObjects.withLock { $0 = (version, template) }
        return try template.copyAsReply(to: call.message)
    }

    private func managedObjectsBody() async throws -> [DBusValue] {
        Self.managedObjectsBody(await tree.managedObjects(below: objectManagerPath))
    }

    private static func managedObjectsBody(_ objects: [(path: ObjectPath, interfaces: [String: [String: DBusValue]])]) -> [DBusValue] {
        [.dictionary(key: "o", value: "a{sa{sv}}", objects.map {
            .init(.objectPath($0.path), SignalEmitter.interfacesAndProperties($0.interfaces))
        })]
    }
}
