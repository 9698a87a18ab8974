internal import CLibvirt
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Flags for `LibvirtStoragePool.build(flags:)`, mapping `virStoragePoolBuildFlags`.
/// The empty set builds from scratch (`VIR_STORAGE_POOL_BUILD_NEW`).
public struct PoolBuildFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Fail rather than overwrite existing data (`VIR_STORAGE_POOL_BUILD_NO_OVERWRITE`).
    public static let noOverwrite = PoolBuildFlags(rawValue: VIR_STORAGE_POOL_BUILD_NO_OVERWRITE.rawValue)
    /// Overwrite existing data (`VIR_STORAGE_POOL_BUILD_OVERWRITE`).
    public static let overwrite = PoolBuildFlags(rawValue: VIR_STORAGE_POOL_BUILD_OVERWRITE.rawValue)
}

/// Filters for `LibvirtConnection.allPools(flags:)`, mapping `virConnectListAllStoragePoolsFlags`.
/// The empty set lists every pool; type bits combine as "any of these types".
public struct ListPoolsFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Stopped pools (`VIR_CONNECT_LIST_STORAGE_POOLS_INACTIVE`).
    public static let inactive = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_INACTIVE.rawValue)
    /// Started pools (`VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE`).
    public static let active = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE.rawValue)
    /// Pools with a persistent definition (`VIR_CONNECT_LIST_STORAGE_POOLS_PERSISTENT`).
    public static let persistent = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_PERSISTENT.rawValue)
    /// Transient pools (`VIR_CONNECT_LIST_STORAGE_POOLS_TRANSIENT`).
    public static let transient = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_TRANSIENT.rawValue)
    /// Pools that start with the host (`VIR_CONNECT_LIST_STORAGE_POOLS_AUTOSTART`).
    public static let autostart = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_AUTOSTART.rawValue)
    /// Pools that do not (`VIR_CONNECT_LIST_STORAGE_POOLS_NO_AUTOSTART`).
    public static let noAutostart = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_NO_AUTOSTART.rawValue)
    /// Directory pools (`VIR_CONNECT_LIST_STORAGE_POOLS_DIR`).
    public static let dir = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_DIR.rawValue)
    /// Mounted file-system pools (`VIR_CONNECT_LIST_STORAGE_POOLS_FS`).
    public static let fs = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_FS.rawValue)
    /// Network file-system pools (`VIR_CONNECT_LIST_STORAGE_POOLS_NETFS`).
    public static let netfs = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_NETFS.rawValue)
    /// LVM volume groups (`VIR_CONNECT_LIST_STORAGE_POOLS_LOGICAL`).
    public static let logical = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_LOGICAL.rawValue)
    /// Partitioned disks (`VIR_CONNECT_LIST_STORAGE_POOLS_DISK`).
    public static let disk = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_DISK.rawValue)
    /// iSCSI targets through the kernel initiator (`VIR_CONNECT_LIST_STORAGE_POOLS_ISCSI`).
    public static let iscsi = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_ISCSI.rawValue)
    /// SCSI host adapters, including Fibre Channel vHBAs (`VIR_CONNECT_LIST_STORAGE_POOLS_SCSI`).
    public static let scsi = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_SCSI.rawValue)
    /// Multipath devices (`VIR_CONNECT_LIST_STORAGE_POOLS_MPATH`).
    public static let mpath = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_MPATH.rawValue)
    /// iSCSI targets through libiscsi (`VIR_CONNECT_LIST_STORAGE_POOLS_ISCSI_DIRECT`).
    public static let iscsiDirect = ListPoolsFlags(rawValue: VIR_CONNECT_LIST_STORAGE_POOLS_ISCSI_DIRECT.rawValue)
}

/// A storage pool's state, mirroring `virStoragePoolState`.
public enum StoragePoolState: Int32, Sendable, CaseIterable {
    /// Not running (`VIR_STORAGE_POOL_INACTIVE`).
    case inactive = 0
    /// Being initialized, not available (`VIR_STORAGE_POOL_BUILDING`).
    case building = 1
    /// Running normally (`VIR_STORAGE_POOL_RUNNING`).
    case running = 2
    /// Running degraded (`VIR_STORAGE_POOL_DEGRADED`).
    case degraded = 3
    /// Running, but its storage cannot be reached (`VIR_STORAGE_POOL_INACCESSIBLE`).
    case inaccessible = 4
}

/// A storage pool's state and space. Read with `LibvirtStoragePool.info()`
/// (wraps `virStoragePoolGetInfo`).
public struct StoragePoolInfo: Sendable, Equatable {
    /// The state; nil for a value this wrapper does not know.
    public var state: StoragePoolState?
    /// Logical size of the pool in bytes.
    public var capacityBytes: UInt64
    /// Bytes allocated to volumes.
    public var allocationBytes: UInt64
    /// Bytes free for new volumes.
    public var availableBytes: UInt64
}

/// A storage volume's kind, mirroring `virStorageVolType` (the `type` of `StorageVolumeInfo`).
public enum StorageVolumeType: Int32, Sendable, CaseIterable {
    /// A regular file, e.g. a qcow2 image (`VIR_STORAGE_VOL_FILE`).
    case file = 0
    /// A block device (`VIR_STORAGE_VOL_BLOCK`).
    case block = 1
    /// A directory (`VIR_STORAGE_VOL_DIR`).
    case dir = 2
    /// A network volume, e.g. an iSCSI LUN through libiscsi or RBD (`VIR_STORAGE_VOL_NETWORK`).
    case network = 3
    /// A network-accessible directory (`VIR_STORAGE_VOL_NETDIR`).
    case netdir = 4
    /// A ploop volume (`VIR_STORAGE_VOL_PLOOP`).
    case ploop = 5
}

/// A volume's name and path with its size, for listing a pool in one call per volume.
/// Read with `LibvirtStoragePool.volumeSummaries()`.
public struct StorageVolumeSummary: Sendable, Equatable {
    /// The volume's name within its pool, e.g. "disk.qcow2" or "unit:0:0:1".
    public var name: String
    /// Its host path or network name, as a domain's disk source uses it.
    public var path: String
    /// Type, capacity and allocation.
    public var info: StorageVolumeInfo
}

/// Flags for `LibvirtStorageVolume.resize(to:flags:)`, mapping `virStorageVolResizeFlags`.
public struct VolumeResizeFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Allocate the new space too (`VIR_STORAGE_VOL_RESIZE_ALLOCATE`).
    public static let allocate = VolumeResizeFlags(rawValue: VIR_STORAGE_VOL_RESIZE_ALLOCATE.rawValue)
    /// The size is added to the current capacity (`VIR_STORAGE_VOL_RESIZE_DELTA`).
    public static let delta = VolumeResizeFlags(rawValue: VIR_STORAGE_VOL_RESIZE_DELTA.rawValue)
    /// Allow shrinking, which loses data (`VIR_STORAGE_VOL_RESIZE_SHRINK`).
    public static let shrink = VolumeResizeFlags(rawValue: VIR_STORAGE_VOL_RESIZE_SHRINK.rawValue)
}

/// Capacity and allocation of a storage volume. Read with `LibvirtStorageVolume.info()`
/// (wraps `virStorageVolGetInfo`).
public struct StorageVolumeInfo: Sendable, Equatable {
    /// The `virStorageVolType` (file, block, dir, …); see `volumeType`.
    public var type: Int32
    /// Logical size in bytes (what the guest sees).
    public var capacityBytes: UInt64
    /// Bytes actually allocated on the host.
    public var allocationBytes: UInt64

    /// The typed kind; nil for a value this wrapper does not know.
    public var volumeType: StorageVolumeType? { StorageVolumeType(rawValue: type) }
}

/// A libvirt storage pool (a directory, LVM volume group, …) that holds volumes.
/// Owns one `virStoragePoolPtr` and frees it when released. Wraps `virStoragePoolFree`.
public final class LibvirtStoragePool: @unchecked Sendable {
    /// The `virStoragePoolPtr`, owned by this object.
    let handle: OpaquePointer

    /// Takes ownership of a `virStoragePoolPtr`.
    init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        if virStoragePoolFree(handle) < 0 { virResetLastError() }
    }

    /// The pool's name. Wraps `virStoragePoolGetName`.
    public var name: String {
        get throws { try borrowString("virStoragePoolGetName") { virStoragePoolGetName(handle) } }
    }

    /// The pool's UUID in lowercase canonical form. Wraps `virStoragePoolGetUUIDString`.
    public var uuid: String {
        get throws { try uuidString("virStoragePoolGetUUIDString") { virStoragePoolGetUUIDString(handle, $0) } }
    }

    /// State, capacity, allocation and free space. Wraps `virStoragePoolGetInfo`.
    public func info() throws -> StoragePoolInfo {
        var info = virStoragePoolInfo()
        try check("virStoragePoolGetInfo") { virStoragePoolGetInfo(handle, &info) }
        return StoragePoolInfo(state: StoragePoolState(rawValue: Int32(truncatingIfNeeded: info.state)),
                               capacityBytes: info.capacity, allocationBytes: info.allocation,
                               availableBytes: info.available)
    }

    /// Whether the pool is started. Wraps `virStoragePoolIsActive`.
    public var isActive: Bool {
        get throws { try check("virStoragePoolIsActive") { virStoragePoolIsActive(handle) } == 1 }
    }

    /// Whether the pool has a persistent definition. Wraps `virStoragePoolIsPersistent`.
    public var isPersistent: Bool {
        get throws { try check("virStoragePoolIsPersistent") { virStoragePoolIsPersistent(handle) } == 1 }
    }

    /// Whether the pool starts with the host. Wraps `virStoragePoolGetAutostart`.
    public var autostart: Bool {
        get throws {
            var value: Int32 = 0
            try check("virStoragePoolGetAutostart") { virStoragePoolGetAutostart(handle, &value) }
            return value != 0
        }
    }

    /// Sets whether the pool starts with the host. Wraps `virStoragePoolSetAutostart`.
    public func setAutostart(_ enabled: Bool) throws {
        try check("virStoragePoolSetAutostart") { virStoragePoolSetAutostart(handle, enabled ? 1 : 0) }
    }

    /// Prepares the pool's backing storage (for `dir` pools: creates the directory).
    /// Wraps `virStoragePoolBuild`.
    public func build(flags: PoolBuildFlags = []) throws {
        try check("virStoragePoolBuild") { virStoragePoolBuild(handle, flags.rawValue) }
    }

    /// Starts a defined pool. Wraps `virStoragePoolCreate`.
    public func create() throws {
        try check("virStoragePoolCreate") { virStoragePoolCreate(handle, 0) }
    }

    /// Rescans the pool for volumes created outside libvirt. Wraps `virStoragePoolRefresh`.
    public func refresh() throws {
        try check("virStoragePoolRefresh") { virStoragePoolRefresh(handle, 0) }
    }

    /// Stops the pool; its data stays. Wraps `virStoragePoolDestroy`.
    public func destroy() throws {
        try check("virStoragePoolDestroy") { virStoragePoolDestroy(handle) }
    }

    /// Removes the pool's definition (it must be inactive); its data stays.
    /// Wraps `virStoragePoolUndefine`.
    public func undefine() throws {
        try check("virStoragePoolUndefine") { virStoragePoolUndefine(handle) }
    }

    /// The pool's `<pool>` XML; `inactive` gives the persistent definition.
    /// Wraps `virStoragePoolGetXMLDesc`.
    public func xmlDesc(inactive: Bool = false) throws -> String {
        let flags = inactive ? VIR_STORAGE_XML_INACTIVE.rawValue : 0
        return try takeString("virStoragePoolGetXMLDesc") { virStoragePoolGetXMLDesc(handle, flags) }
    }

    /// Creates a volume (e.g. a qcow2 image) from `<volume>` XML in this active pool.
    /// `preallocateMetadata` preallocates qcow2 metadata.
    /// Wraps `virStorageVolCreateXML`.
    public func createVolume(xml: String, preallocateMetadata: Bool = false) throws -> LibvirtStorageVolume {
        let flags = preallocateMetadata ? VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA.rawValue : 0
        return LibvirtStorageVolume(owning: try checkNonNull("virStorageVolCreateXML") {
            virStorageVolCreateXML(handle, xml, flags)
        })
    }

    /// Creates a volume from `<volume>` XML whose contents are copied from `source` (which may
    /// be in another pool, and of another format: qcow2 to raw converts). Blocks until the
    /// copy is done. Wraps `virStorageVolCreateXMLFrom`.
    public func createVolume(xml: String, cloning source: LibvirtStorageVolume) throws -> LibvirtStorageVolume {
        LibvirtStorageVolume(owning: try checkNonNull("virStorageVolCreateXMLFrom") {
            virStorageVolCreateXMLFrom(handle, xml, source.handle, 0)
        })
    }

    /// The volume with this name in this pool; throws a `VIR_ERR_NO_STORAGE_VOL` error when
    /// there is none. Wraps `virStorageVolLookupByName`.
    public func volume(name: String) throws -> LibvirtStorageVolume {
        LibvirtStorageVolume(owning: try checkNonNull("virStorageVolLookupByName") {
            virStorageVolLookupByName(handle, name)
        })
    }

    /// Name, path and size of every volume in this active pool.
    /// Wraps `virStoragePoolListAllVolumes`, `virStorageVolGetName`, `virStorageVolGetPath`
    /// and `virStorageVolGetInfo`.
    public func volumeSummaries() throws -> [StorageVolumeSummary] {
        try volumes().map { volume in
            StorageVolumeSummary(name: try volume.name, path: try volume.path, info: try volume.info())
        }
    }

    /// All volumes in this active pool. Wraps `virStoragePoolListAllVolumes`.
    public func volumes() throws -> [LibvirtStorageVolume] {
        try list("virStoragePoolListAllVolumes", LibvirtStorageVolume.init(owning:)) {
            virStoragePoolListAllVolumes(handle, $0, 0)
        }
    }
}

/// A volume (disk image, LV, …) in a storage pool.
/// Owns one `virStorageVolPtr` and frees it when released. Wraps `virStorageVolFree`.
public final class LibvirtStorageVolume: @unchecked Sendable {
    /// The `virStorageVolPtr`, owned by this object.
    let handle: OpaquePointer

    /// Takes ownership of a `virStorageVolPtr`.
    init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        if virStorageVolFree(handle) < 0 { virResetLastError() }
    }

    /// The volume's name within its pool. Wraps `virStorageVolGetName`.
    public var name: String {
        get throws { try borrowString("virStorageVolGetName") { virStorageVolGetName(handle) } }
    }

    /// The volume's host path, as used in a domain's `<disk><source file=…>`.
    /// Wraps `virStorageVolGetPath`.
    public var path: String {
        get throws { try takeString("virStorageVolGetPath") { virStorageVolGetPath(handle) } }
    }

    /// Type, capacity and allocation. Wraps `virStorageVolGetInfo`.
    public func info() throws -> StorageVolumeInfo {
        var info = virStorageVolInfo()
        try check("virStorageVolGetInfo") { virStorageVolGetInfo(handle, &info) }
        return StorageVolumeInfo(type: info.type, capacityBytes: info.capacity, allocationBytes: info.allocation)
    }

    /// The volume's `<volume>` XML. Wraps `virStorageVolGetXMLDesc`.
    public func xmlDesc() throws -> String {
        try takeString("virStorageVolGetXMLDesc") { virStorageVolGetXMLDesc(handle, 0) }
    }

    /// The volume's key, unique on the host (for files, the path).
    /// Wraps `virStorageVolGetKey`.
    public var key: String {
        get throws { try borrowString("virStorageVolGetKey") { virStorageVolGetKey(handle) } }
    }

    /// The pool that holds this volume. Wraps `virStoragePoolLookupByVolume`.
    public func pool() throws -> LibvirtStoragePool {
        LibvirtStoragePool(owning: try checkNonNull("virStoragePoolLookupByVolume") {
            virStoragePoolLookupByVolume(handle)
        })
    }

    /// Changes the volume's capacity to `bytes` (or by `bytes` with `.delta`); shrinking
    /// needs `.shrink`. Wraps `virStorageVolResize`.
    public func resize(to bytes: UInt64, flags: VolumeResizeFlags = []) throws {
        try check("virStorageVolResize") { virStorageVolResize(handle, bytes, flags.rawValue) }
    }

    /// Deletes the volume and its data. Wraps `virStorageVolDelete`.
    public func delete() throws {
        try check("virStorageVolDelete") { virStorageVolDelete(handle, 0) }
    }
}
