import DBus
import Libvirt
import VMMSModel

/// `org.example.VMMS1.Checkpoint`: one object per checkpoint at
/// `<vm path>/Checkpoint/<escaped name>`.
enum CheckpointKind: ObjectKind {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.Checkpoint",
        methods: [
            .init("Apply"),
            .init("Rename", in: [.init("new_name", "s")]),
            .init("Delete", in: [.init("options", "a{sv}")]),
        ],
        properties: [
            .init("Name", "s"),
            .init("VM", "o", changeSignal: .const),
            .init("Parent", "o"),
            .init("CreationTime", "t", changeSignal: .const),
            .init("IncludesMemory", "b", changeSignal: .const),
        ])

    static func path(of record: CheckpointRecord) -> ObjectPath { Paths.checkpoint(vm: record.vmUUID, name: record.name) }

    static func values(of record: CheckpointRecord) -> [String: DBusValue] {
        [
            "Name": .string(record.name),
            "VM": .objectPath(Paths.vm(uuid: record.vmUUID)),
            "Parent": .objectPath(record.parentName.map { Paths.checkpoint(vm: record.vmUUID, name: $0) } ?? .root),
            "CreationTime": .uint64(record.creationTime),
            "IncludesMemory": .boolean(record.includesMemory),
        ]
    }
}

/// The handlers of one checkpoint: decode, validate, authorize (vm.checkpoint, with the VM
/// and the checkpoint named), then hold the VM and look the checkpoint up again.
struct CheckpointInterface: DBusInterface {
    let description = CheckpointKind.interface
    let vmUUID: String
    let name: String
    let services: Services

    /// States in which checkpoints can be deleted or renamed (deleting folds images, live
    /// while the VM runs).
    static let settled: Set<VMState> = [.off, .saved, .running, .paused, .crashed]

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        try await translatingErrors {
            switch call.member {
            case "Apply": try await apply(call)
            case "Rename": try await rename(call)
            case "Delete": try await delete(call)
            default: throw VMMSError.notSupported("\(call.member) is not implemented")
            }
            return []
        }
    }

    private var vm: VMInterface { VMInterface(uuid: vmUUID, services: services) }
    private var engine: CheckpointEngine { CheckpointEngine(services: services) }

    /// The checkpoint's id now, or NotFound (deleted, possibly while polkit answered).
    private func currentID() throws -> String {
        guard let id = services.checkpoints.tree(vmUUID).entry(named: name)?.id else {
            throw VMMSError.notFound("the checkpoint \(name) no longer exists")
        }
        return id
    }

    private func authorize(_ call: MethodCall, verb: String) async throws -> Caller {
        _ = try currentID()
        var details = AuthorizationDetails(verb: verb, vmName: try vm.current().name, vmUUID: vmUUID)
        details.checkpointName = name
        try await services.authorizer.authorize(call, .vmCheckpoint, details)
        return await call.caller()
    }

    private func apply(_ call: MethodCall) async throws {
        guard call.arguments.isEmpty else { throw VMMSError.invalidArgs("Apply takes no arguments") }
        let caller = try await authorize(call, verb: "Apply")
        let engine = self.engine
        let vmName = try await vm.operation("Apply", allowed: [.off, .saved],
                                            hint: "turn it off (or save it) first; applying a checkpoint replaces its current state",
                                            full: true) { record in
            try await engine.apply(try currentID(), record: record, caller: caller)
            return record.name
        }
        services.audit(caller, "Apply checkpoint \(name) to \(vmName) (\(vmUUID))")
    }

    private func rename(_ call: MethodCall) async throws {
        guard call.arguments.count == 1, let newName = call.arguments[0].string else {
            throw VMMSError.invalidArgs("Rename takes (s new_name)")
        }
        if let problem = CheckpointTree(vmUUID: vmUUID).nameProblem(newName) { throw VMMSError.invalidArgs(problem) }
        let caller = try await authorize(call, verb: "Rename")
        if newName == name { return }
        let engine = self.engine, uuid = vmUUID
        try await vm.operation("Rename checkpoint", allowed: Self.settled) { _ in
            try await engine.rename(try currentID(), to: newName, vm: uuid)
        }
        services.audit(caller, "Rename checkpoint \(name) of \(uuid) to \(newName)")
    }

    private func delete(_ call: MethodCall) async throws {
        let options = try Options(call.arguments.first, method: "Delete", allowed: ["IncludeChildren": "b"])
        let includeChildren = options.bool("IncludeChildren") ?? false
        let caller = try await authorize(call, verb: "Delete")
        let engine = self.engine, uuid = vmUUID
        try await vm.operation("Delete checkpoint", allowed: Self.settled, full: true) { _ in
            try await engine.delete(try currentID(), includeChildren: includeChildren, vm: uuid)
        }
        services.audit(caller, "Delete checkpoint \(name)\(includeChildren ? " and its children" : "") of \(uuid)")
    }
}

extension ObjectRegistry.Route {
    static func checkpoint(_ services: Services) -> Self {
        Self(owns: { Paths.checkpointID(of: $0) != nil },
             handlers: { path in
                 Paths.checkpointID(of: path).map { [CheckpointInterface(vmUUID: $0.vm, name: $0.name, services: services)] } ?? []
             },
             readDetails: { path in
                 let id = Paths.checkpointID(of: path)
                 var details = AuthorizationDetails(verb: "", vmName: id.flatMap { services.vms.record(uuid: $0.vm)?.name }, vmUUID: id?.vm)
                 details.checkpointName = id?.name
                 return details
             },
             missing: { VMMSError.notFound("the checkpoint at \($0) does not exist").dbusError })
    }
}

/// Loads the checkpoint trees on every new connection (after the journal's recovery settled
/// interrupted operations) and finishes any folding a crash cut short.
struct CheckpointWatcher: ConnectionWatcher {
    let services: Services

    func attach(_ connection: LibvirtConnection) async throws -> [any Sendable] {
        for problem in await services.checkpoints.load() { services.logger.error("\(problem)") }
        // The VMs were just listed (VMWatcher attaches first).
        for uuid in services.checkpoints.uuids where !services.vms.contains(uuid: uuid) {
            services.logger.warning("the VM \(uuid) has checkpoints in \(services.checkpoints.path(of: uuid)) but libvirt no longer has it; not publishing them")
            services.checkpoints.hide(uuid)
        }
        let services = self.services
        let task = Task {
            for uuid in services.checkpoints.uuids {
                // Only a tree with something to fold holds the VM (a Start just after the
                // service came back must not meet a cleanup with nothing to do).
                let tree = services.checkpoints.tree(uuid)
                guard !tree.garbage.isEmpty || tree.cleanupStep() != nil else { continue }
                guard let (token, _) = try? services.vms.beginOperation(uuid: uuid, verb: "Checkpoint cleanup",
                                                                        allowed: CheckpointInterface.settled, showing: nil) else { continue }
                do { try await CheckpointEngine(services: services).tidy(uuid) } catch {
                    services.logger.error("cannot fold the checkpoint images of \(uuid) yet: \(error)")
                }
                services.vms.finishOperation(token)
            }
        }
        return [TaskCanceller(task)]
    }
}

/// Cancels its task when released (with the connection it belongs to).
final class TaskCanceller: Sendable {
    let task: Task<Void, Never>
    init(_ task: Task<Void, Never>) { self.task = task }
    deinit { task.cancel() }
}
