import Synchronization

/// Sends the signals of one exported object tree and counts them.
///
/// Every change of an exported object is signalled (the contract of this module's users), so
/// an unchanged count means an unchanged tree: `ObjectServer` keys its cached
/// GetManagedObjects reply on `version`. Signals leave in the order `emit` is called: each one
/// is queued on the connection's loop before `emit` returns, so a caller that emits while
/// holding its own lock emits in the order its changes happened.
public final class SignalEmitter: Sendable {
    public let connection: DBusConnection
    /// The object implementing `org.freedesktop.DBus.ObjectManager`; the sender of
    /// InterfacesAdded and InterfacesRemoved.
    public let objectManagerPath: ObjectPath
    private let changes = Atomic<UInt64>(0)

    public init(connection: DBusConnection, objectManagerPath: ObjectPath) {
        self.connection = connection
        self.objectManagerPath = objectManagerPath
    }

    /// How many signals have been emitted so far.
    public var version: UInt64 { changes.load(ordering: .sequentiallyConsistent) }

    /// Emits a signal from `path`.
    public func emit(path: ObjectPath, interface: String, member: String, _ body: [DBusValue]) throws(DBusError) {
        let message = try DBusMessage.signal(path: path, interface: interface, member: member, body: body)
        changes.add(1, ordering: .sequentiallyConsistent)
        connection.send(message)
    }

    /// `org.freedesktop.DBus.Properties.PropertiesChanged`.
    public func emitPropertiesChanged(path: ObjectPath, interface: String, changed: [String: DBusValue],
                                      invalidated: [String] = []) {
        try? emit(path: path, interface: InterfaceDescription.properties.name, member: "PropertiesChanged",
                  [.string(interface), .vardict(changed), .strings(invalidated)])
    }

    /// `org.freedesktop.DBus.ObjectManager.InterfacesAdded` from property values at hand.
    public func emitInterfacesAdded(path: ObjectPath, interfaces: [String: [String: DBusValue]]) {
        try? emit(path: objectManagerPath, interface: InterfaceDescription.objectManager.name,
                  member: "InterfacesAdded", [.objectPath(path), Self.interfacesAndProperties(interfaces)])
    }

    /// `org.freedesktop.DBus.ObjectManager.InterfacesRemoved`.
    public func emitInterfacesRemoved(path: ObjectPath, interfaces: [String]) {
        try? emit(path: objectManagerPath, interface: InterfaceDescription.objectManager.name,
                  member: "InterfacesRemoved", [.objectPath(path), .strings(interfaces)])
    }

    /// `a{sa{sv}}`, interfaces in name order.
    public static func interfacesAndProperties(_ interfaces: [String: [String: DBusValue]]) -> DBusValue {
        .dictionary(key: "s", value: "a{sv}",
                    interfaces.sorted { $0.key < $1.key }.map { .init(.string($0.key), .vardict($0.value)) })
    }
}
