import Libvirt
import VMMSModel

/// Reads one domain into a `VMRecord`. Blocking: runs on the libvirt worker.
enum DomainReader {
    static func read(_ domain: LibvirtDomain, connection: LibvirtConnection) throws -> VMRecord {
        let uuid = try domain.uuid
        let run = try readRunState(domain)
        let persistent = try domain.isPersistent
        // The persistent definition is what an administrator configured; a transient domain
        // only has its live one.
        let xml = try domain.xml(flags: persistent ? [.inactive, .secure] : [.secure])
        let configuration = try DomainXML.parse(xml)
        var capacities: [String: UInt64] = [:]
        for disk in configuration.hardDisks {
            if let volume = try? connection.volume(path: disk.path), let info = try? volume.info() {
                capacities[disk.path] = info.capacityBytes
            }
        }
        return VMRecord(
            uuid: uuid,
            name: configuration.name,
            state: run.state,
            configuration: configuration,
            autostart: (try? domain.autostart) ?? false,
            memoryAssignedBytes: run.memoryAssignedBytes,
            diskCapacities: capacities)
    }

    /// What changes while a VM runs, without its definition.
    struct RunState: Sendable {
        var state: VMState
        var memoryAssignedBytes: UInt64
    }

    /// The run state alone: state, saved image, assigned memory (three libvirt calls, no XML).
    static func readRunState(_ domain: LibvirtDomain) throws -> RunState {
        let (state, reason) = try domain.state()
        let running = state == .running || state == .paused || state == .blocked
        // A managed-save image only matters to a shut-off domain (Saved rather than Off).
        let saved = state == .shutoff && ((try? domain.hasManagedSaveImage) ?? false)
        return RunState(state: VMState.from(libvirtState: state.rawValue, reason: reason, hasManagedSave: saved),
                        memoryAssignedBytes: running ? (try domain.info().memoryKiB) * 1024 : 0)
    }
}
