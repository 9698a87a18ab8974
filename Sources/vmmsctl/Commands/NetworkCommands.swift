import ArgumentParser
import DBus

/// `vmmsctl switch …` (Get-/New-/Remove-VMSwitch) and `vmmsctl adapter …`
/// (Get-/Add-/Remove-VMNetworkAdapter).
enum SwitchAPI {
    static let root: ObjectPath = "/org/example/VMMS1/Switch"
    static let interface = "org.example.VMMS1.Switch"
    static let columns = ["Name", "Type", "Bridge", "Active", "Address", "Interface"]

    static func path(_ name: String) -> ObjectPath {
        if name.hasPrefix(root.rawValue + "/"), let path = ObjectPath(name) { return path }
        return root.appending(escaping: name)
    }

    /// The switch name a path names ("-" for "/").
    static func name(of path: String) -> String {
        guard path.hasPrefix(root.rawValue + "/") else { return "-" }
        return ObjectPath.unescape(String(path.dropFirst(root.rawValue.count + 1))) ?? path
    }
}

struct SwitchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switch",
        abstract: "List, create and delete virtual switches (Get-/New-/Remove-VMSwitch).",
        subcommands: [SwitchList.self, SwitchCreate.self, SwitchDelete.self])
}

struct SwitchList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List every switch (every libvirt network).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run(_ client: VMMSClient) async throws {
        let reply = try await client.call(API.root, API.objectManager, "GetManagedObjects", action: .read)
        guard case .dictionary(_, _, let entries)? = reply.first else { throw Failure(.failed, "GetManagedObjects returned \(DBusValue.signature(of: reply))") }
        let switches = entries.compactMap { $0.value.stringKeyedDictionary?[SwitchAPI.interface]?.stringKeyedDictionary }
            .sorted { ($0["Name"]?.string ?? "") < ($1["Name"]?.string ?? "") }
        func text(_ value: DBusValue?) -> String {
            if let b = value?.boolean { return b ? "yes" : "no" }
            return value?.string ?? ""
        }
        if output.json {
            let items = switches.map { properties in
                JSON.object(Dictionary(uniqueKeysWithValues: SwitchAPI.columns.map { key in
                    (key, properties[key]?.boolean.map(JSON.bool) ?? .string(properties[key]?.string ?? ""))
                }))
            }
            Terminal.out(JSON.array(items).rendered() + "\n")
            return
        }
        var table = Table(columns: SwitchAPI.columns.map { .init($0) })
        table.rows = switches.map { properties in SwitchAPI.columns.map { Table.Cell(text(properties[$0]).isEmpty ? "-" : text(properties[$0])) } }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }
}

struct SwitchCreate: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a switch (a libvirt network, started and autostarted).",
        discussion: """
            Private: VMs only. Internal: VMs and the host (--ip, DHCP for the VMs). NAT: \
            Internal plus masquerading out. External: bridged to the host NIC --interface.
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The switch's name.", valueName: "name"))
    var name: String

    @Option(help: ArgumentHelp("Private, Internal, External or NAT.", valueName: "type"))
    var type: String

    // Not --address: that is the global option naming the bus.
    @Option(name: .customLong("ip"), help: ArgumentHelp("Internal/NAT: the host's address as CIDR, like 10.0.5.1/24.", valueName: "cidr"))
    var address: String?

    @Option(help: ArgumentHelp("External: the host NIC.", valueName: "nic"))
    var interface: String?

    @Option(help: ArgumentHelp("External: Bridge (default) or Macvtap.", valueName: "mode"))
    var mode: String?

    @Option(help: ArgumentHelp("The bridge's name.", valueName: "bridge"))
    var bridge: String?

    func run(_ client: VMMSClient) async throws {
        var options: [String: DBusValue] = [:]
        for (key, value) in [("Address", address), ("Interface", interface), ("Mode", mode), ("Bridge", bridge)] {
            if let value { options[key] = .string(value) }
        }
        let reply = try await client.call(API.hostPath, API.hostInterface, "CreateSwitch", [.string(name), .string(type), .vardict(options)],
                                          action: .hostConfigure)
        Terminal.out((reply.first?.objectPath?.rawValue ?? "") + "\n")
    }
}

struct SwitchDelete: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete a switch (refused while a VM has an adapter on it).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The switch: name or object path.", valueName: "switch"))
    var name: String

    func run(_ client: VMMSClient) async throws {
        _ = try await client.call(SwitchAPI.path(name), SwitchAPI.interface, "Delete", action: .hostConfigure)
    }
}

struct Adapter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add and remove network adapters (Get-/Add-/Remove-VMNetworkAdapter).",
        subcommands: [AdapterList.self, AdapterAdd.self, AdapterRemove.self])
}

struct AdapterList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a VM's network adapters.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var target: OneVM

    func run(_ client: VMMSClient) async throws {
        let view = try await client.vm(try await client.lookupVM(target.vm))
        if output.json {
            Terminal.out(JSON.array(view.networkAdapters.map {
                .object(["MAC": .string($0.mac), "Switch": .string(SwitchAPI.name(of: $0.switchPath))])
            }).rendered() + "\n")
            return
        }
        var table = Table(columns: [.init("MAC"), .init("Switch")])
        table.rows = view.networkAdapters.map { [Table.Cell($0.mac), Table.Cell(SwitchAPI.name(of: $0.switchPath))] }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }
}

struct AdapterAdd: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a virtio adapter on a switch and print its MAC (hot-plugged while running).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM

    @Argument(help: ArgumentHelp("The switch: name or object path.", valueName: "switch"))
    var switchName: String

    func run(_ client: VMMSClient) async throws {
        let path = SwitchAPI.path(switchName)
        try await forEachVM([target.vm], client) { vmPath, _ throws(Failure) in
            let reply = try await client.vmCall(vmPath, "AddNetworkAdapter", [.objectPath(path)], action: .vmConfigure)
            if let mac = reply.first?.string { Terminal.out(mac + "\n") }
        }
    }
}

struct AdapterRemove: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove the adapter with this MAC; a running guest must let go of it.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM

    @Argument(help: ArgumentHelp("The adapter's MAC, as `adapter list` shows it.", valueName: "mac"))
    var mac: String

    @Flag(help: "When the running guest does not let go, remove it from the definition anyway (it goes at the next start).")
    var force = false

    func run(_ client: VMMSClient) async throws {
        let (mac, force) = (self.mac, self.force)
        try await forEachVM([target.vm], client) { vmPath, _ throws(Failure) in
            _ = try await client.vmCall(vmPath, "RemoveNetworkAdapterWithOptions", [.string(mac), .vardict(["Force": .boolean(force)])],
                                        action: .vmConfigure)
        }
    }
}
