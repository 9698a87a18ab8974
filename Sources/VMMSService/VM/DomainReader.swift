import Libvirt
import VMMSModel

/// Reads one domain from libvirt. Blocking: runs on the libvirt worker.
///
/// What cannot be read this time is marked in the reading rather than guessed, so a passing
/// libvirt error never turns into an announced change.
enum DomainReader {
    /// `localQEMU`: the connection is `qemu:///system` on this machine, so a running VM's start
    /// can be read from its QEMU process.
    static func read(_ domain: LibvirtDomain, connection: LibvirtConnection, localQEMU: Bool = false) throws -> VMFullReading {
        let uuid = try domain.uuid
        let run = try readRunState(domain, localQEMU: localQEMU)
        let persistent = try domain.isPersistent
        // The persistent definition is what an administrator configured; a transient domain
        // only has its live one.
        let xml = try domain.xml(flags: persistent ? [.inactive, .secure] : [.secure])
        let configuration = try DomainXML.parse(xml)
        var capacities: [String: UInt64] = [:]
        var unread: Set<String> = []
        for disk in configuration.hardDisks {
            if let capacity = capacity(of: disk.path, domain: domain, connection: connection) {
                capacities[disk.path] = capacity
            } else {
                unread.insert(disk.path)
            }
        }
        let autostart = try? domain.autostart
        let record = VMRecord(uuid: uuid, name: configuration.name, state: run.state, configuration: configuration,
                              autostart: autostart ?? false, memoryAssignedBytes: run.memoryAssignedBytes,
                              diskCapacities: capacities)
        return VMFullReading(record: record, autostartKnown: autostart != nil, savedStateKnown: run.savedStateKnown,
                             unreadCapacities: unread, startTime: run.startTime)
    }

    /// A disk's capacity: from the storage pool that holds it, else from the image itself.
    private static func capacity(of path: String, domain: LibvirtDomain, connection: LibvirtConnection) -> UInt64? {
        if let volume = try? connection.volume(path: path), let info = try? volume.info() { return info.capacityBytes }
        return LUNCapacities.shared.capacity(of: path)
    }

    /// The run state alone: state, saved image, assigned memory (three libvirt calls, no XML).
    static func readRunState(_ domain: LibvirtDomain, localQEMU: Bool = false) throws -> VMRunState {
        let (state, reason) = try domain.state()
        let running = state == .running || state == .paused || state == .blocked
        // A managed-save image only matters to a shut-off domain (Saved rather than Off).
        var saved = false, savedKnown = true
        if state == .shutoff {
            if let has = try? domain.hasManagedSaveImage { saved = has } else { savedKnown = false }
        }
        let started = running && localQEMU ? (try? domain.name).flatMap(ProcessStartTime.ofQEMU(domainName:)) : nil
        return VMRunState(state: VMState.from(libvirtState: state.rawValue, reason: reason, hasManagedSave: saved),
                          savedStateKnown: savedKnown,
                          memoryAssignedBytes: running ? (try domain.info().memoryKiB) * 1024 : 0,
                          startTime: started)
    }
}
