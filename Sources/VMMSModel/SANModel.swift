/// The kinds of storage area network vmms publishes, as the contract names them.
public enum SANType: String, Sendable, CaseIterable {
    /// An iSCSI target: libvirt's `iscsi-direct` pool (libiscsi, no kernel initiator), or an
    /// `iscsi` pool (the kernel initiator) defined outside vmms.
    case iSCSI
    /// Fibre Channel through an NPIV vHBA: libvirt's `scsi` pool with an `fc_host` adapter.
    case fibreChannel = "FibreChannel"
}

/// One LUN of a SAN, as `SAN.LUNs` shows it.
public struct SANLUN: Sendable, Equatable {
    /// libvirt's volume name, e.g. `unit:0:0:1`: what `AddHardDisk {LUN}` takes.
    public var name: String
    /// What a VM's disk uses: `iscsi://host:port/IQN/1` for libiscsi pools (a network disk),
    /// the device path for pools of the kernel initiator or of a vHBA.
    public var source: String
    public var capacityBytes: UInt64

    public init(name: String, source: String, capacityBytes: UInt64) {
        self.name = name
        self.source = source
        self.capacityBytes = capacityBytes
    }
}

/// What a SAN object publishes: one libvirt storage pool of a SAN type.
public struct SANRecord: Sendable, Equatable {
    /// The pool's UUID (lowercase): the key, stable while the pool exists.
    public var uuid: String
    /// The pool's name, which libvirt never changes: the object path is made from it.
    public var name: String
    public var type: SANType
    /// libvirt's pool type (`iscsi-direct`, `iscsi`, `scsi`).
    public var poolType: String
    public var active: Bool
    /// `host:port` of an iSCSI portal; the parent HBA of a vHBA.
    public var portal: String
    /// The target's IQN; `WWNN:WWPN` of a vHBA.
    public var target: String
    /// The initiator IQN the pool logs in with (empty when the pool names none).
    public var initiator: String
    /// Every LUN with storage (a target's controller LUN, capacity 0, is left out); empty
    /// while the pool is not active.
    public var luns: [SANLUN]

    public init(uuid: String, name: String, type: SANType, poolType: String, active: Bool, portal: String,
                target: String, initiator: String = "", luns: [SANLUN] = []) {
        self.uuid = uuid
        self.name = name
        self.type = type
        self.poolType = poolType
        self.active = active
        self.portal = portal
        self.target = target
        self.initiator = initiator
        self.luns = luns
    }

    /// Whether a VM disk at `path` is one of this SAN's LUNs: listed now, or (an inactive
    /// pool lists none) a network disk on this target.
    public func owns(diskPath path: String) -> Bool {
        if luns.contains(where: { $0.source == path }) { return true }
        guard poolType == "iscsi-direct", let prefix = SANAddress.networkSourcePrefix(portal: portal, target: target) else { return false }
        return path.hasPrefix(prefix)
    }
}

/// The SANs in memory, keyed by pool UUID; every change reaches the sink in order.
public final class SANModel: Sendable {
    private let store: ObjectStore<String, SANRecord>

    public init(sink: @escaping ChangeSink<SANRecord>) {
        store = ObjectStore(sink: sink)
    }

    public var records: [SANRecord] { store.all.sorted { $0.name < $1.name } }

    public func record(uuid: String) -> SANRecord? { store[uuid] }

    public func record(named name: String) -> SANRecord? { store.all.first { $0.name == name } }

    /// Sets (nil: removes) the SAN of one pool.
    public func set(uuid: String, _ record: SANRecord?) { store.set(uuid, record) }

    /// Replaces every SAN with `records` in one step (a fresh listing).
    public func replaceAll(_ records: [SANRecord]) {
        store.update { batch in
            let fresh = Dictionary(records.map { ($0.uuid, $0) }) { $1 }
            for key in batch.records.keys where fresh[key] == nil { batch[key] = nil }
            for (key, record) in fresh { batch[key] = record }
        }
    }
}
