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

    public init(bus: DBusConnection.Bus, libvirtURI: String, accelerator: Accelerator, stateDirectory: String,
                authorizer: any Authorizer) {
        self.bus = bus
        self.libvirtURI = libvirtURI
        self.accelerator = accelerator
        self.stateDirectory = stateDirectory
        self.authorizer = authorizer
    }
}

/// The running service: one bus connection, one libvirt connection, the objects between them.
public final class VMMSService: Sendable {
    public let connection: DBusConnection
    let server: ObjectServer
    let registry: ObjectRegistry
    let host: HostObject
    let libvirt: LibvirtConnection
    let worker: LibvirtWorker
    let logger: Logger

    /// Connects to libvirt and the bus, publishes the objects, then takes the bus name, so a
    /// client that sees the name can use every object.
    public static func start(_ options: ServiceOptions, logger: Logger) async throws -> VMMSService {
        try LibvirtEventLoop.start()
        let worker = LibvirtWorker()
        let uri = options.libvirtURI
        let libvirt = try await worker.run { try LibvirtConnection(uri: uri) }
        let accelerator = options.accelerator
        let info = try await worker.run { try HostProbe.read(libvirt, accelerator: accelerator) }

        let store = SettingsStore(stateDirectory: options.stateDirectory)
        let (settings, problem) = store.load()
        if let problem { logger.warning("\(problem)") }

        let connection = try DBusConnection(bus: options.bus)
        let registry = ObjectRegistry(authorizer: options.authorizer)
        let server = ObjectServer(connection: connection, objectManagerPath: Paths.root, tree: registry)
        let host = HostObject(model: HostModel(info: info, settings: settings), store: store,
                              authorizer: options.authorizer, server: server)
        registry.set(Paths.host, [host])
        let service = VMMSService(connection: connection, server: server, registry: registry, host: host,
                                  libvirt: libvirt, worker: worker, logger: logger)
        try await connection.requestName(Paths.busName)
        logger.info("serving \(Paths.busName) as \(connection.uniqueName) on libvirt \(info.connectionURI) (\(info.hypervisor) \(info.hypervisorVersion))")
        return service
    }

    private init(connection: DBusConnection, server: ObjectServer, registry: ObjectRegistry, host: HostObject,
                 libvirt: LibvirtConnection, worker: LibvirtWorker, logger: Logger) {
        self.connection = connection
        self.server = server
        self.registry = registry
        self.host = host
        self.libvirt = libvirt
        self.worker = worker
        self.logger = logger
    }

    /// Flushes outgoing messages and leaves the bus; the bus releases the name.
    public func stop() {
        connection.close()
    }
}
