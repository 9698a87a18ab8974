import ArgumentParser
import DBus

struct Rename: ServiceCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rename a VM (Rename-VM); it must be Off. Its UUID and object path stay.")

    @OptionGroup var global: GlobalOptions

    @OptionGroup var target: OneVM

    @Argument(help: ArgumentHelp("The new name.", valueName: "new-name"))
    var newName: String

    func run(_ client: VMMSClient) async throws {
        try await forEachVM([target.vm], client) { path, _ throws(Failure) in
            _ = try await client.vmCall(path, "Rename", [.string(newName)], action: .vmConfigure)
        }
    }
}

struct SetProcessor: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-processor",
        abstract: "Change virtual processors (Set-VMProcessor).",
        discussion: """
            Options left out keep their values. On a running VM the weight and maximum apply at \
            once; the count changes by vCPU hot-plug where the guest can.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: [.customLong("count"), .customLong("cpus")], help: "Virtual processors.")
    var count: UInt32?

    @Option(help: ArgumentHelp("Percent of each processor reserved for the VM (0-100).", valueName: "percent"))
    var reserve: UInt32?

    @Option(help: ArgumentHelp("Percent of each processor the VM may use at most (1-100).", valueName: "percent"))
    var maximum: UInt32?

    @Option(name: [.customLong("weight"), .customLong("relative-weight")],
            help: ArgumentHelp("Share against other VMs (0-10000, normal 100).", valueName: "weight"))
    var relativeWeight: UInt32?

    @OptionGroup var targets: VMArguments

    func validate() throws {
        if count == nil && reserve == nil && maximum == nil && relativeWeight == nil {
            throw ValidationError("say what to change: --count, --reserve, --maximum or --weight")
        }
    }

    func run(_ client: VMMSClient) async throws {
        var options: [String: DBusValue] = [:]
        if let reserve { options["Reserve"] = .uint32(reserve) }
        if let maximum { options["Maximum"] = .uint32(maximum) }
        if let relativeWeight { options["RelativeWeight"] = .uint32(relativeWeight) }
        try await forEachVM(targets.vms, client) { path, _ throws(Failure) in
            // SetProcessor always takes the count: keep the current one unless told.
            let processors: UInt32
            if let count { processors = count } else { processors = try await currentValue(client, path, "ProcessorCount", \.uint32) }
            _ = try await client.vmCall(path, "SetProcessor", [.uint32(processors), .vardict(options)], action: .vmConfigure)
        }
    }
}

/// A property a setter must repeat when the user left it out.
func currentValue<T>(_ client: VMMSClient, _ path: ObjectPath, _ property: String,
                     _ read: (DBusValue) -> T?) async throws(Failure) -> T {
    let reply = try await client.call(path, API.properties, "Get", [.string(API.vmInterface), .string(property)], action: .read)
    guard let value = reply.first?.variant.flatMap(read) else {
        throw Failure(.failed, "the service sent no \(property) (\(DBusValue.signature(of: reply)))")
    }
    return value
}

struct SetMemory: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-memory",
        abstract: "Change memory (Set-VMMemory).",
        discussion: """
            Sizes take 512M / 2G. Options left out keep their values. A running VM can move its \
            startup amount within its maximum; changing the maximum or turning dynamic memory on or \
            off needs it Off.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var memoryOptions: MemoryOptions
    @OptionGroup var targets: VMArguments

    func validate() throws {
        if memoryOptions.isEmpty {
            throw ValidationError("say what to change: --memory, --dynamic-memory/--no-dynamic-memory, --min-memory or --max-memory")
        }
    }

    func run(_ client: VMMSClient) async throws {
        var options: [String: DBusValue] = [:]
        if let dynamic = memoryOptions.dynamicMemory { options["DynamicMemory"] = .boolean(dynamic) }
        if let minimum = memoryOptions.minMemory { options["MinimumBytes"] = .uint64(minimum.bytes) }
        if let maximum = memoryOptions.maxMemory { options["MaximumBytes"] = .uint64(maximum.bytes) }
        try await forEachVM(targets.vms, client) { path, _ throws(Failure) in
            let startup: UInt64
            if let memory = memoryOptions.memory { startup = memory.bytes } else {
                startup = try await currentValue(client, path, "MemoryStartupBytes", \.uint64)
            }
            _ = try await client.vmCall(path, "SetMemory", [.uint64(startup), .vardict(options)], action: .vmConfigure)
        }
    }
}

struct SetFirmware: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-firmware",
        abstract: "Turn UEFI Secure Boot on or off (Set-VMFirmware -EnableSecureBoot); generation 2, Off only.")

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("on or off.", valueName: "on|off"))
    var secureBoot: OnOff

    @OptionGroup var targets: VMArguments

    func run(_ client: VMMSClient) async throws {
        try await forEachVM(targets.vms, client) { path, _ throws(Failure) in
            _ = try await client.vmCall(path, "SetSecureBoot", [.boolean(secureBoot.isOn)], action: .vmConfigure)
        }
    }
}

struct SetVM: ServiceCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change a VM's notes or autostart (Set-VM -Notes, -AutomaticStartAction).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Free text about the VM (up to 4096 characters; \"\" clears it).")
    var notes: String?

    @Option(help: ArgumentHelp("Start the VM when the host boots.", valueName: "on|off"))
    var autostart: OnOff?

    @OptionGroup var targets: VMArguments

    func validate() throws {
        if notes == nil && autostart == nil { throw ValidationError("say what to change: --notes or --autostart") }
    }

    func run(_ client: VMMSClient) async throws {
        try await forEachVM(targets.vms, client) { path, _ throws(Failure) in
            if let notes { try await client.set(path, API.vmInterface, "Notes", .string(notes), action: .vmConfigure) }
            if let autostart {
                try await client.set(path, API.vmInterface, "Autostart", .boolean(autostart.isOn), action: .vmConfigure)
            }
        }
    }
}

struct Delete: ServiceCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete VMs (Remove-VM): definition, saved state and UEFI variables.",
        discussion: """
            Disk images stay unless --delete-disks (only those inside the host's \
            VirtualHardDiskPath are deleted). A running VM is refused unless --force. On a \
            terminal vmmsctl asks first; --yes does not ask.
            """,
        aliases: ["remove"])

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Also delete the VM's disk images that lie in VirtualHardDiskPath.")
    var deleteDisks = false

    @Flag(help: "Turn a running VM off first.")
    var force = false

    @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation.")
    var yes = false

    @OptionGroup var targets: VMArguments

    func run(_ client: VMMSClient) async throws {
        let ask = !yes && Terminal.isInteractive
        try await forEachVM(targets.vms, client) { path, name throws(Failure) in
            if ask {
                var question = "Delete the virtual machine \(name)"
                if deleteDisks {
                    let disks = try await client.vm(path).hardDisks
                    if !disks.isEmpty { question += " and its disk images (\(disks.map(\.path).joined(separator: ", ")))" }
                }
                guard Terminal.confirm(question + "?") else {
                    Terminal.err("\(name): not deleted\n")
                    return
                }
            }
            let options: [String: DBusValue] = ["DeleteDisks": .boolean(deleteDisks), "Force": .boolean(force)]
            _ = try await client.vmCall(path, "Delete", [.vardict(options)], action: .vmDelete)
        }
    }
}
