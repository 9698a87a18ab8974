internal import CLibvirt
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A connection to a libvirt driver (`qemu:///system`, `test:///default`, …).
///
/// libvirt connections are thread-safe, so one instance may be shared across threads. Every
/// method blocks until libvirt answers (for remote drivers that is a round trip to libvirtd);
/// call them from a dedicated worker thread, not from the Swift concurrency pool.
/// The connection is closed when the last reference goes away.
/// Wraps `virConnectOpen` / `virConnectClose`.
public final class LibvirtConnection: @unchecked Sendable {
    /// The `virConnectPtr`, owned by this object.
    let handle: OpaquePointer
    /// Whether a close callback is registered, so `deinit` can unregister it first.
    private let closeCallbackRegistered = Mutex<Bool>(false)
    /// The Swift side of this connection's domain-event callbacks.
    let domainEvents = EventHub<DomainEventFamily>()
    /// The Swift side of this connection's network-event callbacks.
    let networkEvents = EventHub<NetworkEventFamily>()
    /// The Swift side of this connection's storage-pool-event callbacks.
    let storagePoolEvents = EventHub<StoragePoolEventFamily>()

    /// Opens a read-write connection to `uri`, e.g. `qemu:///system` or `test:///default`
    /// (an in-process fake hypervisor with fresh state per connection).
    /// Wraps `virConnectOpen`.
    public init(uri: String) throws {
        LibvirtRuntime.ensureInitialized()
        handle = try checkNonNull("virConnectOpen") { virConnectOpen(uri) }
    }

    deinit {
        // The close callback holds its own reference to the connection; unregister it so
        // virConnectClose really releases it.
        if closeCallbackRegistered.withLock({ $0 }) {
            if virConnectUnregisterCloseCallback(handle, connectionCloseTrampoline) < 0 {
                virResetLastError()
            }
        }
        if virConnectClose(handle) < 0 { virResetLastError() }
    }

    // MARK: Host information

    /// The canonical URI of this connection. Wraps `virConnectGetURI`.
    public var uri: String {
        get throws { try takeString("virConnectGetURI") { virConnectGetURI(handle) } }
    }

    /// The hypervisor host's name. Wraps `virConnectGetHostname`.
    public func hostname() throws -> String {
        try takeString("virConnectGetHostname") { virConnectGetHostname(handle) }
    }

    /// The driver name, e.g. "QEMU" or "TEST". Wraps `virConnectGetType`.
    public func type() throws -> String {
        try borrowString("virConnectGetType") { virConnectGetType(handle) }
    }

    /// The libvirt version used by the driver (the daemon's for remote connections),
    /// as "major.minor.micro". Wraps `virConnectGetLibVersion`.
    public func libraryVersion() throws -> String {
        var version: UInt = 0
        try check("virConnectGetLibVersion") { virConnectGetLibVersion(handle, &version) }
        return formatVersion(version)
    }

    /// The hypervisor's version (e.g. QEMU's) as "major.minor.micro".
    /// Wraps `virConnectGetVersion`.
    public func hypervisorVersion() throws -> String {
        var version: UInt = 0
        try check("virConnectGetVersion") { virConnectGetVersion(handle, &version) }
        return formatVersion(version)
    }

    /// The host's CPUs, memory and topology. Wraps `virNodeGetInfo`.
    public func nodeInfo() throws -> NodeInfo {
        var info = virNodeInfo()
        try check("virNodeGetInfo") { virNodeGetInfo(handle, &info) }
        return NodeInfo(
            cpuModel: stringFromCCharTuple(info.model),
            memoryBytes: UInt64(info.memory) * 1024,
            cpus: info.cpus,
            mhz: info.mhz,
            numaNodes: info.nodes,
            socketsPerNode: info.sockets,
            coresPerSocket: info.cores,
            threadsPerCore: info.threads
        )
    }

    /// Free host memory in bytes, all NUMA nodes together. Wraps `virNodeGetFreeMemory`.
    public func freeMemoryBytes() throws -> UInt64 {
        let free = virNodeGetFreeMemory(handle)
        // libvirt itself treats 0 as failure (and reports an error for it).
        if free == 0 { throw LibvirtError.last(function: "virNodeGetFreeMemory") }
        return free
    }

    /// The host's memory counters in KiB (`total`, `free`, `buffers`, `cached`, named as
    /// libvirt names them), all NUMA cells together. `total` is the real size where
    /// `virNodeGetInfo`'s figure is not (it is derived from the NUMA topology, which some
    /// virtual hosts report oddly). Wraps `virNodeGetMemoryStats`.
    public func memoryStats() throws -> [String: UInt64] {
        let cell = cInt(VIR_NODE_MEMORY_STATS_ALL_CELLS)
        var count: Int32 = 0
        try check("virNodeGetMemoryStats") { virNodeGetMemoryStats(handle, cell, nil, &count, 0) }
        guard count > 0 else { return [:] }
        var stats = [virNodeMemoryStats](repeating: virNodeMemoryStats(), count: Int(count))
        _ = try stats.withUnsafeMutableBufferPointer { (buffer) throws(LibvirtError) in
            try check("virNodeGetMemoryStats") { virNodeGetMemoryStats(handle, cell, buffer.baseAddress, &count, 0) }
        }
        var counters: [String: UInt64] = [:]
        for stat in stats.prefix(Int(count)) { counters[stringFromCCharTuple(stat.field)] = stat.value }
        return counters
    }

    /// The host's CPU time counters in nanoseconds since boot (`kernel`, `user`, `idle`,
    /// `iowait`, …, named as libvirt names them), for all CPUs or one (`cpu`).
    /// Wraps `virNodeGetCPUStats`.
    public func cpuStats(cpu: Int32? = nil) throws -> NodeCPUStats {
        let cpuNumber = cpu ?? cInt(VIR_NODE_CPU_STATS_ALL_CPUS)
        var count: Int32 = 0
        try check("virNodeGetCPUStats") { virNodeGetCPUStats(handle, cpuNumber, nil, &count, 0) }
        guard count > 0 else { return NodeCPUStats(counters: [:]) }
        var stats = [virNodeCPUStats](repeating: virNodeCPUStats(), count: Int(count))
        _ = try stats.withUnsafeMutableBufferPointer { (buffer) throws(LibvirtError) in
            try check("virNodeGetCPUStats") { virNodeGetCPUStats(handle, cpuNumber, buffer.baseAddress, &count, 0) }
        }
        var counters: [String: UInt64] = [:]
        for stat in stats.prefix(Int(count)) { counters[stringFromCCharTuple(stat.field)] = stat.value }
        return NodeCPUStats(counters: counters)
    }

    /// The host capabilities document (`<capabilities>`). Wraps `virConnectGetCapabilities`.
    public func capabilitiesXML() throws -> String {
        try takeString("virConnectGetCapabilities") { virConnectGetCapabilities(handle) }
    }

    /// The domain capabilities document (`<domainCapabilities>`: firmware, loaders, devices)
    /// for the given emulator, architecture, machine type and virtualization type; nil lets
    /// libvirt choose a default. Wraps `virConnectGetDomainCapabilities`.
    public func domainCapabilitiesXML(emulator: String? = nil, arch: String? = nil,
                                      machine: String? = nil, virttype: String? = nil) throws -> String {
        try withOptionalCString(emulator) { emulator in
            try withOptionalCString(arch) { arch in
                try withOptionalCString(machine) { machine in
                    try withOptionalCString(virttype) { virttype in
                        try takeString("virConnectGetDomainCapabilities") {
                            virConnectGetDomainCapabilities(handle, emulator, arch, machine, virttype, 0)
                        }
                    }
                }
            }
        }
    }

    /// Whether the connection is still usable; false also when libvirt cannot tell.
    /// Wraps `virConnectIsAlive`.
    public var isAlive: Bool {
        let rc = virConnectIsAlive(handle)
        if rc < 0 { virResetLastError() }
        return rc == 1
    }

    // MARK: Connection health

    /// Registers `handler` to run (on the event-loop thread) when the connection closes for
    /// any reason other than this object being released; `reason` is a
    /// `ConnectionCloseReason` raw value. Replaces any earlier handler. Needs
    /// `LibvirtEventLoop.start()`. Wraps `virConnectRegisterCloseCallback`.
    public func onClose(_ handler: @escaping @Sendable (Int32) -> Void) throws {
        let box = Unmanaged.passRetained(CloseCallbackBox(handler)).toOpaque()
        try closeCallbackRegistered.withLock { (registered: inout Bool) throws(LibvirtError) in
            if registered {
                // libvirt allows one close callback per connection.
                try check("virConnectUnregisterCloseCallback") {
                    virConnectUnregisterCloseCallback(handle, connectionCloseTrampoline)
                }
                registered = false
            }
            let rc = virConnectRegisterCloseCallback(handle, connectionCloseTrampoline, box, releaseCloseCallbackBox)
            if rc < 0 {
                let error = LibvirtError.last(function: "virConnectRegisterCloseCallback")
                // libvirt does not call the free callback when registration fails.
                Unmanaged<CloseCallbackBox>.fromOpaque(box).release()
                throw error
            }
            registered = true
        }
    }

    /// Starts libvirt's keepalive protocol: probe every `interval` seconds, give up after
    /// `count` unanswered probes and close the connection (which fires `onClose`). An
    /// `interval` of 0 or less disables keepalive. Returns false when the other side does not
    /// support keepalive; throws for drivers without a remote side (e.g. `test:///`).
    /// Needs `LibvirtEventLoop.start()`. Wraps `virConnectSetKeepAlive`.
    @discardableResult
    public func setKeepAlive(interval: Int32, count: UInt32) throws -> Bool {
        try check("virConnectSetKeepAlive") { virConnectSetKeepAlive(handle, interval, count) } == 0
    }

    // MARK: Domains

    /// All domains matching `flags` (empty: every domain, running or defined).
    /// Wraps `virConnectListAllDomains`.
    public func allDomains(flags: ListDomainsFlags = []) throws -> [LibvirtDomain] {
        try list("virConnectListAllDomains", LibvirtDomain.init(owning:)) {
            virConnectListAllDomains(handle, $0, flags.rawValue)
        }
    }

    /// The domain with this UUID (any case, with dashes); throws a `VIR_ERR_NO_DOMAIN` error
    /// when there is none. Wraps `virDomainLookupByUUIDString`.
    public func domain(uuid: String) throws -> LibvirtDomain {
        LibvirtDomain(owning: try checkNonNull("virDomainLookupByUUIDString") {
            virDomainLookupByUUIDString(handle, uuid)
        })
    }

    /// The domain with this name; throws a `VIR_ERR_NO_DOMAIN` error when there is none.
    /// Wraps `virDomainLookupByName`.
    public func domain(name: String) throws -> LibvirtDomain {
        LibvirtDomain(owning: try checkNonNull("virDomainLookupByName") {
            virDomainLookupByName(handle, name)
        })
    }

    /// Defines (or redefines, same UUID) a persistent domain from `<domain>` XML without
    /// starting it. `validate` checks the XML against libvirt's schema first.
    /// Wraps `virDomainDefineXMLFlags`.
    public func defineDomain(xml: String, validate: Bool = false) throws -> LibvirtDomain {
        let flags = validate ? VIR_DOMAIN_DEFINE_VALIDATE.rawValue : 0
        return LibvirtDomain(owning: try checkNonNull("virDomainDefineXMLFlags") {
            virDomainDefineXMLFlags(handle, xml, flags)
        })
    }

    /// Creates and starts a transient domain (gone once it stops).
    /// Wraps `virDomainCreateXML`.
    public func createDomain(xml: String, flags: StartFlags = []) throws -> LibvirtDomain {
        LibvirtDomain(owning: try checkNonNull("virDomainCreateXML") {
            virDomainCreateXML(handle, xml, flags.rawValue)
        })
    }

    // MARK: Storage

    /// All storage pools matching `flags` (empty: every pool, active or not).
    /// Wraps `virConnectListAllStoragePools`.
    public func allPools(flags: ListPoolsFlags = []) throws -> [LibvirtStoragePool] {
        try list("virConnectListAllStoragePools", LibvirtStoragePool.init(owning:)) {
            virConnectListAllStoragePools(handle, $0, flags.rawValue)
        }
    }

    /// The storage pool with this UUID (any case); throws a `.noStoragePool` error when there
    /// is none. Wraps `virStoragePoolLookupByUUIDString`.
    public func pool(uuid: String) throws -> LibvirtStoragePool {
        LibvirtStoragePool(owning: try checkNonNull("virStoragePoolLookupByUUIDString") {
            virStoragePoolLookupByUUIDString(handle, uuid)
        })
    }

    /// The storage pool whose target is the directory `path` (e.g. a VirtualHardDiskPath);
    /// throws a `.noStoragePool` error when there is none.
    /// Wraps `virStoragePoolLookupByTargetPath`.
    public func pool(targetPath path: String) throws -> LibvirtStoragePool {
        LibvirtStoragePool(owning: try checkNonNull("virStoragePoolLookupByTargetPath") {
            virStoragePoolLookupByTargetPath(handle, path)
        })
    }

    /// Creates and starts a transient storage pool from `<pool>` XML (gone once stopped).
    /// Wraps `virStoragePoolCreateXML`.
    public func createPool(xml: String) throws -> LibvirtStoragePool {
        LibvirtStoragePool(owning: try checkNonNull("virStoragePoolCreateXML") {
            virStoragePoolCreateXML(handle, xml, 0)
        })
    }

    /// Asks the storage backend of `type` (e.g. "iscsi", "iscsi-direct", "logical", "netfs")
    /// which pool sources it can find, given a `<source>` XML `spec` (for iSCSI: the portal
    /// `<host name=… port=…/>` and, for iscsi-direct, the `<initiator>`); returns a
    /// `<sources>` document. Wraps `virConnectFindStoragePoolSources`.
    public func findPoolSources(type: String, spec: String? = nil) throws -> String {
        try withOptionalCString(spec) { spec in
            try takeString("virConnectFindStoragePoolSources") {
                virConnectFindStoragePoolSources(handle, type, spec, 0)
            }
        }
    }

    /// The storage pool with this name; throws a `VIR_ERR_NO_STORAGE_POOL` error when there
    /// is none. Wraps `virStoragePoolLookupByName`.
    public func pool(name: String) throws -> LibvirtStoragePool {
        LibvirtStoragePool(owning: try checkNonNull("virStoragePoolLookupByName") {
            virStoragePoolLookupByName(handle, name)
        })
    }

    /// Defines a persistent, inactive storage pool from `<pool>` XML; then `build()` and
    /// `create()` it. Wraps `virStoragePoolDefineXML`.
    public func definePool(xml: String) throws -> LibvirtStoragePool {
        LibvirtStoragePool(owning: try checkNonNull("virStoragePoolDefineXML") {
            virStoragePoolDefineXML(handle, xml, 0)
        })
    }

    /// The storage volume at `path` in any active pool; throws a `VIR_ERR_NO_STORAGE_VOL`
    /// error when no pool holds it. Wraps `virStorageVolLookupByPath`.
    public func volume(path: String) throws -> LibvirtStorageVolume {
        LibvirtStorageVolume(owning: try checkNonNull("virStorageVolLookupByPath") {
            virStorageVolLookupByPath(handle, path)
        })
    }
}

// MARK: - Close callback plumbing

/// Carries a close handler through libvirt's `void *opaque`.
private final class CloseCallbackBox: Sendable {
    let handler: @Sendable (Int32) -> Void
    init(_ handler: @escaping @Sendable (Int32) -> Void) { self.handler = handler }
}

/// One fixed C function, so unregistering can name the same pointer that was registered.
private let connectionCloseTrampoline: virConnectCloseFunc = { _, reason, opaque in
    guard let opaque else { return }
    Unmanaged<CloseCallbackBox>.fromOpaque(opaque).takeUnretainedValue().handler(reason)
}

/// libvirt's free callback for a `CloseCallbackBox`.
private let releaseCloseCallbackBox: virFreeCallback = { opaque in
    guard let opaque else { return }
    Unmanaged<CloseCallbackBox>.fromOpaque(opaque).release()
}

/// Passes `string` as a C string, or NULL for nil.
@discardableResult
func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) throws -> R) rethrows -> R {
    guard let string else { return try body(nil) }
    return try string.withCString { try body($0) }
}
