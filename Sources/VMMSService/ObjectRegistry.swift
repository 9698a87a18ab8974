import DBus
import Synchronization

/// The exported objects, looked up per call through one `ObjectServer` registration. Lookups
/// take a lock rather than an actor hop: they sit on the path of every property read.
final class ObjectRegistry: ObjectTree {
    private let objects = Mutex<[ObjectPath: [any DBusInterface]]>([:])
    let authorizer: any Authorizer

    init(authorizer: any Authorizer) { self.authorizer = authorizer }

    func set(_ path: ObjectPath, _ interfaces: [any DBusInterface]?) {
        objects.withLock { $0[path] = interfaces }
    }

    func interfaces(at path: ObjectPath) async -> [any DBusInterface]? { objects.withLock { $0[path] } }

    func objectPaths() async -> [ObjectPath] { objects.withLock { Array($0.keys) } }

    func authorizeRead(_ call: MethodCall) async throws {
        try await translatingErrors {
            try await authorizer.authorize(call, .read, AuthorizationDetails(verb: call.member))
        }
    }
}
