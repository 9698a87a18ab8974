import DBus
import Foundation
import VMMSModel

/// `Export` and `Move` (Export-VM, Move-VMStorage): checked here, then run as Job objects.
extension VMInterface {
    func export(_ call: MethodCall) async throws -> ObjectPath {
        guard call.arguments.count == 2, let directory = call.arguments[0].string else {
            throw VMMSError.invalidArgs("Export takes (s directory, a{sv} options)")
        }
        _ = try Options(call.arguments[1], method: "Export", allowed: [:])
        try await authorize(call, .vmExport, verb: "Export")
        let uid = try await call.callerUID()
        let folder = try JobFiles.checkFolder(directory, what: "Export directory", roots: services.host.settings.storageRoots,
                                              callerIsRoot: uid == 0)
        let record = try current()
        let destination = folder + "/" + record.name
        guard !FileManager.default.fileExists(atPath: destination) else {
            throw VMMSError.alreadyExists("\(destination) exists already; export into another directory, or remove it first")
        }
        let caller = await call.caller()
        let (services, uuid, name) = (self.services, self.uuid, record.name)
        return try await startJob("Export", call: call, uid: uid, action: .vmExport,
                                  allowed: [.off, .saved, .running, .paused],
                                  hint: "wait until it is Off, Saved or Running") { job in
            try await VMExporter(services: services, uuid: uuid, name: name, directory: folder, destination: destination,
                                 caller: caller).run(job)
        }
    }

    func move(_ call: MethodCall) async throws -> ObjectPath {
        guard call.arguments.count == 2, let destination = call.arguments[0].string else {
            throw VMMSError.invalidArgs("Move takes (s destination, a{sv} options)")
        }
        let moveOptions = try Options(call.arguments[1], method: "Move", allowed: ["IncludeStorage": "b"])
        if destination.contains("://") || destination.hasPrefix("qemu:") || destination.hasPrefix("test:") {
            return try await migrate(call, to: destination, includeStorage: moveOptions.bool("IncludeStorage") ?? false)
        }
        try await authorize(call, .vmMove, verb: "Move")
        let uid = try await call.callerUID()
        let folder = try JobFiles.checkFolder(destination, what: "Move destination", roots: services.host.settings.storageRoots,
                                              callerIsRoot: uid == 0)
        let record = try current()
        let plan = try await VMMover.plan(record, to: folder, services: services)
        let caller = await call.caller()
        let services = self.services
        return try await startJob("Move", call: call, uid: uid, action: .vmMove, allowed: [.off, .saved, .running, .paused],
                                  hint: "wait until it is Off, Saved or Running") { job in
            try await VMMover(services: services, plan: plan, caller: caller).run(job)
        }
    }

    /// Holds the VM for the job (refused unless it is in one of `allowed`, or while another
    /// job or operation holds it), publishes the job and runs `work`; the hold ends with it,
    /// and the VM is read again.
    func startJob(_ operation: String, call: MethodCall, uid: UInt32, action: Action, allowed: Set<VMState>, hint: String,
                          work: @escaping @Sendable (JobContext) async throws -> Void) async throws -> ObjectPath {
        let record = try current()
        if let running = services.jobs.jobs.runningJob(vm: uuid) {
            throw VMMSError.invalidState(current: record.state.rawValue,
                message: "\(record.name) already has a running job, \(Paths.job(running.number)) (\(running.operation)); wait for it or cancel it")
        }
        let (token, _) = try vms.beginOperation(uuid: uuid, verb: operation, allowed: allowed, showing: nil, hint: hint)
        // The hold keeps other operations out; the state keeps following libvirt meanwhile.
        vms.operationActed(token)
        let (services, uuid) = (self.services, self.uuid)
        do {
            return try services.jobs.start(operation: operation, vm: (uuid, record.name), target: Paths.vm(uuid: uuid), uid: uid,
                                           action: action, work: work) {
                await services.monitor.refresh(uuid: uuid, full: true)
                services.vms.finishOperation(token)
            }
        } catch {
            vms.finishOperation(token)
            throw error
        }
    }
}
