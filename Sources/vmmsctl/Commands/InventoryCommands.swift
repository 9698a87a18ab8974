import ArgumentParser
import DBus
import Glibc

/// `--json` on the read verbs.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON for scripts (stable keys; see `vmmsctl --help`).")
    var json = false
}

struct List: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List virtual machines with Get-VM's columns.",
        discussion: """
            Name, State, CPUUsage(%), MemoryAssigned(M), Uptime and Status, from one \
            GetManagedObjects call. A column whose property the service does not publish shows "-". \
            --watch keeps the table current from the service's signals (PropertiesChanged, \
            InterfacesAdded, InterfacesRemoved), never by polling; Ctrl-C stops it.
            """,
        aliases: ["ls"])

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Flag(help: "Redraw whenever a VM changes, until interrupted.")
    var watch = false

    @Argument(help: ArgumentHelp("Only VMs whose names match (shell wildcards, as Get-VM -Name).", valueName: "name"),
              completion: VMNameCompletion.kind)
    var names: [String] = []

    func run(_ client: VMMSClient) async throws {
        if watch {
            try await Watch(client: client, filter: NameFilter(names), json: output.json).run()
            return
        }
        let inventory = try await client.inventory()
        let filter = NameFilter(names)
        Terminal.out(ListRenderer.render(inventory, filter: filter, json: output.json, colour: Terminal.colourEnabled(fd: 1)))
        let missing = filter.unmatchedExactNames(in: inventory)
        guard missing.isEmpty else {
            for name in missing {
                report(Failure(.notFound, "no virtual machine is named \(name)", hint: "`vmmsctl list` shows the virtual machines you may see."))
            }
            throw ExitCode(ExitStatus.notFound.rawValue)
        }
    }
}

/// `list`'s output, shared with `--watch`.
enum ListRenderer {
    static func render(_ inventory: Inventory, filter: NameFilter, json: Bool, colour: Bool, compact: Bool = false) -> String {
        let vms = inventory.sortedVMs.filter { filter.matches($0.name) }
        let now = Views.now()
        if json {
            return JSON.array(vms.map { Views.vmJSON($0, hostConnected: inventory.hostConnected, now: now) }).rendered(compact: compact) + "\n"
        }
        return Views.listTable(vms, hostConnected: inventory.hostConnected, now: now).render(colour: colour)
    }
}

/// Get-VM -Name: exact names or shell patterns (fnmatch), matched case-insensitively as
/// PowerShell does.
struct NameFilter: Sendable {
    var patterns: [String]
    init(_ patterns: [String]) { self.patterns = patterns }

    func matches(_ name: String) -> Bool {
        patterns.isEmpty || patterns.contains { Self.match($0, name) }
    }

    static func match(_ pattern: String, _ name: String) -> Bool {
        fnmatch(pattern.lowercased(), name.lowercased(), 0) == 0
    }

    func unmatchedExactNames(in inventory: Inventory) -> [String] {
        patterns.filter { pattern in
            !pattern.contains(where: { "*?[".contains($0) })
                && !inventory.vms.values.contains { Self.match(pattern, $0.name) }
        }
    }
}

struct Show: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show everything about one virtual machine (Get-VM | Format-List *).")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup var target: OneVM

    func run(_ client: VMMSClient) async throws {
        let view = try await client.vm(try await client.lookupVM(target.vm))
        let connected = (try? await client.host())?["Connected"]?.boolean ?? true
        let now = Views.now()
        if output.json {
            Terminal.out(Views.vmJSON(view, hostConnected: connected, now: now).rendered() + "\n")
        } else {
            Terminal.out(Views.vmList(view, hostConnected: connected, now: now).render(colour: Terminal.colourEnabled(fd: 1)))
        }
    }
}
