import ArgumentParser
import DBus
import Foundation
import Glibc

struct VMMSBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmms-bench",
        abstract: "vmms (org.example.VMMS1) against libvirt-dbus (org.libvirt) on the system bus and the same libvirtd.",
        subcommands: [Run.self, Compare.self, Worker.self, Cleanup.self],
        defaultSubcommand: Run.self)
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Define N VMs, start vmmsd, run every scenario against both services, print the table, write JSON. Must run as root.")

    @Option(help: "Number of VMs to define.") var vms = 1000
    @Option(help: "The vmmsd binary (default: next to this one).") var vmmsd: String?
    @Option(help: "Where to write the JSON results.") var json = "bench/results.json"
    @Option(help: "Name prefix of the bench VMs (all VMs with it are removed at the end).") var prefix = "vmmsbench"
    @Option(help: "GetManagedObjects rounds against vmms.") var vmmsRounds = 20
    @Option(help: "Inventory rounds against libvirt-dbus (about 5-20 s each at 1000 VMs).") var libvirtRounds = 3
    @Option(help: "Domains in flight in the pipelined libvirt-dbus inventory (0: skip that variant).") var libvirtWindow = 32
    @Option(help: "State reads (and pings) per client.") var iterations = 2000
    @Option(help: "Pause+Resume pairs per service.") var powerIterations = 100
    @Option(help: "virsh suspend/resume events per service (each is one suspend or one resume).") var eventIterations = 100
    @Option(help: "Concurrent clients.") var clients = 32
    @Option(help: "Of those, clients doing power ops, each on its own running VM.") var powerClients = 4
    @Option(help: "Duration of the concurrency scenario per service, in seconds.") var seconds = 5.0
    @Option(help: "vmmsd cold starts for the readiness measurement.") var readyStarts = 3
    @Option(help: "The non-root vmms-admins user for the client processes.") var user = "alice"
    @Flag(help: "Keep the VMs defined at the end (next run reuses nothing; for debugging).") var keepVMs = false

    func run() async throws {
        guard getuid() == 0 else { throw BenchError("must run as root (it defines VMs and starts vmmsd)") }
        guard vms >= 1 + powerClients else { throw BenchError("--vms must be at least \(1 + powerClients)") }
        let runner = try Runner(options: self)
        try await runner.run()
    }
}

struct Cleanup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Destroy and undefine every VM whose name starts with the prefix.")
    @Option var prefix = "vmmsbench"
    func run() async throws {
        try await removeBenchVMs(prefix: prefix)
    }
}

/// Client side of a scenario, run as another user (`runuser -u alice -- vmms-bench worker ...`);
/// prints its timings as JSON on stdout.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Internal: one client scenario, JSON on stdout.")

    enum Mode: String, ExpressibleByArgument { case stateRead = "state-read", power, concurrency, probeLibvirt = "probe-libvirt", polkit, holdName = "hold-name" }

    @Argument var mode: Mode
    @Option var path: String?
    @Option var iterations = 1000
    @Option var clients = 32
    @Option var seconds = 5.0
    @Option(parsing: .singleValue) var powerName: [String] = []

    func run() async throws {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let data: Data
        switch mode {
        case .stateRead:
            let bus = try DBusConnection(bus: .system)
            defer { bus.close() }
            data = try encoder.encode(try await measureVMMSStateRead(bus, path: try objectPath(), iterations: iterations))
        case .power:
            let bus = try DBusConnection(bus: .system)
            defer { bus.close() }
            let target = try objectPath()
            data = try encoder.encode(try await measurePower(iterations: iterations,
                                                             pause: { try await bus.vmmsPower(target, "Pause") },
                                                             resume: { try await bus.vmmsPower(target, "Resume") }))
        case .concurrency:
            data = try encoder.encode(try await vmmsConcurrency(clients: clients, seconds: seconds, powerNames: powerName))
        case .probeLibvirt:
            data = try encoder.encode(await probeLibvirtDBus())
        case .polkit:
            let bus = try DBusConnection(bus: .system)
            defer { bus.close() }
            data = try encoder.encode(try await measurePolkit(bus, iterations: iterations))
        case .holdName:
            // A bus name for root to ask polkit about, as vmmsd asks about its callers: printed,
            // then held until the bench ends this process (at most --seconds).
            let bus = try DBusConnection(bus: .system)
            defer { bus.close() }
            FileHandle.standardOutput.write(Data((bus.uniqueName + "\n").utf8))
            try await Task.sleep(for: .seconds(seconds))
            return
        }
        FileHandle.standardOutput.write(data)
    }

    func objectPath() throws -> ObjectPath {
        guard let path, let objectPath = ObjectPath(path) else { throw BenchError("--path must be an object path") }
        return objectPath
    }
}

/// Destroys and undefines every domain named `prefix-*`.
func removeBenchVMs(prefix: String) async throws {
    let running = try await runChecked("virsh", ["-c", "qemu:///system", "list", "--name"]).stdout
        .split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix + "-") }
    let all = try await runChecked("virsh", ["-c", "qemu:///system", "list", "--all", "--name"]).stdout
        .split(separator: "\n").map(String.init).filter { $0.hasPrefix(prefix + "-") }
    guard !all.isEmpty else { return }
    let script = Scratch.file("cleanup")
    let lines = running.map { "destroy \($0)" } + all.map { "undefine \($0)" }
    try (lines.joined(separator: "\n") + "\n").write(toFile: script, atomically: true, encoding: .utf8)
    try await runChecked("virsh", ["-c", "qemu:///system"], stdinPath: script)
    let left = try await runChecked("virsh", ["-c", "qemu:///system", "list", "--all", "--name"]).stdout
        .split(separator: "\n").filter { $0.hasPrefix(prefix + "-") }
    guard left.isEmpty else { throw BenchError("\(left.count) bench VMs are still defined") }
    log("removed \(all.count) bench VMs (\(running.count) were running)")
}
