/// One incoming method call as a handler sees it: already routed and signature-checked.
public struct MethodCall: Sendable {
    public let message: DBusMessage
    public let path: ObjectPath
    public let interface: String
    public let member: String
    /// The decoded body, of the declared signature: decoded only after the server checked it,
    /// so a call of the wrong type never gets its file descriptors duplicated.
    public let arguments: [DBusValue]
    /// The caller's unique bus name, the subject polkit checks.
    public let sender: String
    /// Set when the caller sent `ALLOW_INTERACTIVE_AUTHORIZATION`.
    public let allowsInteractiveAuthorization: Bool
    let server: ObjectServer

    /// The caller's Unix uid, asked from the bus once per connection and cached.
    public func callerUID() async throws -> UInt32 { try await server.unixUser(of: sender) }

    /// The same call as if it had not allowed interactive authorization: for the checks a
    /// server makes on the caller's behalf beyond the one the caller asked for (filtering an
    /// inventory object by object), which must never ask for a password once per object.
    public var withoutInteraction: MethodCall {
        MethodCall(message: message, path: path, interface: interface, member: member, arguments: arguments,
                   sender: sender, allowsInteractiveAuthorization: false, server: server)
    }
}

/// One interface implemented at one object path.
///
/// The server has already checked the call's signature against `description`; a handler
/// decodes, validates, authorizes, acts and returns the reply body, or throws a `DBusError`.
public protocol DBusInterface: Sendable {
    var description: InterfaceDescription { get }
    /// Handles one method of `description`.
    func call(_ call: MethodCall) async throws -> [DBusValue]
    /// Current values of every readable property.
    func properties() async -> [String: DBusValue]
    /// One property's value; the default picks it from `properties()`.
    func property(_ name: String) async -> DBusValue?
    /// Sets a `readwrite` property; `value` already has the declared type.
    func setProperty(_ name: String, _ value: DBusValue, _ call: MethodCall) async throws
}

extension DBusInterface {
    /// None by default: a tree that publishes its objects' values itself answers reads.
    public func properties() async -> [String: DBusValue] { [:] }

    public func property(_ name: String) async -> DBusValue? { await properties()[name] }

    public func setProperty(_ name: String, _ value: DBusValue, _ call: MethodCall) async throws {
        throw DBusError(DBusError.Name.propertyReadOnly, "property \(name) is read-only")
    }
}

/// The objects a server exports, looked up per call so that thousands of objects cost one
/// registration and nothing per object.
public protocol ObjectTree: Sendable {
    /// The interfaces of the object at `path` (standard ones are added by the server), or nil
    /// when there is no object there.
    func interfaces(at path: ObjectPath) async -> [any DBusInterface]?
    /// Every exported object path, for `Introspect` child nodes.
    func objectPaths() async -> [ObjectPath]
    /// Guards property reads, `GetManagedObjects` and the child list of `Introspect`; throws
    /// the error to reply with when the caller may not read.
    func authorizeRead(_ call: MethodCall) async throws
    /// The error for a call to a path with no object; by default `UnknownObject`.
    func missingObjectError(at path: ObjectPath) -> DBusError
    /// The property values of one interface at `path` (Get, GetAll), or nil when there is no
    /// object there any more. By default asked from the interface's implementation.
    func properties(at path: ObjectPath, interface: String) async -> [String: DBusValue]?
    /// Every object below `root` with every interface's properties, for GetManagedObjects:
    /// one consistent view, so no object appears without its properties. By default gathered
    /// from `objectPaths()` and the implementations.
    func managedObjects(below root: ObjectPath) async -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])]
    /// For a caller refused the whole tree (`refusal`, what `authorizeRead` threw): the objects
    /// it may read one by one, or nil to reply with the refusal. By default nil.
    func readableManagedObjects(below root: ObjectPath, for call: MethodCall, refusal: any Error) async throws
        -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])]?
    /// A property read (`Get`, or `GetAll` when `name` is nil) the tree can answer at once,
    /// without waiting for anybody: the caller is already known to be allowed to read (`uid`,
    /// when the server has learnt it) and the values are at hand. Nil sends the read the
    /// ordinary way (authorization, errors). Runs on the connection's dispatch thread, so it
    /// must only look things up. By default nil.
    func immediateProperties(at path: ObjectPath, interface: String, name: String?, sender: String, uid: UInt32?) -> DBusValue?
}

extension ObjectTree {
    public func immediateProperties(at path: ObjectPath, interface: String, name: String?, sender: String, uid: UInt32?) -> DBusValue? {
        nil
    }

    public func readableManagedObjects(below root: ObjectPath, for call: MethodCall, refusal: any Error) async throws
        -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])]? { nil }

    public func properties(at path: ObjectPath, interface: String) async -> [String: DBusValue]? {
        guard let implementation = await interfaces(at: path)?.first(where: { $0.description.name == interface }) else {
            return nil
        }
        return await implementation.properties()
    }

    public func managedObjects(below root: ObjectPath) async -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])] {
        var objects: [(path: ObjectPath, interfaces: [String: [String: DBusValue]])] = []
        for path in await objectPaths() where path.isDescendant(of: root) {
            guard let implementations = await interfaces(at: path) else { continue }
            var values: [String: [String: DBusValue]] = [:]
            for implementation in implementations { values[implementation.description.name] = await implementation.properties() }
            objects.append((path, values))
        }
        return objects
    }

    public func missingObjectError(at path: ObjectPath) -> DBusError {
        DBusError(DBusError.Name.unknownObject, "no object at \(path)")
    }
}

extension ObjectPath {
    /// The names of the nodes directly below `self` that lead to any of `paths`.
    public func childNodes(among paths: some Sequence<ObjectPath>) -> [String] {
        let prefix = rawValue == "/" ? "/" : rawValue + "/"
        var names = Set<String>()
        for path in paths where path.rawValue.hasPrefix(prefix) && path != self {
            let rest = path.rawValue.dropFirst(prefix.count)
            if let first = rest.split(separator: "/").first { names.insert(String(first)) }
        }
        return names.sorted()
    }
}
