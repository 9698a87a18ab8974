import DBus
import Libvirt
import Logging
import Synchronization
import VMMSModel

/// How the daemon was asked to run.
public struct ServiceOptions: Sendable {
    public var bus: DBusConnection.Bus
    public var libvirtURI: String
    public var accelerator: Accelerator
    public var stateDirectory: String
    public var authorizer: any Authorizer

    public init(bus: DBusConnection.Bus, libvirtURI: String, accelerator: Accelerator, stateDirectory: String,
                authorizer: any Authorizer) {
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
/// When libvirtd goes away, the service stays on the bus: `Host.Connected` turns false, calls
/// fail with HypervisorUnavailable, and a reconnect loop with backoff brings the link back,
/// then re-reads every VM so what changed meanwhile is announced.
public final class VMMSService: Sendable {
    public let connection: DBusConnection
    let context: ServiceContext
    let accelerator: Accelerator
    let logger: Logger
    private let events = Mutex<EventRegistration?>(nil)
    private let reconnecting = Mutex(false)
    private let stopped = Mutex(false)

    /// Publishes the objects, then takes the bus name, so a client that sees the name can use
    /// every object. libvirt being down does not stop the start: the service says so instead.
    public static func start(_ options: ServiceOptions, logger: Logger) async throws -> VMMSService {
        try LibvirtEventLoop.start()
        let link = HypervisorLink(uri: options.libvirtURI, worker: LibvirtWorker())
        let store = SettingsStore(stateDirectory: options.stateDirectory)
        let (settings, problem) = store.load()
        if let problem { logger.warning("\(problem)") }

        let connection = try DBusConnection(bus: options.bus)
        let registry = ObjectRegistry(authorizer: options.authorizer)
        let server = ObjectServer(connection: connection, objectManagerPath: Paths.root, tree: registry)
        let host = HostObject(model: HostModel(info: HostInfo(connectionURI: options.libvirtURI), settings: settings),
                              store: store, authorizer: options.authorizer, server: server)
        registry.set(Paths.host, [host])
        let inventory = VMInventory(link: link, server: server, logger: logger,
                                    onMembershipChange: { [weak host] in host?.announceVirtualMachines() })
        let context = ServiceContext(link: link, authorizer: options.authorizer, server: server, host: host,
                                     inventory: inventory, disks: DiskStore(link: link, logger: logger), logger: logger)
        registry.attach(context)
        host.attach(context)
        let service = VMMSService(connection: connection, context: context, accelerator: options.accelerator, logger: logger)
        do {
            try await service.establish()
        } catch {
            logger.error("libvirt at \(options.libvirtURI) is not reachable (\(error)); serving anyway and retrying")
            service.reconnectInBackground()
        }
        try await connection.requestName(Paths.busName)
        let info = host.model.info
        logger.info("serving \(Paths.busName) as \(connection.uniqueName) on libvirt \(info.connectionURI) (\(info.hypervisor) \(info.hypervisorVersion))")
        return service
    }

    private init(connection: DBusConnection, context: ServiceContext, accelerator: Accelerator, logger: Logger) {
        self.connection = connection
        self.context = context
        self.accelerator = accelerator
        self.logger = logger
    }

    /// Connects to libvirt, subscribes to its events, reads the host and every VM.
    private func establish() async throws {
        let link = context.link
        // The close callback names its own connection: a late close of an old connection must
        // not tear down the one a reconnect has made since.
        // (An identifier, not the connection: the callback must not keep it alive.)
        let closed = Mutex<ObjectIdentifier?>(nil)
        let libvirt = try await link.connect { [weak self] reason in
            if let lost = closed.withLock({ $0 }) { self?.connectionLost(lost, reason: reason) }
        }
        closed.withLock { $0 = ObjectIdentifier(libvirt) }
        do {
            // Events first, then the listing: a VM defined in between is seen by one or the other.
            let registration = try context.inventory.watchEvents(libvirt)
            events.withLock { $0 = registration }
            let accelerator = self.accelerator
            let info = try await link.worker.run { try HostProbe.read(libvirt, accelerator: accelerator) }
            let (old, new) = context.host.model.update { $0 = info }
            context.host.announceChanges(from: old, to: new)
            try await context.inventory.synchronize(libvirt)
        } catch {
            link.drop(libvirt)
            throw error
        }
    }

    /// libvirt's close callback (on its event thread): the connection `identifier` is gone.
    ///
    /// Only the model and the link change here. Releasing the connection or the event
    /// registration runs their libvirt teardown, which must not happen inside libvirt's own
    /// callback (it waits on locks the event thread holds), so a task holds the last references.
    private func connectionLost(_ identifier: ObjectIdentifier, reason: Int32) {
        guard !stopped.withLock({ $0 }), let lost = context.link.take(identifier) else { return }
        logger.warning("lost the libvirt connection (reason \(reason)); reconnecting")
        let registration = events.withLock { current -> EventRegistration? in
            defer { current = nil }
            return current
        }
        let (old, new) = context.host.model.update { $0.connected = false }
        context.host.announceChanges(from: old, to: new)
        Task {
            withExtendedLifetime((lost, registration)) {}
            reconnectInBackground()
        }
    }

    /// Retries with backoff (0.5 s doubling to 8 s) until libvirt answers again.
    private func reconnectInBackground() {
        let alreadyRunning = reconnecting.withLock { running -> Bool in
            defer { running = true }
            return running
        }
        guard !alreadyRunning else { return }
        Task {
            var delay = Duration.milliseconds(500)
            while !stopped.withLock({ $0 }) {
                try? await Task.sleep(for: delay)
                do {
                    try await establish()
                    logger.info("reconnected to libvirt at \(context.link.uri)")
                    break
                } catch {
                    logger.debug("reconnect failed: \(error)")
                    delay = min(delay * 2, .seconds(8))
                }
            }
            reconnecting.withLock { $0 = false }
        }
    }

    /// Flushes outgoing messages and leaves the bus; the bus releases the name.
    public func stop() {
        stopped.withLock { $0 = true }
        events.withLock { $0 = nil }
        connection.close()
    }
}
