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
