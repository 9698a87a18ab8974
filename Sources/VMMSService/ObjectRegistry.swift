import DBus
import Synchronization

/// The exported objects, looked up per call through one `ObjectServer` registration: the
/// fixed ones (the host) in a table, the VMs made on demand from the inventory. Lookups take
/// a lock rather than an actor hop: they sit on the path of every property read.
final class ObjectRegistry: ObjectTree {
    private let fixed = Mutex<[ObjectPath: [any DBusInterface]]>([:])
    private let context = Mutex<ServiceContext?>(nil)
    let authorizer: any Authorizer

    init(authorizer: any Authorizer) { self.authorizer = authorizer }

    func set(_ path: ObjectPath, _ interfaces: [any DBusInterface]?) {
        fixed.withLock { $0[path] = interfaces }
    }

    /// Connects the VM objects once the service's context exists.
    func attach(_ context: ServiceContext) { self.context.withLock { $0 = context } }

    func interfaces(at path: ObjectPath) async -> [any DBusInterface]? {
        if let interfaces = fixed.withLock({ $0[path] }) { return interfaces }
        guard let uuid = Paths.vmUUID(of: path), let context = context.withLock({ $0 }),
              context.inventory.contains(uuid: uuid) else { return nil }
        return [VMObject(uuid: uuid, context: context)]
    }

    func objectPaths() async -> [ObjectPath] {
        let vms = context.withLock { $0 }?.inventory.paths ?? []
        return fixed.withLock { Array($0.keys) } + vms
    }

    /// A VM path without a VM is a VM that was deleted: the contract's NotFound.
    func missingObjectError(at path: ObjectPath) -> DBusError {
        if Paths.vmUUID(of: path) != nil {
            return VMMSError.notFound("the virtual machine at \(path) does not exist").dbusError
        }
        return DBusError(DBusError.Name.unknownObject, "no object at \(path)")
    }

    func authorizeRead(_ call: MethodCall) async throws {
        try await translatingErrors {
            var details = AuthorizationDetails(verb: call.member)
            if let uuid = Paths.vmUUID(of: call.path), let context = context.withLock({ $0 }) {
                details.vmUUID = uuid
                details.vmName = context.inventory.record(uuid: uuid)?.name
            }
            try await authorizer.authorize(call, .read, details)
        }
    }
}
