import ArgumentParser
import DBus

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Show and change the host's settings (Get-VMHost, Set-VMHost).",
        subcommands: [HostGet.self, HostSet.self])
}

struct HostGet: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show the host's properties, or print the value of the ones named.",
        discussion: "`vmmsctl host get VirtualHardDiskPath` prints just the value, for scripts.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: ArgumentHelp("Host property names (as in dbus/org.example.VMMS1.Host.xml).", valueName: "property"))
    var properties: [String] = []

    func run(_ client: VMMSClient) async throws {
        var host = try await client.host()
        if !properties.isEmpty {
            let unknown = properties.filter { host[$0] == nil }
            guard unknown.isEmpty else {
                throw Failure(.usage, "the host has no property \(unknown.joined(separator: ", "))",
                              hint: "It has: \(host.keys.sorted().joined(separator: ", ")).")
            }
            host = host.filter { properties.contains($0.key) }
        }
        if output.json {
            Terminal.out(Views.hostJSON(host).rendered() + "\n")
        } else if properties.count == 1, let value = host[properties[0]] {
            Terminal.out(Self.plain(value) + "\n")
        } else {
            Terminal.out(Views.hostList(host).render(colour: Terminal.colourEnabled(fd: 1)))
        }
    }

    /// One value exactly as the service has it: numbers in full, lists one per line.
    static func plain(_ value: DBusValue) -> String {
        switch JSON(value) {
        case .string(let s): s
        case .uint(let n): String(n)
        case .int(let n): String(n)
        case .bool(let b): b ? "true" : "false"
        case .array(let items): items.map { item in if case .string(let s) = item { s } else { item.rendered(compact: true) } }
            .joined(separator: "\n")
        case let other: other.rendered(compact: true)
        }
    }
}

struct HostSet: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change where VM files and new disks go (Set-VMHost -VirtualMachinePath, -VirtualHardDiskPath).",
        discussion: "Each path must be an existing directory on the host; the service keeps it across restarts.")

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customLong("virtual-machine-path"), .customLong("vm-path")],
            help: ArgumentHelp("Where VM files, exports and saved state go.", valueName: "directory"))
    var virtualMachinePath: String?

    @Option(name: [.customLong("virtual-hard-disk-path"), .customLong("vhd-path")],
            help: ArgumentHelp("Where new virtual hard disks are created.", valueName: "directory"))
    var virtualHardDiskPath: String?

    func validate() throws {
        if virtualMachinePath == nil && virtualHardDiskPath == nil {
            throw ValidationError("say what to change: --virtual-machine-path or --virtual-hard-disk-path")
        }
    }

    func run(_ client: VMMSClient) async throws {
        if let virtualMachinePath {
            try await client.set(API.hostPath, API.hostInterface, "VirtualMachinePath",
                                 .string(global.servicePath(virtualMachinePath)), action: .hostConfigure)
        }
        if let virtualHardDiskPath {
            try await client.set(API.hostPath, API.hostInterface, "VirtualHardDiskPath",
                                 .string(global.servicePath(virtualHardDiskPath)), action: .hostConfigure)
        }
    }
}
