internal import CLibvirt

/// A libvirt domain (virtual machine), running or merely defined.
///
/// Owns one `virDomainPtr` and frees it when released; the handle keeps its connection alive
/// inside libvirt. The handle is a reference, not a snapshot: every method asks libvirt. All
/// methods block (see `LibvirtConnection`) and throw `LibvirtError`.
/// Wraps `virDomainFree` (in `deinit`).
public final class LibvirtDomain: @unchecked Sendable {
    /// The `virDomainPtr`, owned by this object.
    let handle: OpaquePointer

    /// Takes ownership of a `virDomainPtr` returned by a lookup or create call.
    init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        if virDomainFree(handle) < 0 { virResetLastError() }
    }

    // MARK: Identity and state

    /// The domain's UUID in lowercase canonical form (`xxxxxxxx-xxxx-…`); never changes.
    /// Wraps `virDomainGetUUIDString`.
    public var uuid: String {
        get throws {
            guard let uuid = domainUUIDString(handle) else {
                throw LibvirtError.wrapper("cannot read the domain UUID", function: "virDomainGetUUIDString")
            }
            return uuid
        }
    }

    /// The domain's current name. A `virDomainPtr` keeps the name it was looked up with even
    /// after a rename, so this looks the domain up again by UUID (one round trip); throws a
    /// `VIR_ERR_NO_DOMAIN` error once the domain is gone. Wraps `virDomainLookupByUUID` and
    /// `virDomainGetName`.
    public var name: String {
        get throws {
            var uuid = [UInt8](repeating: 0, count: 16) // VIR_UUID_BUFLEN
            try check("virDomainGetUUID") { virDomainGetUUID(handle, &uuid) }
            let connection = try checkNonNull("virDomainGetConnect") { virDomainGetConnect(handle) }
            let fresh = LibvirtDomain(owning: try checkNonNull("virDomainLookupByUUID") {
                virDomainLookupByUUID(connection, uuid)
            })
            return try fresh.cachedName
        }
    }

    /// The name stored in this handle, which may be stale after a rename.
    /// Wraps `virDomainGetName`.
    var cachedName: String {
        get throws { try borrowString("virDomainGetName") { virDomainGetName(handle) } }
    }

    /// The hypervisor's ID of a running domain, nil when it is not running.
    /// Wraps `virDomainGetID`.
    public var id: UInt32? {
        let id = virDomainGetID(handle)
        // (unsigned int)-1 means "not running" (or an invalid handle).
        if id == UInt32.max {
            virResetLastError()
            return nil
        }
        return id
    }

    /// The run state and the reason for it (a `virDomain<State>Reason` value, e.g.
    /// `VIR_DOMAIN_PAUSED_USER`). Wraps `virDomainGetState`.
    public func state() throws -> (state: DomainState, reason: Int32) {
        var state: Int32 = 0
        var reason: Int32 = 0
        try check("virDomainGetState") { virDomainGetState(handle, &state, &reason, 0) }
        guard let typed = DomainState(rawValue: state) else {
            throw LibvirtError.wrapper("unknown domain state \(state)", function: "virDomainGetState")
        }
        return (typed, reason)
    }

    /// State, memory, vCPU count and CPU time in one call. Wraps `virDomainGetInfo`.
    public func info() throws -> DomainInfo {
        var info = virDomainInfo()
        try check("virDomainGetInfo") { virDomainGetInfo(handle, &info) }
        guard let state = DomainState(rawValue: Int32(info.state)) else {
            throw LibvirtError.wrapper("unknown domain state \(info.state)", function: "virDomainGetInfo")
        }
        return DomainInfo(state: state, maxMemKiB: UInt64(info.maxMem), memoryKiB: UInt64(info.memory),
                          vcpus: UInt32(info.nrVirtCpu), cpuTime: info.cpuTime)
    }

    /// The maximum memory in KiB. Wraps `virDomainGetMaxMemory`.
    public func maxMemoryKiB() throws -> UInt64 {
        let kib = virDomainGetMaxMemory(handle)
        // libvirt itself treats 0 as failure (and reports an error for it).
        if kib == 0 { throw LibvirtError.last(function: "virDomainGetMaxMemory") }
        return UInt64(kib)
    }

    /// The number of vCPUs: live or configured (`.live` / `.config`), current or with
    /// `.maximum` the maximum. Wraps `virDomainGetVcpusFlags`.
    public func vcpuCount(flags: ModificationFlags = []) throws -> UInt32 {
        UInt32(try check("virDomainGetVcpusFlags") { virDomainGetVcpusFlags(handle, flags.rawValue) })
    }

    /// The domain's `<domain>` XML: the live definition, or with `.inactive` the persistent
    /// one. Wraps `virDomainGetXMLDesc`.
    public func xml(flags: XMLFlags = []) throws -> String {
        try takeString("virDomainGetXMLDesc") { virDomainGetXMLDesc(handle, flags.rawValue) }
    }

    /// Whether the domain is running or paused. Wraps `virDomainIsActive`.
    public var isActive: Bool {
        get throws { try check("virDomainIsActive") { virDomainIsActive(handle) } == 1 }
    }

    /// Whether the domain has a persistent configuration (is not transient).
    /// Wraps `virDomainIsPersistent`.
    public var isPersistent: Bool {
        get throws { try check("virDomainIsPersistent") { virDomainIsPersistent(handle) } == 1 }
    }

    /// Whether a managed-save image exists (the next start restores it).
    /// Wraps `virDomainHasManagedSaveImage`.
    public var hasManagedSaveImage: Bool {
        get throws { try check("virDomainHasManagedSaveImage") { virDomainHasManagedSaveImage(handle, 0) } == 1 }
    }

    /// Whether the domain starts when the host (libvirtd) starts. Wraps `virDomainGetAutostart`.
    public var autostart: Bool {
        get throws {
            var value: Int32 = 0
            try check("virDomainGetAutostart") { virDomainGetAutostart(handle, &value) }
            return value != 0
        }
    }

    /// Sets whether the domain starts with the host. Wraps `virDomainSetAutostart`.
    public func setAutostart(_ enabled: Bool) throws {
        try check("virDomainSetAutostart") { virDomainSetAutostart(handle, enabled ? 1 : 0) }
    }

    // MARK: Power

    /// Starts a defined domain, restoring its managed-save image if there is one.
    /// Wraps `virDomainCreate`.
    public func start() throws {
        try check("virDomainCreate") { virDomainCreate(handle) }
    }

    /// Starts a defined domain with options (paused, force boot, …).
    /// Wraps `virDomainCreateWithFlags`.
    public func start(flags: StartFlags) throws {
        try check("virDomainCreateWithFlags") { virDomainCreateWithFlags(handle, flags.rawValue) }
    }

    /// Asks the guest to shut down (ACPI or agent, hypervisor's choice); returns before the
    /// guest has stopped, and the guest may ignore it. Wraps `virDomainShutdown`.
    public func shutdown() throws {
        try check("virDomainShutdown") { virDomainShutdown(handle) }
    }

    /// Asks the guest to shut down using only the given `modes`.
    /// Wraps `virDomainShutdownFlags`.
    public func shutdown(modes: ShutdownModes) throws {
        try check("virDomainShutdownFlags") { virDomainShutdownFlags(handle, modes.rawValue) }
    }

    /// Stops the domain at once, like pulling the plug. A transient domain disappears.
    /// Wraps `virDomainDestroy`.
    public func destroy() throws {
        try check("virDomainDestroy") { virDomainDestroy(handle) }
    }

    /// Stops the domain; with `graceful` only SIGTERM is sent to the hypervisor process (no
    /// SIGKILL), so the call fails rather than risk data loss. Wraps `virDomainDestroyFlags`.
    public func destroy(graceful: Bool) throws {
        let flags = graceful ? VIR_DOMAIN_DESTROY_GRACEFUL.rawValue : VIR_DOMAIN_DESTROY_DEFAULT.rawValue
        try check("virDomainDestroyFlags") { virDomainDestroyFlags(handle, flags) }
    }

    /// Pauses the domain's vCPUs; memory stays allocated. Wraps `virDomainSuspend`.
    public func suspend() throws {
        try check("virDomainSuspend") { virDomainSuspend(handle) }
    }

    /// Resumes a paused domain. Wraps `virDomainResume`.
    public func resume() throws {
        try check("virDomainResume") { virDomainResume(handle) }
    }

    /// Hard-resets the domain, like the reset button; the guest is not asked.
    /// Wraps `virDomainReset`.
    public func reset() throws {
        try check("virDomainReset") { virDomainReset(handle, 0) }
    }

    /// Asks the guest to reboot. Wraps `virDomainReboot`.
    public func reboot() throws {
        try check("virDomainReboot") { virDomainReboot(handle, 0) }
    }

    /// Saves the running domain's memory to a libvirt-managed image and stops it; the next
    /// `start()` restores it. Wraps `virDomainManagedSave`.
    public func managedSave() throws {
        try check("virDomainManagedSave") { virDomainManagedSave(handle, 0) }
    }

    /// Deletes the managed-save image, so the next start boots afresh.
    /// Wraps `virDomainManagedSaveRemove`.
    public func managedSaveRemove() throws {
        try check("virDomainManagedSaveRemove") { virDomainManagedSaveRemove(handle, 0) }
    }

    // MARK: Configuration

    /// Removes the persistent configuration; a running domain becomes transient. Without
    /// `.managedSave` libvirt refuses when a managed-save image exists, and likewise for
    /// snapshots, checkpoints and NVRAM. Wraps `virDomainUndefineFlags`.
    public func undefine(flags: UndefineFlags = []) throws {
        try check("virDomainUndefineFlags") { virDomainUndefineFlags(handle, flags.rawValue) }
    }

    /// Renames an inactive, persistent domain; the UUID stays. Wraps `virDomainRename`.
    public func rename(to newName: String) throws {
        try check("virDomainRename") { virDomainRename(handle, newName, 0) }
    }

    /// Sets the current (balloon) memory, or with `.maximum` the maximum, in KiB.
    /// Wraps `virDomainSetMemoryFlags`.
    public func setMemory(kib: UInt64, flags: ModificationFlags = []) throws {
        try check("virDomainSetMemoryFlags") { virDomainSetMemoryFlags(handle, UInt(clamping: kib), flags.rawValue) }
    }

    /// Sets the maximum memory in KiB. Wraps `virDomainSetMaxMemory`.
    public func setMaxMemory(kib: UInt64) throws {
        try check("virDomainSetMaxMemory") { virDomainSetMaxMemory(handle, UInt(clamping: kib)) }
    }

    /// Sets the number of vCPUs, or with `.maximum` the maximum (config only).
    /// Wraps `virDomainSetVcpusFlags`.
    public func setVcpus(count: UInt32, flags: ModificationFlags = []) throws {
        try check("virDomainSetVcpusFlags") { virDomainSetVcpusFlags(handle, count, flags.rawValue) }
    }

    /// Attaches a device described by `xml` (one `<disk>`, `<interface>`, …) to the live
    /// domain, its persistent definition, or both. Wraps `virDomainAttachDeviceFlags`.
    public func attachDevice(xml: String, flags: ModificationFlags) throws {
        _ = try check("virDomainAttachDeviceFlags") { virDomainAttachDeviceFlags(handle, xml, flags.rawValue) }
    }

    /// Detaches the device described by `xml`. Wraps `virDomainDetachDeviceFlags`.
    public func detachDevice(xml: String, flags: ModificationFlags) throws {
        _ = try check("virDomainDetachDeviceFlags") { virDomainDetachDeviceFlags(handle, xml, flags.rawValue) }
    }

    /// Sets CPU scheduler parameters: `cpu_shares`, and the CFS bandwidth of each vCPU
    /// (`vcpu_period`, `vcpu_quota` in microseconds; a negative quota means unlimited). Only
    /// the values given are changed. Wraps `virDomainSetSchedulerParametersFlags`.
    public func setSchedulerParameters(shares: UInt64? = nil, vcpuPeriod: UInt64? = nil, vcpuQuota: Int64? = nil,
                                       flags: ModificationFlags) throws {
        let params = TypedParameterList()
        try params.add(VIR_DOMAIN_SCHEDULER_CPU_SHARES, shares)
        try params.add(VIR_DOMAIN_SCHEDULER_VCPU_PERIOD, vcpuPeriod)
        try params.add(VIR_DOMAIN_SCHEDULER_VCPU_QUOTA, vcpuQuota)
        guard !params.isEmpty else { return }
        try params.withParameters { params, count in
            try check("virDomainSetSchedulerParametersFlags") {
                virDomainSetSchedulerParametersFlags(handle, params, count, flags.rawValue)
            }
        }
    }

    /// Reads the description, title, or (with `uri`) an application element from
    /// `<metadata>`; nil when it is not set. Wraps `virDomainGetMetadata`.
    public func metadata(type: MetadataType, uri: String? = nil, flags: ModificationFlags = []) throws -> String? {
        do {
            return try withOptionalCString(uri) { uri in
                try takeString("virDomainGetMetadata") {
                    virDomainGetMetadata(handle, type.rawValue, uri, flags.rawValue)
                }
            }
        } catch let error as LibvirtError where error.isNoMetadata {
            return nil
        }
    }

    /// Sets (or with nil removes) the description, title, or an application element. For
    /// `.element`, `value` is one XML element, `key` its namespace prefix and `uri` its
    /// namespace. Wraps `virDomainSetMetadata`.
    public func setMetadata(type: MetadataType, value: String?, key: String? = nil, uri: String? = nil,
                            flags: ModificationFlags = []) throws {
        try withOptionalCString(value) { value in
            try withOptionalCString(key) { key in
                try withOptionalCString(uri) { uri in
                    _ = try check("virDomainSetMetadata") {
                        virDomainSetMetadata(handle, type.rawValue, value, key, uri, flags.rawValue)
                    }
                }
            }
        }
    }

    /// Balloon and guest memory statistics of a running domain.
    /// Wraps `virDomainMemoryStats`.
    public func memoryStats() throws -> MemoryStats {
        let capacity = Int(VIR_DOMAIN_MEMORY_STAT_NR.rawValue)
        var stats = [virDomainMemoryStatStruct](repeating: virDomainMemoryStatStruct(), count: capacity)
        let count = try stats.withUnsafeMutableBufferPointer { buffer in
            try check("virDomainMemoryStats") {
                virDomainMemoryStats(handle, buffer.baseAddress, UInt32(buffer.count), 0)
            }
        }
        var raw: [Int32: UInt64] = [:]
        for stat in stats.prefix(Int(count)) { raw[stat.tag] = stat.val }
        func value(_ tag: virDomainMemoryStatTags) -> UInt64? { raw[cInt(tag)] }
        return MemoryStats(
            actualBalloonKiB: value(VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON),
            unusedKiB: value(VIR_DOMAIN_MEMORY_STAT_UNUSED),
            availableKiB: value(VIR_DOMAIN_MEMORY_STAT_AVAILABLE),
            usableKiB: value(VIR_DOMAIN_MEMORY_STAT_USABLE),
            rssKiB: value(VIR_DOMAIN_MEMORY_STAT_RSS),
            diskCachesKiB: value(VIR_DOMAIN_MEMORY_STAT_DISK_CACHES),
            lastUpdate: value(VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE),
            raw: raw
        )
    }
}
