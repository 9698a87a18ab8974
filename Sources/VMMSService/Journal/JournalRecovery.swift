import Foundation
import Libvirt
import Logging
import VMMSModel

/// Undoes what interrupted operations left, on every new libvirt connection (the first one
/// after a crash does the work; later ones find nothing). Runs before the VMs are read, so
/// no client ever sees a half-made VM.
struct JournalRecovery: ConnectionWatcher {
    let journal: OperationJournal
    let worker: LibvirtWorker
    let logger: Logger

    /// How often what an operation could not undo is tried again on a live connection.
    static let retryInterval: Duration = .seconds(5)

    func attach(_ connection: LibvirtConnection) async throws -> [any Sendable] {
        try await recover(connection)
        let recovery = self
        return [PeriodicTask(every: Self.retryInterval) { try? await recovery.recover(connection) }]
    }

    /// Undoes every interrupted operation it can; what fails stays for the next pass.
    func recover(_ connection: LibvirtConnection) async throws {
        let (entries, unreadable) = await journal.interrupted()
        for path in unreadable { logger.error("cannot read the interrupted operation in \(path); left for an administrator") }
        for entry in entries {
            logger.warning("undoing \(entry.operation) by \(entry.caller), interrupted at step \(entry.steps.count) (started \(entry.started))")
            let steps = entry.steps
            let failures = try await worker.runLong { () -> [String] in
                var failures: [String] = []
                for step in steps.reversed() {
                    do { try Self.undo(step, connection: connection) } catch { failures.append("\(step): \(error)") }
                }
                return failures
            }
            if failures.isEmpty {
                await journal.discard(entry)
            } else {
                // Kept: the next connection tries again rather than forgetting an orphan.
                logger.error("could not undo every step of \(entry.operation): \(failures.joined(separator: "; "))")
            }
        }
    }

    /// Undoes one step; a step whose effect is not there (never carried out) is fine.
    static func undo(_ step: JournalStep, connection: LibvirtConnection) throws {
        switch step {
        case .defineDomain(let uuid, _):
            guard let domain = try? connection.domain(uuid: uuid) else { return }
            if try domain.isActive { try domain.destroy() }
            try VMInterface.undefine(domain)
        case .definePool(let uuid, _):
            try SANInterface.undefinePool(uuid: uuid, connection: connection)
        case .defineNetwork(let uuid, _):
            guard let network = try? connection.network(uuid: uuid) else { return }
            if try network.isActive { try network.destroy() }
            if try network.isPersistent { try network.undefine() }
        case .createBridge(let name), .deleteBridge(let name):
            // Checked free before it was made: a bridge of this name is the one made then. A
            // switch whose Delete was cut short before its network went gets it back at once
            // (SwitchMonitor makes a missing managed bridge again).
            try HostNetwork.deleteBridge(name)
        case .checkpoint(let intent):
            try CheckpointRecovery.settle(intent, connection: connection)
        case .createDisk(let path):
            // Only an image no domain uses: never delete what a VM depends on.
            for domain in try connection.allDomains() {
                guard let xml = try? domain.xml(flags: [.inactive]) else { continue }
                if (try? DomainXML.parse(xml))?.hardDisks.contains(where: { $0.path == path }) ?? true { return }
            }
            if let volume = try? connection.volume(path: path) {
                try volume.delete()
            } else if FileManager.default.fileExists(atPath: path) {
                try FileManager.default.removeItem(atPath: path)
            }
        case .removeUnlessUsed(let path):
            try JobFiles.removeUnlessUsed([path], connection: connection)
        case .savedStateFollowsDefinition(let uuid):
            guard let domain = try? connection.domain(uuid: uuid) else { return }
            try VMMover.savedStateFollowsDefinition(domain)
        }
    }
}
