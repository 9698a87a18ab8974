import CLibvirt
import Libvirt
import Testing

/// The Swift enums and option sets must carry libvirt's values exactly.
@Suite("C constant mappings")
struct MappingTests {
    @Test(arguments: [
        (DomainState.noState, VIR_DOMAIN_NOSTATE), (.running, VIR_DOMAIN_RUNNING),
        (.blocked, VIR_DOMAIN_BLOCKED), (.paused, VIR_DOMAIN_PAUSED),
        (.shutdown, VIR_DOMAIN_SHUTDOWN), (.shutoff, VIR_DOMAIN_SHUTOFF),
        (.crashed, VIR_DOMAIN_CRASHED), (.pmSuspended, VIR_DOMAIN_PMSUSPENDED),
    ])
    func domainStateMatchesVirDomainState(state: DomainState, c: virDomainState) {
        #expect(UInt32(state.rawValue) == c.rawValue)
    }

    @Test func domainStateCoversEveryVirDomainState() {
        #expect(DomainState.allCases.count == 8)
    }

    @Test(arguments: [
        (LifecycleEvent.defined, VIR_DOMAIN_EVENT_DEFINED), (.undefined, VIR_DOMAIN_EVENT_UNDEFINED),
        (.started, VIR_DOMAIN_EVENT_STARTED), (.suspended, VIR_DOMAIN_EVENT_SUSPENDED),
        (.resumed, VIR_DOMAIN_EVENT_RESUMED), (.stopped, VIR_DOMAIN_EVENT_STOPPED),
        (.shutdown, VIR_DOMAIN_EVENT_SHUTDOWN), (.pmsuspended, VIR_DOMAIN_EVENT_PMSUSPENDED),
        (.crashed, VIR_DOMAIN_EVENT_CRASHED),
    ])
    func lifecycleEventMatchesVirDomainEventType(event: LifecycleEvent, c: virDomainEventType) {
        #expect(UInt32(event.rawValue) == c.rawValue)
    }

    @Test(arguments: [
        (MetadataType.description, VIR_DOMAIN_METADATA_DESCRIPTION),
        (.title, VIR_DOMAIN_METADATA_TITLE), (.element, VIR_DOMAIN_METADATA_ELEMENT),
    ])
    func metadataTypeMatchesVirDomainMetadataType(type: MetadataType, c: virDomainMetadataType) {
        #expect(UInt32(type.rawValue) == c.rawValue)
    }

    @Test(arguments: [
        (ConnectionCloseReason.error, VIR_CONNECT_CLOSE_REASON_ERROR),
        (.endOfFile, VIR_CONNECT_CLOSE_REASON_EOF), (.keepalive, VIR_CONNECT_CLOSE_REASON_KEEPALIVE),
        (.client, VIR_CONNECT_CLOSE_REASON_CLIENT),
    ])
    func closeReasonMatchesVirConnectCloseReason(reason: ConnectionCloseReason, c: virConnectCloseReason) {
        #expect(UInt32(reason.rawValue) == c.rawValue)
    }

    @Test func modificationCurrentIsTheEmptySet() {
        #expect(ModificationFlags.current == [])
        #expect(ModificationFlags.maximum.rawValue == VIR_DOMAIN_MEM_MAXIMUM.rawValue)
    }

    @Test func connectionBrokenCoversTransportErrors() {
        func error(_ code: virErrorNumber, _ domain: virErrorDomain, _ message: String = "") -> LibvirtError {
            LibvirtError(code: .init(rawValue: Int32(code.rawValue)), domain: .init(rawValue: Int32(domain.rawValue)),
                         message: message, function: "f")
        }
        #expect(error(VIR_ERR_NO_CONNECT, VIR_FROM_NONE).isConnectionBroken)
        #expect(error(VIR_ERR_INVALID_CONN, VIR_FROM_NONE).isConnectionBroken)
        #expect(error(VIR_ERR_RPC, VIR_FROM_RPC).isConnectionBroken)
        #expect(error(VIR_ERR_SYSTEM_ERROR, VIR_FROM_RPC, "Cannot recv data: Connection reset by peer").isConnectionBroken)
        #expect(error(VIR_ERR_INTERNAL_ERROR, VIR_FROM_RPC, "client socket is closed").isConnectionBroken)
        #expect(!error(VIR_ERR_SYSTEM_ERROR, VIR_FROM_STORAGE, "cannot open file").isConnectionBroken)
        #expect(!error(VIR_ERR_NO_DOMAIN, VIR_FROM_DOM).isConnectionBroken)
    }
}

/// Every state reason and lifecycle detail carries libvirt's value.
@Suite("State reason mappings")
struct StateReasonMappingTests {
    @Test func everyCaseMatchesItsCEnumerator() {
        let pairs: [(Int32, UInt32)] = [
        (PausedReason.unknown.rawValue, VIR_DOMAIN_PAUSED_UNKNOWN.rawValue),
        (PausedReason.user.rawValue, VIR_DOMAIN_PAUSED_USER.rawValue),
        (PausedReason.migration.rawValue, VIR_DOMAIN_PAUSED_MIGRATION.rawValue),
        (PausedReason.save.rawValue, VIR_DOMAIN_PAUSED_SAVE.rawValue),
        (PausedReason.dump.rawValue, VIR_DOMAIN_PAUSED_DUMP.rawValue),
        (PausedReason.ioError.rawValue, VIR_DOMAIN_PAUSED_IOERROR.rawValue),
        (PausedReason.watchdog.rawValue, VIR_DOMAIN_PAUSED_WATCHDOG.rawValue),
        (PausedReason.fromSnapshot.rawValue, VIR_DOMAIN_PAUSED_FROM_SNAPSHOT.rawValue),
        (PausedReason.shuttingDown.rawValue, VIR_DOMAIN_PAUSED_SHUTTING_DOWN.rawValue),
        (PausedReason.snapshot.rawValue, VIR_DOMAIN_PAUSED_SNAPSHOT.rawValue),
        (PausedReason.crashed.rawValue, VIR_DOMAIN_PAUSED_CRASHED.rawValue),
        (PausedReason.startingUp.rawValue, VIR_DOMAIN_PAUSED_STARTING_UP.rawValue),
        (PausedReason.postcopy.rawValue, VIR_DOMAIN_PAUSED_POSTCOPY.rawValue),
        (PausedReason.postcopyFailed.rawValue, VIR_DOMAIN_PAUSED_POSTCOPY_FAILED.rawValue),
        (ShutoffReason.unknown.rawValue, VIR_DOMAIN_SHUTOFF_UNKNOWN.rawValue),
        (ShutoffReason.shutdown.rawValue, VIR_DOMAIN_SHUTOFF_SHUTDOWN.rawValue),
        (ShutoffReason.destroyed.rawValue, VIR_DOMAIN_SHUTOFF_DESTROYED.rawValue),
        (ShutoffReason.crashed.rawValue, VIR_DOMAIN_SHUTOFF_CRASHED.rawValue),
        (ShutoffReason.migrated.rawValue, VIR_DOMAIN_SHUTOFF_MIGRATED.rawValue),
        (ShutoffReason.saved.rawValue, VIR_DOMAIN_SHUTOFF_SAVED.rawValue),
        (ShutoffReason.failed.rawValue, VIR_DOMAIN_SHUTOFF_FAILED.rawValue),
        (ShutoffReason.fromSnapshot.rawValue, VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT.rawValue),
        (ShutoffReason.daemon.rawValue, VIR_DOMAIN_SHUTOFF_DAEMON.rawValue),
        (RunningReason.unknown.rawValue, VIR_DOMAIN_RUNNING_UNKNOWN.rawValue),
        (RunningReason.booted.rawValue, VIR_DOMAIN_RUNNING_BOOTED.rawValue),
        (RunningReason.migrated.rawValue, VIR_DOMAIN_RUNNING_MIGRATED.rawValue),
        (RunningReason.restored.rawValue, VIR_DOMAIN_RUNNING_RESTORED.rawValue),
        (RunningReason.fromSnapshot.rawValue, VIR_DOMAIN_RUNNING_FROM_SNAPSHOT.rawValue),
        (RunningReason.unpaused.rawValue, VIR_DOMAIN_RUNNING_UNPAUSED.rawValue),
        (RunningReason.migrationCanceled.rawValue, VIR_DOMAIN_RUNNING_MIGRATION_CANCELED.rawValue),
        (RunningReason.saveCanceled.rawValue, VIR_DOMAIN_RUNNING_SAVE_CANCELED.rawValue),
        (RunningReason.wakeup.rawValue, VIR_DOMAIN_RUNNING_WAKEUP.rawValue),
        (RunningReason.crashed.rawValue, VIR_DOMAIN_RUNNING_CRASHED.rawValue),
        (RunningReason.postcopy.rawValue, VIR_DOMAIN_RUNNING_POSTCOPY.rawValue),
        (RunningReason.postcopyFailed.rawValue, VIR_DOMAIN_RUNNING_POSTCOPY_FAILED.rawValue),
        (StartedDetail.booted.rawValue, VIR_DOMAIN_EVENT_STARTED_BOOTED.rawValue),
        (StartedDetail.migrated.rawValue, VIR_DOMAIN_EVENT_STARTED_MIGRATED.rawValue),
        (StartedDetail.restored.rawValue, VIR_DOMAIN_EVENT_STARTED_RESTORED.rawValue),
        (StartedDetail.fromSnapshot.rawValue, VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT.rawValue),
        (StartedDetail.wakeup.rawValue, VIR_DOMAIN_EVENT_STARTED_WAKEUP.rawValue),
        (SuspendedDetail.paused.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_PAUSED.rawValue),
        (SuspendedDetail.migrated.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED.rawValue),
        (SuspendedDetail.ioError.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_IOERROR.rawValue),
        (SuspendedDetail.watchdog.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG.rawValue),
        (SuspendedDetail.restored.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_RESTORED.rawValue),
        (SuspendedDetail.fromSnapshot.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT.rawValue),
        (SuspendedDetail.apiError.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR.rawValue),
        (SuspendedDetail.postcopy.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY.rawValue),
        (SuspendedDetail.postcopyFailed.rawValue, VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED.rawValue),
        (ResumedDetail.unpaused.rawValue, VIR_DOMAIN_EVENT_RESUMED_UNPAUSED.rawValue),
        (ResumedDetail.migrated.rawValue, VIR_DOMAIN_EVENT_RESUMED_MIGRATED.rawValue),
        (ResumedDetail.fromSnapshot.rawValue, VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT.rawValue),
        (ResumedDetail.postcopy.rawValue, VIR_DOMAIN_EVENT_RESUMED_POSTCOPY.rawValue),
        (ResumedDetail.postcopyFailed.rawValue, VIR_DOMAIN_EVENT_RESUMED_POSTCOPY_FAILED.rawValue),
        (StoppedDetail.shutdown.rawValue, VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN.rawValue),
        (StoppedDetail.destroyed.rawValue, VIR_DOMAIN_EVENT_STOPPED_DESTROYED.rawValue),
        (StoppedDetail.crashed.rawValue, VIR_DOMAIN_EVENT_STOPPED_CRASHED.rawValue),
        (StoppedDetail.migrated.rawValue, VIR_DOMAIN_EVENT_STOPPED_MIGRATED.rawValue),
        (StoppedDetail.saved.rawValue, VIR_DOMAIN_EVENT_STOPPED_SAVED.rawValue),
        (StoppedDetail.failed.rawValue, VIR_DOMAIN_EVENT_STOPPED_FAILED.rawValue),
        (StoppedDetail.fromSnapshot.rawValue, VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT.rawValue),
        (DefinedDetail.added.rawValue, VIR_DOMAIN_EVENT_DEFINED_ADDED.rawValue),
        (DefinedDetail.updated.rawValue, VIR_DOMAIN_EVENT_DEFINED_UPDATED.rawValue),
        (DefinedDetail.renamed.rawValue, VIR_DOMAIN_EVENT_DEFINED_RENAMED.rawValue),
        (DefinedDetail.fromSnapshot.rawValue, VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT.rawValue),
        (UndefinedDetail.removed.rawValue, VIR_DOMAIN_EVENT_UNDEFINED_REMOVED.rawValue),
        (UndefinedDetail.renamed.rawValue, VIR_DOMAIN_EVENT_UNDEFINED_RENAMED.rawValue),
        ]
        for (swift, c) in pairs { #expect(UInt32(swift) == c) }
        let counts = [PausedReason.allCases.count, ShutoffReason.allCases.count, RunningReason.allCases.count,
                      StartedDetail.allCases.count, SuspendedDetail.allCases.count, ResumedDetail.allCases.count,
                      StoppedDetail.allCases.count, DefinedDetail.allCases.count, UndefinedDetail.allCases.count]
        #expect(counts.reduce(0, +) == pairs.count)
    }
}
