import DBus
import Foundation

/// How vmmsctl shows VMs and the host: Get-VM's table, Format-List and `--json`.
///
/// JSON keys are the D-Bus property names of `dbus/*.xml` (they never change: renames are
/// not allowed in the contract), plus `Path` (the object path), and for VMs `Status` and
/// `UptimeSeconds`, which vmmsctl computes. `HardDisks` and `NetworkAdapters` become objects
/// with named fields. `CPUUsage`, `StartTime` and `UptimeSeconds` are null while the service
/// does not publish CPUUsage/StartTime.
enum Views {
    static let jsonSummary = """
        keys are the D-Bus property names of org.example.VMMS1.VM and .Host (as in \
        dbus/*.xml), plus Path (the object path); VMs also get Status and UptimeSeconds. \
        HardDisks are objects {Path, Format, CapacityBytes}, NetworkAdapters {MAC, Switch}. \
        CPUUsage, StartTime and UptimeSeconds are null while the service does not publish them. \
        list prints an array of VMs (one compact array per line with --watch), show one VM.
        """

    static let listColumns: [Table.Column] = [
        .init("Name"), .init("State"), .init("CPUUsage(%)", .right), .init("MemoryAssigned(M)", .right),
        .init("Uptime"), .init("Status"),
    ]

    static func now() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970)) }

    // MARK: list

    static func listTable(_ vms: [VMView], hostConnected: Bool, now: UInt64) -> Table {
        var table = Table(columns: listColumns)
        for vm in vms {
            let state = vm.state ?? "-"
            table.rows.append([
                Table.Cell(vm.name),
                Table.Cell(state, stateStyle(state)),
                Table.Cell(vm.cpuUsage.map(String.init) ?? "-"),
                Table.Cell(vm.memoryAssignedBytes.map { String(ByteCount.mebibytes($0)) } ?? "-"),
                Table.Cell(vm.uptime(now: now).map { Uptime.format(seconds: $0) } ?? "-"),
                Table.Cell(vm.status(hostConnected: hostConnected), hostConnected && vm.state != "Crashed" ? .plain : .red),
            ])
        }
        return table
    }

    static func stateStyle(_ state: String) -> Style {
        switch state {
        case "Running": .green
        case "Paused", "Saved", "Saving", "Starting", "Stopping": .yellow
        case "Crashed": .red
        case "Off": .dim
        default: .plain
        }
    }

    // MARK: show

    /// The order Format-List uses for the properties we know; others follow by name.
    static let vmOrder = [
        "Name", "UUID", "State", "CPUUsage", "StartTime", "Generation", "SecureBoot", "ProcessorCount",
        "ProcessorReserve", "ProcessorMaximum", "ProcessorRelativeWeight", "MemoryStartupBytes",
        "DynamicMemoryEnabled", "MemoryMinimumBytes", "MemoryMaximumBytes", "MemoryAssignedBytes",
        "HardDisks", "NetworkAdapters", "Checkpoints", "Autostart", "Notes",
    ]

    static func vmList(_ vm: VMView, hostConnected: Bool, now: UInt64) -> PropertyList {
        var list = PropertyList()
        for name in ordered(vm.properties.keys, vmOrder) {
            guard let value = vm.properties[name] else { continue }
            switch name {
            case "HardDisks":
                let disks = vm.hardDisks
                list.add(name, disks.isEmpty ? "-" : disks.map { "\($0.path) (\($0.format), \(ByteCount.format($0.capacity)))" }
                    .joined(separator: "\n"))
            case "NetworkAdapters":
                let adapters = vm.networkAdapters
                list.add(name, adapters.isEmpty ? "-" : adapters.map { "\($0.mac) on \($0.switchPath == "/" ? "no switch" : $0.switchPath)" }
                    .joined(separator: "\n"))
            case "StartTime":
                list.add(name, vm.startTime.flatMap { $0 == 0 ? nil : iso8601($0) } ?? "-")
                list.add("Uptime", vm.uptime(now: now).map { Uptime.format(seconds: $0) } ?? "-")
            default:
                list.add(name, text(value, property: name))
            }
            if name == "State" { list.add("Status", vm.status(hostConnected: hostConnected)) }
            if name == "UUID" { list.add("Path", vm.path.rawValue) }
        }
        return list
    }

    static let hostOrder = [
        "Hostname", "Hypervisor", "HypervisorVersion", "ConnectionURI", "Connected", "ServiceVersion",
        "LogicalProcessorCount", "MemoryCapacityBytes", "SecureBootAvailable", "VirtualMachinePath",
        "VirtualHardDiskPath", "VirtualMachines",
    ]

    static func hostList(_ host: [String: DBusValue]) -> PropertyList {
        var list = PropertyList()
        for name in ordered(host.keys, hostOrder) {
            guard let value = host[name] else { continue }
            if name == "VirtualMachines", let count = value.arrayElements?.count {
                list.add(name, "\(count)")
            } else {
                list.add(name, text(value, property: name))
            }
        }
        return list
    }

    /// One value as Format-List shows it: sizes in binary units, percentages with %.
    static func text(_ value: DBusValue, property: String) -> String {
        if let bytes = value.uint64, property.hasSuffix("Bytes") { return ByteCount.format(bytes) }
        if let percent = value.uint32, ["ProcessorReserve", "ProcessorMaximum", "CPUUsage"].contains(property) { return "\(percent) %" }
        switch value {
        case .string(let s): return s.isEmpty ? "-" : s
        case .boolean(let b): return b ? "True" : "False"
        case .objectPath(let p): return p.rawValue
        case .array(_, let items) where items.isEmpty: return "-"
        case .array(_, let items) where items.allSatisfy({ $0.objectPath != nil || $0.string != nil }):
            return items.map { $0.objectPath?.rawValue ?? $0.string ?? "" }.joined(separator: "\n")
        default:
            if case .string(let s) = JSON(value) { return s }
            if case .uint(let n) = JSON(value) { return String(n) }
            if case .int(let n) = JSON(value) { return String(n) }
            return JSON(value).rendered(compact: true)
        }
    }

    static func ordered(_ keys: Dictionary<String, DBusValue>.Keys, _ preferred: [String]) -> [String] {
        preferred.filter { keys.contains($0) } + keys.filter { !preferred.contains($0) }.sorted()
    }

    static func iso8601(_ seconds: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    // MARK: JSON

    static func vmJSON(_ vm: VMView, hostConnected: Bool, now: UInt64) -> JSON {
        var object = vm.properties.mapValues(JSON.init)
        object["Path"] = .string(vm.path.rawValue)
        object["HardDisks"] = disksJSON(vm)
        object["NetworkAdapters"] = .array(vm.networkAdapters.map {
            .object(["MAC": .string($0.mac), "Switch": .string($0.switchPath)])
        })
        object["Status"] = .string(vm.status(hostConnected: hostConnected))
        object["CPUUsage"] = vm.cpuUsage.map { .uint(UInt64($0)) } ?? .null
        object["StartTime"] = vm.startTime.map { .uint($0) } ?? .null
        object["UptimeSeconds"] = vm.uptime(now: now).map { .uint($0) } ?? .null
        return .object(object)
    }

    static func disksJSON(_ vm: VMView) -> JSON {
        .array(vm.hardDisks.map {
            .object(["Path": .string($0.path), "Format": .string($0.format), "CapacityBytes": .uint($0.capacity)])
        })
    }

    /// Any other object (switch, checkpoint, job, SAN): its properties by D-Bus name, and Path.
    static func objectJSON(_ path: ObjectPath, _ properties: [String: DBusValue]) -> JSON {
        var object = properties.mapValues(JSON.init)
        object["Path"] = .string(path.rawValue)
        return .object(object)
    }

    static func hostJSON(_ host: [String: DBusValue]) -> JSON {
        var object = host.mapValues(JSON.init)
        object["Path"] = .string(API.hostPath.rawValue)
        return .object(object)
    }
}
