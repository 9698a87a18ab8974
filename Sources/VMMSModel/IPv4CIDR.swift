/// An IPv4 address with its prefix length (`10.0.5.1/24`): a switch's host address, a host
/// route. Pure arithmetic on the 32-bit value; IPv6 switches are not made by vmms.
public struct IPv4CIDR: Sendable, Hashable, CustomStringConvertible {
    /// The address in host byte order.
    public var address: UInt32
    /// 0…32.
    public var prefix: Int

    public init(address: UInt32, prefix: Int) {
        self.address = address
        self.prefix = max(0, min(32, prefix))
    }

    /// Parses `a.b.c.d/p` (`p` 0…32); nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = Self.parseAddress(String(parts[0])),
              parts[1].count <= 2, parts[1].allSatisfy(\.isASCII), let prefix = Int(parts[1]), (0...32).contains(prefix) else { return nil }
        self.init(address: address, prefix: prefix)
    }

    /// An address and a dotted netmask (`255.255.255.0`), as in libvirt's `<ip>`; nil when the
    /// mask is not contiguous.
    public init?(address text: String, netmask: String) {
        guard let address = Self.parseAddress(text), let mask = Self.parseAddress(netmask) else { return nil }
        let prefix = mask.nonzeroBitCount
        guard mask == Self.mask(prefix) else { return nil }
        self.init(address: address, prefix: prefix)
    }

    /// `a.b.c.d` in host byte order; nil unless four decimal octets 0…255 without leading zeros.
    public static func parseAddress(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard (1...3).contains(octet.count), octet.allSatisfy({ $0.isASCII && $0.isNumber }),
                  octet.count == 1 || octet.first != "0", let byte = UInt32(octet), byte <= 255 else { return nil }
            value = value << 8 | byte
        }
        return value
    }

    public static func dotted(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    public static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix) }

    public var mask: UInt32 { Self.mask(prefix) }
    public var network: UInt32 { address & mask }
    public var broadcast: UInt32 { network | ~mask }
    public var netmask: String { Self.dotted(mask) }
    public var addressText: String { Self.dotted(address) }
    /// The network itself (`10.0.5.0/24`).
    public var networkCIDR: IPv4CIDR { IPv4CIDR(address: network, prefix: prefix) }
    public var description: String { "\(addressText)/\(prefix)" }

    /// Whether the two address ranges share any address.
    public func overlaps(_ other: IPv4CIDR) -> Bool {
        let common = Self.mask(min(prefix, other.prefix))
        return address & common == other.address & common
    }

    /// The range a DHCP server hands out beside the host's address: the larger run of
    /// addresses on either side of it, without the network and broadcast addresses; nil
    /// when there is none (a /31 or /32).
    public var dhcpRange: (start: UInt32, end: UInt32)? {
        guard prefix <= 30 else { return nil }
        let below = address > network + 1 ? (network + 1, address - 1) : nil
        let above = address + 1 < broadcast ? (address + 1, broadcast - 1) : nil
        switch (below, above) {
        case let (b?, a?): return (a.1 - a.0) >= (b.1 - b.0) ? a : b
        case let (b?, nil): return b
        case let (nil, a?): return a
        default: return nil
        }
    }
}
