import Foundation
import Libvirt
import Logging
import Synchronization
import VMMSModel

/// Keeps the SAN model current: reads SAN pools from libvirt (all of them on a new
/// connection, one on each of its storage pool events), one read at a time so an older
/// reading never overwrites a newer one.
final class SANMonitor: Sendable {
    let link: HypervisorLink
    let sans: SANModel
    let vms: VMModel
    let vmMonitor: VMMonitor
    let logger: Logger
    private let gate = SerialGate()
    /// SANs that went inactive because their target stopped answering (not because someone
    /// stopped them): `probe` starts these again once the portal answers.
    private let lost = Mutex<Set<String>>([])

    init(link: HypervisorLink, sans: SANModel, vms: VMModel, vmMonitor: VMMonitor, logger: Logger) {
        self.link = link
        self.sans = sans
        self.vms = vms
        self.vmMonitor = vmMonitor
        self.logger = logger
    }

    /// Reads every SAN pool again and replaces the model's SANs.
    func synchronize(_ connection: LibvirtConnection) async throws {
        try await gate.run {
            let records = try await link.worker.run { try SANReader.readAll(connection) }
            sans.replaceAll(records)
        }
        await refreshDisks()
    }

    /// Reads one pool again (gone, or no SAN: removed from the model).
    func refresh(uuid: String) async {
        do {
            try await gate.run {
                let record = try await link.run { connection -> SANRecord? in
                    do {
                        return try SANReader.read(try connection.pool(uuid: uuid))
                    } catch let error as LibvirtError where error.isNoStoragePool {
                        return nil
                    }
                }
                sans.set(uuid: uuid, record)
                if record?.active != false { lost.withLock { _ = $0.remove(uuid) } }
            }
        } catch {
            logger.warning("cannot read the storage pool \(uuid): \(error)")
        }
        await refreshDisks()
    }

    /// The SAN went inactive because its target did not answer (a failed Refresh or Start).
    func lostTarget(uuid: String) {
        if sans.record(uuid: uuid)?.active == false { lost.withLock { _ = $0.insert(uuid) } }
    }

    /// libvirt notices a target that went away only when it reads the pool, and never one that
    /// came back: every `probeInterval`, an active libiscsi SAN whose portal refuses a TCP
    /// connection is read again (libvirt then stops it: Active false), and a SAN lost that way
    /// whose portal answers again is started again (Active true once the target logs in).
    func probe() async {
        for san in sans.records where san.poolType == "iscsi-direct" {
            guard let portal = try? SANAddress.portal(san.portal) else { continue }
            let answers = await SANProbe.reach(portal) == nil
            let uuid = san.uuid
            if san.active, !answers {
                logger.warning("the iSCSI target \(san.target) of the SAN \(san.name) at \(san.portal) does not answer")
                _ = try? await link.run { connection in try? connection.pool(uuid: uuid).refresh() }
                await refresh(uuid: uuid)
                lostTarget(uuid: uuid)
            } else if !san.active, answers, lost.withLock({ $0.contains(uuid) }) {
                let started = (try? await link.run { connection in try connection.pool(uuid: uuid).create() }) != nil
                if started { logger.notice("the iSCSI target \(san.target) of the SAN \(san.name) answers again") }
                await refresh(uuid: uuid)
            }
        }
    }

    /// How often `probe` runs: 30 s, or `VMMSD_TEST_SAN_PROBE_SECONDS` (for the tests).
    static let probeInterval: Duration = .seconds(
        ProcessInfo.processInfo.environment["VMMSD_TEST_SAN_PROBE_SECONDS"].flatMap { Int($0) }.map { max(1, $0) } ?? 30)

    /// VMs whose disks on iSCSI LUNs show another capacity than the LUN has are read again.
    private func refreshDisks() async {
        let capacities = LUNCapacities.shared
        for record in vms.records(except: nil) {
            let stale = record.configuration.hardDisks.contains { disk in
                guard let capacity = capacities.capacity(of: disk.path) else { return false }
                return record.diskCapacities[disk.path] != capacity
            }
            if stale { await vmMonitor.refresh(uuid: record.uuid) }
        }
    }
}

/// Reads SAN pools. Blocking: runs on the libvirt worker.
enum SANReader {
    /// Every pool of a SAN type.
    static func readAll(_ connection: LibvirtConnection) throws -> [SANRecord] {
        try connection.allPools().compactMap { pool in
            do {
                return try read(pool)
            } catch let error as LibvirtError where error.isNoStoragePool {
                return nil
            }
        }
    }

    /// The SAN of one pool, or nil when the pool is of no SAN type. LUNs without storage (a
    /// target's controller LUN 0) are left out.
    static func read(_ pool: LibvirtStoragePool) throws -> SANRecord? {
        guard let description = SANXML.describe(poolXML: try pool.xmlDesc()) else { return nil }
        let active = try pool.isActive
        var luns: [SANLUN] = []
        if active {
            for volume in try pool.volumeSummaries() where volume.info.capacityBytes > 0 {
                luns.append(lun(volume, of: description))
            }
            luns.sort { (SANAddress.lunNumber(ofVolume: $0.name) ?? 0, $0.name) < (SANAddress.lunNumber(ofVolume: $1.name) ?? 0, $1.name) }
        }
        return SANRecord(uuid: try pool.uuid, name: try pool.name, type: description.type, poolType: description.poolType,
                         active: active, portal: description.portal, target: description.targetName,
                         initiator: description.initiator, luns: luns)
    }

    /// A libiscsi pool's LUN is a network source QEMU opens itself (`iscsi://…`), with
    /// QEMU's figure for its size; other pools' volumes are device paths libvirt sizes right.
    private static func lun(_ volume: StorageVolumeSummary, of pool: SANXML.PoolDescription) -> SANLUN {
        guard pool.poolType == "iscsi-direct", let number = SANAddress.lunNumber(ofVolume: volume.name),
              let prefix = SANAddress.networkSourcePrefix(portal: pool.portal, target: pool.target) else {
            return SANLUN(name: volume.name, source: volume.path, capacityBytes: volume.info.capacityBytes)
        }
        let source = prefix + String(number)
        let capacity = LUNCapacities.shared.capacity(source: source, reported: volume.info.capacityBytes) {
            SANProbe.capacity(portal: pool.portal, target: pool.target, lun: number, initiator: pool.initiator)
        }
        return SANLUN(name: volume.name, source: source, capacityBytes: capacity)
    }
}

/// Subscribes to storage pool events and reads every SAN on every new connection: events
/// first, then the listing. A slow reconcile catches what no event announced.
struct SANWatcher: ConnectionWatcher {
    let monitor: SANMonitor
    static let reconcileInterval: Duration = .seconds(60)

    func attach(_ connection: LibvirtConnection) async throws -> [any Sendable] {
        let monitor = self.monitor
        let registration = try connection.registerStoragePoolEvents { event in
            Task { await monitor.refresh(uuid: event.uuid) }
        }
        try await monitor.synchronize(connection)
        return [registration, PeriodicTask(every: Self.reconcileInterval) { try? await monitor.synchronize(connection) },
                PeriodicTask(every: SANMonitor.probeInterval) { await monitor.probe() }]
    }
}
