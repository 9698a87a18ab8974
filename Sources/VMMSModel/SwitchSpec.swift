import Foundation

/// Why a switch cannot be made as asked; `message` says what to change.
public enum SwitchSpecError: Error, Sendable, Equatable {
    /// A bad value (InvalidArgs).
    case invalid(String)
    /// A name or bridge that is taken (AlreadyExists).
    case taken(String)

    public var message: String {
        switch self {
        case .invalid(let m), .taken(let m): m
        }
    }
}

/// The contract's switch name rule: the VM name rule's characters (1–64 ASCII letters,
/// digits, space, `-`, `_`, `.`, not starting with `-` or `.`), which libvirt takes as network
/// names and which are safe in file names (dnsmasq's configuration is named after it).
public enum SwitchNameRule {
    public static func validate(_ name: String) -> String? {
        VMNameRule.validate(name).map { $0.replacingOccurrences(of: "the VM name", with: "the switch name") }
    }
}

/// A Linux interface name (bridge, NIC): 1–15 bytes of letters, digits, `-`, `_`, `.`, not
/// `.`/`..` and not starting with `-`, which every tool takes without quoting.
public enum InterfaceNameRule {
    public static let maximumLength = 15

    public static func validate(_ name: String, what: String) -> String? {
        if name.isEmpty { return "\(what) is empty" }
        if name.utf8.count > maximumLength { return "\(what) '\(name)' is longer than \(maximumLength) bytes, the kernel's limit" }
        if name == "." || name == ".." { return "\(what) must not be '\(name)'" }
        // `ip` would read a leading '-' as an option.
        if name.hasPrefix("-") { return "\(what) '\(name)' must not start with '-'" }
        if !name.unicodeScalars.allSatisfy({ VMNameRule.isAllowed($0) && $0 != " " }) {
            return "\(what) '\(name)' may only contain ASCII letters, digits, '-', '_' and '.'"
        }
        return nil
    }
}

/// What the host looks like to a new switch: the network interfaces there are and the IPv4
/// routes of its main table.
public struct HostNetworkFacts: Sendable, Equatable {
    public struct Link: Sendable, Equatable {
        public var name: String
        public var isBridge: Bool
        public var isLoopback: Bool
        /// The bridge (or bond) it is enslaved to.
        public var master: String?
        /// Its IPv4 addresses as CIDR.
        public var addresses: [String]

        public init(name: String, isBridge: Bool = false, isLoopback: Bool = false, master: String? = nil, addresses: [String] = []) {
            self.name = name
            self.isBridge = isBridge
            self.isLoopback = isLoopback
            self.master = master
            self.addresses = addresses
        }
    }

    public struct Route: Sendable, Equatable {
        public var destination: IPv4CIDR
        public var device: String
        public init(destination: IPv4CIDR, device: String) {
            self.destination = destination
            self.device = device
        }
    }

    public var links: [String: Link]
    public var routes: [Route]

    public init(links: [Link] = [], routes: [Route] = []) {
        self.links = Dictionary(links.map { ($0.name, $0) }) { a, _ in a }
        self.routes = routes
    }
}

/// A new switch as `Host.CreateSwitch` asked for it, validated: first on its own
/// (`init(validating:)`), then against the host and the other switches (`resolve`).
public struct SwitchSpec: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable {
        /// A bridge vmms makes around the NIC (host and VMs share the LAN).
        case bridge = "Bridge"
        /// macvtap on the NIC: no bridge, no host ↔ VM traffic over it.
        case macvtap = "Macvtap"
    }

    public var name: String
    public var type: SwitchType
    /// Internal and NAT: the host's address; nil until `resolve` picks a free one.
    public var address: IPv4CIDR?
    /// External: the host NIC.
    public var interface: String?
    /// The bridge; nil for a macvtap switch, and for libvirt to choose (`virbrN`) on the others
    /// until `resolve` (External bridges get `vmbrN`).
    public var bridge: String?
    public var mode: Mode?

    /// Every option `CreateSwitch` takes, with its D-Bus type letter.
    public static let optionKeys: [String: Character] = ["Address": "s", "Interface": "s", "Bridge": "s", "Mode": "s"]
    /// The smallest and largest prefix of a switch's address: enough room for DHCP, not more
    /// than a /8.
    public static let prefixRange = 8...29

    public init(validating name: String, type typeName: String, options: [String: SettingValue]) throws(SwitchSpecError) {
        if let problem = SwitchNameRule.validate(name) { throw .invalid(problem) }
        let creatable = SwitchType.creatable.map(\.rawValue)
        guard let type = SwitchType(rawValue: typeName), SwitchType.creatable.contains(type) else {
            throw .invalid("unknown switch type '\(typeName)'; the types are \(creatable.joined(separator: ", "))")
        }
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            guard let letter = Self.optionKeys[key] else {
                throw .invalid("CreateSwitch has no option \(key); valid options: \(Self.optionKeys.keys.sorted().joined(separator: ", "))")
            }
            guard value.typeLetter == letter else { throw .invalid("option \(key) must be of type \(letter), not \(value.typeLetter)") }
        }
        func string(_ key: String) -> String? { if case .string(let v)? = options[key] { v } else { nil } }
        self.name = name
        self.type = type

        if let text = string("Address") {
            guard type == .internal || type == .nat else {
                throw .invalid("Address is for Internal and NAT switches; a \(type.rawValue) switch gives the host no address")
            }
            guard let cidr = IPv4CIDR(text) else {
                throw .invalid("Address must be the host's IPv4 address with prefix length, like 10.0.5.1/24, not '\(text)'")
            }
            guard Self.prefixRange.contains(cidr.prefix) else {
                throw .invalid("the prefix length of Address must be between \(Self.prefixRange.lowerBound) and \(Self.prefixRange.upperBound), not \(cidr.prefix)")
            }
            guard cidr.address != cidr.network, cidr.address != cidr.broadcast else {
                throw .invalid("Address \(cidr) is the network's \(cidr.address == cidr.network ? "own" : "broadcast") address; give the host an address inside it, like \(IPv4CIDR.dotted(cidr.network + 1))/\(cidr.prefix)")
            }
            let first = cidr.address >> 24
            guard first != 0, first != 127, first < 224, cidr.address >> 16 != 0xA9FE else {
                throw .invalid("Address \(cidr) is not a unicast address a LAN can use (loopback, link-local, multicast and reserved ranges are refused)")
            }
            address = cidr
        }

        let interface = string("Interface")
        if let interface {
            guard type == .external else { throw .invalid("Interface is for External switches only") }
            if let problem = InterfaceNameRule.validate(interface, what: "Interface") { throw .invalid(problem) }
        } else if type == .external {
            throw .invalid("an External switch needs the option Interface, the host NIC to bridge to")
        }
        self.interface = interface

        if let text = string("Mode") {
            guard type == .external else { throw .invalid("Mode is for External switches only") }
            guard let mode = Mode(rawValue: text) else {
                throw .invalid("Mode must be \(Mode.allCases.map(\.rawValue).joined(separator: " or ")), not '\(text)'")
            }
            self.mode = mode
        } else if type == .external {
            mode = .bridge
        }

        if let bridge = string("Bridge") {
            if mode == .macvtap { throw .invalid("a Macvtap switch has no bridge; leave out Bridge") }
            if let problem = InterfaceNameRule.validate(bridge, what: "Bridge") { throw .invalid(problem) }
            self.bridge = bridge
        }
    }

    /// Checks the spec against the host and the other switches, and fills in what was left
    /// to choose: a free address for Internal/NAT, a free `vmbrN` bridge for External.
    public func resolve(switches: [SwitchRecord], host: HostNetworkFacts) throws(SwitchSpecError) -> SwitchSpec {
        if switches.contains(where: { $0.name == name }) { throw .taken("a switch named \(name) already exists") }
        var spec = self
        if let bridge {
            if let other = switches.first(where: { $0.bridge == bridge }) {
                throw .taken("the bridge \(bridge) is the bridge of the switch \(other.name); choose another Bridge")
            }
            if host.links[bridge] != nil {
                throw .taken("the host already has a network interface named \(bridge); choose another Bridge")
            }
        }
        if let interface {
            guard let link = host.links[interface] else {
                throw .invalid("the host has no network interface \(interface); Interface must name an existing NIC (see ip link)")
            }
            if link.isLoopback || link.isBridge {
                throw .invalid("\(interface) is \(link.isLoopback ? "the loopback interface" : "a bridge"); Interface must name a NIC")
            }
            if let master = link.master {
                let owner = switches.first { $0.bridge == master }.map { " of the switch \($0.name)" } ?? ""
                throw .invalid("\(interface) is already enslaved to \(master)\(owner); release it first or choose another NIC")
            }
            if let other = switches.first(where: { $0.type == .external && $0.interface == interface }) {
                throw .invalid("\(interface) is already the NIC of the switch \(other.name)")
            }
            if mode == .bridge, !link.addresses.isEmpty {
                throw .invalid("\(interface) has addresses (\(link.addresses.joined(separator: ", "))); vmms does not move a NIC's addresses onto a bridge: remove them first, or use Mode Macvtap")
            }
            if mode == .bridge, spec.bridge == nil {
                let taken = Set(host.links.keys).union(switches.map(\.bridge))
                spec.bridge = (0..<1000).lazy.map { "vmbr\($0)" }.first { !taken.contains($0) }
            }
        }
        if type == .internal || type == .nat {
            let used = Self.usedRanges(switches: switches, host: host)
            if let address {
                if let clash = used.first(where: { $0.range.overlaps(address) }) {
                    throw .invalid("Address \(address) overlaps \(clash.range.networkCIDR) (\(clash.owner)); choose an address in another range")
                }
            } else {
                spec.address = Self.freeRange(avoiding: used.map(\.range))
                if spec.address == nil { throw .invalid("no free 192.168.x.0/24 or 10.x.0.0/24 range is left on this host; give an Address") }
            }
        }
        return spec
    }

    /// The address ranges in use: other switches' and the host's routes (not the default).
    static func usedRanges(switches: [SwitchRecord], host: HostNetworkFacts) -> [(range: IPv4CIDR, owner: String)] {
        var used: [(range: IPv4CIDR, owner: String)] = []
        for other in switches {
            if let cidr = IPv4CIDR(other.address) { used.append((cidr, "the switch \(other.name)")) }
        }
        for route in host.routes where route.destination.prefix > 0 {
            used.append((route.destination, "a host route via \(route.device)"))
        }
        // Also addresses of links that are down and so have no route now.
        for link in host.links.values.sorted(by: { $0.name < $1.name }) where !link.isLoopback {
            for cidr in link.addresses.compactMap(IPv4CIDR.init) { used.append((cidr, "the address \(cidr) of \(link.name)")) }
        }
        return used
    }

    /// The first free `192.168.N.1/24` (N from 100), then `10.N.0.1/24`.
    static func freeRange(avoiding used: [IPv4CIDR]) -> IPv4CIDR? {
        let candidates = (100...254).map { IPv4CIDR(address: 0xC0A8_0001 | UInt32($0) << 8, prefix: 24) }
            + (100...254).map { IPv4CIDR(address: 0x0A00_0001 | UInt32($0) << 16, prefix: 24) }
        return candidates.first { candidate in !used.contains { $0.overlaps(candidate) } }
    }
}
