import DBus
import VMMSModel

/// `VM.Checkpoint` (Checkpoint-VM): a standard checkpoint of the VM's disks, firmware
/// variables and, when it runs, its memory.
extension VMInterface {
    /// States a checkpoint can be taken in. Not Saved: the memory is in libvirt's saved-state
    /// image, which a checkpoint cannot hold.
    static let checkpointable: Set<VMState> = [.off, .running, .paused]

    func checkpoint(_ call: MethodCall) async throws -> ObjectPath {
        guard call.arguments.count == 1, let name = call.arguments[0].string else {
            throw VMMSError.invalidArgs("Checkpoint takes (s name)")
        }
        if let problem = CheckpointTree(vmUUID: uuid).nameProblem(name) { throw VMMSError.invalidArgs(problem) }
        let record = try current()
        var details = AuthorizationDetails(verb: "Checkpoint", vmName: record.name, vmUUID: uuid)
        details.checkpointName = name
        try await services.authorizer.authorize(call, .vmCheckpoint, details)
        let caller = await call.caller()
        let services = self.services
        let (vmName, entry) = try await operation("Checkpoint", allowed: Self.checkpointable,
                                                  hint: "start it first (a checkpoint cannot hold a saved state), or wait", full: true) { record in
            (record.name, try await CheckpointEngine(services: services).take(name, record: record, caller: caller))
        }
        services.audit(caller, "Checkpoint \(vmName) (\(uuid)) as \(entry.name)\(entry.memory != nil ? " with memory" : "")")
        return Paths.checkpoint(vm: uuid, name: name)
    }
}
