/// Which signals a subscription receives; the same rule is given to the bus (`AddMatch`) and
/// checked again locally, because one connection may hold several overlapping subscriptions.
public struct MatchRule: Sendable, Hashable {
    public var sender: String?
    public var path: ObjectPath?
    public var pathNamespace: ObjectPath?
    public var interface: String?
    public var member: String?

    public init(sender: String? = nil, path: ObjectPath? = nil, pathNamespace: ObjectPath? = nil,
                interface: String? = nil, member: String? = nil) {
        self.sender = sender
        self.path = path
        self.pathNamespace = pathNamespace
        self.interface = interface
        self.member = member
    }

    /// The textual form for `org.freedesktop.DBus.AddMatch`.
    public var ruleString: String {
        var parts = ["type='signal'"]
        if let sender { parts.append("sender='\(sender)'") }
        if let path { parts.append("path='\(path.rawValue)'") }
        if let pathNamespace { parts.append("path_namespace='\(pathNamespace.rawValue)'") }
        if let interface { parts.append("interface='\(interface)'") }
        if let member { parts.append("member='\(member)'") }
        return parts.joined(separator: ",")
    }

    /// The local check. A well-known sender name cannot be compared with the unique name on a
    /// message; the bus has already filtered on it.
    public func matches(_ message: DBusMessage) -> Bool {
        if let sender, sender.hasPrefix(":"), message.sender != sender { return false }
        if let path, message.path != path { return false }
        if let pathNamespace, let messagePath = message.path,
           messagePath != pathNamespace, !messagePath.isDescendant(of: pathNamespace) { return false }
        if let interface, message.interface != interface { return false }
        if let member, message.member != member { return false }
        return true
    }
}
