import DBus
import Libvirt
import Logging
import VMMSModel

/// How the daemon was asked to run.
public struct ServiceOptions: Sendable {
    public var bus: DBusConnection.Bus
    public var libvirtURI: String
    public var accelerator: Accelerator
    public var stateDirectory: String
    public var authorizer: any Authorizer
    /// How long a quick libvirt call may take before the caller gets Timeout.
    public var libvirtTimeout: Duration
    /// How long a finished job stays on the bus.
    public var jobRetention: Duration = JobRunner.defaultRetention
    /// Destination URIs callers other than root may Move a VM to (`migration-destinations`).
    public var migrationDestinations: [String] = []

    public init(bus: DBusConnection.Bus, libvirtURI: String, accelerator: Accelerator, stateDirectory: String,
                authorizer: any Authorizer, libvirtTimeout: Duration = .seconds(30)) {
        self.libvirtTimeout = libvirtTimeout
        self.bus = bus
        self.libvirtURI = libvirtURI
        self.accelerator = accelerator
        self.stateDirectory = stateDirectory
        self.authorizer = authorizer
    }
}

/// The running service: one bus connection, one (re-established) libvirt connection, and
/// the objects between them.
///
/// Built bottom-up, with nothing that points back: the publisher (signals and the published
/// view) → the models, which hand it their changes → the services the handlers use → the
/// object registry and server. The link to libvirt is one state machine (`LinkLifecycle`);
/// when libvirtd goes away the service stays on the bus, `Host.Connected` turns false, calls
/// fail with HypervisorUnavailable, and on reconnect everything is read again, so what
/// changed meanwhile is announced.
public final class VMMSService: Sendable {
    public let connection: DBusConnection
    let server: ObjectServer
    let services: Services
    let lifecycle: LinkLifecycle

    /// Publishes the objects, then takes the bus name, so a client that sees the name can use
    /// every object. Operations a crash interrupted are undone before any VM is published.
    /// libvirt being down does not stop the start: the service says so instead.
    public static func start(_ options: ServiceOptions, logger: Logger) async throws -> VMMSService {
        try LibvirtEventLoop.start()
        let link = HypervisorLink(uri: options.libvirtURI, worker: LibvirtWorker(timeout: options.libvirtTimeout))
        let settingsStore = SettingsStore(stateDirectory: options.stateDirectory)
        let (settings, problem) = settingsStore.load()
        if let problem { logger.warning("\(problem)") }

        let connection = try DBusConnection(bus: options.bus)
        let emitter = SignalEmitter(connection: connection, objectManagerPath: Paths.root)
        let publisher = Publisher(emitter: emitter, hostPath: Paths.host, hostInterface: HostKind.interface.name,
                                  hostLists: HostKind.lists)
        let host = HostModel(HostRecord(info: HostInfo(connectionURI: options.libvirtURI), settings: settings),
                             sink: publisher.sink(for: HostKind.self))
        let vms = VMModel(sink: publisher.sink(for: VMKind.self))
        let monitor = VMMonitor(link: link, vms: vms, logger: logger)
        let switches = SwitchModel(sink: publisher.sink(for: SwitchKind.self))
        let switchMonitor = SwitchMonitor(link: link, switches: switches, vms: vms, logger: logger)
        let journal = OperationJournal(stateDirectory: options.stateDirectory)
        let sans = SANModel(sink: publisher.sink(for: SANKind.self))
        let sanMonitor = SANMonitor(link: link, sans: sans, vms: vms, vmMonitor: monitor, logger: logger)
        var services = Services(host: host, vms: vms, monitor: monitor, link: link, authorizer: options.authorizer,
                                disks: DiskStore(link: link, logger: logger), journal: journal, settingsStore: settingsStore,
                                settingsGate: SerialGate(), reserves: ProcessorReserves(),
                                health: HealthCheck(host: host, vms: vms, publisher: publisher, connection: connection,
                                                    systemBus: options.bus.isSystem),
                                logger: logger, sans: sans, sanMonitor: sanMonitor,
                                jobs: JobRunner(jobs: JobModel(sink: publisher.sink(for: JobKind.self)), publisher: publisher,
                                                 retention: options.jobRetention),
                                switches: switches, switchMonitor: switchMonitor, switchGate: SerialGate(), macs: MACReservations(),
                                checkpoints: CheckpointStore(stateDirectory: options.stateDirectory,
                                                             model: CheckpointModel(sink: publisher.sink(for: CheckpointKind.self)), vms: vms))
        services.migrationDestinations = options.migrationDestinations
        let registry = ObjectRegistry(publisher: publisher, authorizer: options.authorizer, routes: [
            .host(services), .vm(services),
            .switch(services), .san(services), .job(services), .checkpoint(services),
        ])
        let server = ObjectServer(connection: connection, objectManagerPath: Paths.root, tree: registry, emitter: emitter)
        let watchers: [any ConnectionWatcher] = [
            JournalRecovery(journal: journal, worker: link.worker, logger: logger),
            HostWatcher(link: link, host: host, accelerator: options.accelerator),
            VMWatcher(monitor: monitor, uri: options.libvirtURI),
            SANWatcher(monitor: sanMonitor),
            SwitchWatcher(monitor: switchMonitor),
            CheckpointWatcher(services: services),
        ]
        let lifecycle = LinkLifecycle(link: link, watchers: watchers, logger: logger) { up in
            if !up { host.update { $0.info.connected = false } }
        }
        HostNetwork.warnAboutMissingTools(logger)
        let service = VMMSService(connection: connection, server: server, services: services, lifecycle: lifecycle)
        if await !lifecycle.start() {
            logger.error("libvirt at \(options.libvirtURI) is not reachable; serving anyway and retrying")
        }
        try await connection.requestName(Paths.busName)
        let info = host.info
        logger.info("serving \(Paths.busName) as \(connection.uniqueName) on libvirt \(info.connectionURI) (\(info.hypervisor) \(info.hypervisorVersion))")
        return service
    }

    private init(connection: DBusConnection, server: ObjectServer, services: Services, lifecycle: LinkLifecycle) {
        self.connection = connection
        self.server = server
        self.services = services
        self.lifecycle = lifecycle
    }

    /// Flushes outgoing messages and leaves the bus (the bus releases the name), then lets go
    /// of libvirt.
    public func stop() {
        connection.close()
        let lifecycle = self.lifecycle
        Task { await lifecycle.stop() }
    }

    /// `stop`, waiting until libvirt is let go of.
    public func stopAndWait() async {
        connection.close()
        await lifecycle.stop()
    }
}

extension DBusConnection.Bus {
    var isSystem: Bool { if case .system = self { true } else { false } }
}

extension ObjectRegistry.Route {
    static func host(_ services: Services) -> Self {
        Self(owns: { $0 == Paths.host },
             handlers: { _ in [HostInterface(services: services)] },
             readDetails: { _ in AuthorizationDetails(verb: "") },
             missing: { DBusError(DBusError.Name.unknownObject, "no object at \($0)") })
    }

    static func vm(_ services: Services) -> Self {
        Self(owns: { Paths.vmUUID(of: $0) != nil },
             handlers: { path in Paths.vmUUID(of: path).map { [VMInterface(uuid: $0, services: services)] } ?? [] },
             readDetails: { path in
                 let uuid = Paths.vmUUID(of: path)
                 return AuthorizationDetails(verb: "", vmName: uuid.flatMap { services.vms.record(uuid: $0)?.name }, vmUUID: uuid)
             },
             missing: { VMMSError.notFound("the virtual machine at \($0) does not exist").dbusError })
    }
}

/// Reads the host's facts on every new connection.
struct HostWatcher: ConnectionWatcher {
    let link: HypervisorLink
    let host: HostModel
    let accelerator: Accelerator

    func attach(_ connection: LibvirtConnection) async throws -> [any Sendable] {
        let accelerator = self.accelerator
        let info = try await link.worker.run { try HostProbe.read(connection, accelerator: accelerator) }
        host.update { $0.info = info }
        return []
    }
}

/// Subscribes to domain events and reads every VM on every new connection: events first, then
/// the listing, so a VM defined in between is seen by one or the other. What libvirt does not
/// announce is caught by watching its definition files where this process can (changes show
/// within milliseconds) and by a slow reconcile everywhere.
struct VMWatcher: ConnectionWatcher {
    let monitor: VMMonitor
    let uri: String
    /// How often every VM is read again in full, with and without a definition watch.
    static let reconcileInterval: Duration = .seconds(300)
    static let unwatchedReconcileInterval: Duration = .seconds(30)

    func attach(_ connection: LibvirtConnection) async throws -> [any Sendable] {
        var kept: [any Sendable] = [try monitor.watchEvents(connection)]
        let monitor = self.monitor
        var watched = false
        if let directory = DefinitionWatcher.directory(for: uri) {
            do {
                kept.append(try DefinitionWatcher(directory: directory) { name in
                    guard let uuid = monitor.vms.uuid(named: name) else { return }
                    Task { await monitor.refresh(uuid: uuid) }
                })
                watched = true
            } catch {
                monitor.logger.warning("cannot watch \(directory) for definition changes (\(error)); relying on the periodic reconcile")
            }
        }
        try await monitor.synchronize(connection)
        kept.append(PeriodicTask(every: watched ? Self.reconcileInterval : Self.unwatchedReconcileInterval) {
            await monitor.reconcile()
        })
        kept.append(PeriodicTask(every: VMMonitor.usageInterval) { await monitor.sampleUsage() })
        return kept
    }
}
