internal import CLibvirt

// MARK: - States and events

/// A domain's run state, mirroring `virDomainState` value for value.
/// Read with `LibvirtDomain.state()` (wraps `virDomainGetState`).
public enum DomainState: Int32, Sendable, CaseIterable {
    /// No state (`VIR_DOMAIN_NOSTATE`).
    case noState = 0
    /// Running (`VIR_DOMAIN_RUNNING`).
    case running = 1
    /// Blocked on a resource (`VIR_DOMAIN_BLOCKED`).
    case blocked = 2
    /// Paused by the user or by libvirt, e.g. while saving (`VIR_DOMAIN_PAUSED`).
    case paused = 3
    /// Being shut down (`VIR_DOMAIN_SHUTDOWN`).
    case shutdown = 4
    /// Off (`VIR_DOMAIN_SHUTOFF`).
    case shutoff = 5
    /// Crashed (`VIR_DOMAIN_CRASHED`).
    case crashed = 6
    /// Suspended by guest power management (`VIR_DOMAIN_PMSUSPENDED`).
    case pmSuspended = 7
}

/// The kind of a lifecycle event, mirroring `virDomainEventType` value for value.
/// Delivered as the `event` of `DomainEvent.lifecycle`.
public enum LifecycleEvent: Int32, Sendable, CaseIterable {
    /// A persistent configuration was defined or updated (`VIR_DOMAIN_EVENT_DEFINED`).
    case defined = 0
    /// The persistent configuration was removed (`VIR_DOMAIN_EVENT_UNDEFINED`).
    case undefined = 1
    /// The domain started, booted or was restored (`VIR_DOMAIN_EVENT_STARTED`).
    case started = 2
    /// The domain was paused (`VIR_DOMAIN_EVENT_SUSPENDED`).
    case suspended = 3
    /// The domain was unpaused (`VIR_DOMAIN_EVENT_RESUMED`).
    case resumed = 4
    /// The domain stopped: shut down, destroyed, saved, crashed… (`VIR_DOMAIN_EVENT_STOPPED`).
    case stopped = 5
    /// The guest began or finished shutting down (`VIR_DOMAIN_EVENT_SHUTDOWN`).
    case shutdown = 6
    /// The guest suspended itself via power management (`VIR_DOMAIN_EVENT_PMSUSPENDED`).
    case pmsuspended = 7
    /// The guest crashed (`VIR_DOMAIN_EVENT_CRASHED`).
    case crashed = 8
}

/// Which metadata field `LibvirtDomain.metadata` / `setMetadata` address, mirroring
/// `virDomainMetadataType`.
public enum MetadataType: Int32, Sendable, CaseIterable {
    /// The free-form `<description>` element (`VIR_DOMAIN_METADATA_DESCRIPTION`).
    case description = 0
    /// The one-line `<title>` element (`VIR_DOMAIN_METADATA_TITLE`).
    case title = 1
    /// An application element in its own namespace under `<metadata>`
    /// (`VIR_DOMAIN_METADATA_ELEMENT`).
    case element = 2
}

/// Why a connection closed, mirroring `virConnectCloseReason`; the `Int32` passed to
/// `LibvirtConnection.onClose` handlers.
public enum ConnectionCloseReason: Int32, Sendable, CaseIterable {
    /// A transport error (`VIR_CONNECT_CLOSE_REASON_ERROR`).
    case error = 0
    /// The other end closed the socket (`VIR_CONNECT_CLOSE_REASON_EOF`).
    case endOfFile = 1
    /// Keepalive timed out (`VIR_CONNECT_CLOSE_REASON_KEEPALIVE`).
    case keepalive = 2
    /// The client closed the connection (`VIR_CONNECT_CLOSE_REASON_CLIENT`).
    case client = 3
}

// MARK: - Flags

/// Flags for `LibvirtDomain.xml(flags:)`, mapping `virDomainXMLFlags`.
public struct XMLFlags: OptionSet, Sendable {
    /// The raw `virDomainXMLFlags` bits.
    public let rawValue: UInt32
    /// Creates flags from raw `virDomainXMLFlags` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Include security-sensitive data such as VNC passwords (`VIR_DOMAIN_XML_SECURE`).
    public static let secure = XMLFlags(rawValue: VIR_DOMAIN_XML_SECURE.rawValue)
    /// The persistent configuration rather than the live one (`VIR_DOMAIN_XML_INACTIVE`).
    public static let inactive = XMLFlags(rawValue: VIR_DOMAIN_XML_INACTIVE.rawValue)
    /// Update the guest CPU from the host CPU (`VIR_DOMAIN_XML_UPDATE_CPU`).
    public static let updateCPU = XMLFlags(rawValue: VIR_DOMAIN_XML_UPDATE_CPU.rawValue)
    /// XML suitable for migration or export (`VIR_DOMAIN_XML_MIGRATABLE`).
    public static let migratable = XMLFlags(rawValue: VIR_DOMAIN_XML_MIGRATABLE.rawValue)
}

/// Flags for `LibvirtDomain.undefine(flags:)`, mapping `virDomainUndefineFlagsValues`.
public struct UndefineFlags: OptionSet, Sendable {
    /// The raw `virDomainUndefineFlagsValues` bits.
    public let rawValue: UInt32
    /// Creates flags from raw `virDomainUndefineFlagsValues` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Also remove a managed-save image (`VIR_DOMAIN_UNDEFINE_MANAGED_SAVE`).
    public static let managedSave = UndefineFlags(rawValue: VIR_DOMAIN_UNDEFINE_MANAGED_SAVE.rawValue)
    /// Also remove snapshot metadata (`VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA`).
    public static let snapshotsMetadata = UndefineFlags(rawValue: VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA.rawValue)
    /// Also remove the UEFI NVRAM file (`VIR_DOMAIN_UNDEFINE_NVRAM`).
    public static let nvram = UndefineFlags(rawValue: VIR_DOMAIN_UNDEFINE_NVRAM.rawValue)
    /// Keep the UEFI NVRAM file (`VIR_DOMAIN_UNDEFINE_KEEP_NVRAM`).
    public static let keepNVRAM = UndefineFlags(rawValue: VIR_DOMAIN_UNDEFINE_KEEP_NVRAM.rawValue)
    /// Also remove checkpoint metadata (`VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA`).
    public static let checkpointsMetadata = UndefineFlags(rawValue: VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA.rawValue)
    /// Also remove the emulated TPM state (`VIR_DOMAIN_UNDEFINE_TPM`).
    public static let tpm = UndefineFlags(rawValue: VIR_DOMAIN_UNDEFINE_TPM.rawValue)
    /// Keep the emulated TPM state (`VIR_DOMAIN_UNDEFINE_KEEP_TPM`).
    public static let keepTPM = UndefineFlags(rawValue: VIR_DOMAIN_UNDEFINE_KEEP_TPM.rawValue)
}

/// Which configuration a change affects, mapping `virDomainModificationImpact` plus the
/// shared "maximum" bit of `virDomainVcpuFlags` / `virDomainMemoryModFlags`.
public struct ModificationFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The current state: live if running, config if not (`VIR_DOMAIN_AFFECT_CURRENT`, 0,
    /// so equal to the empty set).
    public static let current = ModificationFlags(rawValue: VIR_DOMAIN_AFFECT_CURRENT.rawValue)
    /// The running domain (`VIR_DOMAIN_AFFECT_LIVE`).
    public static let live = ModificationFlags(rawValue: VIR_DOMAIN_AFFECT_LIVE.rawValue)
    /// The persistent configuration (`VIR_DOMAIN_AFFECT_CONFIG`).
    public static let config = ModificationFlags(rawValue: VIR_DOMAIN_AFFECT_CONFIG.rawValue)
    /// The maximum rather than the current value, for vCPU and memory changes
    /// (`VIR_DOMAIN_VCPU_MAXIMUM`, equal to `VIR_DOMAIN_MEM_MAXIMUM`).
    public static let maximum = ModificationFlags(rawValue: VIR_DOMAIN_VCPU_MAXIMUM.rawValue)
}

/// Flags for starting a domain, mapping `virDomainCreateFlags`.
public struct StartFlags: OptionSet, Sendable {
    /// The raw `virDomainCreateFlags` bits.
    public let rawValue: UInt32
    /// Creates flags from raw `virDomainCreateFlags` bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Start with the CPUs paused (`VIR_DOMAIN_START_PAUSED`).
    public static let paused = StartFlags(rawValue: VIR_DOMAIN_START_PAUSED.rawValue)
    /// Destroy the domain when this connection closes (`VIR_DOMAIN_START_AUTODESTROY`).
    public static let autoDestroy = StartFlags(rawValue: VIR_DOMAIN_START_AUTODESTROY.rawValue)
    /// Bypass the host page cache when restoring (`VIR_DOMAIN_START_BYPASS_CACHE`).
    public static let bypassCache = StartFlags(rawValue: VIR_DOMAIN_START_BYPASS_CACHE.rawValue)
    /// Boot afresh, discarding a managed-save image (`VIR_DOMAIN_START_FORCE_BOOT`).
    public static let forceBoot = StartFlags(rawValue: VIR_DOMAIN_START_FORCE_BOOT.rawValue)
    /// Validate the XML against the schema (`VIR_DOMAIN_START_VALIDATE`).
    public static let validate = StartFlags(rawValue: VIR_DOMAIN_START_VALIDATE.rawValue)
    /// Re-create UEFI NVRAM from its template (`VIR_DOMAIN_START_RESET_NVRAM`).
    public static let resetNVRAM = StartFlags(rawValue: VIR_DOMAIN_START_RESET_NVRAM.rawValue)
}

/// How to ask a guest to shut down or reboot, mapping `virDomainShutdownFlagValues`
/// (the `virDomainRebootFlagValues` bits are the same). Empty means "hypervisor's choice".
public struct ShutdownModes: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates modes from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Press the ACPI power button (`VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN`).
    public static let acpiPowerButton = ShutdownModes(rawValue: VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN.rawValue)
    /// Ask the guest agent (`VIR_DOMAIN_SHUTDOWN_GUEST_AGENT`).
    public static let guestAgent = ShutdownModes(rawValue: VIR_DOMAIN_SHUTDOWN_GUEST_AGENT.rawValue)
    /// Use initctl, for containers (`VIR_DOMAIN_SHUTDOWN_INITCTL`).
    public static let initctl = ShutdownModes(rawValue: VIR_DOMAIN_SHUTDOWN_INITCTL.rawValue)
    /// Send a signal, for containers (`VIR_DOMAIN_SHUTDOWN_SIGNAL`).
    public static let signal = ShutdownModes(rawValue: VIR_DOMAIN_SHUTDOWN_SIGNAL.rawValue)
    /// Paravirtual guest control (`VIR_DOMAIN_SHUTDOWN_PARAVIRT`).
    public static let paravirt = ShutdownModes(rawValue: VIR_DOMAIN_SHUTDOWN_PARAVIRT.rawValue)
}

/// Filters for `LibvirtConnection.allDomains(flags:)`, mapping `virConnectListAllDomainsFlags`.
/// The empty set lists every domain.
public struct ListDomainsFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Running or paused domains (`VIR_CONNECT_LIST_DOMAINS_ACTIVE`).
    public static let active = ListDomainsFlags(rawValue: VIR_CONNECT_LIST_DOMAINS_ACTIVE.rawValue)
    /// Stopped domains (`VIR_CONNECT_LIST_DOMAINS_INACTIVE`).
    public static let inactive = ListDomainsFlags(rawValue: VIR_CONNECT_LIST_DOMAINS_INACTIVE.rawValue)
    /// Domains with a persistent configuration (`VIR_CONNECT_LIST_DOMAINS_PERSISTENT`).
    public static let persistent = ListDomainsFlags(rawValue: VIR_CONNECT_LIST_DOMAINS_PERSISTENT.rawValue)
    /// Transient domains (`VIR_CONNECT_LIST_DOMAINS_TRANSIENT`).
    public static let transient = ListDomainsFlags(rawValue: VIR_CONNECT_LIST_DOMAINS_TRANSIENT.rawValue)
    /// Domains with a managed-save image (`VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE`).
    public static let managedSave = ListDomainsFlags(rawValue: VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE.rawValue)
    /// Domains marked for autostart (`VIR_CONNECT_LIST_DOMAINS_AUTOSTART`).
    public static let autostart = ListDomainsFlags(rawValue: VIR_CONNECT_LIST_DOMAINS_AUTOSTART.rawValue)
}

// MARK: - Value types

/// Host hardware as libvirt sees it. Read with `LibvirtConnection.nodeInfo()`
/// (wraps `virNodeGetInfo`).
public struct NodeInfo: Sendable, Equatable {
    /// CPU model / architecture string, e.g. "x86_64".
    public var cpuModel: String
    /// Installed memory in bytes.
    public var memoryBytes: UInt64
    /// Number of active logical CPUs.
    public var cpus: UInt32
    /// Expected CPU frequency in MHz (0 if unknown).
    public var mhz: UInt32
    /// NUMA nodes (1 for a uniform memory host).
    public var numaNodes: UInt32
    /// CPU sockets per NUMA node.
    public var socketsPerNode: UInt32
    /// Cores per socket.
    public var coresPerSocket: UInt32
    /// Threads per core.
    public var threadsPerCore: UInt32
}

/// A snapshot of a domain's resources. Read with `LibvirtDomain.info()`
/// (wraps `virDomainGetInfo`).
public struct DomainInfo: Sendable, Equatable {
    /// Run state.
    public var state: DomainState
    /// Maximum memory in KiB.
    public var maxMemKiB: UInt64
    /// Memory currently in use (or configured, when off) in KiB.
    public var memoryKiB: UInt64
    /// Number of virtual CPUs.
    public var vcpus: UInt32
    /// CPU time used, in nanoseconds.
    public var cpuTime: UInt64
}

/// Guest memory statistics; each field is nil when the hypervisor did not report it.
/// Read with `LibvirtDomain.memoryStats()` (wraps `virDomainMemoryStats`).
public struct MemoryStats: Sendable, Equatable {
    /// Current balloon size in KiB (`VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON`).
    public var actualBalloonKiB: UInt64?
    /// Memory the guest leaves completely unused, KiB (`VIR_DOMAIN_MEMORY_STAT_UNUSED`).
    public var unusedKiB: UInt64?
    /// Memory the guest sees as usable, KiB (`VIR_DOMAIN_MEMORY_STAT_AVAILABLE`).
    public var availableKiB: UInt64?
    /// Memory the guest could reclaim without swapping, KiB (`VIR_DOMAIN_MEMORY_STAT_USABLE`).
    public var usableKiB: UInt64?
    /// Resident set size of the hypervisor process, KiB (`VIR_DOMAIN_MEMORY_STAT_RSS`).
    public var rssKiB: UInt64?
    /// Guest disk caches, KiB (`VIR_DOMAIN_MEMORY_STAT_DISK_CACHES`).
    public var diskCachesKiB: UInt64?
    /// Unix time of the guest's last statistics update (`VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE`).
    public var lastUpdate: UInt64?
    /// Every reported tag (`virDomainMemoryStatTags`) with its value.
    public var raw: [Int32: UInt64]
}

/// Host CPU time counters in nanoseconds. Read with `LibvirtConnection.cpuStats(cpu:)`
/// (wraps `virNodeGetCPUStats`).
public struct NodeCPUStats: Sendable, Equatable {
    /// Every counter libvirt reported, by its name (`VIR_NODE_CPU_STATS_*`).
    public var counters: [String: UInt64]

    /// Time in the kernel (`VIR_NODE_CPU_STATS_KERNEL`).
    public var kernelNs: UInt64? { counters[VIR_NODE_CPU_STATS_KERNEL] }
    /// Time in user mode (`VIR_NODE_CPU_STATS_USER`).
    public var userNs: UInt64? { counters[VIR_NODE_CPU_STATS_USER] }
    /// Idle time (`VIR_NODE_CPU_STATS_IDLE`).
    public var idleNs: UInt64? { counters[VIR_NODE_CPU_STATS_IDLE] }
    /// Time waiting for I/O (`VIR_NODE_CPU_STATS_IOWAIT`).
    public var iowaitNs: UInt64? { counters[VIR_NODE_CPU_STATS_IOWAIT] }
}
