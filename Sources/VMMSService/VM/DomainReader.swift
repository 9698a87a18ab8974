import Libvirt
import VMMSModel

/// Reads one domain from libvirt. Blocking: runs on the libvirt worker.
///
/// What cannot be read this time is marked in the reading rather than guessed, so a passing
/// libvirt error never turns into an announced change.
enum DomainReader {
    /// `localQEMU`: the connection is `qemu:///system` on this machine, so a running VM's start
    /// can be read from its QEMU process.
    static func read(_ domain: LibvirtDomain, connection: LibvirtConnection, localQEMU: Bool = false,
                     listed: ListedFacts? = nil) throws -> VMFullReading {
        let uuid = try domain.uuid
        let facts = listed?.facts(uuid: uuid)
        let run = try facts.map { try runState($0, domain, localQEMU: localQEMU) } ?? readRunState(domain, localQEMU: localQEMU)
        let persistent = try facts?.persistent ?? domain.isPersistent
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
        let autostart = facts.map(\.autostart) ?? (try? domain.autostart)
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

    /// The run state from a listing's facts: no libvirt call but the assigned memory of a
    /// running domain.
    private static func runState(_ facts: ListedFacts.Facts, _ domain: LibvirtDomain, localQEMU: Bool) throws -> VMRunState {
        let running = facts.state == .running || facts.state == .paused || facts.state == .blocked
        let started = running && localQEMU ? (try? domain.name).flatMap(ProcessStartTime.ofQEMU(domainName:)) : nil
        let memory = running ? try domain.info().memoryKiB * 1024 : 0
        return VMRunState(state: VMState.from(libvirtState: facts.state.rawValue, reason: facts.reason,
                                              hasManagedSave: facts.state == .shutoff && facts.managedSave),
                          memoryAssignedBytes: memory, startTime: started)
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

/// What a few listing calls tell about every domain at once (`virConnectListAllDomains` with
/// filters, `virConnectGetAllDomainStats` of the state alone, which waits for no domain's
/// job): at start-up and after a reconnect a shut-off domain then costs one call (its XML)
/// instead of five, which is what keeps 10,000 VMs within seconds.
struct ListedFacts: Sendable {
    struct Facts: Sendable {
        var state: DomainState
        var reason: Int32
        var persistent: Bool
        var managedSave: Bool
        var autostart: Bool
    }
    private let byUUID: [String: Facts]

    /// Nil when a listing call fails: the domains are then read one call at a time.
    static func read(_ connection: LibvirtConnection) -> ListedFacts? {
        func uuids(_ flags: ListDomainsFlags) throws -> Set<String> {
            Set(try connection.allDomains(flags: flags).compactMap { try? $0.uuid })
        }
        guard let persistent = try? uuids(.persistent), let saved = try? uuids(.managedSave),
              let autostart = try? uuids(.autostart),
              let stats = try? connection.allDomainStats(groups: [.state], flags: [.noWait]) else { return nil }
        var byUUID: [String: Facts] = [:]
        byUUID.reserveCapacity(stats.count)
        for record in stats {
            guard let state = record.state, let reason = record.stateReason else { continue }
            byUUID[record.uuid] = Facts(state: state, reason: reason, persistent: persistent.contains(record.uuid), managedSave: saved.contains(record.uuid),
                                        autostart: autostart.contains(record.uuid))
        }
        return ListedFacts(byUUID: byUUID)
    }

    /// A domain the listing did not cover (defined since) has none: read it call by call.
    func facts(uuid: String) -> Facts? { byUUID[uuid.lowercased()] }
}
