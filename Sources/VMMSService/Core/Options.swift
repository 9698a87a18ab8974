import DBus

/// An `a{sv}` options argument, checked against the keys a method accepts: an unknown key
/// or a value of the wrong type is refused before anything happens.
struct Options {
    let values: [String: DBusValue]

    init(_ argument: DBusValue?, method: String, allowed: [String: DBusSignature]) throws {
        guard case .dictionary(let key, let value, let entries)? = argument, key == "s", value == "v" else {
            throw VMMSError.invalidArgs("\(method) takes an a{sv} of options")
        }
        var values: [String: DBusValue] = [:]
        for entry in entries {
            guard let name = entry.key.string, let inner = entry.value.variant else { continue }
            guard let expected = allowed[name] else {
                let known = allowed.keys.sorted().joined(separator: ", ")
                throw VMMSError.invalidArgs("\(method) has no option \(name); valid options: \(known.isEmpty ? "none" : known)")
            }
            guard inner.signature == expected else {
                throw VMMSError.invalidArgs("option \(name) must be of type \(expected), not \(inner.signature)")
            }
            guard values[name] == nil else { throw VMMSError.invalidArgs("option \(name) is given twice") }
            values[name] = inner
        }
        self.values = values
    }

    func bool(_ key: String) -> Bool? { values[key]?.boolean }
    func uint32(_ key: String) -> UInt32? { values[key]?.uint32 }
    func uint64(_ key: String) -> UInt64? { values[key]?.uint64 }
    func string(_ key: String) -> String? { values[key]?.string }
}
