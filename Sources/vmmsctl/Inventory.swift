import DBus

/// The names of the service's bus, objects and interfaces (`../shared/api.md`).
enum API {
    static let service = "org.example.VMMS1"
    static let root: ObjectPath = "/org/example/VMMS1"
    static let hostPath: ObjectPath = "/org/example/VMMS1/Host"
    static let vmPrefix = "/org/example/VMMS1/VM/"
    static let hostInterface = "org.example.VMMS1.Host"
    static let vmInterface = "org.example.VMMS1.VM"
    static let properties = "org.freedesktop.DBus.Properties"
    static let objectManager = "org.freedesktop.DBus.ObjectManager"
    static let errorPrefix = "org.example.VMMS1.Error."
    static let switchRoot: ObjectPath = "/org/example/VMMS1/Switch"
    static let switchInterface = "org.example.VMMS1.Switch"
    static let checkpointInterface = "org.example.VMMS1.Checkpoint"
    static let jobInterface = "org.example.VMMS1.Job"
    static let sanInterface = "org.example.VMMS1.SAN"
}

/// One VM as the service publishes it: its path and every property, by D-Bus name. Properties
/// the service does not publish yet (CPUUsage, StartTime) are simply absent.
struct VMView: Sendable, Equatable {
    var path: ObjectPath
    var properties: [String: DBusValue]

    var name: String { properties["Name"]?.string ?? path.lastElement ?? path.rawValue }
    var uuid: String? { properties["UUID"]?.string }
    var state: String? { properties["State"]?.string }
    var memoryAssignedBytes: UInt64? { properties["MemoryAssignedBytes"]?.uint64 }
    var cpuUsage: UInt32? { properties["CPUUsage"]?.uint32 }
    var startTime: UInt64? { properties["StartTime"]?.uint64 }

    /// Seconds since the last start, when the service publishes StartTime and the VM runs.
    func uptime(now: UInt64) -> UInt64? { startTime.flatMap { Uptime.seconds(since: $0, now: now) } }

    /// Get-VM's Status column.
    func status(hostConnected: Bool) -> String {
        guard hostConnected else { return "Hypervisor unavailable" }
        return state == "Crashed" ? "Crashed" : "Operating normally"
    }

    /// The disks as (path, format, capacity bytes).
    var hardDisks: [(path: String, format: String, capacity: UInt64)] {
        (properties["HardDisks"]?.arrayElements ?? []).compactMap { disk in
            guard case .structure(let fields) = disk, fields.count == 3, let path = fields[0].string,
                  let format = fields[1].string, let capacity = fields[2].uint64 else { return nil }
            return (path, format, capacity)
        }
    }

    var networkAdapters: [(mac: String, switchPath: String)] {
        (properties["NetworkAdapters"]?.arrayElements ?? []).compactMap { adapter in
            guard case .structure(let fields) = adapter, fields.count == 2, let mac = fields[0].string,
                  let path = fields[1].objectPath else { return nil }
            return (mac, path.rawValue)
        }
    }
}

/// Everything one GetManagedObjects call returns: the host's properties and every VM.
struct Inventory: Sendable, Equatable {
    var host: [String: DBusValue] = [:]
    var vms: [ObjectPath: VMView] = [:]

    var hostConnected: Bool { host["Connected"]?.boolean ?? true }

    /// VMs by name, then path (two VMs may share a name only briefly, during renames).
    var sortedVMs: [VMView] {
        vms.values.sorted { ($0.name.lowercased(), $0.path) < ($1.name.lowercased(), $1.path) }
    }

    /// Decodes the `a{oa{sa{sv}}}` of GetManagedObjects; objects of other interfaces are kept
    /// out, so switches and checkpoints, when they arrive, do not show up as VMs.
    init(managedObjects body: [DBusValue]) throws(Failure) {
        guard case .dictionary(_, _, let objects)? = body.first else {
            throw Failure(.failed, "GetManagedObjects returned \(DBusValue.signature(of: body)), not a{oa{sa{sv}}}")
        }
        for object in objects {
            guard let path = object.key.objectPath, let interfaces = object.value.stringKeyedDictionary else { continue }
            apply(added: path, interfaces: interfaces)
        }
    }

    init() {}

    // MARK: Changes, as the ObjectManager and PropertiesChanged signals carry them

    mutating func apply(added path: ObjectPath, interfaces: [String: DBusValue]) {
        if let host = interfaces[API.hostInterface]?.stringKeyedDictionary, path == API.hostPath {
            self.host.merge(host) { $1 }
        }
        if let properties = interfaces[API.vmInterface]?.stringKeyedDictionary {
            vms[path, default: VMView(path: path, properties: [:])].properties.merge(properties) { $1 }
        }
    }

    mutating func apply(removed path: ObjectPath, interfaces: [String]) {
        if interfaces.contains(API.vmInterface) { vms[path] = nil }
    }

    /// A change for a VM we do not know (one removed meanwhile) is dropped: only
    /// InterfacesAdded brings VMs in.
    mutating func apply(changed path: ObjectPath, interface: String, values: [String: DBusValue]) {
        switch interface {
        case API.hostInterface where path == API.hostPath:
            host.merge(values) { $1 }
        case API.vmInterface:
            vms[path]?.properties.merge(values) { $1 }
        default:
            break
        }
    }
}
