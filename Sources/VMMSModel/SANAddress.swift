import Foundation

/// The names a SAN is given by: iSCSI portals and qualified names, Fibre Channel world wide
/// names, and a SAN's own name. Each `validate` returns nil when fine, else what to change.
public enum SANAddress {
    /// The iSCSI port a portal without one uses (RFC 7143).
    public static let defaultISCSIPort: UInt16 = 3260

    /// A portal: `host[:port]`, the host an IPv4 address, a DNS name or a bracketed IPv6 address.
    public struct Portal: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: UInt16

        public init(host: String, port: UInt16) {
            self.host = host
            self.port = port
        }

        /// `host:port`, an IPv6 host in brackets.
        public var description: String { "\(host.contains(":") ? "[\(host)]" : host):\(port)" }
    }

    /// Parses `host[:port]`; throws a message saying what is wrong.
    public static func portal(_ text: String) throws(SANAddressError) -> Portal {
        var host = Substring(text), port = defaultISCSIPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw SANAddressError("the portal \(text) opens '[' without closing it") }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            guard isIPv6(host) else { throw SANAddressError("the portal \(text) has no IPv6 address between its brackets") }
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw SANAddressError("the portal \(text) has something other than :port after ']'") }
                port = try parsePort(rest.dropFirst(), in: text)
            }
            return Portal(host: String(host), port: port)
        }
        if let colon = host.lastIndex(of: ":") {
            guard host.firstIndex(of: ":") == colon else {
                throw SANAddressError("the portal \(text) looks like an IPv6 address: write it in brackets, e.g. [\(text)]:3260")
            }
            port = try parsePort(host[host.index(after: colon)...], in: text)
            host = host[..<colon]
        }
        guard isIPv4(host) || isHostname(host) else {
            throw SANAddressError("the portal \(text) must be host[:port], the host an IPv4 address, a DNS name or [IPv6]")
        }
        return Portal(host: String(host), port: port)
    }

    private static func parsePort(_ text: Substring, in portal: String) throws(SANAddressError) -> UInt16 {
        guard !text.isEmpty, text.allSatisfy(\.isASCIIDigit), let port = UInt16(text), port > 0 else {
            throw SANAddressError("the port of the portal \(portal) must be a number from 1 to 65535")
        }
        return port
    }

    static func isIPv4(_ text: Substring) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { $0.count <= 3 && !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) && Int($0)! <= 255 }
    }

    static func isIPv6(_ text: Substring) -> Bool {
        !text.isEmpty && text.count <= 45 && text.contains(":") && text.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
    }

    static func isHostname(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253, !text.allSatisfy({ $0.isASCIIDigit || $0 == "." }) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && label.allSatisfy { $0.isASCIILetterOrDigit || $0 == "-" }
                && label.first != "-" && label.last != "-"
        }
    }

    /// An iSCSI qualified name (RFC 3720 §3.2.6): `iqn.YYYY-MM.reversed.domain[:anything]`,
    /// `eui.` and 16 hex digits, or `naa.` and 16 or 32 hex digits; lower case, at most 223 bytes.
    public static func validateISCSIName(_ name: String, what: String) -> String? {
        let example = "e.g. iqn.2026-01.com.example:storage1"
        guard !name.isEmpty else { return "\(what) is empty; give an iSCSI name, \(example)" }
        guard name.utf8.count <= 223 else { return "\(what) is longer than 223 bytes" }
        if let bad = name.first(where: { !($0.isASCIILowercaseLetterOrDigit || $0 == "." || $0 == "-" || $0 == ":") }) {
            return "\(what) \(name) may only contain lower-case letters, digits, '.', '-' and ':', not '\(bad)'"
        }
        if name.hasPrefix("eui.") || name.hasPrefix("naa.") {
            let digits = name.dropFirst(4)
            let lengths = name.hasPrefix("eui.") ? [16] : [16, 32]
            guard lengths.contains(digits.count), digits.allSatisfy(\.isHexDigit) else {
                return "\(what) \(name) must be \(name.prefix(4)) and \(lengths.map(String.init).joined(separator: " or ")) hex digits"
            }
            return nil
        }
        guard name.hasPrefix("iqn.") else { return "\(what) \(name) must start with iqn., eui. or naa.; \(example)" }
        let body = name.dropFirst(4)
        let naming = body.prefix { $0 != ":" }
        let date = naming.prefix(7), authority = naming.dropFirst(8)
        let year = date.prefix(4), month = date.dropFirst(5)
        guard date.count == 7, year.allSatisfy(\.isASCIIDigit), date.dropFirst(4).first == "-",
              let m = Int(month), (1...12).contains(m), month.allSatisfy(\.isASCIIDigit) else {
            return "\(what) \(name) must have a date yyyy-mm after iqn.; \(example)"
        }
        guard naming.dropFirst(7).first == ".", isHostname(authority) else {
            return "\(what) \(name) must name a reversed domain after the date (iqn.yyyy-mm.com.example); \(example)"
        }
        if body.count > naming.count, body.count == naming.count + 1 {
            return "\(what) \(name) ends with ':' but names nothing after it"
        }
        return nil
    }

    /// A Fibre Channel world wide name: 16 hex digits, optionally in pairs separated by ':';
    /// returned as libvirt writes it (16 lower-case digits), or nil.
    public static func wwn(_ text: String) -> String? {
        let digits = text.contains(":") ? text.split(separator: ":", omittingEmptySubsequences: false).joined() : text
        if text.contains(":"), text.split(separator: ":", omittingEmptySubsequences: false).contains(where: { $0.count != 2 }) { return nil }
        guard digits.count == 16, digits.allSatisfy(\.isHexDigit) else { return nil }
        return digits.lowercased()
    }

    /// A host adapter name as libvirt's node devices name them (`scsi_host5`).
    public static func isAdapterName(_ text: String) -> Bool {
        text.hasPrefix("scsi_host") && text.count > 9 && text.count <= 20 && text.dropFirst(9).allSatisfy(\.isASCIIDigit)
    }

    /// A SAN's name is a libvirt pool name: the VM name rule (ASCII letters, digits, space,
    /// `-`, `_`, `.`; 1–64; not starting with `-` or `.`).
    public static func validateName(_ name: String) -> String? {
        VMNameRule.validate(name).map { $0.replacingOccurrences(of: "the VM name", with: "the SAN name") }
    }

    /// `iscsi://host:port/IQN/`: what every network disk source on this target starts with.
    public static func networkSourcePrefix(portal: String, target: String) -> String? {
        guard !portal.isEmpty, !target.isEmpty else { return nil }
        return "iscsi://\(portal)/\(target)/"
    }

    /// The LUN number of a libvirt SCSI volume name (`unit:0:0:3` → 3).
    public static func lunNumber(ofVolume name: String) -> UInt32? {
        guard name.hasPrefix("unit:"), let last = name.split(separator: ":").last else { return nil }
        return UInt32(last)
    }
}

public struct SANAddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
    fileprivate var isASCIILetterOrDigit: Bool { isASCII && (isLetter || isNumber) }
    fileprivate var isASCIILowercaseLetterOrDigit: Bool { isASCII && (isLowercase || isNumber) }
}
