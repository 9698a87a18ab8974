import DBus

/// The polkit actions of the contract.
public enum Action: String, Sendable, CaseIterable {
    case read = "org.example.vmms1.read"
    case vmPower = "org.example.vmms1.vm.power"
    case vmConfigure = "org.example.vmms1.vm.configure"
    case vmCreate = "org.example.vmms1.vm.create"
    case vmDelete = "org.example.vmms1.vm.delete"
    case vmCheckpoint = "org.example.vmms1.vm.checkpoint"
    case vmExport = "org.example.vmms1.vm.export"
    case vmMove = "org.example.vmms1.vm.move"
    case hostConfigure = "org.example.vmms1.host.configure"
}

/// What a rule may look at besides the action: the verb and the object it acts on.
public struct AuthorizationDetails: Sendable, Hashable {
    public var verb: String
    public var vmName: String?
    public var vmUUID: String?
    public var switchName: String?
    /// `san.name`: the SAN a host.configure call is about.
    public var sanName: String? = nil
    /// The checkpoint a checkpoint call is about (`checkpoint.name`).
    public var checkpointName: String? = nil

    public init(verb: String, vmName: String? = nil, vmUUID: String? = nil, switchName: String? = nil) {
        self.verb = verb
        self.vmName = vmName
        self.vmUUID = vmUUID
        self.switchName = switchName
    }

    public var dictionary: [String: String] {
        var d = ["verb": verb]
        if let vmName { d["vm.name"] = vmName }
        if let vmUUID { d["vm.uuid"] = vmUUID }
        if let switchName { d["switch.name"] = switchName }
        if let sanName { d["san.name"] = sanName }
        if let checkpointName { d["checkpoint.name"] = checkpointName }
        return d
    }
}

/// Decides whether the caller of `call` may perform `action`; throws `VMMSError` when not.
public protocol Authorizer: Sendable {
    func authorize(_ call: MethodCall, _ action: Action, _ details: AuthorizationDetails) async throws
    /// Whether a read by `sender` (whose uid is `uid`, when known) is already known to be
    /// allowed, without asking anybody: the reads answered on the dispatch thread. False
    /// sends the read through `authorize`.
    func allowsReadAtOnce(sender: String, uid: UInt32?, _ details: AuthorizationDetails) -> Bool
}

extension Authorizer {
    public func allowsReadAtOnce(sender: String, uid: UInt32?, _ details: AuthorizationDetails) -> Bool { false }
}

/// The session-bus authorizer: only the bus's owner can reach a session bus, so there is
/// nobody to refuse.
public struct SessionBusAuthorizer: Authorizer {
    public init() {}
    public func authorize(_ call: MethodCall, _ action: Action, _ details: AuthorizationDetails) async throws {}
    public func allowsReadAtOnce(sender: String, uid: UInt32?, _ details: AuthorizationDetails) -> Bool { true }
}
