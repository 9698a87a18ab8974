import DBus
import Synchronization

/// The exported objects as the object server sees them: property reads and inventories come
/// from the `Publisher`'s view, method calls go to handlers made per call for the object's
/// kind, so thousands of objects cost one registration and nothing per object.
final class ObjectRegistry: ObjectTree {
    /// How one kind of object is served: which paths are its, the handlers for a path, the
    /// polkit details of a read, and the error for a path whose object is gone.
    struct Route: Sendable {
        let owns: @Sendable (ObjectPath) -> Bool
        let handlers: @Sendable (ObjectPath) -> [any DBusInterface]
        let readDetails: @Sendable (ObjectPath) -> AuthorizationDetails
        let missing: @Sendable (ObjectPath) -> DBusError
    }

    let publisher: Publisher
    let authorizer: any Authorizer
    private let routes: [Route]
    /// What a caller refused the host may read object by object, per user.
    private let readable = Mutex<[String: (until: ContinuousClock.Instant, paths: Set<ObjectPath>)]>([:])
    /// One filtered inventory is worked out at a time: each costs a polkit check per object.
    private let filtering = SerialGate()
    static let filteredInventoryLifetime: Duration = .seconds(10)

    init(publisher: Publisher, authorizer: any Authorizer, routes: [Route]) {
        self.publisher = publisher
        self.authorizer = authorizer
        self.routes = routes
    }

    private func route(_ path: ObjectPath) -> Route? { routes.first { $0.owns(path) } }

    func interfaces(at path: ObjectPath) async -> [any DBusInterface]? {
        guard publisher.contains(path), let route = route(path) else { return nil }
        return route.handlers(path)
    }

    func objectPaths() async -> [ObjectPath] { publisher.paths }

    func properties(at path: ObjectPath, interface: String) async -> [String: DBusValue]? {
        publisher.properties(at: path, interface: interface)
    }

    /// A read of a caller already allowed to read this object (root, or a read grant polkit
    /// gave), from the published values: answered on the dispatch thread.
    func immediateProperties(at path: ObjectPath, interface: String, name: String?, sender: String, uid: UInt32?) -> DBusValue? {
        guard let route = route(path), authorizer.allowsReadAtOnce(sender: sender, uid: uid, route.readDetails(path)),
              let values = publisher.properties(at: path, interface: interface) else { return nil }
        guard let name else { return .vardict(values) }
        return values[name]
    }

    func managedObjects(below root: ObjectPath) async -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])] {
        publisher.managedObjects(below: root)
    }

    /// A path of a kind without its object is one that was deleted: the contract's NotFound.
    func missingObjectError(at path: ObjectPath) -> DBusError {
        route(path)?.missing(path) ?? DBusError(DBusError.Name.unknownObject, "no object at \(path)")
    }

    /// GetManagedObjects for a caller who may not read the host but perhaps some objects (a
    /// user a polkit rule gives one VM): the objects whose own read polkit allows, checked one
    /// by one with their details and remembered for 10 s per user (a new per-VM
    /// grant shows in the inventory within that time). A caller who may read none of them gets
    /// the refusal itself, not an empty list; one who would be asked for a password is told so.
    /// The checks per object never ask for a password (one prompt per VM would follow a
    /// refused one for the host); a per-object rule that wants one does not list that object.
    func readableManagedObjects(below root: ObjectPath, for call: MethodCall, refusal: any Error) async throws
        -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])]? {
        guard let refused = refusal as? DBusError, refused.name == VMMSError.prefix + "NotAuthorized" else { return nil }
        let now = ContinuousClock.now
        // Per user, not per connection: a user's many connections cost one pass.
        let caller = (try? await call.callerUID()).map { "uid \($0)" } ?? call.sender
        var paths = readable.withLock { $0[caller].flatMap { $0.until > now ? $0.paths : nil } }
        if paths == nil {
            paths = try await filtering.run { () -> Set<ObjectPath> in
                var allowed: Set<ObjectPath> = []
                for path in publisher.paths {
                    guard let route = route(path) else { continue }
                    var details = route.readDetails(path)
                    // Only objects with details of their own: the host is the host read itself.
                    guard details.vmUUID != nil || details.switchName != nil else { continue }
                    details.verb = call.member
                    // Never interactive: the caller was asked (at most) once, for the host.
                    if (try? await authorizer.authorize(call.withoutInteraction, .read, details)) != nil { allowed.insert(path) }
                }
                return allowed
            }
            let found = paths ?? []
            readable.withLock { cache in
                if cache.count > 4096 { cache = cache.filter { $0.value.until > now } }
                cache[caller] = (now + Self.filteredInventoryLifetime, found)
            }
        }
        guard let paths, !paths.isEmpty else { return nil }
        return publisher.managedObjects(below: root).filter { paths.contains($0.path) }
    }

    func authorizeRead(_ call: MethodCall) async throws {
        try await translatingErrors {
            var details = route(call.path)?.readDetails(call.path) ?? AuthorizationDetails(verb: call.member)
            details.verb = call.member
            try await authorizer.authorize(call, .read, details)
        }
    }
}
