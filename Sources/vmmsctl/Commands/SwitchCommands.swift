import ArgumentParser
import DBus

/// `vmmsctl switch …`: Get-VMSwitch, New-VMSwitch, Remove-VMSwitch.
struct SwitchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switch",
        abstract: "List, create and delete virtual switches (Get-/New-/Remove-VMSwitch).",
        subcommands: [SwitchList.self, SwitchCreate.self, SwitchDelete.self])
}

/// A switch by name or object path, found in the inventory.
func lookupSwitch(_ key: String, _ client: VMMSClient) async throws(Failure) -> (path: ObjectPath, properties: [String: DBusValue]) {
    try await client.object(API.switchInterface, named: key, what: "virtual switch", listing: "vmmsctl switch list")
}

struct SwitchList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the virtual switches (every libvirt network).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run(_ client: VMMSClient) async throws {
        let switches = try await client.objects(API.switchInterface)
        if output.json {
            Terminal.out(JSON.array(switches.map { Views.objectJSON($0.path, $0.properties) }).rendered() + "\n")
            return
        }
        var table = Table(columns: [.init("Name"), .init("Type"), .init("Active"), .init("Bridge"), .init("Address"), .init("Interface")])
        table.rows = switches.map { sw in
            let p = sw.properties
            let active = p["Active"]?.boolean ?? false
            return [Table.Cell(p["Name"]?.string ?? "?"), Table.Cell(p["Type"]?.string ?? "?"),
                    Table.Cell(active ? "yes" : "no", active ? .green : .yellow),
                    Table.Cell(p["Bridge"]?.string ?? ""), Table.Cell(p["Address"]?.string ?? ""), Table.Cell(p["Interface"]?.string ?? "")]
        }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }
}

struct SwitchCreate: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a virtual switch and print its object path (New-VMSwitch).",
        discussion: """
            Private: VMs only. Internal: VMs and the host, --host-address is the host's address as CIDR \
            (VMs get DHCP). NAT: VMs reach out through the host, --host-address CIDR. External: bridged to \
            the host network adapter --interface.
            """)

    enum SwitchType: String, ExpressibleByArgument, CaseIterable { case Private, Internal, External, NAT }

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The switch's name.") var name: String

    @Option(help: "Private, Internal, External or NAT (Hyper-V's -SwitchType; NAT as New-VMSwitch -SwitchType Internal + New-NetNat).")
    var type: SwitchType

    @Option(name: .customLong("host-address"),
            help: ArgumentHelp("The host's address on the switch, as CIDR, e.g. 192.168.100.1/24 (Internal, NAT).", valueName: "cidr"))
    var address: String?

    @Option(name: [.customLong("interface"), .customLong("net-adapter")],
            help: ArgumentHelp("The host network adapter to bridge (External; Hyper-V's -NetAdapterName).", valueName: "nic"))
    var interface: String?

    func run(_ client: VMMSClient) async throws {
        var options: [String: DBusValue] = [:]
        if let address { options["Address"] = .string(address) }
        if let interface { options["Interface"] = .string(interface) }
        let reply = try await client.call(API.hostPath, API.hostInterface, "CreateSwitch",
                                          [.string(name), .string(type.rawValue), .vardict(options)], action: .hostConfigure)
        if let path = reply.first?.objectPath { Terminal.out(path.rawValue + "\n") }
    }
}

struct SwitchDelete: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete a virtual switch (refused while VMs have adapters on it; Remove-VMSwitch).")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The switch: name or object path.") var name: String

    func run(_ client: VMMSClient) async throws {
        let found = try await lookupSwitch(name, client)
        _ = try await client.call(found.path, API.switchInterface, "Delete", action: .hostConfigure)
    }
}

/// `vmmsctl adapter …`: Get-, Add-, Remove-VMNetworkAdapter.
struct Adapter: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add and remove a VM's network adapters (Get-/Add-/Remove-VMNetworkAdapter).",
        subcommands: [AdapterList.self, AdapterAdd.self, AdapterRemove.self])
}

struct AdapterList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a VM's network adapters and their switches.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var target: OneVM

    func run(_ client: VMMSClient) async throws {
        let view = try await client.vm(try await client.lookupVM(target.vm))
        let adapters = (view.properties["NetworkAdapters"]?.arrayElements ?? []).compactMap { item -> (mac: String, sw: ObjectPath)? in
            guard case .structure(let f) = item, f.count == 2, let mac = f[0].string, let sw = f[1].objectPath else { return nil }
            return (mac, sw)
        }
        let switches = (try? await client.objects(API.switchInterface)) ?? []
        func switchName(_ path: ObjectPath) -> String {
            path == .root ? "-" : switches.first { $0.path == path }?.properties["Name"]?.string ?? path.rawValue
        }
        if output.json {
            Terminal.out(JSON.array(adapters.map { .object(["MAC": .string($0.mac), "Switch": .string($0.sw.rawValue),
                                                            "SwitchName": .string(switchName($0.sw))]) }).rendered() + "\n")
            return
        }
        var table = Table(columns: [.init("MAC address"), .init("Switch")])
        table.rows = adapters.map { [Table.Cell($0.mac), Table.Cell(switchName($0.sw))] }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }
}

struct AdapterAdd: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add a network adapter on a switch and print its MAC address (hot-plugged into a running VM).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM
    @Argument(help: "The switch: name or object path.") var switchName: String

    func run(_ client: VMMSClient) async throws {
        let sw = try await lookupSwitch(switchName, client)
        try await forEachVM([target.vm], client) { vmPath, _ throws(Failure) in
            let reply = try await client.vmCall(vmPath, "AddNetworkAdapter", [.objectPath(sw.path)], action: .vmConfigure)
            if let mac = reply.first?.string { Terminal.out(mac + "\n") }
        }
    }
}

struct AdapterRemove: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a network adapter (by its MAC address).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var target: OneVM
    @Argument(help: "The adapter's MAC address, as `adapter list` shows it.") var mac: String

    func run(_ client: VMMSClient) async throws {
        try await forEachVM([target.vm], client) { vmPath, _ throws(Failure) in
            _ = try await client.vmCall(vmPath, "RemoveNetworkAdapter", [.string(mac)], action: .vmConfigure)
        }
    }
}
