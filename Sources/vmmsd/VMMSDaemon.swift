import ArgumentParser
import DBus
import Dispatch
import Foundation
import Logging
import VMMSModel
import VMMSService

/// `vmmsd`: argument parsing and wiring only; everything else lives in VMMSService.
@main
struct VMMSDaemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmmsd",
        abstract: "The vmms virtual machine management service (org.example.VMMS1).")

    @Flag(name: .customLong("system"), help: "Serve on the system bus (the default).")
    var system = false

    @Flag(name: .customLong("session"), help: "Serve on the session bus, for development; polkit is not consulted.")
    var session = false

    @Option(name: .customLong("address"), help: "Serve on the bus at this address, as on a session bus (tests, `make run`).")
    var address: String?

    @Option(name: .customLong("connect"), help: "libvirt connection URI (default qemu:///system, or the config file's).")
    var connect: String?

    @Option(name: .customLong("accelerator"), help: "auto, kvm or tcg: how new VMs run (default auto: KVM where libvirt offers it).")
    var accelerator: Accelerator?

    @Option(name: .customLong("config"), help: "Configuration file.")
    var configPath = "/etc/vmms/vmmsd.conf"

    @Option(name: .customLong("state-dir"), help: "Where persisted host settings live (default /var/lib/vmms; on a session bus ~/.local/state/vmms).")
    var stateDirectory: String?

    @Option(name: .customLong("libvirt-timeout"), help: "Seconds a libvirt call may take before the caller gets Timeout (default 30).")
    var libvirtTimeout: UInt = 30

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Flag(name: .customLong("check-config"), help: "Read the configuration file, say what is wrong with it (file:line) and exit: 0 when it is fine, 78 when not.")
    var checkConfig = false

    func validate() throws {
        if system && (session || address != nil) { throw ValidationError("--system excludes --session and --address") }
        if !(1...3600).contains(libvirtTimeout) { throw ValidationError("--libvirt-timeout must be between 1 and 3600 seconds") }
    }

    func run() async throws {
        var handler = StreamLogHandler.standardError(label: "vmmsd")
        handler.logLevel = logLevel
        let logger = Logger(label: "vmmsd", factory: { _ in handler })

        let file: DaemonConfiguration
        do {
            file = try DaemonConfiguration(contentsOf: configPath)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(78)
        }
        if checkConfig {
            print("\(configPath): ok")
            return
        }
        let onSessionBus = session || address != nil
        let bus: DBusConnection.Bus = address.map { .address($0) } ?? (onSessionBus ? .session : .system)
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/tmp"
        var options = ServiceOptions(
            bus: bus,
            libvirtURI: connect ?? file.connect ?? "qemu:///system",
            accelerator: accelerator ?? file.accelerator ?? .auto,
            stateDirectory: stateDirectory ?? file.stateDirectory ?? (onSessionBus ? home + "/.local/state/vmms" : "/var/lib/vmms"),
            authorizer: onSessionBus ? SessionBusAuthorizer() : PolkitAuthorizer(logger: logger),
            libvirtTimeout: .seconds(Int(libvirtTimeout)))
        options.migrationDestinations = file.migrationDestinations

        let service: VMMSService
        do {
            service = try await VMMSService.start(options, logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode.failure
        }
        let signal = await TerminationSignal.wait()
        logger.info("received \(signal), leaving the bus")
        service.stop()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension Accelerator: ExpressibleByArgument {}

/// Waits for SIGTERM or SIGINT without a signal handler running arbitrary code.
enum TerminationSignal {
    static func wait() async -> String {
        await withCheckedContinuation { continuation in
            let queue = DispatchQueue(label: "vmmsd.signals")
            let once = OnceFlag()
            var sources: [DispatchSourceSignal] = []
            for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
                Foundation.signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler {
                    if once.claim() { continuation.resume(returning: name) }
                }
                source.resume()
                sources.append(source)
            }
            // The sources must outlive this scope; the process ends soon after one fires.
            SignalSources.keep(sources)
        }
    }
}

/// Holds the signal sources for the life of the process.
enum SignalSources {
    nonisolated(unsafe) private static var retained: [DispatchSourceSignal] = []
    static func keep(_ sources: [DispatchSourceSignal]) { retained = sources }
}

final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var claimed = false
    func claim() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if claimed { return false }
        claimed = true
        return true
    }
}
