import ArgumentParser
import DBus

struct Disk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, add and remove virtual hard disks (Get-/Add-/Remove-VMHardDiskDrive).",
        subcommands: [DiskList.self, DiskAdd.self, DiskRemove.self])
}

struct DiskList: ServiceCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List a VM's virtual hard disks.")

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup var target: OneVM

    func run(_ client: VMMSClient) async throws {
        let view = try await client.vm(try await client.lookupVM(target.vm))
        if output.json {
            Terminal.out(Views.disksJSON(view).rendered() + "\n")
            return
        }
        var table = Table(columns: [.init("Path"), .init("Format"), .init("Capacity", .right)])
        table.rows = view.hardDisks.map { [Table.Cell($0.path), Table.Cell($0.format), Table.Cell(ByteCount.format($0.capacity))] }
        Terminal.out(table.render(colour: Terminal.colourEnabled(fd: 1)))
    }
}

struct DiskAdd: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Attach a new or an existing disk on virtio and print its path.",
        discussion: """
            --size creates a qcow2 image in the host's VirtualHardDiskPath; --path attaches an \
            existing image (inside VirtualHardDiskPath or VirtualMachinePath unless you are root). \
            Off: the definition changes; Running: hot-plugged.
            """)

    @OptionGroup var global: GlobalOptions

    @OptionGroup var target: OneVM

    @Option(help: ArgumentHelp("Create a new image of this size (1M to 64T).", valueName: "size"))
    var size: ByteCount?

    @Option(help: ArgumentHelp("Attach this existing image.", valueName: "path"))
    var path: String?

    @Option(help: ArgumentHelp("Attach a LUN of this SAN (with --lun), on virtio-scsi.", valueName: "san"))
    var san: String?

    @Option(help: ArgumentHelp("The LUN's name, as `san list` shows it.", valueName: "lun"))
    var lun: String?

    @Flag(help: "The LUN may be attached to several VMs at once (their guests must coordinate, e.g. a cluster file system).")
    var shared = false

    func validate() throws {
        guard [size != nil, path != nil, san != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --size, --path and --san")
        }
        if (san == nil) != (lun == nil) { throw ValidationError("--san and --lun go together") }
        if shared && san == nil { throw ValidationError("--shared is for SAN LUNs") }
    }

    func run(_ client: VMMSClient) async throws {
        var options: [String: DBusValue] = [:]
        if let size { options["SizeBytes"] = .uint64(size.bytes) }
        if let path { options["Path"] = .string(global.servicePath(path)) }
        if let san, let lun {
            options["SAN"] = .objectPath(try await lookupSAN(san, client).path)
            options["LUN"] = .string(lun)
            if shared { options["Shared"] = .boolean(true) }
        }
        try await forEachVM([target.vm], client) { vmPath, _ throws(Failure) in
            let reply = try await client.vmCall(vmPath, "AddHardDisk", [.vardict(options)], action: .vmConfigure)
            if let added = reply.first?.string { Terminal.out(added + "\n") }
        }
    }
}

struct DiskRemove: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Detach a disk (by its path, as `disk list` shows it).")

    @OptionGroup var global: GlobalOptions

    @OptionGroup var target: OneVM

    @Argument(help: ArgumentHelp("The disk image's path.", valueName: "path"))
    var path: String

    @Flag(help: "Also delete the image (only inside the host's storage paths, and not used by another VM).")
    var deleteFile = false

    func run(_ client: VMMSClient) async throws {
        let options: [String: DBusValue] = ["DeleteFile": .boolean(deleteFile)]
        let diskPath = global.servicePath(path)
        try await forEachVM([target.vm], client) { vmPath, _ throws(Failure) in
            _ = try await client.vmCall(vmPath, "RemoveHardDisk", [.string(diskPath), .vardict(options)], action: .vmConfigure)
        }
    }
}
