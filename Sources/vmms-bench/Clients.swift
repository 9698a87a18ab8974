import DBus
import Foundation

enum VMMS {
    static let name = "org.example.VMMS1"
    static let root: ObjectPath = "/org/example/VMMS1"
    static let vmInterface = "org.example.VMMS1.VM"
}

enum LibvirtDBus {
    static let name = "org.libvirt"
    static let connect: ObjectPath = "/org/libvirt/QEMU"
    static let connectInterface = "org.libvirt.Connect"
    static let domainInterface = "org.libvirt.Domain"
    static let eventSuspended: Int32 = 3
    static let eventResumed: Int32 = 4
}

let propertiesInterface = "org.freedesktop.DBus.Properties"

struct VMEntry: Sendable {
    var path: ObjectPath
    var name: String
    var state: String
}

extension DBusConnection {
    /// A method call that never starts a service by activation.
    func callNoAutoStart(destination: String, path: ObjectPath, interface: String, member: String,
                         _ body: [DBusValue] = [], timeout: Duration = .seconds(25)) async throws -> [DBusValue] {
        let message = try DBusMessage.methodCall(destination: destination, path: path, interface: interface, member: member, body: body)
        message.autoStart = false
        let reply = try await sendWithReply(message, timeout: timeout)
        if let error = reply.asError { throw error }
        return reply.body
    }

    func nameHasOwner(_ name: String) async throws -> Bool {
        let reply = try await call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus",
                                   interface: "org.freedesktop.DBus", member: "NameHasOwner", [.string(name)])
        return reply.first?.boolean ?? false
    }

    // MARK: vmms

    /// Name and state of every VM, from one `GetManagedObjects` (to vmms, or to `destination`
    /// answering like it: the inventory floor's responder).
    func vmmsInventory(destination: String = VMMS.name, timeout: Duration = .seconds(25)) async throws -> [VMEntry] {
        try Self.inventoryEntries(try await vmmsInventoryReply(destination: destination, timeout: timeout))
    }

    /// The body of a `GetManagedObjects` reply, undecoded.
    func vmmsInventoryReply(destination: String = VMMS.name, timeout: Duration = .seconds(25)) async throws -> [DBusValue] {
        try await callNoAutoStart(destination: destination, path: VMMS.root, interface: "org.freedesktop.DBus.ObjectManager",
                                  member: "GetManagedObjects", timeout: timeout)
    }

    private static func inventoryEntries(_ reply: [DBusValue]) throws -> [VMEntry] {
        guard case .dictionary(_, _, let objects)? = reply.first else { throw BenchError("GetManagedObjects: unexpected reply") }
        var result: [VMEntry] = []
        result.reserveCapacity(objects.count)
        for object in objects {
            guard let path = object.key.objectPath,
                  let properties = object.value.stringKeyedDictionary?[VMMS.vmInterface]?.stringKeyedDictionary else { continue }
            guard let name = properties["Name"]?.string, let state = properties["State"]?.string else {
                throw BenchError("GetManagedObjects: \(path) has no Name or State")
            }
            result.append(VMEntry(path: path, name: name, state: state))
        }
        return result
    }

    func vmmsState(_ path: ObjectPath) async throws -> String {
        let reply = try await call(destination: VMMS.name, path: path, interface: propertiesInterface, member: "Get",
                                   [.string(VMMS.vmInterface), .string("State")])
        guard let state = reply.first?.variant?.string else { throw BenchError("Get State: unexpected reply") }
        return state
    }

    func vmmsUUID(_ path: ObjectPath) async throws -> String {
        let reply = try await call(destination: VMMS.name, path: path, interface: propertiesInterface, member: "Get",
                                   [.string(VMMS.vmInterface), .string("UUID")])
        guard let uuid = reply.first?.variant?.string else { throw BenchError("Get UUID: unexpected reply") }
        return uuid
    }

    func vmmsPing(_ path: ObjectPath) async throws {
        _ = try await call(destination: VMMS.name, path: path, interface: "org.freedesktop.DBus.Peer", member: "Ping")
    }

    func vmmsPower(_ path: ObjectPath, _ member: String) async throws {
        _ = try await call(destination: VMMS.name, path: path, interface: VMMS.vmInterface, member: member)
    }

    // MARK: libvirt-dbus

    func libvirtDomains() async throws -> [ObjectPath] {
        let reply = try await call(destination: LibvirtDBus.name, path: LibvirtDBus.connect, interface: LibvirtDBus.connectInterface,
                                   member: "ListDomains", [.uint32(0)])
        guard let items = reply.first?.arrayElements else { throw BenchError("ListDomains: unexpected reply") }
        return items.compactMap(\.objectPath)
    }

    func libvirtState(_ path: ObjectPath) async throws -> Int32 {
        let reply = try await call(destination: LibvirtDBus.name, path: path, interface: LibvirtDBus.domainInterface,
                                   member: "GetState", [.uint32(0)])
        guard case .structure(let fields)? = reply.first, let state = fields.first?.int32 else {
            throw BenchError("GetState: unexpected reply")
        }
        return state
    }

    func libvirtName(_ path: ObjectPath) async throws -> String {
        let reply = try await call(destination: LibvirtDBus.name, path: path, interface: propertiesInterface, member: "GetAll",
                                   [.string(LibvirtDBus.domainInterface)])
        // libvirt-dbus 1.4 (Debian 12) wraps each GetAll value in a second variant (`a{sv}` whose
        // values are `v` holding a `v`; busctl and dbus-send show it too); peel every layer.
        guard var value = reply.first?.stringKeyedDictionary?["Name"] else {
            throw BenchError("GetAll \(path): no Name in \(String(describing: reply).prefix(500))")
        }
        while let inner = value.variant { value = inner }
        guard let name = value.string else { throw BenchError("GetAll \(path): Name is \(value), not a string") }
        return name
    }

    /// ListDomains, then GetAll + GetState per domain, with at most `window` domains in flight
    /// (1: one call after the other, as a simple script does).
    func libvirtInventory(window: Int) async throws -> [VMEntry] {
        let paths = try await libvirtDomains()
        return try await withThrowingTaskGroup(of: VMEntry.self) { group in
            var result: [VMEntry] = []
            result.reserveCapacity(paths.count)
            var iterator = paths.makeIterator()
            func addNext() -> Bool {
                guard let path = iterator.next() else { return false }
                group.addTask {
                    let name = try await self.libvirtName(path)
                    let state = try await self.libvirtState(path)
                    return VMEntry(path: path, name: name, state: String(state))
                }
                return true
            }
            for _ in 0..<max(1, window) where addNext() {}
            while let entry = try await group.next() {
                result.append(entry)
                _ = addNext()
            }
            return result
        }
    }

    func libvirtPower(_ path: ObjectPath, _ member: String) async throws {
        _ = try await call(destination: LibvirtDBus.name, path: path, interface: LibvirtDBus.domainInterface, member: member)
    }

    func libvirtLookup(_ name: String) async throws -> ObjectPath {
        let reply = try await call(destination: LibvirtDBus.name, path: LibvirtDBus.connect, interface: LibvirtDBus.connectInterface,
                                   member: "DomainLookupByName", [.string(name)])
        guard let path = reply.first?.objectPath else { throw BenchError("DomainLookupByName: unexpected reply") }
        return path
    }
}
