/// The contract's switch types (Hyper-V's), plus `Routed` for libvirt networks vmms did not
/// make that forward by routing (`route`, `open`).
public enum SwitchType: String, Sendable, CaseIterable {
    case `private` = "Private"
    case `internal` = "Internal"
    case external = "External"
    case nat = "NAT"
    case routed = "Routed"

    /// The types `Host.CreateSwitch` makes.
    public static let creatable: [SwitchType] = [.private, .internal, .external, .nat]

    /// Whether the host has an address on the switch (and dnsmasq serves DHCP there).
    public var hasHostAddress: Bool { self == .internal || self == .nat || self == .routed }
}

/// Everything a Switch object publishes, read from the libvirt network (and, for an External
/// switch vmms made, from its metadata).
public struct SwitchRecord: Sendable, Equatable {
    public var name: String
    public var uuid: String
    public var type: SwitchType
    /// The host bridge ("" for a macvtap External switch).
    public var bridge: String
    public var active: Bool
    /// The host's address as CIDR ("" for Private and External).
    public var address: String
    /// The host NIC of an External switch ("" otherwise).
    public var interface: String
    /// Whether vmms made the bridge (External): Delete removes it, a start recreates it.
    public var managedBridge: Bool

    public init(name: String, uuid: String, type: SwitchType, bridge: String = "", active: Bool = false,
                address: String = "", interface: String = "", managedBridge: Bool = false) {
        self.name = name
        self.uuid = uuid
        self.type = type
        self.bridge = bridge
        self.active = active
        self.address = address
        self.interface = interface
        self.managedBridge = managedBridge
    }
}

/// Every libvirt network as a switch, by name; changes reach the sink in order.
public final class SwitchModel: Sendable {
    private let store: ObjectStore<String, SwitchRecord>

    public init(sink: @escaping ChangeSink<SwitchRecord>) {
        store = ObjectStore(sink: sink)
    }

    public func record(named name: String) -> SwitchRecord? { store[name] }

    public var all: [SwitchRecord] { store.all.sorted { $0.name < $1.name } }

    /// One network read again: `nil` when it is gone.
    public func apply(name: String, _ record: SwitchRecord?) {
        store.set(name, record)
    }

    /// A full listing: what it lacks is gone, what it has replaces what was there.
    public func applyListing(_ records: [SwitchRecord]) {
        let byName = Dictionary(records.map { ($0.name, $0) }) { a, _ in a }
        store.update { batch in
            for name in batch.records.keys where byName[name] == nil { batch[name] = nil }
            for (name, record) in byName { batch[name] = record }
        }
    }
}
