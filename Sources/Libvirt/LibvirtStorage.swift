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

/// Capacity and allocation of a storage volume. Read with `LibvirtStorageVolume.info()`
/// (wraps `virStorageVolGetInfo`).
public struct StorageVolumeInfo: Sendable, Equatable {
    /// The `virStorageVolType` (file, block, dir, …).
    public var type: Int32
    /// Logical size in bytes (what the guest sees).
    public var capacityBytes: UInt64
    /// Bytes actually allocated on the host.
    public var allocationBytes: UInt64
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

    /// The volume with this name in this pool; throws a `VIR_ERR_NO_STORAGE_VOL` error when
    /// there is none. Wraps `virStorageVolLookupByName`.
    public func volume(name: String) throws -> LibvirtStorageVolume {
        LibvirtStorageVolume(owning: try checkNonNull("virStorageVolLookupByName") {
            virStorageVolLookupByName(handle, name)
        })
    }

    /// All volumes in this active pool. Wraps `virStoragePoolListAllVolumes`.
    public func volumes() throws -> [LibvirtStorageVolume] {
        var list: UnsafeMutablePointer<OpaquePointer?>? = nil
        let count = try check("virStoragePoolListAllVolumes") {
            virStoragePoolListAllVolumes(handle, &list, 0)
        }
        guard let list else { return [] }
        defer { free(list) }
        return (0..<Int(count)).compactMap { index in list[index].map(LibvirtStorageVolume.init(owning:)) }
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

    /// Deletes the volume and its data. Wraps `virStorageVolDelete`.
    public func delete() throws {
        try check("virStorageVolDelete") { virStorageVolDelete(handle, 0) }
    }
}
