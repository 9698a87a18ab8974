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
