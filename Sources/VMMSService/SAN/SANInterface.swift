import DBus
import Libvirt
import VMMSModel

/// `org.example.VMMS1.SAN` at `/org/example/VMMS1/SAN/<escaped name>`: one libvirt storage
/// pool of a SAN type (see `SANXML.describe`), also those defined outside vmms.
enum SANKind: ObjectKind {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.SAN",
        methods: [
            .init("Refresh"),
            .init("Delete"),
        ],
        properties: [
            .init("Name", "s", changeSignal: .const),
            .init("Type", "s", changeSignal: .const),
            .init("Active", "b"),
            .init("Portal", "s"),
            .init("Target", "s"),
            .init("LUNs", "a(sst)"),
        ])

    static let hostList: String? = "SANs"

    static func path(of record: SANRecord) -> ObjectPath { Paths.san(name: record.name) }

    static func values(of record: SANRecord) -> [String: DBusValue] {
        [
            "Name": .string(record.name),
            "Type": .string(record.type.rawValue),
            "Active": .boolean(record.active),
            "Portal": .string(record.portal),
            "Target": .string(record.target),
            "LUNs": .array("(sst)", record.luns.map { .structure([.string($0.name), .string($0.source), .uint64($0.capacityBytes)]) }),
        ]
    }
}

/// The handlers of one SAN object: decode → authorize (host.configure, `san.name`) → look the
/// SAN up again → act on the pool through the worker → reply once the model shows it.
struct SANInterface: DBusInterface {
    let description = SANKind.interface
    let name: String
    let services: Services

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        try await translatingErrors {
            switch call.member {
            case "Refresh": try await refresh(call)
            case "Delete": try await delete(call)
            default: throw VMMSError.notSupported("\(call.member) is not implemented")
            }
            return []
        }
    }

    private func current() throws -> SANRecord {
        guard let record = services.sans.record(named: name) else { throw VMMSError.notFound("the SAN \(name) no longer exists") }
        return record
    }

    private func authorize(_ call: MethodCall, verb: String) async throws {
        _ = try current()
        try await services.authorizer.authorize(call, .hostConfigure, .san(name, verb: verb))
    }

    /// Re-reads the LUNs (a LUN added on the target appears); an inactive SAN is started
    /// again, so a target that came back is Active again. A target that does not answer
    /// leaves the SAN inactive and says so.
    private func refresh(_ call: MethodCall) async throws {
        guard call.arguments.isEmpty else { throw VMMSError.invalidArgs("Refresh takes no arguments") }
        try await authorize(call, verb: "Refresh")
        let record = try current()
        let uuid = record.uuid
        let outcome: Result<Void, LibvirtError> = try await services.link.run { connection in
            let pool: LibvirtStoragePool
            do { pool = try connection.pool(uuid: uuid) } catch let error as LibvirtError where error.isNoStoragePool {
                throw VMMSError.notFound("the SAN \(record.name) no longer exists")
            }
            do {
                if try pool.isActive { try pool.refresh() } else { try pool.create() }
                return .success(())
            } catch let error as LibvirtError where !error.isConnectionBroken && !error.isNoStoragePool {
                return .failure(error)
            }
        }
        await services.sanMonitor.refresh(uuid: uuid)
        if case .failure(let error) = outcome {
            services.sanMonitor.lostTarget(uuid: uuid)
            throw SANProbe.unreachable(record, libvirt: error, inactive: services.sans.record(uuid: uuid)?.active == false)
        }
        services.audit(await call.caller(), "Refresh SAN \(name)")
    }

    /// Stops and undefines the pool; nothing on the target is touched. Refused while a VM
    /// has one of its LUNs as a disk (libvirt would let it go, and the VM would not start).
    private func delete(_ call: MethodCall) async throws {
        guard call.arguments.isEmpty else { throw VMMSError.invalidArgs("Delete takes no arguments") }
        try await authorize(call, verb: "Delete")
        let record = try current()
        let users = services.vmsUsing(record)
        guard users.isEmpty else {
            throw VMMSError.invalidState(current: record.active ? "Active" : "Inactive",
                message: "the SAN \(name) has LUNs attached to \(users.joined(separator: ", ")); remove those hard disks first")
        }
        let uuid = record.uuid
        try await services.link.run { try Self.undefinePool(uuid: uuid, connection: $0) }
        await services.sanMonitor.refresh(uuid: uuid)
        services.audit(await call.caller(), "Delete SAN \(name)")
    }

    /// Stops the pool and removes its definition; a pool that is not there is fine.
    static func undefinePool(uuid: String, connection: LibvirtConnection) throws {
        let pool: LibvirtStoragePool
        do { pool = try connection.pool(uuid: uuid) } catch let error as LibvirtError where error.isNoStoragePool { return }
        let persistent = try pool.isPersistent
        if try pool.isActive { try pool.destroy() }
        if persistent { try pool.undefine() }
    }
}

extension AuthorizationDetails {
    /// The details of a SAN call: the verb and `san.name`.
    static func san(_ name: String, verb: String) -> AuthorizationDetails {
        var details = AuthorizationDetails(verb: verb)
        details.sanName = name
        return details
    }
}

extension Services {
    /// The VMs (by name, sorted) with a hard disk on one of `san`'s LUNs.
    func vmsUsing(_ san: SANRecord, except: String? = nil) -> [String] {
        vms.records(except: except).filter { record in
            record.configuration.hardDisks.contains { san.owns(diskPath: $0.path) }
        }.map(\.name).sorted()
    }
}

extension ObjectRegistry.Route {
    static func san(_ services: Services) -> Self {
        Self(owns: { Paths.sanName(of: $0) != nil },
             handlers: { path in Paths.sanName(of: path).map { [SANInterface(name: $0, services: services)] } ?? [] },
             readDetails: { path in .san(Paths.sanName(of: path) ?? "", verb: "") },
             missing: { VMMSError.notFound("the SAN at \($0) does not exist").dbusError })
    }
}
