internal import CDBus

/// A validated D-Bus type signature such as `a{sv}` or `(sst)`.
///
/// Construction fails for anything libdbus would reject, so a `DBusSignature` can always be
/// handed to libdbus without it printing a warning or producing a corrupt message.
public struct DBusSignature: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    /// A signature made of zero or more complete types. Wraps `dbus_signature_validate`.
    public init?(_ rawValue: String) {
        guard rawValue.utf8.count <= 255, !rawValue.utf8.contains(0),
              dbus_signature_validate(rawValue, nil) != 0 else { return nil }
        self.rawValue = rawValue
    }

    /// For literals in our own code: a typo is a programming error caught by the first test run.
    public init(stringLiteral value: String) {
        guard let valid = DBusSignature(value) else { preconditionFailure("invalid D-Bus signature literal \(value)") }
        self = valid
    }

    init(unchecked rawValue: String) { self.rawValue = rawValue }

    public static let empty = DBusSignature(unchecked: "")

    public var description: String { rawValue }

    /// True when this is exactly one complete type. Wraps `dbus_signature_validate_single`.
    public var isSingleCompleteType: Bool { dbus_signature_validate_single(rawValue, nil) != 0 }

    /// Splits a signature into its complete types: `sa{sv}u` → `s`, `a{sv}`, `u`.
    public var completeTypes: [DBusSignature] {
        var result: [DBusSignature] = []
        var rest = Substring(rawValue)
        while !rest.isEmpty {
            let length = Self.completeTypeLength(rest)
            guard length > 0 else { break }
            result.append(DBusSignature(unchecked: String(rest.prefix(length))))
            rest = rest.dropFirst(length)
        }
        return result
    }

    /// Length in characters of the complete type at the start of `s` (0 when malformed).
    private static func completeTypeLength(_ s: Substring) -> Int {
        guard let first = s.first else { return 0 }
        switch first {
        case "a":
            let inner = completeTypeLength(s.dropFirst())
            return inner == 0 ? 0 : inner + 1
        case "(", "{":
            let close: Character = first == "(" ? ")" : "}"
            var rest = s.dropFirst()
            var length = 1
            while let c = rest.first, c != close {
                let inner = completeTypeLength(rest)
                guard inner > 0 else { return 0 }
                length += inner
                rest = rest.dropFirst(inner)
            }
            return rest.first == close ? length + 1 : 0
        default:
            return 1
        }
    }
}

/// A validated D-Bus object path such as `/org/example/VMMS1/Host`.
public struct ObjectPath: Sendable, Hashable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String

    public init?(_ rawValue: String) {
        guard Self.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// A path libdbus has already validated (a received message), so not checked again.
    init(validated rawValue: String) { self.rawValue = rawValue }

    public init(stringLiteral value: String) {
        guard let valid = ObjectPath(value) else { preconditionFailure("invalid object path literal \(value)") }
        self = valid
    }

    public static let root = ObjectPath(stringLiteral: "/")

    public var description: String { rawValue }

    public static func < (lhs: ObjectPath, rhs: ObjectPath) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The D-Bus rule, checked here rather than by libdbus so invalid input never reaches C:
    /// `/`, or `/`-separated non-empty elements of `[A-Za-z0-9_]`, no trailing `/`.
    public static func isValid(_ s: String) -> Bool {
        let bytes = Array(s.utf8)
        guard bytes.first == UInt8(ascii: "/") else { return false }
        if bytes.count == 1 { return true }
        guard bytes.last != UInt8(ascii: "/") else { return false }
        var previousSlash = false
        for b in bytes {
            if b == UInt8(ascii: "/") {
                if previousSlash { return false }
                previousSlash = true
            } else {
                guard isLabelByte(b) else { return false }
                previousSlash = false
            }
        }
        return true
    }

    static func isLabelByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
    }

    /// The child path `self/label`, with `label` escaped the way systemd escapes bus labels:
    /// every byte outside `[A-Za-z0-9]` becomes `_` and two lower-case hex digits; "" is `_`.
    public func appending(escaping label: String) -> ObjectPath {
        appending(element: Self.escape(label))
    }

    /// The child path `self/element`; `element` must already be a valid path element.
    public func appending(element: String) -> ObjectPath {
        let joined = rawValue == "/" ? "/" + element : rawValue + "/" + element
        return ObjectPath(joined) ?? self
    }

    /// The last element, or nil for `/`.
    public var lastElement: String? {
        rawValue == "/" ? nil : rawValue.split(separator: "/").last.map(String.init)
    }

    /// True when `self` lies strictly below `ancestor`.
    public func isDescendant(of ancestor: ObjectPath) -> Bool {
        if ancestor.rawValue == "/" { return rawValue != "/" }
        return rawValue.hasPrefix(ancestor.rawValue + "/")
    }

    /// systemd's `bus_label_escape`.
    public static func escape(_ label: String) -> String {
        if label.isEmpty { return "_" }
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in label.utf8 {
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "_"))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// systemd's `bus_label_unescape`; nil when the element is not a valid escape.
    public static func unescape(_ element: String) -> String? {
        if element == "_" { return "" }
        var out: [UInt8] = []
        var it = Array(element.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "_") {
                guard let h = it.popFirst(), let l = it.popFirst(),
                      let hv = hexValue(h), let lv = hexValue(l) else { return nil }
                out.append(hv << 4 | lv)
            } else {
                out.append(b)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }
}
