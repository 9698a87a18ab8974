import ArgumentParser
import DBus

/// `vmmsctl san …`: Get-, New-, Remove-VMSan, and re-reading a SAN's LUNs.
struct SANCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "san",
        abstract: "List, create, refresh and delete storage area networks and their LUNs (Get-/New-/Remove-VMSan).",
        subcommands: [SANList.self, SANCreate.self, SANRefresh.self, SANDelete.self])
}

func lookupSAN(_ key: String, _ client: VMMSClient) async throws(Failure) -> (path: ObjectPath, properties: [String: DBusValue]) {
    try await client.object(API.sanInterface, named: key, what: "SAN", listing: "vmmsctl san list")
}

/// A SAN's LUNs: (name, source, capacity).
func luns(_ properties: [String: DBusValue]) -> [(name: String, source: String, capacity: UInt64)] {
    (properties["LUNs"]?.arrayElements ?? []).compactMap { item in
        guard case .structure(let f) = item, f.count == 3, let name = f[0].string, let source = f[1].string,
              let capacity = f[2].uint64 else { return nil }
        return (name, source, capacity)
    }
}

struct SANList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the SANs, each with its LUNs.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run(_ client: VMMSClient) async throws {
        let sans = try await client.objects(API.sanInterface)
        if output.json {
            Terminal.out(JSON.array(sans.map { Views.objectJSON($0.path, $0.properties) }).rendered() + "\n")
            return
        }
        var table = Table(columns: [.init("SAN"), .init("Type"), .init("Active"), .init("Portal / target"), .init("LUN"),
                                    .init("Capacity", .right)])
        for san in sans {
            let p = san.properties
            let active = p["Active"]?.boolean ?? false
            let head: [Table.Cell] = [Table.Cell(p["Name"]?.string ?? "?"), Table.Cell(p["Type"]?.string ?? "?"),
                                      Table.Cell(active ? "yes" : "no", active ? .green : .yellow),
                                      Table.Cell([p["Portal"]?.string, p["Target"]?.string].compactMap { $0 }.joined(separator: " "))]
            let list = luns(p)
            if list.isEmpty { table.rows.append(head + ["-", "-"]) }
            for (index, lun) in list.enumerated() {
                table.rows.append((index == 0 ? head : ["", "", "", ""]) + [Table.Cell(lun.name), Table.Cell(ByteCount.format(lun.capacity))])
            }
        }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }
}

struct SANCreate: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a SAN known to the host and print its object path (New-VMSan).",
        discussion: """
            iSCSI: --portal host[:port] and --target IQN (optional --initiator IQN). FibreChannel: \
            --wwnn and --wwpn of the NPIV vHBA to create (optional --parent-adapter).
            """)

    enum SANType: String, ExpressibleByArgument, CaseIterable { case iSCSI, FibreChannel }

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The SAN's name.") var name: String
    @Option(help: "iSCSI or FibreChannel.") var type: SANType = .iSCSI
    @Option(help: ArgumentHelp("The iSCSI portal, host[:port].", valueName: "host:port")) var portal: String?
    @Option(help: ArgumentHelp("The iSCSI target's IQN.", valueName: "iqn")) var target: String?
    @Option(help: ArgumentHelp("The IQN this host logs in with.", valueName: "iqn")) var initiator: String?
    @Option(help: "The vHBA's world wide node name (FibreChannel).") var wwnn: String?
    @Option(help: "The vHBA's world wide port name (FibreChannel).") var wwpn: String?
    @Option(help: "The NPIV-capable HBA to create the vHBA on, e.g. scsi_host5 (FibreChannel).") var parentAdapter: String?

    func run(_ client: VMMSClient) async throws {
        var options: [String: DBusValue] = [:]
        for (key, value) in [("Portal", portal), ("Target", target), ("InitiatorName", initiator), ("WWNN", wwnn), ("WWPN", wwpn),
                             ("ParentAdapter", parentAdapter)] {
            if let value { options[key] = .string(value) }
        }
        let reply = try await client.call(API.hostPath, API.hostInterface, "CreateSAN",
                                          [.string(name), .string(type.rawValue), .vardict(options)], action: .hostConfigure)
        if let path = reply.first?.objectPath { Terminal.out(path.rawValue + "\n") }
    }
}

struct SANRefresh: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "refresh", abstract: "Read a SAN's LUNs again (after adding LUNs on the target).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The SAN: name or object path.") var name: String

    func run(_ client: VMMSClient) async throws {
        let found = try await lookupSAN(name, client)
        _ = try await client.call(found.path, API.sanInterface, "Refresh", action: .hostConfigure)
    }
}

struct SANDelete: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Forget a SAN (refused while a VM uses one of its LUNs; nothing on the SAN is deleted).")

    @OptionGroup var global: GlobalOptions
    @Argument(help: "The SAN: name or object path.") var name: String

    func run(_ client: VMMSClient) async throws {
        let found = try await lookupSAN(name, client)
        _ = try await client.call(found.path, API.sanInterface, "Delete", action: .hostConfigure)
    }
}
