import DBus
import VMMSModel

/// One kind of published object (the host, VMs, later switches, checkpoints, jobs, SANs): its
/// interface, where each object lives and what it publishes. Declared beside the kind's
/// handlers, in its interface file; the `Publisher` does the rest.
protocol ObjectKind: SendableMetatype {
    associatedtype Record: Sendable & Equatable
    static var interface: InterfaceDescription { get }
    static func path(of record: Record) -> ObjectPath
    /// Every property of `interface`, or every one but the host's lists (see `hostList`).
    static func values(of record: Record) -> [String: DBusValue]
    /// The Host property that lists every object of this kind (`VirtualMachines`), if any.
    static var hostList: String? { get }
}

extension ObjectKind {
    static var hostList: String? { nil }
}
