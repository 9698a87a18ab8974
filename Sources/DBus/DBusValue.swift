/// One D-Bus value of any type, containers included.
///
/// Arrays and dictionaries carry their element signature so that an empty one still has a type.
public indirect enum DBusValue: Sendable, Hashable {
    case byte(UInt8)
    case boolean(Bool)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case double(Double)
    case string(String)
    case objectPath(ObjectPath)
    case signature(DBusSignature)
    /// A file descriptor. A received one is owned by its `UnixFileDescriptor` and closed when
    /// the value is dropped; sending one duplicates it into the message.
    case unixFD(UnixFileDescriptor)
    case array(DBusSignature, [DBusValue])
    case dictionary(key: DBusSignature, value: DBusSignature, [DictionaryEntry])
    case structure([DBusValue])
    case variant(DBusValue)

    public struct DictionaryEntry: Sendable, Hashable {
        public var key: DBusValue
        public var value: DBusValue
        public init(_ key: DBusValue, _ value: DBusValue) { self.key = key; self.value = value }
    }

    /// The single complete type of this value.
    public var signature: DBusSignature {
        DBusSignature(unchecked: signatureString)
    }

    var signatureString: String {
        switch self {
        case .byte: "y"
        case .boolean: "b"
        case .int16: "n"
        case .uint16: "q"
        case .int32: "i"
        case .uint32: "u"
        case .int64: "x"
        case .uint64: "t"
        case .double: "d"
        case .string: "s"
        case .objectPath: "o"
        case .signature: "g"
        case .unixFD: "h"
        case .array(let element, _): "a" + element.rawValue
        case .dictionary(let key, let value, _): "a{" + key.rawValue + value.rawValue + "}"
        case .structure(let fields): "(" + fields.map(\.signatureString).joined() + ")"
        case .variant: "v"
        }
    }

    /// The signature of a message body made of these values.
    public static func signature(of values: [DBusValue]) -> DBusSignature {
        DBusSignature(unchecked: values.map(\.signatureString).joined())
    }
}

// MARK: - Building values from Swift

extension DBusValue {
    /// `a{sv}`, the usual options and properties dictionary.
    public static func vardict(_ entries: [String: DBusValue]) -> DBusValue {
        .dictionary(key: "s", value: "v", entries.sorted { $0.key < $1.key }.map { .init(.string($0.key), .variant($0.value)) })
    }

    public static func strings(_ values: [String]) -> DBusValue { .array("s", values.map { .string($0) }) }

    public static func objectPaths(_ values: [ObjectPath]) -> DBusValue { .array("o", values.map { .objectPath($0) }) }
}

// MARK: - Reading values into Swift

extension DBusValue {
    public var string: String? { if case .string(let v) = self { v } else { nil } }
    public var boolean: Bool? { if case .boolean(let v) = self { v } else { nil } }
    public var uint32: UInt32? { if case .uint32(let v) = self { v } else { nil } }
    public var int32: Int32? { if case .int32(let v) = self { v } else { nil } }
    public var uint64: UInt64? { if case .uint64(let v) = self { v } else { nil } }
    public var int64: Int64? { if case .int64(let v) = self { v } else { nil } }
    public var double: Double? { if case .double(let v) = self { v } else { nil } }
    public var objectPath: ObjectPath? { if case .objectPath(let v) = self { v } else { nil } }
    public var unixFD: UnixFileDescriptor? { if case .unixFD(let v) = self { v } else { nil } }
    /// The content of a variant, or nil when this is not a variant.
    public var variant: DBusValue? { if case .variant(let v) = self { v } else { nil } }

    /// Array elements (also the entries of a dictionary, as two-field structures).
    public var arrayElements: [DBusValue]? {
        switch self {
        case .array(_, let items): items
        case .dictionary(_, _, let entries): entries.map { .structure([$0.key, $0.value]) }
        default: nil
        }
    }

    /// An `a{sv}` (or any string-keyed dictionary) as a Swift dictionary, variants unwrapped.
    /// Duplicate keys keep the last value, as GLib does.
    public var stringKeyedDictionary: [String: DBusValue]? {
        guard case .dictionary(let key, _, let entries) = self, key.rawValue == "s" else { return nil }
        var result: [String: DBusValue] = [:]
        for entry in entries {
            guard let k = entry.key.string else { return nil }
            result[k] = entry.value.variant ?? entry.value
        }
        return result
    }

    /// Checks that every element agrees with its container's declared signature; libdbus would
    /// otherwise build a corrupt message.
    public var isWellFormed: Bool {
        switch self {
        case .string(let s): !s.utf8.contains(0)
        case .array(let element, let items):
            element.isSingleCompleteType && items.allSatisfy { $0.signatureString == element.rawValue && $0.isWellFormed }
        case .dictionary(let key, let value, let entries):
            key.isSingleCompleteType && value.isSingleCompleteType && Self.isBasic(key.rawValue)
                && entries.allSatisfy {
                    $0.key.signatureString == key.rawValue && $0.value.signatureString == value.rawValue
                        && $0.key.isWellFormed && $0.value.isWellFormed
                }
        case .structure(let fields): !fields.isEmpty && fields.allSatisfy(\.isWellFormed)
        case .variant(let inner): inner.isWellFormed
        case .unixFD(let fd): fd.rawValue != nil
        default: true
        }
    }

    static func isBasic(_ signature: String) -> Bool {
        signature.count == 1 && "ybnqiuxtdsogh".contains(signature)
    }
}
