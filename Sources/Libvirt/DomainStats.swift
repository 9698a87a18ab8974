internal import CLibvirt

/// Which statistics `LibvirtConnection.allDomainStats` collects, mapping `virDomainStatsTypes`.
public struct DomainStatsGroups: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates groups from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// State and reason (`VIR_DOMAIN_STATS_STATE`).
    public static let state = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_STATE.rawValue)
    /// Total CPU time (`VIR_DOMAIN_STATS_CPU_TOTAL`).
    public static let cpuTotal = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_CPU_TOTAL.rawValue)
    /// Balloon and guest memory (`VIR_DOMAIN_STATS_BALLOON`).
    public static let balloon = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_BALLOON.rawValue)
    /// Per-vCPU state and time (`VIR_DOMAIN_STATS_VCPU`).
    public static let vcpu = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_VCPU.rawValue)
    /// Network interface counters (`VIR_DOMAIN_STATS_INTERFACE`).
    public static let interface = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_INTERFACE.rawValue)
    /// Disk counters and sizes (`VIR_DOMAIN_STATS_BLOCK`).
    public static let block = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_BLOCK.rawValue)
    /// Perf events (`VIR_DOMAIN_STATS_PERF`).
    public static let perf = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_PERF.rawValue)
    /// I/O thread polling (`VIR_DOMAIN_STATS_IOTHREAD`).
    public static let iothread = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_IOTHREAD.rawValue)
    /// Memory bandwidth (`VIR_DOMAIN_STATS_MEMORY`).
    public static let memory = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_MEMORY.rawValue)
    /// Memory dirty rate (`VIR_DOMAIN_STATS_DIRTYRATE`).
    public static let dirtyRate = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_DIRTYRATE.rawValue)
    /// Hypervisor-specific counters (`VIR_DOMAIN_STATS_VM`).
    public static let vm = DomainStatsGroups(rawValue: VIR_DOMAIN_STATS_VM.rawValue)
}

/// Which domains `LibvirtConnection.allDomainStats` covers and how, mapping
/// `virConnectGetAllDomainStatsFlags`. The empty set: every domain.
public struct DomainStatsFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Running or paused domains (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE`).
    public static let active = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE.rawValue)
    /// Stopped domains (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE`).
    public static let inactive = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE.rawValue)
    /// Persistent domains (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_PERSISTENT`).
    public static let persistent = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_PERSISTENT.rawValue)
    /// Transient domains (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_TRANSIENT`).
    public static let transient = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_TRANSIENT.rawValue)
    /// Running domains (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING`).
    public static let running = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING.rawValue)
    /// Paused domains (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_PAUSED`).
    public static let paused = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_PAUSED.rawValue)
    /// Shut-off domains (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_SHUTOFF`).
    public static let shutoff = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_SHUTOFF.rawValue)
    /// Domains in other states (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_OTHER`).
    public static let other = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_OTHER.rawValue)
    /// Skip statistics that would wait for a busy domain's job (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT`).
    public static let noWait = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT.rawValue)
    /// Include each disk's backing chain (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING`).
    public static let backing = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING.rawValue)
    /// Fail rather than skip a group the driver cannot give (`VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS`).
    public static let enforceStats = DomainStatsFlags(rawValue: VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS.rawValue)
}

/// The `cpu.*` group: CPU time used by the domain, in nanoseconds.
public struct DomainCPUStats: Sendable, Equatable {
    /// Total CPU time (`cpu.time`); its change over wall time is the CPU usage.
    public var timeNs: UInt64
    /// User-mode time (`cpu.user`).
    public var userNs: UInt64?
    /// Kernel-mode time (`cpu.system`).
    public var systemNs: UInt64?
}

/// The `balloon.*` group, in KiB.
public struct DomainBalloonStats: Sendable, Equatable {
    /// Memory the guest has now (`balloon.current`): Hyper-V's MemoryAssigned.
    public var currentKiB: UInt64
    /// The most it may have (`balloon.maximum`).
    public var maximumKiB: UInt64?
    /// Resident size of the QEMU process (`balloon.rss`).
    public var rssKiB: UInt64?
    /// Guest-reported unused memory (`balloon.unused`).
    public var unusedKiB: UInt64?
    /// Guest-reported usable memory (`balloon.usable`).
    public var usableKiB: UInt64?
    /// Guest-reported available memory (`balloon.available`).
    public var availableKiB: UInt64?
}

/// One vCPU of the `vcpu.*` group.
public struct DomainVcpuStats: Sendable, Equatable {
    /// Its index (`vcpu.<n>`).
    public var index: Int
    /// A `virVcpuState` value: 0 offline, 1 running, 2 blocked (`vcpu.<n>.state`).
    public var state: Int32?
    /// CPU time in nanoseconds (`vcpu.<n>.time`).
    public var timeNs: UInt64?
    /// Time spent waiting for a host CPU, ns (`vcpu.<n>.wait`).
    public var waitNs: UInt64?
}

/// One disk of the `block.*` group.
public struct DomainBlockStats: Sendable, Equatable {
    /// Its target, e.g. "sda" (`block.<n>.name`).
    public var name: String
    /// Its source path, if it has one (`block.<n>.path`).
    public var path: String?
    /// Which layer of the backing chain this entry is, with `.backing` (`block.<n>.backingIndex`).
    public var backingIndex: UInt64?
    /// Bytes read (`block.<n>.rd.bytes`).
    public var readBytes: UInt64?
    /// Read requests (`block.<n>.rd.reqs`).
    public var readRequests: UInt64?
    /// Bytes written (`block.<n>.wr.bytes`).
    public var writeBytes: UInt64?
    /// Write requests (`block.<n>.wr.reqs`).
    public var writeRequests: UInt64?
    /// Bytes in use on the host (`block.<n>.allocation`).
    public var allocationBytes: UInt64?
    /// Logical size (`block.<n>.capacity`).
    public var capacityBytes: UInt64?
    /// Host size of the image (`block.<n>.physical`).
    public var physicalBytes: UInt64?
}

/// One NIC of the `net.*` group.
public struct DomainInterfaceStats: Sendable, Equatable {
    /// The host-side device, e.g. "vnet3" (`net.<n>.name`).
    public var name: String
    /// Bytes received by the guest (`net.<n>.rx.bytes`).
    public var receivedBytes: UInt64?
    /// Bytes sent by the guest (`net.<n>.tx.bytes`).
    public var transmittedBytes: UInt64?
    /// Packets received (`net.<n>.rx.pkts`).
    public var receivedPackets: UInt64?
    /// Packets sent (`net.<n>.tx.pkts`).
    public var transmittedPackets: UInt64?
}

/// One domain's statistics from `LibvirtConnection.allDomainStats`; a group is nil when it
/// was not asked for or libvirt did not report it (e.g. CPU time of a stopped domain).
public struct DomainStatsRecord: Sendable, Equatable {
    /// The domain's lowercase UUID.
    public var uuid: String
    /// The domain's name.
    public var name: String
    /// `state.state`; nil for a value this wrapper does not know.
    public var state: DomainState?
    /// `state.reason`, a `virDomain<State>Reason` value.
    public var stateReason: Int32?
    /// The `cpu.*` group.
    public var cpu: DomainCPUStats?
    /// The `balloon.*` group.
    public var balloon: DomainBalloonStats?
    /// `vcpu.current`: vCPUs online now.
    public var vcpuCurrent: UInt32?
    /// `vcpu.maximum`.
    public var vcpuMaximum: UInt32?
    /// `vcpu.<n>.*`, in index order.
    public var vcpus: [DomainVcpuStats]?
    /// `block.<n>.*`, in libvirt's order.
    public var blocks: [DomainBlockStats]?
    /// `net.<n>.*`, in libvirt's order.
    public var interfaces: [DomainInterfaceStats]?
    /// Every reported field by name, e.g. "cpu.time".
    public var raw: [String: TypedParameterValue]

    init(uuid: String, name: String, parameters p: TypedParameters) {
        self.uuid = uuid
        self.name = name
        raw = p
        state = p.signed("state.state").flatMap { Int32(exactly: $0) }.flatMap(DomainState.init(rawValue:))
        stateReason = p.signed("state.reason").flatMap { Int32(exactly: $0) }
        cpu = p.unsigned("cpu.time").map {
            DomainCPUStats(timeNs: $0, userNs: p.unsigned("cpu.user"), systemNs: p.unsigned("cpu.system"))
        }
        balloon = p.unsigned("balloon.current").map {
            DomainBalloonStats(currentKiB: $0, maximumKiB: p.unsigned("balloon.maximum"), rssKiB: p.unsigned("balloon.rss"),
                               unusedKiB: p.unsigned("balloon.unused"), usableKiB: p.unsigned("balloon.usable"),
                               availableKiB: p.unsigned("balloon.available"))
        }
        vcpuCurrent = p.unsigned("vcpu.current").flatMap { UInt32(exactly: $0) }
        vcpuMaximum = p.unsigned("vcpu.maximum").flatMap { UInt32(exactly: $0) }
        vcpus = vcpuMaximum.map { maximum in
            (0..<Int(maximum)).compactMap { index in
                let prefix = "vcpu.\(index)."
                guard p.keys.contains(where: { $0.hasPrefix(prefix) }) else { return nil }
                return DomainVcpuStats(index: index, state: p.signed(prefix + "state").flatMap { Int32(exactly: $0) },
                                       timeNs: p.unsigned(prefix + "time"), waitNs: p.unsigned(prefix + "wait"))
            }
        }
        blocks = p.unsigned("block.count").map { count in
            (0..<Int(count)).map { index in
                let prefix = "block.\(index)."
                return DomainBlockStats(
                    name: p.string(prefix + "name") ?? "", path: p.string(prefix + "path"),
                    backingIndex: p.unsigned(prefix + "backingIndex"),
                    readBytes: p.unsigned(prefix + "rd.bytes"), readRequests: p.unsigned(prefix + "rd.reqs"),
                    writeBytes: p.unsigned(prefix + "wr.bytes"), writeRequests: p.unsigned(prefix + "wr.reqs"),
                    allocationBytes: p.unsigned(prefix + "allocation"), capacityBytes: p.unsigned(prefix + "capacity"),
                    physicalBytes: p.unsigned(prefix + "physical"))
            }
        }
        interfaces = p.unsigned("net.count").map { count in
            (0..<Int(count)).map { index in
                let prefix = "net.\(index)."
                return DomainInterfaceStats(
                    name: p.string(prefix + "name") ?? "",
                    receivedBytes: p.unsigned(prefix + "rx.bytes"), transmittedBytes: p.unsigned(prefix + "tx.bytes"),
                    receivedPackets: p.unsigned(prefix + "rx.pkts"), transmittedPackets: p.unsigned(prefix + "tx.pkts"))
            }
        }
    }
}

extension LibvirtConnection {
    /// The statistics `groups` of every domain matching `flags`, in one call (one round trip
    /// to libvirtd for all domains). An empty `groups` asks for everything the driver has.
    /// Wraps `virConnectGetAllDomainStats` and `virDomainStatsRecordListFree`.
    public func allDomainStats(groups: DomainStatsGroups, flags: DomainStatsFlags = []) throws -> [DomainStatsRecord] {
        var records: UnsafeMutablePointer<virDomainStatsRecordPtr?>?
        let count = try check("virConnectGetAllDomainStats") {
            virConnectGetAllDomainStats(handle, groups.rawValue, &records, flags.rawValue)
        }
        return try readStatsRecords(records, count: count)
    }

    /// The statistics `groups` of the given domains, in one call.
    /// Wraps `virDomainListGetStats` and `virDomainStatsRecordListFree`.
    public func domainStats(_ domains: [LibvirtDomain], groups: DomainStatsGroups,
                            flags: DomainStatsFlags = []) throws -> [DomainStatsRecord] {
        guard !domains.isEmpty else { return [] }
        // A NULL-terminated array of the handles, which stay owned by `domains`.
        var handles: [OpaquePointer?] = domains.map(\.handle) + [nil]
        var records: UnsafeMutablePointer<virDomainStatsRecordPtr?>?
        let count = try handles.withUnsafeMutableBufferPointer { buffer in
            try check("virDomainListGetStats") {
                virDomainListGetStats(buffer.baseAddress, groups.rawValue, &records, flags.rawValue)
            }
        }
        return try withExtendedLifetime(domains) { try readStatsRecords(records, count: count) }
    }

    private func readStatsRecords(_ records: UnsafeMutablePointer<virDomainStatsRecordPtr?>?,
                                  count: Int32) throws(LibvirtError) -> [DomainStatsRecord] {
        guard let records else { return [] }
        defer { virDomainStatsRecordListFree(records) }
        var result: [DomainStatsRecord] = []
        for record in UnsafeBufferPointer(start: records, count: Int(count)) {
            guard let record = record?.pointee, let domain = record.dom else { continue }
            guard let uuid = domainUUIDString(domain) else {
                throw LibvirtError.wrapper("cannot read the domain UUID", function: "virDomainGetUUIDString")
            }
            let name = try borrowString("virDomainGetName") { virDomainGetName(domain) }
            result.append(DomainStatsRecord(uuid: uuid, name: name,
                                            parameters: readTypedParameters(record.params, count: record.nparams)))
        }
        return result
    }
}
