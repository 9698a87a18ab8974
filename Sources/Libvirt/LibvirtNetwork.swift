internal import CLibvirt
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Filters for `LibvirtConnection.allNetworks(flags:)`, mapping `virConnectListAllNetworksFlags`.
/// The empty set lists every network.
public struct ListNetworksFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Stopped networks (`VIR_CONNECT_LIST_NETWORKS_INACTIVE`).
    public static let inactive = ListNetworksFlags(rawValue: VIR_CONNECT_LIST_NETWORKS_INACTIVE.rawValue)
    /// Started networks (`VIR_CONNECT_LIST_NETWORKS_ACTIVE`).
    public static let active = ListNetworksFlags(rawValue: VIR_CONNECT_LIST_NETWORKS_ACTIVE.rawValue)
    /// Networks with a persistent definition (`VIR_CONNECT_LIST_NETWORKS_PERSISTENT`).
    public static let persistent = ListNetworksFlags(rawValue: VIR_CONNECT_LIST_NETWORKS_PERSISTENT.rawValue)
    /// Transient networks (`VIR_CONNECT_LIST_NETWORKS_TRANSIENT`).
    public static let transient = ListNetworksFlags(rawValue: VIR_CONNECT_LIST_NETWORKS_TRANSIENT.rawValue)
    /// Networks that start with the host (`VIR_CONNECT_LIST_NETWORKS_AUTOSTART`).
    public static let autostart = ListNetworksFlags(rawValue: VIR_CONNECT_LIST_NETWORKS_AUTOSTART.rawValue)
    /// Networks that do not (`VIR_CONNECT_LIST_NETWORKS_NO_AUTOSTART`).
    public static let noAutostart = ListNetworksFlags(rawValue: VIR_CONNECT_LIST_NETWORKS_NO_AUTOSTART.rawValue)
}

/// The address family of a DHCP lease, mirroring `virIPAddrType`.
public enum IPAddressType: Int32, Sendable, CaseIterable {
    /// IPv4 (`VIR_IP_ADDR_TYPE_IPV4`).
    case ipv4 = 0
    /// IPv6 (`VIR_IP_ADDR_TYPE_IPV6`).
    case ipv6 = 1
}

/// One lease handed out by a network's DHCP server (dnsmasq). Read with
/// `LibvirtNetwork.dhcpLeases(mac:)` (wraps `virNetworkGetDHCPLeases`).
public struct DHCPLease: Sendable, Equatable {
    /// The network's bridge, e.g. "virbr0".
    public var interface: String
    /// When the lease expires, in seconds since the Unix epoch (0: never).
    public var expiryTime: Int64
    /// IPv4 or IPv6; nil for a family this wrapper does not know.
    public var type: IPAddressType?
    /// The client's MAC address (lowercase, colon-separated); may be absent for IPv6.
    public var mac: String?
    /// The IPv6 identity association ID, if any.
    public var iaid: String?
    /// The leased address, e.g. "10.251.3.57".
    public var ipAddress: String
    /// The prefix length of the network the address is in, e.g. 24.
    public var prefix: UInt32
    /// The host name the client sent, if any.
    public var hostname: String?
    /// The client ID (IPv4) or DUID (IPv6), if any.
    public var clientID: String?
}

/// The kind of a network lifecycle event, mirroring `virNetworkEventLifecycleType`.
public enum NetworkLifecycleEvent: Int32, Sendable, CaseIterable {
    /// A persistent definition was added or changed (`VIR_NETWORK_EVENT_DEFINED`).
    case defined = 0
    /// The persistent definition was removed (`VIR_NETWORK_EVENT_UNDEFINED`).
    case undefined = 1
    /// The network was started (`VIR_NETWORK_EVENT_STARTED`).
    case started = 2
    /// The network was stopped (`VIR_NETWORK_EVENT_STOPPED`).
    case stopped = 3
}

/// A network was defined, undefined, started or stopped; the only network event libvirt has
/// (`VIR_NETWORK_EVENT_ID_LIFECYCLE`). Delivered to `LibvirtConnection.registerNetworkEvents`.
public struct NetworkEvent: Sendable, Equatable {
    /// The network's lowercase UUID.
    public var uuid: String
    /// The network's name.
    public var name: String
    /// A `NetworkLifecycleEvent` raw value, kept raw so values of newer libvirt versions
    /// still arrive.
    public var event: Int32
    /// libvirt's detail value (always 0 in libvirt 9.0).
    public var detail: Int32

    /// The typed event kind; nil for a value this wrapper does not know.
    public var lifecycleEvent: NetworkLifecycleEvent? { NetworkLifecycleEvent(rawValue: event) }
}

/// A libvirt virtual network (a bridge, with optional DHCP, DNS and forwarding).
/// Owns one `virNetworkPtr` and frees it when released. Wraps `virNetworkFree`.
public final class LibvirtNetwork: @unchecked Sendable {
    /// The `virNetworkPtr`, owned by this object.
    let handle: OpaquePointer

    /// Takes ownership of a `virNetworkPtr`.
    init(owning handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        if virNetworkFree(handle) < 0 { virResetLastError() }
    }

    /// The network's name. Wraps `virNetworkGetName`.
    public var name: String {
        get throws { try borrowString("virNetworkGetName") { virNetworkGetName(handle) } }
    }

    /// The network's UUID in lowercase canonical form. Wraps `virNetworkGetUUIDString`.
    public var uuid: String {
        get throws {
            try uuidString("virNetworkGetUUIDString") { virNetworkGetUUIDString(handle, $0) }
        }
    }

    /// Whether the network is started. Wraps `virNetworkIsActive`.
    public var isActive: Bool {
        get throws { try check("virNetworkIsActive") { virNetworkIsActive(handle) } == 1 }
    }

    /// Whether the network has a persistent definition. Wraps `virNetworkIsPersistent`.
    public var isPersistent: Bool {
        get throws { try check("virNetworkIsPersistent") { virNetworkIsPersistent(handle) } == 1 }
    }

    /// Whether the network starts with the host. Wraps `virNetworkGetAutostart`.
    public var autostart: Bool {
        get throws {
            var value: Int32 = 0
            try check("virNetworkGetAutostart") { virNetworkGetAutostart(handle, &value) }
            return value != 0
        }
    }

    /// Sets whether the network starts with the host (persistent networks only).
    /// Wraps `virNetworkSetAutostart`.
    public func setAutostart(_ enabled: Bool) throws {
        try check("virNetworkSetAutostart") { virNetworkSetAutostart(handle, enabled ? 1 : 0) }
    }

    /// The name of the network's host bridge, e.g. "virbr0". Wraps `virNetworkGetBridgeName`.
    public func bridgeName() throws -> String {
        try takeString("virNetworkGetBridgeName") { virNetworkGetBridgeName(handle) }
    }

    /// The network's `<network>` XML; `inactive` gives the persistent definition rather than
    /// the running one. Wraps `virNetworkGetXMLDesc`.
    public func xmlDesc(inactive: Bool = false) throws -> String {
        let flags = inactive ? VIR_NETWORK_XML_INACTIVE.rawValue : 0
        return try takeString("virNetworkGetXMLDesc") { virNetworkGetXMLDesc(handle, flags) }
    }

    /// Starts a defined network (creates its bridge, starts dnsmasq if it has `<ip>`).
    /// Wraps `virNetworkCreate`.
    public func create() throws {
        try check("virNetworkCreate") { virNetworkCreate(handle) }
    }

    /// Stops the network; a transient network disappears. Guests' taps on it are orphaned
    /// (libvirt does not refuse). Wraps `virNetworkDestroy`.
    public func destroy() throws {
        try check("virNetworkDestroy") { virNetworkDestroy(handle) }
    }

    /// Removes the persistent definition; a running network becomes transient.
    /// Wraps `virNetworkUndefine`.
    public func undefine() throws {
        try check("virNetworkUndefine") { virNetworkUndefine(handle) }
    }

    /// The current DHCP leases of an active network, all or only those of `mac`.
    /// Wraps `virNetworkGetDHCPLeases` and `virNetworkDHCPLeaseFree`.
    public func dhcpLeases(mac: String? = nil) throws -> [DHCPLease] {
        var leases: UnsafeMutablePointer<virNetworkDHCPLeasePtr?>? = nil
        let count = try withOptionalCString(mac) { mac in
            try check("virNetworkGetDHCPLeases") { virNetworkGetDHCPLeases(handle, mac, &leases, 0) }
        }
        guard let leases else { return [] }
        defer {
            for index in 0..<Int(count) { virNetworkDHCPLeaseFree(leases[index]) }
            free(leases)
        }
        return (0..<Int(count)).compactMap { index in
            guard let lease = leases[index]?.pointee else { return nil }
            return DHCPLease(
                interface: stringOrEmpty(lease.iface), expiryTime: lease.expirytime,
                type: IPAddressType(rawValue: lease.type), mac: lease.mac.map { String(cString: $0) },
                iaid: lease.iaid.map { String(cString: $0) }, ipAddress: stringOrEmpty(lease.ipaddr),
                prefix: lease.prefix, hostname: lease.hostname.map { String(cString: $0) },
                clientID: lease.clientid.map { String(cString: $0) })
        }
    }
}

extension LibvirtConnection {
    /// All networks matching `flags` (empty: every network). Wraps `virConnectListAllNetworks`.
    public func allNetworks(flags: ListNetworksFlags = []) throws -> [LibvirtNetwork] {
        try list("virConnectListAllNetworks", LibvirtNetwork.init(owning:)) {
            virConnectListAllNetworks(handle, $0, flags.rawValue)
        }
    }

    /// The network with this name; throws a `.noNetwork` error when there is none.
    /// Wraps `virNetworkLookupByName`.
    public func network(name: String) throws -> LibvirtNetwork {
        LibvirtNetwork(owning: try checkNonNull("virNetworkLookupByName") { virNetworkLookupByName(handle, name) })
    }

    /// The network with this UUID (any case); throws a `.noNetwork` error when there is none.
    /// Wraps `virNetworkLookupByUUIDString`.
    public func network(uuid: String) throws -> LibvirtNetwork {
        LibvirtNetwork(owning: try checkNonNull("virNetworkLookupByUUIDString") {
            virNetworkLookupByUUIDString(handle, uuid)
        })
    }

    /// Defines (or redefines, same UUID) a persistent, inactive network from `<network>` XML;
    /// `validate` checks the XML against libvirt's schema first. Wraps `virNetworkDefineXMLFlags`.
    public func defineNetwork(xml: String, validate: Bool = false) throws -> LibvirtNetwork {
        let flags = validate ? VIR_NETWORK_DEFINE_VALIDATE.rawValue : 0
        return LibvirtNetwork(owning: try checkNonNull("virNetworkDefineXMLFlags") {
            virNetworkDefineXMLFlags(handle, xml, flags)
        })
    }

    /// Creates and starts a transient network (gone once stopped).
    /// Wraps `virNetworkCreateXMLFlags`.
    public func createNetwork(xml: String, validate: Bool = false) throws -> LibvirtNetwork {
        let flags = validate ? VIR_NETWORK_CREATE_VALIDATE.rawValue : 0
        return LibvirtNetwork(owning: try checkNonNull("virNetworkCreateXMLFlags") {
            virNetworkCreateXMLFlags(handle, xml, flags)
        })
    }

    /// Registers `handler` for the lifecycle events of every network of this connection; it
    /// runs on the event-loop thread (see `registerDomainEvents`). Needs
    /// `LibvirtEventLoop.start()` before this connection was opened.
    /// Wraps `virConnectNetworkEventRegisterAny`.
    public func registerNetworkEvents(_ handler: @escaping @Sendable (NetworkEvent) -> Void) throws -> EventRegistration {
        try networkEvents.add(handler, connection: self)
    }
}

// MARK: - C callback plumbing

/// Network events: the lifecycle callback only (libvirt 9.0 has no other network event).
enum NetworkEventFamily: EventFamily {
    typealias Event = NetworkEvent

    static func register(connection: OpaquePointer, hub: EventHub<NetworkEventFamily>) throws(LibvirtError) -> [Int32] {
        let lifecycle: virConnectNetworkEventLifecycleCallback = { _, network, event, detail, opaque in
            guard let network, let opaque,
                  let uuid = try? uuidString("virNetworkGetUUIDString", { virNetworkGetUUIDString(network, $0) }),
                  let name = virNetworkGetName(network) else {
                virResetLastError()
                return
            }
            EventHub<NetworkEventFamily>.from(opaque).dispatch(
                NetworkEvent(uuid: uuid, name: String(cString: name), event: event, detail: detail))
        }
        let callback = unsafeBitCast(lifecycle, to: virConnectNetworkEventGenericCallback.self)
        return try hub.registerEach([(cInt(VIR_NETWORK_EVENT_ID_LIFECYCLE), callback)],
                                    function: "virConnectNetworkEventRegisterAny",
                                    connection: connection) { connection, eventID, callback, opaque, free in
            virConnectNetworkEventRegisterAny(connection, nil, eventID, callback, opaque, free)
        }
    }

    static func deregister(connection: OpaquePointer, callbackID: Int32) -> Int32 {
        virConnectNetworkEventDeregisterAny(connection, callbackID)
    }
}
