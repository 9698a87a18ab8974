internal import CLibvirt

/// What a block job does, mirroring `virDomainBlockJobType`.
public enum BlockJobType: Int32, Sendable, CaseIterable {
    /// Not known to libvirt (`VIR_DOMAIN_BLOCK_JOB_TYPE_UNKNOWN`).
    case unknown = 0
    /// Pulling backing data into the top image (`VIR_DOMAIN_BLOCK_JOB_TYPE_PULL`).
    case pull = 1
    /// Copying the disk to a new destination (`VIR_DOMAIN_BLOCK_JOB_TYPE_COPY`).
    case copy = 2
    /// Committing an inactive layer into its base (`VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT`).
    case commit = 3
    /// Committing the active layer; needs a pivot to finish
    /// (`VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT`).
    case activeCommit = 4
    /// Part of a backup job (`VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP`).
    case backup = 5
}

/// How a block job ended or where it stands, mirroring
/// `virConnectDomainEventBlockJobStatus` (the `status` of `DomainEvent.blockJob`).
public enum BlockJobStatus: Int32, Sendable, CaseIterable {
    /// Finished (`VIR_DOMAIN_BLOCK_JOB_COMPLETED`).
    case completed = 0
    /// Failed (`VIR_DOMAIN_BLOCK_JOB_FAILED`).
    case failed = 1
    /// Aborted (`VIR_DOMAIN_BLOCK_JOB_CANCELED`).
    case canceled = 2
    /// Copy or active commit caught up and mirrors writes: ready to pivot
    /// (`VIR_DOMAIN_BLOCK_JOB_READY`).
    case ready = 3
}

/// A disk's sizes. Read with `LibvirtDomain.blockInfo(disk:)` (wraps `virDomainGetBlockInfo`).
public struct BlockInfo: Sendable, Equatable {
    /// Logical size in bytes (what the guest sees).
    public var capacityBytes: UInt64
    /// Bytes in use on the host (for a sparse or qcow2 file, what is written; for a running
    /// domain's qcow2 on a block device, the highest written offset).
    public var allocationBytes: UInt64
    /// Bytes the image occupies on the host (file size or device size).
    public var physicalBytes: UInt64
}

/// A running block job's progress. Read with `LibvirtDomain.blockJobInfo(disk:)`
/// (wraps `virDomainGetBlockJobInfo`).
public struct BlockJobInfo: Sendable, Equatable {
    /// A `BlockJobType` raw value; see `jobType`.
    public var type: Int32
    /// The job's speed limit in bytes per second (0: unlimited).
    public var bandwidthBytesPerSecond: UInt64
    /// Progress: `cursor` of `end` units done. `cursor == end` with a copy or active commit
    /// means it mirrors writes and is ready to pivot; `end` may still grow while the guest
    /// writes.
    public var cursor: UInt64
    /// See `cursor`.
    public var end: UInt64

    /// The typed job kind; nil for a value this wrapper does not know.
    public var jobType: BlockJobType? { BlockJobType(rawValue: type) }
}

/// Flags for `LibvirtDomain.blockCopy`, mapping `virDomainBlockCopyFlags`.
public struct BlockCopyFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Copy only the top image; the destination gets the source's backing chain
    /// (`VIR_DOMAIN_BLOCK_COPY_SHALLOW`).
    public static let shallow = BlockCopyFlags(rawValue: VIR_DOMAIN_BLOCK_COPY_SHALLOW.rawValue)
    /// The destination exists already (made by the caller, e.g. with `qemu-img create -b`)
    /// (`VIR_DOMAIN_BLOCK_COPY_REUSE_EXT`).
    public static let reuseExternal = BlockCopyFlags(rawValue: VIR_DOMAIN_BLOCK_COPY_REUSE_EXT.rawValue)
    /// Allow the copy on a persistent domain; the job does not survive a libvirtd restart
    /// (`VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB`). Needed for live storage moves.
    public static let transientJob = BlockCopyFlags(rawValue: VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB.rawValue)
    /// Guest writes go to both images at once so the copy converges
    /// (`VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES`).
    public static let synchronousWrites = BlockCopyFlags(rawValue: VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES.rawValue)
}

/// Flags for `LibvirtDomain.blockJobAbort`, mapping `virDomainBlockJobAbortFlags`.
public struct BlockJobAbortFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Return at once; the end is announced by a `.blockJob` event
    /// (`VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC`).
    public static let async = BlockJobAbortFlags(rawValue: VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC.rawValue)
    /// Finish a ready copy or active commit by switching the disk to the new image
    /// (`VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT`).
    public static let pivot = BlockJobAbortFlags(rawValue: VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT.rawValue)
}

/// Flags for `LibvirtDomain.blockCommit`, mapping `virDomainBlockCommitFlags`.
public struct BlockCommitFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Commit into the immediate backing file when no base is given
    /// (`VIR_DOMAIN_BLOCK_COMMIT_SHALLOW`).
    public static let shallow = BlockCommitFlags(rawValue: VIR_DOMAIN_BLOCK_COMMIT_SHALLOW.rawValue)
    /// Delete the files that were committed once done (`VIR_DOMAIN_BLOCK_COMMIT_DELETE`).
    public static let delete = BlockCommitFlags(rawValue: VIR_DOMAIN_BLOCK_COMMIT_DELETE.rawValue)
    /// Commit the active (top) image: a two-phase job ended with a pivot
    /// (`VIR_DOMAIN_BLOCK_COMMIT_ACTIVE`).
    public static let active = BlockCommitFlags(rawValue: VIR_DOMAIN_BLOCK_COMMIT_ACTIVE.rawValue)
    /// Keep backing names relative (`VIR_DOMAIN_BLOCK_COMMIT_RELATIVE`).
    public static let relative = BlockCommitFlags(rawValue: VIR_DOMAIN_BLOCK_COMMIT_RELATIVE.rawValue)
}

/// Flags for `LibvirtDomain.blockRebase`, mapping `virDomainBlockRebaseFlags`.
public struct BlockRebaseFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// With `.copy`: copy only the top image (`VIR_DOMAIN_BLOCK_REBASE_SHALLOW`).
    public static let shallow = BlockRebaseFlags(rawValue: VIR_DOMAIN_BLOCK_REBASE_SHALLOW.rawValue)
    /// With `.copy`: the destination exists already (`VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT`).
    public static let reuseExternal = BlockRebaseFlags(rawValue: VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT.rawValue)
    /// With `.copy`: make the destination raw (`VIR_DOMAIN_BLOCK_REBASE_COPY_RAW`).
    public static let copyRaw = BlockRebaseFlags(rawValue: VIR_DOMAIN_BLOCK_REBASE_COPY_RAW.rawValue)
    /// Start a copy to `base` instead of a pull (`VIR_DOMAIN_BLOCK_REBASE_COPY`); prefer
    /// `blockCopy`.
    public static let copy = BlockRebaseFlags(rawValue: VIR_DOMAIN_BLOCK_REBASE_COPY.rawValue)
    /// Keep backing names relative (`VIR_DOMAIN_BLOCK_REBASE_RELATIVE`).
    public static let relative = BlockRebaseFlags(rawValue: VIR_DOMAIN_BLOCK_REBASE_RELATIVE.rawValue)
}

extension LibvirtDomain {
    /// Capacity, allocation and physical size of `disk` (its target, e.g. "sda", or its
    /// source path); works for inactive domains too. Wraps `virDomainGetBlockInfo`.
    public func blockInfo(disk: String) throws -> BlockInfo {
        var info = virDomainBlockInfo()
        try check("virDomainGetBlockInfo") { virDomainGetBlockInfo(handle, disk, &info, 0) }
        return BlockInfo(capacityBytes: info.capacity, allocationBytes: info.allocation, physicalBytes: info.physical)
    }

    /// Starts copying `disk` of a running domain to the destination described by
    /// `destinationXML` (a `<disk type='file'><source file='…'/><driver type='qcow2'/></disk>`).
    /// The job then mirrors writes; finish it with `blockJobAbort(disk:flags: .pivot)` once
    /// `blockJobInfo` (or a `.blockJob` event) says it is ready, or abort it to keep the source.
    /// `bandwidthBytesPerSecond` limits the speed, `granularity` (a power of two between
    /// 512 and 64 MiB) and `bufferSize` tune it. Wraps `virDomainBlockCopy`.
    public func blockCopy(disk: String, destinationXML: String, bandwidthBytesPerSecond: UInt64? = nil,
                          granularity: UInt32? = nil, bufferSize: UInt64? = nil, flags: BlockCopyFlags = []) throws {
        let params = TypedParameterList()
        try params.add(VIR_DOMAIN_BLOCK_COPY_BANDWIDTH, bandwidthBytesPerSecond)
        try params.add(VIR_DOMAIN_BLOCK_COPY_GRANULARITY, granularity)
        try params.add(VIR_DOMAIN_BLOCK_COPY_BUF_SIZE, bufferSize)
        try params.withParameters { params, count in
            try check("virDomainBlockCopy") {
                virDomainBlockCopy(handle, disk, destinationXML, params, count, flags.rawValue)
            }
        }
    }

    /// The progress of the block job on `disk`, or nil when none runs. Bandwidth is reported
    /// in bytes per second. Wraps `virDomainGetBlockJobInfo`.
    public func blockJobInfo(disk: String) throws -> BlockJobInfo? {
        var info = virDomainBlockJobInfo()
        let rc = try check("virDomainGetBlockJobInfo") {
            virDomainGetBlockJobInfo(handle, disk, &info, VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES.rawValue)
        }
        guard rc == 1 else { return nil }
        return BlockJobInfo(type: info.type, bandwidthBytesPerSecond: UInt64(info.bandwidth),
                            cursor: info.cur, end: info.end)
    }

    /// Ends the block job on `disk`: cancels it (a copy's destination stays behind, partial:
    /// remove it), or with `.pivot` switches a ready copy or active commit over.
    /// Without `.async` it returns when the job is gone. Wraps `virDomainBlockJobAbort`.
    public func blockJobAbort(disk: String, flags: BlockJobAbortFlags = []) throws {
        try check("virDomainBlockJobAbort") { virDomainBlockJobAbort(handle, disk, flags.rawValue) }
    }

    /// Changes the speed limit of the running block job on `disk` (0: unlimited).
    /// Wraps `virDomainBlockJobSetSpeed`.
    public func setBlockJobSpeed(disk: String, bytesPerSecond: UInt64) throws {
        try check("virDomainBlockJobSetSpeed") {
            virDomainBlockJobSetSpeed(handle, disk, UInt(clamping: bytesPerSecond),
                                      VIR_DOMAIN_BLOCK_JOB_SPEED_BANDWIDTH_BYTES.rawValue)
        }
    }

    /// Starts merging the images from `top` down into `base` of `disk`'s backing chain (nil
    /// `top`: the active image, which needs `.active` and ends with a pivot; nil `base`: the
    /// bottom of the chain, or with `.shallow` the next one). Paths or `vda[1]`-style indexes.
    /// Wraps `virDomainBlockCommit`.
    public func blockCommit(disk: String, base: String? = nil, top: String? = nil,
                            bandwidthBytesPerSecond: UInt64 = 0, flags: BlockCommitFlags = []) throws {
        let allFlags = flags.rawValue | VIR_DOMAIN_BLOCK_COMMIT_BANDWIDTH_BYTES.rawValue
        try withOptionalCString(base) { base in
            try withOptionalCString(top) { top in
                try check("virDomainBlockCommit") {
                    virDomainBlockCommit(handle, disk, base, top, UInt(clamping: bandwidthBytesPerSecond), allFlags)
                }
            }
        }
    }

    /// Starts pulling the backing data above `base` (nil: all of it) into `disk`'s active
    /// image, so the chain below can go. Wraps `virDomainBlockRebase`.
    public func blockRebase(disk: String, base: String? = nil, bandwidthBytesPerSecond: UInt64 = 0,
                            flags: BlockRebaseFlags = []) throws {
        let allFlags = flags.rawValue | VIR_DOMAIN_BLOCK_REBASE_BANDWIDTH_BYTES.rawValue
        try withOptionalCString(base) { base in
            try check("virDomainBlockRebase") {
                virDomainBlockRebase(handle, disk, base, UInt(clamping: bandwidthBytesPerSecond), allFlags)
            }
        }
    }
}
