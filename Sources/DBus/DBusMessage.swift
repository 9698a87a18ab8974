internal import CDBus

/// One D-Bus message, owning a reference to a libdbus `DBusMessage`.
///
/// A message is built, then handed to a connection; after that nobody mutates it, which is what
/// makes sharing it between threads safe (libdbus reference counts atomically).
public final class DBusMessage: @unchecked Sendable {
    let raw: OpaquePointer

    public enum Kind: Sendable, Equatable {
        case methodCall, methodReturn, error, signal, invalid
    }

    /// Adopts a reference the caller already owns.
    init(adopting raw: OpaquePointer) { self.raw = raw }

    /// Takes a new reference to a message libdbus lends us. Wraps `dbus_message_ref`.
    init(retaining raw: OpaquePointer) {
        dbus_message_ref(raw)
        self.raw = raw
    }

    deinit { dbus_message_unref(raw) }

    /// A method call. Wraps `dbus_message_new_method_call`.
    public static func methodCall(destination: String?, path: ObjectPath, interface: String?, member: String,
                                  body: [DBusValue] = []) throws(DBusError) -> DBusMessage {
        guard Names.isValidMember(member), interface.map(Names.isValidInterface) ?? true,
              destination.map(Names.isValidBusName) ?? true else {
            throw .invalidArgs("invalid destination, interface or member name")
        }
        guard let raw = dbus_message_new_method_call(destination, path.rawValue, interface, member) else {
            throw DBusError(DBusError.Name.noMemory, "dbus_message_new_method_call failed")
        }
        let message = DBusMessage(adopting: raw)
        try message.append(body)
        return message
    }

    /// A signal. Wraps `dbus_message_new_signal`.
    public static func signal(path: ObjectPath, interface: String, member: String,
                              body: [DBusValue] = []) throws(DBusError) -> DBusMessage {
        guard Names.isValidInterface(interface), Names.isValidMember(member) else {
            throw .invalidArgs("invalid interface or member name")
        }
        guard let raw = dbus_message_new_signal(path.rawValue, interface, member) else {
            throw DBusError(DBusError.Name.noMemory, "dbus_message_new_signal failed")
        }
        let message = DBusMessage(adopting: raw)
        try message.append(body)
        return message
    }

    /// The reply to this method call. Wraps `dbus_message_new_method_return`.
    public func makeReturn(_ body: [DBusValue] = []) throws(DBusError) -> DBusMessage {
        guard let reply = dbus_message_new_method_return(raw) else {
            throw DBusError(DBusError.Name.noMemory, "dbus_message_new_method_return failed")
        }
        let message = DBusMessage(adopting: reply)
        try message.append(body)
        return message
    }

    /// A copy of this (never sent) method return, addressed as the reply to `call`. Wraps
    /// `dbus_message_copy`, `dbus_message_set_reply_serial` and `dbus_message_set_destination`.
    /// A reply marshalled once can so answer many calls (GetManagedObjects' cache, the bench).
    public func copyAsReply(to call: DBusMessage) throws(DBusError) -> DBusMessage {
        guard let copied = dbus_message_copy(raw) else {
            throw DBusError(DBusError.Name.noMemory, "dbus_message_copy failed")
        }
        let message = DBusMessage(adopting: copied)
        guard dbus_message_set_reply_serial(copied, call.serial) != 0,
              dbus_message_set_destination(copied, dbus_message_get_sender(call.raw)) != 0 else {
            throw DBusError(DBusError.Name.noMemory, "cannot address the copied reply")
        }
        return message
    }

    /// An error reply to this method call. Wraps `dbus_message_new_error`.
    public func makeError(_ error: DBusError) -> DBusMessage? {
        let name = Names.isValidErrorName(error.name) ? error.name : DBusError.Name.failed
        let text = error.message.replacingNUL()
        return dbus_message_new_error(raw, name, text).map { DBusMessage(adopting: $0) }
    }

    /// Appends values to the body. Wraps `dbus_message_iter_append_basic` and friends.
    public func append(_ values: [DBusValue]) throws(DBusError) {
        guard !values.isEmpty else { return }
        try Marshaller.append(values, to: raw)
    }

    /// The decoded body. libdbus validated it on receipt. Decoding duplicates every file
    /// descriptor in it, each owned by its `UnixFileDescriptor`; a server checks the signature
    /// before it decodes anything.
    public var body: [DBusValue] { Unmarshaller.values(of: raw) }

    /// Wraps `dbus_message_get_type`.
    public var kind: Kind {
        switch dbus_message_get_type(raw) {
        case 1: .methodCall
        case 2: .methodReturn
        case 3: .error
        case 4: .signal
        default: .invalid
        }
    }

    /// Wraps `dbus_message_get_path`.
    public var path: ObjectPath? { dbus_message_get_path(raw).flatMap { ObjectPath(String(cString: $0)) } }
    /// Wraps `dbus_message_get_interface`.
    public var interface: String? { dbus_message_get_interface(raw).map { String(cString: $0) } }
    /// Wraps `dbus_message_get_member`.
    public var member: String? { dbus_message_get_member(raw).map { String(cString: $0) } }
    /// The unique name of the sender, filled in by the bus. Wraps `dbus_message_get_sender`.
    public var sender: String? { dbus_message_get_sender(raw).map { String(cString: $0) } }
    /// Wraps `dbus_message_get_destination`.
    public var destination: String? { dbus_message_get_destination(raw).map { String(cString: $0) } }
    /// Wraps `dbus_message_get_error_name`.
    public var errorName: String? { dbus_message_get_error_name(raw).map { String(cString: $0) } }
    /// Wraps `dbus_message_get_signature`.
    public var signature: DBusSignature {
        dbus_message_get_signature(raw).map { DBusSignature(unchecked: String(cString: $0)) } ?? .empty
    }
    /// Wraps `dbus_message_get_serial`.
    public var serial: UInt32 { dbus_message_get_serial(raw) }
    /// Wraps `dbus_message_get_reply_serial`.
    public var replySerial: UInt32 { dbus_message_get_reply_serial(raw) }
    /// False for a call sent with NO_REPLY_EXPECTED: neither the bus nor the callee keeps a
    /// pending reply for it. Wraps `dbus_message_get_no_reply` / `dbus_message_set_no_reply`.
    public var expectsReply: Bool {
        get { dbus_message_get_no_reply(raw) == 0 }
        set { dbus_message_set_no_reply(raw, newValue ? 0 : 1) }
    }

    /// Whether the caller is prepared to wait for an interactive authorization prompt.
    /// Wraps `dbus_message_get_allow_interactive_authorization`.
    public var allowsInteractiveAuthorization: Bool {
        get { dbus_message_get_allow_interactive_authorization(raw) != 0 }
        set { dbus_message_set_allow_interactive_authorization(raw, newValue ? 1 : 0) }
    }

    /// Wraps `dbus_message_set_auto_start`.
    public var autoStart: Bool {
        get { dbus_message_get_auto_start(raw) != 0 }
        set { dbus_message_set_auto_start(raw, newValue ? 1 : 0) }
    }

    /// An error reply as a Swift error, with its first string argument as the message.
    public var asError: DBusError? {
        guard kind == .error else { return nil }
        return DBusError(errorName ?? DBusError.Name.failed, body.first?.string ?? "")
    }
}

extension String {
    func replacingNUL() -> String {
        utf8.contains(0) ? String(decoding: utf8.map { $0 == 0 ? UInt8(ascii: "?") : $0 }, as: UTF8.self) : self
    }
}

/// Name validity as the D-Bus specification states it; checked in Swift so bad names from
/// callers never reach libdbus, which would print warnings or abort.
public enum Names {
    public static func isValidMember(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard !b.isEmpty, b.count <= 255, !(b[0] >= 0x30 && b[0] <= 0x39) else { return false }
        return b.allSatisfy(ObjectPath.isLabelByte)
    }

    public static func isValidInterface(_ s: String) -> Bool {
        guard s.utf8.count <= 255 else { return false }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count >= 2 && parts.allSatisfy { isValidMember(String($0)) }
    }

    public static func isValidErrorName(_ s: String) -> Bool { isValidInterface(s) }

    public static func isValidBusName(_ s: String) -> Bool {
        guard s.utf8.count <= 255, !s.isEmpty else { return false }
        if s.hasPrefix(":") {
            let parts = s.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
            return parts.count >= 2 && parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { ObjectPath.isLabelByte($0) || $0 == UInt8(ascii: "-") } }
        }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count >= 2 && parts.allSatisfy { part in
            guard let first = part.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
            return part.utf8.allSatisfy { ObjectPath.isLabelByte($0) || $0 == UInt8(ascii: "-") }
        }
    }
}
