import DBus
import Foundation
import VMMSModel

/// `Move` with a libvirt URI (Move-VM to another host): the allow-list for callers other
/// than root, every pre-check, then a Job running libvirt's migration.
extension VMInterface {
    func migrate(_ call: MethodCall, to destination: String, includeStorage: Bool) async throws -> ObjectPath {
        try await authorize(call, .vmMove, verb: "Move")
        let uid = try await call.callerUID()
        // The root service connects wherever it is told: only root names any destination.
        if uid != 0, !VMMigrator.isAllowed(destination, in: services.migrationDestinations) {
            throw VMMSError.notAuthorized("\(destination) is not among this host's migration-destinations (vmmsd.conf); only root may move a VM to a destination not listed there")
        }
        let record = try current()
        guard [.running, .paused, .off].contains(record.state) else {
            throw VMMSError.invalidState(current: record.state.rawValue,
                message: "\(record.name) can move to another host when Running, Paused or Off; start it or turn it off first")
        }
        let plan = try await VMMigrator.plan(record, to: destination, includeStorage: includeStorage, services: services)
        let caller = await call.caller()
        let services = self.services
        return try await startJob("Move", call: call, uid: uid, action: .vmMove, allowed: [plan.state],
                                  hint: "it changed state while the move was checked; call Move again") { job in
            try await VMMigrator(services: services, plan: plan, caller: caller).run(job)
        }
    }
}
