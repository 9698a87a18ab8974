import DBus

/// The JSON vmmsctl prints for `--json`: keys sorted, so the output of two runs over the same
/// state is byte for byte the same.
indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    /// Pretty-printed with two-space indents, or, for `--watch`, one line per document.
    /// Keys are sorted; written here rather than with JSONEncoder, whose Linux output puts
    /// `" : "` between key and value and spreads an empty array over three lines.
    func rendered(compact: Bool = false) -> String {
        var out = ""
        write(to: &out, indent: compact ? nil : 0)
        return out
    }

    private func write(to out: inout String, indent: Int?) {
        switch self {
        case .null: out += "null"
        case .bool(let v): out += v ? "true" : "false"
        case .int(let v): out += String(v)
        case .uint(let v): out += String(v)
        case .double(let v): out += v.isFinite ? String(v) : "null"
        case .string(let v): Self.quote(v, to: &out)
        case .array(let items):
            writeContainer(items.map { (nil, $0) }, open: "[", close: "]", to: &out, indent: indent)
        case .object(let members):
            writeContainer(members.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, open: "{", close: "}",
                           to: &out, indent: indent)
        }
    }

    private func writeContainer(_ items: [(String?, JSON)], open: String, close: String, to out: inout String, indent: Int?) {
        guard !items.isEmpty else { out += open + close; return }
        out += open
        for (index, (key, value)) in items.enumerated() {
            if index > 0 { out += "," }
            if let indent { out += "\n" + String(repeating: "  ", count: indent + 1) }
            if let key {
                Self.quote(key, to: &out)
                out += indent == nil ? ":" : ": "
            }
            value.write(to: &out, indent: indent.map { $0 + 1 })
        }
        if let indent { out += "\n" + String(repeating: "  ", count: indent) }
        out += close
    }

    /// RFC 8259 string escaping.
    static func quote(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(scalar.value, radix: 16).leftPadded(to: 4)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// A D-Bus value as JSON: numbers stay numbers, object paths and signatures become strings,
    /// structures arrays, string-keyed dictionaries objects, variants their content.
    init(_ value: DBusValue) {
        switch value {
        case .byte(let v): self = .uint(UInt64(v))
        case .boolean(let v): self = .bool(v)
        case .int16(let v): self = .int(Int64(v))
        case .uint16(let v): self = .uint(UInt64(v))
        case .int32(let v): self = .int(Int64(v))
        case .uint32(let v): self = .uint(UInt64(v))
        case .int64(let v): self = .int(v)
        case .uint64(let v): self = .uint(v)
        case .double(let v): self = .double(v)
        case .string(let v): self = .string(v)
        case .objectPath(let v): self = .string(v.rawValue)
        case .signature(let v): self = .string(v.rawValue)
        case .array(_, let items): self = .array(items.map(JSON.init))
        case .structure(let fields): self = .array(fields.map(JSON.init))
        case .variant(let inner): self = JSON(inner)
        case .dictionary:
            if let entries = value.stringKeyedDictionary {
                self = .object(entries.mapValues(JSON.init))
            } else {
                self = .array((value.arrayElements ?? []).map(JSON.init))
            }
        default:
            // File descriptors mean nothing outside this process.
            self = .null
        }
    }
}
