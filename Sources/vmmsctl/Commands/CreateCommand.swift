import ArgumentParser
import DBus

/// Memory settings, the same names for create and set-memory.
struct MemoryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Startup memory, e.g. 2G (Hyper-V's -MemoryStartupBytes; default 1 GiB).", valueName: "size"))
    var memory: ByteCount?

    @Flag(inversion: .prefixedNo, help: "Dynamic memory: the balloon moves between --min-memory and --max-memory.")
    var dynamicMemory: Bool?

    @Option(help: ArgumentHelp("Dynamic memory's minimum (default min(512 MiB, startup)).", valueName: "size"))
    var minMemory: ByteCount?

    @Option(help: ArgumentHelp("Dynamic memory's maximum (default min(1 TiB, host memory)).", valueName: "size"))
    var maxMemory: ByteCount?

    var isEmpty: Bool { memory == nil && dynamicMemory == nil && minMemory == nil && maxMemory == nil }
}

struct Create: ServiceCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a virtual machine (New-VM) and print it as `list` does.",
        discussion: """
            Every CreateVM setting has a flag; what is left out gets the service's default \
            (generation 2, 1 processor, 1 GiB, Secure Boot on for generation 2). A create that fails \
            leaves nothing behind. Paths are files on the service's host.
            """,
        aliases: ["new"])

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "The new VM's name: 1-64 letters, digits, spaces, -, _ and ., not starting with - or .")
    var name: String

    @Option(help: ArgumentHelp("1 = BIOS (i440fx), 2 = UEFI (q35).", valueName: "1|2"))
    var generation: UInt32?

    @Option(name: [.customLong("cpus"), .customLong("processor-count")], help: "Virtual processors.")
    var cpus: UInt32?

    @OptionGroup var memoryOptions: MemoryOptions

    @Flag(inversion: .prefixedNo, help: "UEFI Secure Boot (generation 2 only; default on there).")
    var secureBoot: Bool?

    @Option(help: ArgumentHelp("Create a new qcow2 disk of this size in the host's VirtualHardDiskPath.", valueName: "size"))
    var newDisk: ByteCount?

    @Option(help: ArgumentHelp("Attach this existing disk image.", valueName: "path"))
    var disk: String?

    @Option(help: ArgumentHelp("Attach this ISO image as a CD-ROM.", valueName: "path"))
    var iso: String?

    @Option(help: "Free text about the VM (up to 4096 characters).")
    var notes: String?

    @Flag(help: "Start the VM when the host boots.")
    var autostart = false

    @Flag(help: "Start the VM once it is created.")
    var start = false

    func validate() throws {
        if let generation, generation != 1 && generation != 2 { throw ValidationError("--generation is 1 or 2") }
        if newDisk != nil && disk != nil { throw ValidationError("--new-disk and --disk exclude each other") }
    }

    /// The CreateVM settings dictionary (api.md's keys).
    var settings: [String: DBusValue] {
        var settings: [String: DBusValue] = [:]
        if let generation { settings["Generation"] = .uint32(generation) }
        if let cpus { settings["ProcessorCount"] = .uint32(cpus) }
        if let memory = memoryOptions.memory { settings["MemoryStartupBytes"] = .uint64(memory.bytes) }
        if let dynamic = memoryOptions.dynamicMemory { settings["DynamicMemory"] = .boolean(dynamic) }
        if let minimum = memoryOptions.minMemory { settings["MemoryMinimumBytes"] = .uint64(minimum.bytes) }
        if let maximum = memoryOptions.maxMemory { settings["MemoryMaximumBytes"] = .uint64(maximum.bytes) }
        if let secureBoot { settings["SecureBoot"] = .boolean(secureBoot) }
        if let newDisk { settings["NewDiskSizeBytes"] = .uint64(newDisk.bytes) }
        if let disk { settings["DiskPath"] = .string(global.servicePath(disk)) }
        if let iso { settings["InstallMedia"] = .string(global.servicePath(iso)) }
        if let notes { settings["Notes"] = .string(notes) }
        if autostart { settings["Autostart"] = .boolean(true) }
        if start { settings["Start"] = .boolean(true) }
        return settings
    }

    func run(_ client: VMMSClient) async throws {
        let reply: [DBusValue]
        do {
            reply = try await client.call(API.hostPath, API.hostInterface, "CreateVM", [.string(name), .vardict(settings)],
                                          action: .vmCreate, timeout: .seconds(600))
        } catch {
            report(error, subject: name)
            throw ExitCode(error.status.rawValue)
        }
        guard let path = reply.first?.objectPath else { throw Failure(.failed, "CreateVM returned \(DBusValue.signature(of: reply))") }
        let vm = try await client.vm(path)
        let now = Views.now()
        if output.json {
            Terminal.out(Views.vmJSON(vm, hostConnected: true, now: now).rendered() + "\n")
        } else {
            Terminal.out(Views.listTable([vm], hostConnected: true, now: now).render(colour: Terminal.colourEnabled(fd: 1)))
        }
    }
}
