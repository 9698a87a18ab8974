// State reasons and lifecycle-event details, mirroring libvirt 9.0 value for value (checked
// against the C enumerators in MappingTests). Values of newer libvirt versions give nil.

/// Why a domain is paused, mirroring `virDomainPausedReason`: the `reason` of
/// `LibvirtDomain.state()` when the state is `.paused`.
public enum PausedReason: Int32, Sendable, CaseIterable {
    /// The reason is unknown (`VIR_DOMAIN_PAUSED_UNKNOWN`).
    case unknown = 0
    /// Paused on user request (`VIR_DOMAIN_PAUSED_USER`).
    case user = 1
    /// Paused for offline migration (`VIR_DOMAIN_PAUSED_MIGRATION`).
    case migration = 2
    /// Paused for save (`VIR_DOMAIN_PAUSED_SAVE`).
    case save = 3
    /// Paused for offline core dump (`VIR_DOMAIN_PAUSED_DUMP`).
    case dump = 4
    /// Paused due to a disk I/O error (`VIR_DOMAIN_PAUSED_IOERROR`).
    case ioError = 5
    /// Paused due to a watchdog event (`VIR_DOMAIN_PAUSED_WATCHDOG`).
    case watchdog = 6
    /// Paused after restoring from snapshot (`VIR_DOMAIN_PAUSED_FROM_SNAPSHOT`).
    case fromSnapshot = 7
    /// Paused during shutdown process (`VIR_DOMAIN_PAUSED_SHUTTING_DOWN`).
    case shuttingDown = 8
    /// Paused while creating a snapshot (`VIR_DOMAIN_PAUSED_SNAPSHOT`).
    case snapshot = 9
    /// Paused due to a guest crash (`VIR_DOMAIN_PAUSED_CRASHED`).
    case crashed = 10
    /// The domain is being started (`VIR_DOMAIN_PAUSED_STARTING_UP`).
    case startingUp = 11
    /// Paused for post-copy migration (`VIR_DOMAIN_PAUSED_POSTCOPY`).
    case postcopy = 12
    /// Paused after failed post-copy (`VIR_DOMAIN_PAUSED_POSTCOPY_FAILED`).
    case postcopyFailed = 13
}

/// Why a domain is off, mirroring `virDomainShutoffReason`: the `reason` of `LibvirtDomain.state()`
/// when the state is `.shutoff`.
public enum ShutoffReason: Int32, Sendable, CaseIterable {
    /// The reason is unknown (`VIR_DOMAIN_SHUTOFF_UNKNOWN`).
    case unknown = 0
    /// Normal shutdown (`VIR_DOMAIN_SHUTOFF_SHUTDOWN`).
    case shutdown = 1
    /// Forced poweroff (`VIR_DOMAIN_SHUTOFF_DESTROYED`).
    case destroyed = 2
    /// Domain crashed (`VIR_DOMAIN_SHUTOFF_CRASHED`).
    case crashed = 3
    /// Migrated to another host (`VIR_DOMAIN_SHUTOFF_MIGRATED`).
    case migrated = 4
    /// Saved to a file (`VIR_DOMAIN_SHUTOFF_SAVED`).
    case saved = 5
    /// Domain failed to start (`VIR_DOMAIN_SHUTOFF_FAILED`).
    case failed = 6
    /// Restored from a snapshot which was * taken while domain was shutoff (`VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT`).
    case fromSnapshot = 7
    /// Daemon decides to kill domain during reconnection processing (`VIR_DOMAIN_SHUTOFF_DAEMON`).
    case daemon = 8
}

/// Why a domain runs, mirroring `virDomainRunningReason`: the `reason` of `LibvirtDomain.state()`
/// when the state is `.running`.
public enum RunningReason: Int32, Sendable, CaseIterable {
    /// unknown (`VIR_DOMAIN_RUNNING_UNKNOWN`).
    case unknown = 0
    /// Normal startup from boot (`VIR_DOMAIN_RUNNING_BOOTED`).
    case booted = 1
    /// Migrated from another host (`VIR_DOMAIN_RUNNING_MIGRATED`).
    case migrated = 2
    /// Restored from a state file (`VIR_DOMAIN_RUNNING_RESTORED`).
    case restored = 3
    /// Restored from snapshot (`VIR_DOMAIN_RUNNING_FROM_SNAPSHOT`).
    case fromSnapshot = 4
    /// Returned from paused state (`VIR_DOMAIN_RUNNING_UNPAUSED`).
    case unpaused = 5
    /// Returned from migration (`VIR_DOMAIN_RUNNING_MIGRATION_CANCELED`).
    case migrationCanceled = 6
    /// Returned from failed save process (`VIR_DOMAIN_RUNNING_SAVE_CANCELED`).
    case saveCanceled = 7
    /// Returned from pmsuspended due to wakeup event (`VIR_DOMAIN_RUNNING_WAKEUP`).
    case wakeup = 8
    /// Resumed from crashed (`VIR_DOMAIN_RUNNING_CRASHED`).
    case crashed = 9
    /// Running in post-copy migration mode (`VIR_DOMAIN_RUNNING_POSTCOPY`).
    case postcopy = 10
    /// Running in failed post-copy migration (`VIR_DOMAIN_RUNNING_POSTCOPY_FAILED`).
    case postcopyFailed = 11
}

/// The `detail` of a `.started` lifecycle event, mirroring `virDomainEventStartedDetailType`.
public enum StartedDetail: Int32, Sendable, CaseIterable {
    /// Normal startup from boot (`VIR_DOMAIN_EVENT_STARTED_BOOTED`).
    case booted = 0
    /// Incoming migration from another host (`VIR_DOMAIN_EVENT_STARTED_MIGRATED`).
    case migrated = 1
    /// Restored from a state file (`VIR_DOMAIN_EVENT_STARTED_RESTORED`).
    case restored = 2
    /// Restored from snapshot (`VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT`).
    case fromSnapshot = 3
    /// Started due to wakeup event (`VIR_DOMAIN_EVENT_STARTED_WAKEUP`).
    case wakeup = 4
}

/// The `detail` of a `.suspended` lifecycle event, mirroring `virDomainEventSuspendedDetailType`.
public enum SuspendedDetail: Int32, Sendable, CaseIterable {
    /// Normal suspend due to admin pause (`VIR_DOMAIN_EVENT_SUSPENDED_PAUSED`).
    case paused = 0
    /// Suspended for offline migration (`VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED`).
    case migrated = 1
    /// Suspended due to a disk I/O error (`VIR_DOMAIN_EVENT_SUSPENDED_IOERROR`).
    case ioError = 2
    /// Suspended due to a watchdog firing (`VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG`).
    case watchdog = 3
    /// Restored from paused state file (`VIR_DOMAIN_EVENT_SUSPENDED_RESTORED`).
    case restored = 4
    /// Restored from paused snapshot (`VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT`).
    case fromSnapshot = 5
    /// Suspended after failure during libvirt API call (`VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR`).
    case apiError = 6
    /// Suspended for post-copy migration (`VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY`).
    case postcopy = 7
    /// Suspended after failed post-copy (`VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED`).
    case postcopyFailed = 8
}

/// The `detail` of a `.resumed` lifecycle event, mirroring `virDomainEventResumedDetailType`.
public enum ResumedDetail: Int32, Sendable, CaseIterable {
    /// Normal resume due to admin unpause (`VIR_DOMAIN_EVENT_RESUMED_UNPAUSED`).
    case unpaused = 0
    /// Resumed for completion of migration (`VIR_DOMAIN_EVENT_RESUMED_MIGRATED`).
    case migrated = 1
    /// Resumed from snapshot (`VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT`).
    case fromSnapshot = 2
    /// Resumed, but migration is still running in post-copy mode (`VIR_DOMAIN_EVENT_RESUMED_POSTCOPY`).
    case postcopy = 3
    /// Running, but migration failed in post-copy (`VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED`).
    case postcopyFailed = 4
}

/// The `detail` of a `.stopped` lifecycle event, mirroring `virDomainEventStoppedDetailType`.
public enum StoppedDetail: Int32, Sendable, CaseIterable {
    /// Normal shutdown (`VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN`).
    case shutdown = 0
    /// Forced poweroff from host (`VIR_DOMAIN_EVENT_STOPPED_DESTROYED`).
    case destroyed = 1
    /// Guest crashed (`VIR_DOMAIN_EVENT_STOPPED_CRASHED`).
    case crashed = 2
    /// Migrated off to another host (`VIR_DOMAIN_EVENT_STOPPED_MIGRATED`).
    case migrated = 3
    /// Saved to a state file (`VIR_DOMAIN_EVENT_STOPPED_SAVED`).
    case saved = 4
    /// Host emulator/mgmt failed (`VIR_DOMAIN_EVENT_STOPPED_FAILED`).
    case failed = 5
    /// Offline snapshot loaded (`VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT`).
    case fromSnapshot = 6
}

/// The `detail` of a `.defined` lifecycle event, mirroring `virDomainEventDefinedDetailType`.
public enum DefinedDetail: Int32, Sendable, CaseIterable {
    /// Newly created config file (`VIR_DOMAIN_EVENT_DEFINED_ADDED`).
    case added = 0
    /// Changed config file (`VIR_DOMAIN_EVENT_DEFINED_UPDATED`).
    case updated = 1
    /// Domain was renamed (`VIR_DOMAIN_EVENT_DEFINED_RENAMED`).
    case renamed = 2
    /// Config was restored from a snapshot (`VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT`).
    case fromSnapshot = 3
}

/// The `detail` of an `.undefined` lifecycle event, mirroring `virDomainEventUndefinedDetailType`.
public enum UndefinedDetail: Int32, Sendable, CaseIterable {
    /// Deleted the config file (`VIR_DOMAIN_EVENT_UNDEFINED_REMOVED`).
    case removed = 0
    /// Domain was renamed (`VIR_DOMAIN_EVENT_UNDEFINED_RENAMED`).
    case renamed = 1
}
