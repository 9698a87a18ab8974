internal import CLibvirt

// MARK: - Save and restore

/// Flags for saving and restoring a domain's memory, mapping `virDomainSaveRestoreFlags`.
public struct SaveFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Bypass the host page cache (`VIR_DOMAIN_SAVE_BYPASS_CACHE`).
    public static let bypassCache = SaveFlags(rawValue: VIR_DOMAIN_SAVE_BYPASS_CACHE.rawValue)
    /// Restore as running, whatever the state at save (`VIR_DOMAIN_SAVE_RUNNING`).
    public static let running = SaveFlags(rawValue: VIR_DOMAIN_SAVE_RUNNING.rawValue)
    /// Restore as paused (`VIR_DOMAIN_SAVE_PAUSED`).
    public static let paused = SaveFlags(rawValue: VIR_DOMAIN_SAVE_PAUSED.rawValue)
    /// Re-create UEFI NVRAM from its template on restore (`VIR_DOMAIN_SAVE_RESET_NVRAM`).
    public static let resetNVRAM = SaveFlags(rawValue: VIR_DOMAIN_SAVE_RESET_NVRAM.rawValue)
}

extension LibvirtDomain {
    /// Saves the running domain's memory to the file `path` and stops it (the domain stays
    /// defined; restore with `LibvirtConnection.restore`). `xml` replaces the definition stored
    /// in the image (same guest ABI; e.g. new disk paths). Wraps `virDomainSaveFlags`.
    public func save(to path: String, xml: String? = nil, flags: SaveFlags = []) throws {
        try withOptionalCString(xml) { xml in
            try check("virDomainSaveFlags") { virDomainSaveFlags(handle, path, xml, flags.rawValue) }
        }
    }

    /// Like `managedSave()`, with flags (`.running`/`.paused` choose the state at the next
    /// start, `.bypassCache`). Wraps `virDomainManagedSave`.
    public func managedSave(flags: SaveFlags) throws {
        try check("virDomainManagedSave") { virDomainManagedSave(handle, flags.rawValue) }
    }

    /// The `<domain>` XML stored in the managed-save image; `secure` includes passwords.
    /// Wraps `virDomainManagedSaveGetXMLDesc`.
    public func managedSaveXML(secure: Bool = false) throws -> String {
        let flags = secure ? VIR_DOMAIN_SAVE_IMAGE_XML_SECURE.rawValue : 0
        return try takeString("virDomainManagedSaveGetXMLDesc") { virDomainManagedSaveGetXMLDesc(handle, flags) }
    }

    /// Replaces the `<domain>` XML stored in the managed-save image (same guest ABI), and with
    /// `.running`/`.paused` the state it restores to. Wraps `virDomainManagedSaveDefineXML`.
    public func defineManagedSaveXML(_ xml: String, flags: SaveFlags = []) throws {
        try check("virDomainManagedSaveDefineXML") { virDomainManagedSaveDefineXML(handle, xml, flags.rawValue) }
    }
}

extension LibvirtConnection {
    /// Restores a domain from a save image made by `LibvirtDomain.save(to:)`; `xml` replaces
    /// the definition in the image (same guest ABI; UUID, name and MACs must match).
    /// Wraps `virDomainRestoreFlags`.
    public func restore(from path: String, xml: String? = nil, flags: SaveFlags = []) throws {
        try withOptionalCString(xml) { xml in
            try check("virDomainRestoreFlags") { virDomainRestoreFlags(handle, path, xml, flags.rawValue) }
        }
    }

    /// The `<domain>` XML stored in a save image; `secure` includes passwords.
    /// Wraps `virDomainSaveImageGetXMLDesc`.
    public func saveImageXML(path: String, secure: Bool = false) throws -> String {
        let flags = secure ? VIR_DOMAIN_SAVE_IMAGE_XML_SECURE.rawValue : 0
        return try takeString("virDomainSaveImageGetXMLDesc") { virDomainSaveImageGetXMLDesc(handle, path, flags) }
    }

    /// Replaces the `<domain>` XML stored in a save image (same guest ABI), and with
    /// `.running`/`.paused` the state it restores to. Wraps `virDomainSaveImageDefineXML`.
    public func defineSaveImageXML(path: String, xml: String, flags: SaveFlags = []) throws {
        try check("virDomainSaveImageDefineXML") { virDomainSaveImageDefineXML(handle, path, xml, flags.rawValue) }
    }
}

// MARK: - Jobs

/// The kind of a domain's background job, mirroring `virDomainJobType`.
public enum DomainJobType: Int32, Sendable, CaseIterable {
    /// No job (`VIR_DOMAIN_JOB_NONE`).
    case none = 0
    /// A job with a known end (`VIR_DOMAIN_JOB_BOUNDED`).
    case bounded = 1
    /// A job without a known end, e.g. a pull-mode backup (`VIR_DOMAIN_JOB_UNBOUNDED`).
    case unbounded = 2
    /// Finished (`VIR_DOMAIN_JOB_COMPLETED`).
    case completed = 3
    /// Failed (`VIR_DOMAIN_JOB_FAILED`).
    case failed = 4
    /// Aborted (`VIR_DOMAIN_JOB_CANCELLED`).
    case cancelled = 5
}

/// What started a domain's job, mirroring `virDomainJobOperation`.
public enum DomainJobOperation: Int32, Sendable, CaseIterable {
    /// Unknown (`VIR_DOMAIN_JOB_OPERATION_UNKNOWN`).
    case unknown = 0
    /// Starting (`VIR_DOMAIN_JOB_OPERATION_START`).
    case start = 1
    /// Saving memory (`VIR_DOMAIN_JOB_OPERATION_SAVE`).
    case save = 2
    /// Restoring memory (`VIR_DOMAIN_JOB_OPERATION_RESTORE`).
    case restore = 3
    /// Incoming migration (`VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN`).
    case migrationIn = 4
    /// Outgoing migration (`VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT`).
    case migrationOut = 5
    /// Taking a snapshot (`VIR_DOMAIN_JOB_OPERATION_SNAPSHOT`).
    case snapshot = 6
    /// Reverting to a snapshot (`VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT`).
    case snapshotRevert = 7
    /// Dumping memory (`VIR_DOMAIN_JOB_OPERATION_DUMP`).
    case dump = 8
    /// A backup (`VIR_DOMAIN_JOB_OPERATION_BACKUP`).
    case backup = 9
    /// Deleting a snapshot (`VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_DELETE`).
    case snapshotDelete = 10
}

/// A domain job's progress (save, migration, backup, snapshot…); each figure is nil when
/// libvirt did not report it for this job. Read with `LibvirtDomain.jobStats(completed:)`
/// (wraps `virDomainGetJobStats`), or delivered by `DomainEvent.jobCompleted`.
public struct DomainJobStats: Sendable, Equatable {
    /// A `DomainJobType` raw value; see `jobType`.
    public var type: Int32
    /// What started the job (`VIR_DOMAIN_JOB_OPERATION`).
    public var operation: DomainJobOperation?
    /// Milliseconds since the job started (`VIR_DOMAIN_JOB_TIME_ELAPSED`).
    public var timeElapsedMs: UInt64?
    /// Estimated milliseconds left, bounded jobs only (`VIR_DOMAIN_JOB_TIME_REMAINING`).
    public var timeRemainingMs: UInt64?
    /// All bytes to transfer, memory and disks (`VIR_DOMAIN_JOB_DATA_TOTAL`).
    public var dataTotal: UInt64?
    /// Bytes transferred (`VIR_DOMAIN_JOB_DATA_PROCESSED`).
    public var dataProcessed: UInt64?
    /// Bytes left (`VIR_DOMAIN_JOB_DATA_REMAINING`).
    public var dataRemaining: UInt64?
    /// Memory bytes to transfer (`VIR_DOMAIN_JOB_MEMORY_TOTAL`).
    public var memoryTotal: UInt64?
    /// Memory bytes transferred (`VIR_DOMAIN_JOB_MEMORY_PROCESSED`).
    public var memoryProcessed: UInt64?
    /// Memory bytes left (`VIR_DOMAIN_JOB_MEMORY_REMAINING`).
    public var memoryRemaining: UInt64?
    /// Memory throughput in bytes per second (`VIR_DOMAIN_JOB_MEMORY_BPS`).
    public var memoryBytesPerSecond: UInt64?
    /// Disk bytes to transfer (`VIR_DOMAIN_JOB_DISK_TOTAL`).
    public var diskTotal: UInt64?
    /// Disk bytes transferred (`VIR_DOMAIN_JOB_DISK_PROCESSED`).
    public var diskProcessed: UInt64?
    /// Disk bytes left (`VIR_DOMAIN_JOB_DISK_REMAINING`).
    public var diskRemaining: UInt64?
    /// Disk throughput in bytes per second (`VIR_DOMAIN_JOB_DISK_BPS`).
    public var diskBytesPerSecond: UInt64?
    /// Expected or (completed) measured downtime in ms (`VIR_DOMAIN_JOB_DOWNTIME`).
    public var downtimeMs: UInt64?
    /// For a completed job: whether it succeeded (`VIR_DOMAIN_JOB_SUCCESS`).
    public var success: Bool?
    /// For a failed job: libvirt's message (`VIR_DOMAIN_JOB_ERRMSG`).
    public var errorMessage: String?
    /// Every reported field by name.
    public var raw: [String: TypedParameterValue]

    /// The typed job kind; nil for a value this wrapper does not know.
    public var jobType: DomainJobType? { DomainJobType(rawValue: type) }

    init(type: Int32, parameters: TypedParameters) {
        self.type = type
        operation = parameters.signed(VIR_DOMAIN_JOB_OPERATION)
            .flatMap { Int32(exactly: $0) }.flatMap(DomainJobOperation.init(rawValue:))
        timeElapsedMs = parameters.unsigned(VIR_DOMAIN_JOB_TIME_ELAPSED)
        timeRemainingMs = parameters.unsigned(VIR_DOMAIN_JOB_TIME_REMAINING)
        dataTotal = parameters.unsigned(VIR_DOMAIN_JOB_DATA_TOTAL)
        dataProcessed = parameters.unsigned(VIR_DOMAIN_JOB_DATA_PROCESSED)
        dataRemaining = parameters.unsigned(VIR_DOMAIN_JOB_DATA_REMAINING)
        memoryTotal = parameters.unsigned(VIR_DOMAIN_JOB_MEMORY_TOTAL)
        memoryProcessed = parameters.unsigned(VIR_DOMAIN_JOB_MEMORY_PROCESSED)
        memoryRemaining = parameters.unsigned(VIR_DOMAIN_JOB_MEMORY_REMAINING)
        memoryBytesPerSecond = parameters.unsigned(VIR_DOMAIN_JOB_MEMORY_BPS)
        diskTotal = parameters.unsigned(VIR_DOMAIN_JOB_DISK_TOTAL)
        diskProcessed = parameters.unsigned(VIR_DOMAIN_JOB_DISK_PROCESSED)
        diskRemaining = parameters.unsigned(VIR_DOMAIN_JOB_DISK_REMAINING)
        diskBytesPerSecond = parameters.unsigned(VIR_DOMAIN_JOB_DISK_BPS)
        downtimeMs = parameters.unsigned(VIR_DOMAIN_JOB_DOWNTIME)
        success = parameters[VIR_DOMAIN_JOB_SUCCESS]?.boolean
        errorMessage = parameters.string(VIR_DOMAIN_JOB_ERRMSG)
        raw = parameters
    }
}

/// Flags for `LibvirtDomain.backupBegin`, mapping `virDomainBackupBeginFlags`.
public struct BackupBeginFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The target (push mode) or scratch (pull mode) files exist already
    /// (`VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL`).
    public static let reuseExternal = BackupBeginFlags(rawValue: VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL.rawValue)
}

extension LibvirtDomain {
    /// The progress of the domain's current job (type `.none` when there is none), or with
    /// `completed` the final figures of the last finished one (kept until read, or with
    /// `keepCompleted` longer). Wraps `virDomainGetJobStats`.
    public func jobStats(completed: Bool = false, keepCompleted: Bool = false) throws -> DomainJobStats {
        var type: Int32 = 0
        var params: UnsafeMutablePointer<virTypedParameter>?
        var count: Int32 = 0
        var flags: UInt32 = 0
        if completed { flags |= VIR_DOMAIN_JOB_STATS_COMPLETED.rawValue }
        if keepCompleted { flags |= VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED.rawValue }
        try check("virDomainGetJobStats") { virDomainGetJobStats(handle, &type, &params, &count, flags) }
        defer { virTypedParamsFree(params, count) }
        return DomainJobStats(type: type, parameters: readTypedParameters(params, count: count))
    }

    /// Aborts the domain's current job (save, dump, migration, backup…); the domain keeps
    /// running. Fails with `.operationInvalid` when no job runs. Wraps `virDomainAbortJob`.
    public func abortJob() throws {
        try check("virDomainAbortJob") { virDomainAbortJob(handle) }
    }

    /// Starts a backup job described by `<domainbackup>` XML: push mode writes full (or
    /// incremental) copies of the disks to the target files while the guest runs; pull mode
    /// exports them over NBD until `abortJob()`. `checkpointXML` also creates a checkpoint.
    /// Follow it with `jobStats()`; its end is announced by `.jobCompleted`.
    /// Wraps `virDomainBackupBegin`.
    public func backupBegin(xml: String, checkpointXML: String? = nil, flags: BackupBeginFlags = []) throws {
        try withOptionalCString(checkpointXML) { checkpointXML in
            try check("virDomainBackupBegin") { virDomainBackupBegin(handle, xml, checkpointXML, flags.rawValue) }
        }
    }

    /// The `<domainbackup>` XML of the running backup job, with libvirt's defaults filled in.
    /// Wraps `virDomainBackupGetXMLDesc`.
    public func backupXML() throws -> String {
        try takeString("virDomainBackupGetXMLDesc") { virDomainBackupGetXMLDesc(handle, 0) }
    }
}

// MARK: - Snapshots

/// Flags for `LibvirtDomain.createSnapshot`, mapping `virDomainSnapshotCreateFlags`.
public struct SnapshotCreateFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Re-register a snapshot from its XML (`VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`).
    public static let redefine = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE.rawValue)
    /// With `.redefine`: make it the current snapshot (`VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT`).
    public static let current = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT.rawValue)
    /// Keep no libvirt metadata: the files are made, libvirt forgets the snapshot
    /// (`VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA`).
    public static let noMetadata = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA.rawValue)
    /// Stop the guest once the snapshot is taken (`VIR_DOMAIN_SNAPSHOT_CREATE_HALT`).
    public static let halt = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_HALT.rawValue)
    /// Disks only, no memory: external overlays (`VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY`).
    public static let diskOnly = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY.rawValue)
    /// The overlay files exist already (`VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT`).
    public static let reuseExternal = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT.rawValue)
    /// Freeze guest file systems through the agent (`VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE`).
    public static let quiesce = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE.rawValue)
    /// All disks or none (`VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC`).
    public static let atomic = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC.rawValue)
    /// Keep the guest running while memory is saved (`VIR_DOMAIN_SNAPSHOT_CREATE_LIVE`).
    public static let live = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_LIVE.rawValue)
    /// Validate the XML against the schema (`VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE`).
    public static let validate = SnapshotCreateFlags(rawValue: VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE.rawValue)
}

/// Flags for `LibvirtDomainSnapshot.delete`, mapping `virDomainSnapshotDeleteFlags`.
public struct SnapshotDeleteFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Also delete the children (`VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN`).
    public static let children = SnapshotDeleteFlags(rawValue: VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN.rawValue)
    /// Forget the metadata, keep the data (`VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY`).
    public static let metadataOnly = SnapshotDeleteFlags(rawValue: VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY.rawValue)
    /// Delete only the children (`VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY`).
    public static let childrenOnly = SnapshotDeleteFlags(rawValue: VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY.rawValue)
}

/// Flags for `LibvirtDomainSnapshot.revert`, mapping `virDomainSnapshotRevertFlags`.
public struct SnapshotRevertFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Run afterwards (`VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING`).
    public static let running = SnapshotRevertFlags(rawValue: VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING.rawValue)
    /// Pause afterwards (`VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED`).
    public static let paused = SnapshotRevertFlags(rawValue: VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED.rawValue)
    /// Allow risky reverts (`VIR_DOMAIN_SNAPSHOT_REVERT_FORCE`).
    public static let force = SnapshotRevertFlags(rawValue: VIR_DOMAIN_SNAPSHOT_REVERT_FORCE.rawValue)
    /// Re-create UEFI NVRAM from its template (`VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM`).
    public static let resetNVRAM = SnapshotRevertFlags(rawValue: VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM.rawValue)
}

/// A libvirt domain snapshot. Owns one `virDomainSnapshotPtr` and frees it when released
/// (which does not delete the snapshot). Wraps `virDomainSnapshotFree`.
public final class LibvirtDomainSnapshot: @unchecked Sendable {
    /// The `virDomainSnapshotPtr`, owned by this object.
    let handle: OpaquePointer

    /// Takes ownership of a `virDomainSnapshotPtr`.
    init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        if virDomainSnapshotFree(handle) < 0 { virResetLastError() }
    }

    /// The snapshot's name. Wraps `virDomainSnapshotGetName`.
    public var name: String {
        get throws { try borrowString("virDomainSnapshotGetName") { virDomainSnapshotGetName(handle) } }
    }

    /// The `<domainsnapshot>` XML (state, disks, the domain definition at the time).
    /// Wraps `virDomainSnapshotGetXMLDesc`.
    public func xmlDesc(secure: Bool = false) throws -> String {
        let flags = secure ? VIR_DOMAIN_SNAPSHOT_XML_SECURE.rawValue : 0
        return try takeString("virDomainSnapshotGetXMLDesc") { virDomainSnapshotGetXMLDesc(handle, flags) }
    }

    /// Deletes the snapshot (internal: its data too; libvirt 9.0 cannot delete external ones
    /// without `.metadataOnly` in every case). Wraps `virDomainSnapshotDelete`.
    public func delete(flags: SnapshotDeleteFlags = []) throws {
        try check("virDomainSnapshotDelete") { virDomainSnapshotDelete(handle, flags.rawValue) }
    }

    /// Reverts the domain to this snapshot (internal snapshots only in libvirt 9.0).
    /// Wraps `virDomainRevertToSnapshot`.
    public func revert(flags: SnapshotRevertFlags = []) throws {
        try check("virDomainRevertToSnapshot") { virDomainRevertToSnapshot(handle, flags.rawValue) }
    }
}

extension LibvirtDomain {
    /// Takes a snapshot described by `<domainsnapshot>` XML (name, memory and per-disk
    /// settings, e.g. `<disk name='sda' snapshot='external'><source file='…'/></disk>`).
    /// With `.noMetadata` libvirt keeps no record of it; the returned handle is still valid
    /// for its name and XML until released. Wraps `virDomainSnapshotCreateXML`.
    public func createSnapshot(xml: String, flags: SnapshotCreateFlags = []) throws -> LibvirtDomainSnapshot {
        LibvirtDomainSnapshot(owning: try checkNonNull("virDomainSnapshotCreateXML") {
            virDomainSnapshotCreateXML(handle, xml, flags.rawValue)
        })
    }

    /// The snapshot with this name; throws a `.noDomainSnapshot` error when there is none.
    /// Wraps `virDomainSnapshotLookupByName`.
    public func snapshot(name: String) throws -> LibvirtDomainSnapshot {
        LibvirtDomainSnapshot(owning: try checkNonNull("virDomainSnapshotLookupByName") {
            virDomainSnapshotLookupByName(handle, name, 0)
        })
    }

    /// Every snapshot libvirt holds metadata for (made without `.noMetadata`).
    /// Wraps `virDomainListAllSnapshots`.
    public func allSnapshots() throws -> [LibvirtDomainSnapshot] {
        try list("virDomainListAllSnapshots", LibvirtDomainSnapshot.init(owning:)) {
            virDomainListAllSnapshots(handle, $0, 0)
        }
    }
}
