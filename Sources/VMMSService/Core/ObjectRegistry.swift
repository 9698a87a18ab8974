import DBus

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

    func managedObjects(below root: ObjectPath) async -> [(path: ObjectPath, interfaces: [String: [String: DBusValue]])] {
        publisher.managedObjects(below: root)
    }

    /// A path of a kind without its object is one that was deleted: the contract's NotFound.
    func missingObjectError(at path: ObjectPath) -> DBusError {
        route(path)?.missing(path) ?? DBusError(DBusError.Name.unknownObject, "no object at \(path)")
    }

    func authorizeRead(_ call: MethodCall) async throws {
        try await translatingErrors {
            var details = route(call.path)?.readDetails(call.path) ?? AuthorizationDetails(verb: call.member)
            details.verb = call.member
            try await authorizer.authorize(call, .read, details)
        }
    }
}
