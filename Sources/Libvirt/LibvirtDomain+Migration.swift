internal import CLibvirt

/// Flags for `LibvirtDomain.migrate`, mapping `virDomainMigrateFlags`.
public struct MigrationFlags: OptionSet, Sendable {
    /// The raw bits.
    public let rawValue: UInt32
    /// Creates flags from raw bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Keep the guest running while memory is copied (`VIR_MIGRATE_LIVE`).
    public static let live = MigrationFlags(rawValue: VIR_MIGRATE_LIVE.rawValue)
    /// The source libvirtd talks to the destination itself, not this client
    /// (`VIR_MIGRATE_PEER2PEER`); needed for `migrate(toURI:)`.
    public static let peerToPeer = MigrationFlags(rawValue: VIR_MIGRATE_PEER2PEER.rawValue)
    /// Tunnel the data through the libvirtd connection (`VIR_MIGRATE_TUNNELLED`).
    public static let tunnelled = MigrationFlags(rawValue: VIR_MIGRATE_TUNNELLED.rawValue)
    /// Define the domain persistently at the destination (`VIR_MIGRATE_PERSIST_DEST`).
    public static let persistDestination = MigrationFlags(rawValue: VIR_MIGRATE_PERSIST_DEST.rawValue)
    /// Undefine it at the source once done (`VIR_MIGRATE_UNDEFINE_SOURCE`).
    public static let undefineSource = MigrationFlags(rawValue: VIR_MIGRATE_UNDEFINE_SOURCE.rawValue)
    /// Leave it paused at the destination (`VIR_MIGRATE_PAUSED`).
    public static let paused = MigrationFlags(rawValue: VIR_MIGRATE_PAUSED.rawValue)
    /// Copy whole disks (storage not shared) (`VIR_MIGRATE_NON_SHARED_DISK`).
    public static let nonSharedDisk = MigrationFlags(rawValue: VIR_MIGRATE_NON_SHARED_DISK.rawValue)
    /// Copy only the top images; the backing files exist there (`VIR_MIGRATE_NON_SHARED_INC`).
    public static let nonSharedIncremental = MigrationFlags(rawValue: VIR_MIGRATE_NON_SHARED_INC.rawValue)
    /// Refuse changes to the domain during the migration (`VIR_MIGRATE_CHANGE_PROTECTION`).
    public static let changeProtection = MigrationFlags(rawValue: VIR_MIGRATE_CHANGE_PROTECTION.rawValue)
    /// Skip libvirt's safety checks, e.g. disk caching on storage it cannot prove shared
    /// (`VIR_MIGRATE_UNSAFE`).
    public static let unsafe = MigrationFlags(rawValue: VIR_MIGRATE_UNSAFE.rawValue)
    /// Move only the definition of an inactive domain (`VIR_MIGRATE_OFFLINE`).
    public static let offline = MigrationFlags(rawValue: VIR_MIGRATE_OFFLINE.rawValue)
    /// Compress the data (`VIR_MIGRATE_COMPRESSED`).
    public static let compressed = MigrationFlags(rawValue: VIR_MIGRATE_COMPRESSED.rawValue)
    /// Abort on disk I/O errors during the migration (`VIR_MIGRATE_ABORT_ON_ERROR`).
    public static let abortOnError = MigrationFlags(rawValue: VIR_MIGRATE_ABORT_ON_ERROR.rawValue)
    /// Throttle the guest's CPUs if memory does not converge (`VIR_MIGRATE_AUTO_CONVERGE`).
    public static let autoConverge = MigrationFlags(rawValue: VIR_MIGRATE_AUTO_CONVERGE.rawValue)
    /// Allow switching to post-copy (`VIR_MIGRATE_POSTCOPY`).
    public static let postCopy = MigrationFlags(rawValue: VIR_MIGRATE_POSTCOPY.rawValue)
    /// Encrypt the data with TLS (`VIR_MIGRATE_TLS`).
    public static let tls = MigrationFlags(rawValue: VIR_MIGRATE_TLS.rawValue)
    /// Several connections in parallel (`VIR_MIGRATE_PARALLEL`).
    public static let parallel = MigrationFlags(rawValue: VIR_MIGRATE_PARALLEL.rawValue)
    /// Disk copies converge by writing synchronously (`VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES`).
    public static let nonSharedSynchronousWrites = MigrationFlags(rawValue: VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES.rawValue)
}

/// The typed parameters of a migration (`VIR_MIGRATE_PARAM_*`); nil leaves each to libvirt.
public struct MigrationParameters: Sendable, Equatable {
    /// Where the data goes, e.g. "tcp://10.250.0.2" (`VIR_MIGRATE_PARAM_URI`). Pass it when
    /// both hosts report the same hostname.
    public var migrateURI: String?
    /// The domain's name at the destination (`VIR_MIGRATE_PARAM_DEST_NAME`).
    public var destinationName: String?
    /// The live definition to use at the destination, same guest ABI
    /// (`VIR_MIGRATE_PARAM_DEST_XML`).
    public var destinationXML: String?
    /// The persistent definition to store there (`VIR_MIGRATE_PARAM_PERSIST_XML`).
    public var persistentXML: String?
    /// Speed limit in MiB/s (`VIR_MIGRATE_PARAM_BANDWIDTH`).
    public var bandwidthMiBPerSecond: UInt64?
    /// The address the destination QEMU listens on (`VIR_MIGRATE_PARAM_LISTEN_ADDRESS`).
    public var listenAddress: String?
    /// Which disks to copy with `.nonSharedDisk` (targets, e.g. ["vda"]); default all
    /// writable ones (`VIR_MIGRATE_PARAM_MIGRATE_DISKS`).
    public var disks: [String]?
    /// The port for the disk copy's NBD server (`VIR_MIGRATE_PARAM_DISKS_PORT`).
    public var disksPort: Int32?
    /// Where the disk copy goes, e.g. "tcp://10.250.0.2:10809" (`VIR_MIGRATE_PARAM_DISKS_URI`).
    public var disksURI: String?
    /// Graphics clients are told to reconnect here (`VIR_MIGRATE_PARAM_GRAPHICS_URI`).
    public var graphicsURI: String?
    /// Parallel connections with `.parallel` (`VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS`).
    public var parallelConnections: Int32?
    /// The host name to check the destination's TLS certificate against
    /// (`VIR_MIGRATE_PARAM_TLS_DESTINATION`).
    public var tlsDestination: String?

    /// No parameters: libvirt's defaults.
    public init(migrateURI: String? = nil, destinationName: String? = nil, destinationXML: String? = nil,
                persistentXML: String? = nil, bandwidthMiBPerSecond: UInt64? = nil, listenAddress: String? = nil,
                disks: [String]? = nil, disksPort: Int32? = nil, disksURI: String? = nil, graphicsURI: String? = nil,
                parallelConnections: Int32? = nil, tlsDestination: String? = nil) {
        self.migrateURI = migrateURI
        self.destinationName = destinationName
        self.destinationXML = destinationXML
        self.persistentXML = persistentXML
        self.bandwidthMiBPerSecond = bandwidthMiBPerSecond
        self.listenAddress = listenAddress
        self.disks = disks
        self.disksPort = disksPort
        self.disksURI = disksURI
        self.graphicsURI = graphicsURI
        self.parallelConnections = parallelConnections
        self.tlsDestination = tlsDestination
    }

    /// The parameters as libvirt takes them.
    func typedParameters() throws(LibvirtError) -> TypedParameterList {
        let params = TypedParameterList()
        try params.add(VIR_MIGRATE_PARAM_URI, migrateURI)
        try params.add(VIR_MIGRATE_PARAM_DEST_NAME, destinationName)
        try params.add(VIR_MIGRATE_PARAM_DEST_XML, destinationXML)
        try params.add(VIR_MIGRATE_PARAM_PERSIST_XML, persistentXML)
        try params.add(VIR_MIGRATE_PARAM_BANDWIDTH, bandwidthMiBPerSecond)
        try params.add(VIR_MIGRATE_PARAM_LISTEN_ADDRESS, listenAddress)
        try params.add(VIR_MIGRATE_PARAM_MIGRATE_DISKS, each: disks ?? [])
        try params.add(VIR_MIGRATE_PARAM_DISKS_PORT, disksPort)
        try params.add(VIR_MIGRATE_PARAM_DISKS_URI, disksURI)
        try params.add(VIR_MIGRATE_PARAM_GRAPHICS_URI, graphicsURI)
        try params.add(VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, parallelConnections)
        try params.add(VIR_MIGRATE_PARAM_TLS_DESTINATION, tlsDestination)
        return params
    }
}

extension LibvirtDomain {
    /// Migrates the domain to the host behind `destination` (this client drives it, or with
    /// `.peerToPeer` the source libvirtd) and returns the domain there. Blocks until done;
    /// follow it with `jobStats()` from another thread, cancel with `abortJob()`.
    /// Wraps `virDomainMigrate3`.
    public func migrate(to destination: LibvirtConnection, parameters: MigrationParameters = MigrationParameters(),
                        flags: MigrationFlags) throws -> LibvirtDomain {
        let params = try parameters.typedParameters()
        return LibvirtDomain(owning: try params.withParameters { params, count in
            try checkNonNull("virDomainMigrate3") {
                virDomainMigrate3(handle, destination.handle, params, UInt32(count), flags.rawValue)
            }
        })
    }

    /// Migrates the domain to the libvirtd at `destinationURI` (e.g. "qemu+tcp://host/system");
    /// the source libvirtd connects there itself, so `flags` must include `.peerToPeer`.
    /// Blocks until done. Wraps `virDomainMigrateToURI3`.
    public func migrate(toURI destinationURI: String, parameters: MigrationParameters = MigrationParameters(),
                        flags: MigrationFlags) throws {
        let params = try parameters.typedParameters()
        try params.withParameters { params, count in
            try check("virDomainMigrateToURI3") {
                virDomainMigrateToURI3(handle, destinationURI, params, UInt32(count), flags.rawValue)
            }
        }
    }

    /// The longest pause (ms) allowed at the end of a live migration, for the running
    /// migration. Wraps `virDomainMigrateSetMaxDowntime`.
    public func setMigrationMaxDowntime(milliseconds: UInt64) throws {
        try check("virDomainMigrateSetMaxDowntime") { virDomainMigrateSetMaxDowntime(handle, milliseconds, 0) }
    }

    /// The migration speed limit in MiB/s (0: unlimited). Wraps `virDomainMigrateGetMaxSpeed`.
    public func migrationMaxSpeed() throws -> UInt64 {
        var speed: UInt = 0
        try check("virDomainMigrateGetMaxSpeed") { virDomainMigrateGetMaxSpeed(handle, &speed, 0) }
        return UInt64(speed)
    }

    /// Sets the migration speed limit in MiB/s, also for a running migration.
    /// Wraps `virDomainMigrateSetMaxSpeed`.
    public func setMigrationMaxSpeed(mibPerSecond: UInt64) throws {
        try check("virDomainMigrateSetMaxSpeed") { virDomainMigrateSetMaxSpeed(handle, UInt(clamping: mibPerSecond), 0) }
    }
}
