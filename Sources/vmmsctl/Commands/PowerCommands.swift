import ArgumentParser
import DBus

/// One or more VMs, by name, UUID or object path.
struct VMArguments: ParsableArguments {
    @Argument(help: ArgumentHelp("The VMs: names, UUIDs or object paths.", valueName: "vm"),
              completion: VMNameCompletion.kind)
    var vms: [String] = []

    func validate() throws {
        if vms.isEmpty { throw ValidationError("name at least one VM") }
    }
}

/// Exactly one VM.
struct OneVM: ParsableArguments {
    @Argument(help: ArgumentHelp("The VM: name, UUID or object path.", valueName: "vm"), completion: VMNameCompletion.kind)
    var vm: String
}

/// A power verb that is one method call without arguments on each VM.
protocol PowerCommand: ServiceCommand {
    static var method: String { get }
    var targets: VMArguments { get }
}

extension PowerCommand {
    func run(_ client: VMMSClient) async throws {
        try await forEachVM(targets.vms, client) { path, _ throws(Failure) in
            _ = try await client.vmCall(path, Self.method, action: .vmPower)
        }
    }
}

struct Start: PowerCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start VMs (Start-VM): power on an Off VM, restore a Saved one.",
        discussion: "Returns when the VM runs.")
    static let method = "Start"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var targets: VMArguments
}

struct Save: PowerCommand {
    static let configuration = CommandConfiguration(
        abstract: "Save VMs (Save-VM): memory to disk, then stop; start restores them.")
    static let method = "Save"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var targets: VMArguments
}

struct Pause: PowerCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pause running VMs (Suspend-VM).", aliases: ["suspend"])
    static let method = "Pause"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var targets: VMArguments
}

struct Resume: PowerCommand {
    static let configuration = CommandConfiguration(abstract: "Resume paused VMs (Resume-VM).")
    static let method = "Resume"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var targets: VMArguments
}

struct Reset: PowerCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hard-reset VMs, like pressing the reset button (Restart-VM).")
    static let method = "Reset"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var targets: VMArguments
}

struct Restart: PowerCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the guests to reboot (Restart-VM -Type Reboot); the VMs stay Running.", aliases: ["reboot"])
    static let method = "Reboot"
    @OptionGroup var global: GlobalOptions
    @OptionGroup var targets: VMArguments
}

struct Stop: ServiceCommand {
    static let configuration = CommandConfiguration(
        abstract: "Shut VMs down (Stop-VM): the guest is asked (ACPI) and given --timeout seconds.",
        discussion: """
            Without --force a guest that does not stop in time keeps running and vmmsctl exits 1. \
            --turn-off pulls the plug at once (Stop-VM -TurnOff), --save saves the VM instead (Stop-VM -Save).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Seconds the guest gets to shut down (1-3600).")
    var timeout: UInt32 = 120

    @Flag(help: "Turn the VM off when the timeout passes.")
    var force = false

    @Flag(help: "Turn the VM off at once, without asking the guest.")
    var turnOff = false

    @Flag(help: "Save the VM's memory to disk and stop it.")
    var save = false

    @OptionGroup var targets: VMArguments

    func validate() throws {
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be between 1 and 3600 seconds") }
        guard !(turnOff && save) else { throw ValidationError("--turn-off and --save exclude each other") }
    }

    func run(_ client: VMMSClient) async throws {
        try await forEachVM(targets.vms, client) { path, _ throws(Failure) in
            if turnOff {
                _ = try await client.vmCall(path, "TurnOff", action: .vmPower)
            } else if save {
                _ = try await client.vmCall(path, "Save", action: .vmPower)
            } else {
                let options: [String: DBusValue] = ["TimeoutSeconds": .uint32(timeout), "Force": .boolean(force)]
                // The reply comes after the guest stopped: wait past the guest's timeout.
                _ = try await client.vmCall(path, "Shutdown", [.vardict(options)], action: .vmPower,
                                            timeout: .seconds(Int(timeout) + 60))
            }
        }
    }
}
