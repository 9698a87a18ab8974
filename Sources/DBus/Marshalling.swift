internal import CDBus

/// D-Bus type codes as `Int32`, spelled out because the C macros (`((int) 'y')`) do not import.
enum TypeCode {
    static let byte = code("y"), boolean = code("b"), int16 = code("n"), uint16 = code("q")
    static let int32 = code("i"), uint32 = code("u"), int64 = code("x"), uint64 = code("t")
    static let double = code("d"), string = code("s"), objectPath = code("o"), signature = code("g")
    static let unixFD = code("h"), array = code("a"), structure = code("r"), variant = code("v")
    static let dictEntry = code("e"), invalid: Int32 = 0

    private static func code(_ c: Unicode.Scalar) -> Int32 { Int32(c.value) }
}

/// Writes values into a libdbus message iterator. Every value is checked with `isWellFormed`
/// before anything is appended, so a half-written message never happens.
enum Marshaller {
    static func append(_ values: [DBusValue], to message: OpaquePointer) throws(DBusError) {
        for value in values where !value.isWellFormed {
            throw .invalidArgs("value of type \(value.signature) is not well formed")
        }
        var iter = DBusMessageIter()
        dbus_message_iter_init_append(message, &iter)
        for value in values {
            guard append(value, &iter) else { throw DBusError(DBusError.Name.noMemory, "out of memory while building a message") }
        }
    }

    private static func appendBasic<T>(_ iter: UnsafeMutablePointer<DBusMessageIter>, _ type: Int32, _ value: T) -> Bool {
        var copy = value
        return withUnsafePointer(to: &copy) { dbus_message_iter_append_basic(iter, type, $0) != 0 }
    }

    private static func appendString(_ iter: UnsafeMutablePointer<DBusMessageIter>, _ type: Int32, _ value: String) -> Bool {
        value.withCString { cString in
            var pointer: UnsafePointer<CChar>? = cString
            return dbus_message_iter_append_basic(iter, type, &pointer) != 0
        }
    }

    private static func container(_ iter: UnsafeMutablePointer<DBusMessageIter>, _ type: Int32, _ signature: String?,
                                  _ body: (UnsafeMutablePointer<DBusMessageIter>) -> Bool) -> Bool {
        var sub = DBusMessageIter()
        let opened: Bool
        if let signature {
            opened = signature.withCString { dbus_message_iter_open_container(iter, type, $0, &sub) != 0 }
        } else {
            opened = dbus_message_iter_open_container(iter, type, nil, &sub) != 0
        }
        guard opened else { return false }
        guard body(&sub) else {
            dbus_message_iter_abandon_container(iter, &sub)
            return false
        }
        return dbus_message_iter_close_container(iter, &sub) != 0
    }

    static func append(_ value: DBusValue, _ iter: UnsafeMutablePointer<DBusMessageIter>) -> Bool {
        switch value {
        case .byte(let v): return appendBasic(iter, TypeCode.byte, v)
        case .boolean(let v): return appendBasic(iter, TypeCode.boolean, dbus_bool_t(v ? 1 : 0))
        case .int16(let v): return appendBasic(iter, TypeCode.int16, v)
        case .uint16(let v): return appendBasic(iter, TypeCode.uint16, v)
        case .int32(let v): return appendBasic(iter, TypeCode.int32, v)
        case .uint32(let v): return appendBasic(iter, TypeCode.uint32, v)
        case .int64(let v): return appendBasic(iter, TypeCode.int64, v)
        case .uint64(let v): return appendBasic(iter, TypeCode.uint64, v)
        case .double(let v): return appendBasic(iter, TypeCode.double, v)
        // libdbus duplicates the descriptor into the message; the owner keeps its own.
        case .unixFD(let v): return v.withDescriptor { appendBasic(iter, TypeCode.unixFD, $0) } ?? false
        case .string(let v): return appendString(iter, TypeCode.string, v)
        case .objectPath(let v): return appendString(iter, TypeCode.objectPath, v.rawValue)
        case .signature(let v): return appendString(iter, TypeCode.signature, v.rawValue)
        case .array(let element, let items):
            return container(iter, TypeCode.array, element.rawValue) { sub in items.allSatisfy { append($0, sub) } }
        case .dictionary(let key, let valueType, let entries):
            return container(iter, TypeCode.array, "{" + key.rawValue + valueType.rawValue + "}") { sub in
                entries.allSatisfy { entry in
                    container(sub, TypeCode.dictEntry, nil) { e in append(entry.key, e) && append(entry.value, e) }
                }
            }
        case .structure(let fields):
            return container(iter, TypeCode.structure, nil) { sub in fields.allSatisfy { append($0, sub) } }
        case .variant(let inner):
            return container(iter, TypeCode.variant, inner.signatureString) { sub in append(inner, sub) }
        }
    }
}

/// Reads values out of a libdbus message iterator.
enum Unmarshaller {
    static func values(of message: OpaquePointer) -> [DBusValue] {
        var iter = DBusMessageIter()
        guard dbus_message_iter_init(message, &iter) != 0 else { return [] }
        return readAll(&iter)
    }

    private static func readAll(_ iter: UnsafeMutablePointer<DBusMessageIter>) -> [DBusValue] {
        var result: [DBusValue] = []
        while dbus_message_iter_get_arg_type(iter) != TypeCode.invalid {
            if let value = read(iter) { result.append(value) }
            dbus_message_iter_next(iter)
        }
        return result
    }

    private static func basic<T>(_ iter: UnsafeMutablePointer<DBusMessageIter>, _ initial: T) -> T {
        var value = initial
        withUnsafeMutablePointer(to: &value) { dbus_message_iter_get_basic(iter, $0) }
        return value
    }

    private static func string(_ iter: UnsafeMutablePointer<DBusMessageIter>) -> String {
        var pointer: UnsafePointer<CChar>? = nil
        dbus_message_iter_get_basic(iter, &pointer)
        return pointer.map { String(cString: $0) } ?? ""
    }

    private static func signature(_ iter: UnsafeMutablePointer<DBusMessageIter>) -> String {
        guard let raw = dbus_message_iter_get_signature(iter) else { return "" }
        defer { dbus_free(raw) }
        return String(cString: raw)
    }

    /// libdbus has validated the whole message on receipt, so a type code here is always one
    /// of the known ones; anything else is skipped rather than trusted.
    static func read(_ iter: UnsafeMutablePointer<DBusMessageIter>) -> DBusValue? {
        let type = dbus_message_iter_get_arg_type(iter)
        switch type {
        case TypeCode.byte: return .byte(basic(iter, UInt8(0)))
        case TypeCode.boolean: return .boolean(basic(iter, dbus_bool_t(0)) != 0)
        case TypeCode.int16: return .int16(basic(iter, Int16(0)))
        case TypeCode.uint16: return .uint16(basic(iter, UInt16(0)))
        case TypeCode.int32: return .int32(basic(iter, Int32(0)))
        case TypeCode.uint32: return .uint32(basic(iter, UInt32(0)))
        case TypeCode.int64: return .int64(basic(iter, Int64(0)))
        case TypeCode.uint64: return .uint64(basic(iter, UInt64(0)))
        case TypeCode.double: return .double(basic(iter, Double(0)))
        // libdbus hands out a new duplicate on every read: owned at once, so it cannot leak.
        case TypeCode.unixFD: return .unixFD(UnixFileDescriptor(adopting: basic(iter, Int32(-1))))
        case TypeCode.string: return .string(string(iter))
        // libdbus validated every path of a received message; appended ones are checked.
        case TypeCode.objectPath: return .objectPath(ObjectPath(validated: string(iter)))
        case TypeCode.signature: return DBusSignature(string(iter)).map { .signature($0) }
        case TypeCode.array:
            let full = signature(iter)
            let elementSignature = String(full.dropFirst())
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(iter, &sub)
            if elementSignature.hasPrefix("{") {
                let types = DBusSignature(unchecked: String(elementSignature.dropFirst().dropLast())).completeTypes
                guard types.count == 2 else { return nil }
                var entries: [DBusValue.DictionaryEntry] = []
                while dbus_message_iter_get_arg_type(&sub) == TypeCode.dictEntry {
                    var entry = DBusMessageIter()
                    dbus_message_iter_recurse(&sub, &entry)
                    // Key and value read directly: an array per entry was a third of decoding.
                    if let key = read(&entry), dbus_message_iter_next(&entry) != 0, let value = read(&entry) {
                        entries.append(.init(key, value))
                    }
                    dbus_message_iter_next(&sub)
                }
                return .dictionary(key: types[0], value: types[1], entries)
            }
            return .array(DBusSignature(unchecked: elementSignature), readAll(&sub))
        case TypeCode.structure:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(iter, &sub)
            return .structure(readAll(&sub))
        case TypeCode.variant:
            var sub = DBusMessageIter()
            dbus_message_iter_recurse(iter, &sub)
            return read(&sub).map { .variant($0) }
        default:
            return nil
        }
    }
}
