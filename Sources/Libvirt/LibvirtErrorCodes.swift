internal import CLibvirt

// The constants mirror libvirt 9.0's `virErrorNumber` and `virErrorDomain` value for value,
// built from the C enumerators (never from literals) so they cannot drift.

extension LibvirtError {
    /// A libvirt error number (`virErrorNumber`), e.g. `.noDomain` for `VIR_ERR_NO_DOMAIN`.
    /// Compare with the static constants; a value a newer libvirt adds still arrives as a code
    /// (its `description` then shows only the number).
    public struct Code: NamedLibvirtConstant {
        /// The `virErrorNumber` value.
        public let rawValue: Int32
        /// A code from its `virErrorNumber` value.
        public init(rawValue: Int32) { self.rawValue = rawValue }
        init(_ value: virErrorNumber) { rawValue = cInt(value) }

        /// Shown for numbers without a name.
        public static let unknownName = "VIR_ERR_?"

        /// Internal error (`VIR_ERR_INTERNAL_ERROR`, 1).
        public static let internalError = Code(VIR_ERR_INTERNAL_ERROR)
        /// Memory allocation failure (`VIR_ERR_NO_MEMORY`, 2).
        public static let noMemory = Code(VIR_ERR_NO_MEMORY)
        /// No support for this function (`VIR_ERR_NO_SUPPORT`, 3).
        public static let noSupport = Code(VIR_ERR_NO_SUPPORT)
        /// Could not resolve hostname (`VIR_ERR_UNKNOWN_HOST`, 4).
        public static let unknownHost = Code(VIR_ERR_UNKNOWN_HOST)
        /// Can't connect to hypervisor (`VIR_ERR_NO_CONNECT`, 5).
        public static let noConnect = Code(VIR_ERR_NO_CONNECT)
        /// Invalid connection object (`VIR_ERR_INVALID_CONN`, 6).
        public static let invalidConn = Code(VIR_ERR_INVALID_CONN)
        /// Invalid domain object (`VIR_ERR_INVALID_DOMAIN`, 7).
        public static let invalidDomain = Code(VIR_ERR_INVALID_DOMAIN)
        /// Invalid function argument (`VIR_ERR_INVALID_ARG`, 8).
        public static let invalidArg = Code(VIR_ERR_INVALID_ARG)
        /// A command to hypervisor failed (`VIR_ERR_OPERATION_FAILED`, 9).
        public static let operationFailed = Code(VIR_ERR_OPERATION_FAILED)
        /// A HTTP GET command to failed (`VIR_ERR_GET_FAILED`, 10).
        public static let getFailed = Code(VIR_ERR_GET_FAILED)
        /// A HTTP POST command to failed (`VIR_ERR_POST_FAILED`, 11).
        public static let postFailed = Code(VIR_ERR_POST_FAILED)
        /// Unexpected HTTP error code (`VIR_ERR_HTTP_ERROR`, 12).
        public static let httpError = Code(VIR_ERR_HTTP_ERROR)
        /// Failure to serialize an S-Expr (`VIR_ERR_SEXPR_SERIAL`, 13).
        public static let sexprSerial = Code(VIR_ERR_SEXPR_SERIAL)
        /// Could not open Xen hypervisor control (`VIR_ERR_NO_XEN`, 14).
        public static let noXen = Code(VIR_ERR_NO_XEN)
        /// Failure doing an hypervisor call (`VIR_ERR_XEN_CALL`, 15).
        public static let xenCall = Code(VIR_ERR_XEN_CALL)
        /// Unknown OS type (`VIR_ERR_OS_TYPE`, 16).
        public static let osType = Code(VIR_ERR_OS_TYPE)
        /// Missing kernel information (`VIR_ERR_NO_KERNEL`, 17).
        public static let noKernel = Code(VIR_ERR_NO_KERNEL)
        /// Missing root device information (`VIR_ERR_NO_ROOT`, 18).
        public static let noRoot = Code(VIR_ERR_NO_ROOT)
        /// Missing source device information (`VIR_ERR_NO_SOURCE`, 19).
        public static let noSource = Code(VIR_ERR_NO_SOURCE)
        /// Missing target device information (`VIR_ERR_NO_TARGET`, 20).
        public static let noTarget = Code(VIR_ERR_NO_TARGET)
        /// Missing domain name information (`VIR_ERR_NO_NAME`, 21).
        public static let noName = Code(VIR_ERR_NO_NAME)
        /// Missing domain OS information (`VIR_ERR_NO_OS`, 22).
        public static let noOS = Code(VIR_ERR_NO_OS)
        /// Missing domain devices information (`VIR_ERR_NO_DEVICE`, 23).
        public static let noDevice = Code(VIR_ERR_NO_DEVICE)
        /// Could not open Xen Store control (`VIR_ERR_NO_XENSTORE`, 24).
        public static let noXenstore = Code(VIR_ERR_NO_XENSTORE)
        /// Too many drivers registered (`VIR_ERR_DRIVER_FULL`, 25).
        public static let driverFull = Code(VIR_ERR_DRIVER_FULL)
        /// Not supported by the drivers (DEPRECATED) (`VIR_ERR_CALL_FAILED`, 26).
        public static let callFailed = Code(VIR_ERR_CALL_FAILED)
        /// An XML description is not well formed or broken (`VIR_ERR_XML_ERROR`, 27).
        public static let xmlError = Code(VIR_ERR_XML_ERROR)
        /// The domain already exist (`VIR_ERR_DOM_EXIST`, 28).
        public static let domainExists = Code(VIR_ERR_DOM_EXIST)
        /// Operation forbidden on read-only connections (`VIR_ERR_OPERATION_DENIED`, 29).
        public static let operationDenied = Code(VIR_ERR_OPERATION_DENIED)
        /// Failed to open a conf file (`VIR_ERR_OPEN_FAILED`, 30).
        public static let openFailed = Code(VIR_ERR_OPEN_FAILED)
        /// Failed to read a conf file (`VIR_ERR_READ_FAILED`, 31).
        public static let readFailed = Code(VIR_ERR_READ_FAILED)
        /// Failed to parse a conf file (`VIR_ERR_PARSE_FAILED`, 32).
        public static let parseFailed = Code(VIR_ERR_PARSE_FAILED)
        /// Failed to parse the syntax of a conf file (`VIR_ERR_CONF_SYNTAX`, 33).
        public static let confSyntax = Code(VIR_ERR_CONF_SYNTAX)
        /// Failed to write a conf file (`VIR_ERR_WRITE_FAILED`, 34).
        public static let writeFailed = Code(VIR_ERR_WRITE_FAILED)
        /// Detail of an XML error (`VIR_ERR_XML_DETAIL`, 35).
        public static let xmlDetail = Code(VIR_ERR_XML_DETAIL)
        /// Invalid network object (`VIR_ERR_INVALID_NETWORK`, 36).
        public static let invalidNetwork = Code(VIR_ERR_INVALID_NETWORK)
        /// The network already exist (`VIR_ERR_NETWORK_EXIST`, 37).
        public static let networkExists = Code(VIR_ERR_NETWORK_EXIST)
        /// General system call failure (`VIR_ERR_SYSTEM_ERROR`, 38).
        public static let systemError = Code(VIR_ERR_SYSTEM_ERROR)
        /// Some sort of RPC error (`VIR_ERR_RPC`, 39).
        public static let rpc = Code(VIR_ERR_RPC)
        /// Error from a GNUTLS call (`VIR_ERR_GNUTLS_ERROR`, 40).
        public static let gnutlsError = Code(VIR_ERR_GNUTLS_ERROR)
        /// Domain not found or unexpectedly disappeared (`VIR_ERR_NO_DOMAIN`, 42).
        public static let noDomain = Code(VIR_ERR_NO_DOMAIN)
        /// Network not found (`VIR_ERR_NO_NETWORK`, 43).
        public static let noNetwork = Code(VIR_ERR_NO_NETWORK)
        /// Invalid MAC address (`VIR_ERR_INVALID_MAC`, 44).
        public static let invalidMAC = Code(VIR_ERR_INVALID_MAC)
        /// Authentication failed (`VIR_ERR_AUTH_FAILED`, 45).
        public static let authFailed = Code(VIR_ERR_AUTH_FAILED)
        /// Invalid storage pool object (`VIR_ERR_INVALID_STORAGE_POOL`, 46).
        public static let invalidStoragePool = Code(VIR_ERR_INVALID_STORAGE_POOL)
        /// Invalid storage vol object (`VIR_ERR_INVALID_STORAGE_VOL`, 47).
        public static let invalidStorageVolume = Code(VIR_ERR_INVALID_STORAGE_VOL)
        /// Storage pool not found (`VIR_ERR_NO_STORAGE_POOL`, 49).
        public static let noStoragePool = Code(VIR_ERR_NO_STORAGE_POOL)
        /// Storage volume not found (`VIR_ERR_NO_STORAGE_VOL`, 50).
        public static let noStorageVolume = Code(VIR_ERR_NO_STORAGE_VOL)
        /// Invalid node device object (`VIR_ERR_INVALID_NODE_DEVICE`, 52).
        public static let invalidNodeDevice = Code(VIR_ERR_INVALID_NODE_DEVICE)
        /// Node device not found (`VIR_ERR_NO_NODE_DEVICE`, 53).
        public static let noNodeDevice = Code(VIR_ERR_NO_NODE_DEVICE)
        /// Security model not found (`VIR_ERR_NO_SECURITY_MODEL`, 54).
        public static let noSecurityModel = Code(VIR_ERR_NO_SECURITY_MODEL)
        /// Operation is not applicable at this time (`VIR_ERR_OPERATION_INVALID`, 55).
        public static let operationInvalid = Code(VIR_ERR_OPERATION_INVALID)
        /// Interface driver not running (`VIR_ERR_NO_INTERFACE`, 57).
        public static let noInterface = Code(VIR_ERR_NO_INTERFACE)
        /// Invalid interface object (`VIR_ERR_INVALID_INTERFACE`, 58).
        public static let invalidInterface = Code(VIR_ERR_INVALID_INTERFACE)
        /// More than one matching interface found (`VIR_ERR_MULTIPLE_INTERFACES`, 59).
        public static let multipleInterfaces = Code(VIR_ERR_MULTIPLE_INTERFACES)
        /// Invalid nwfilter object (`VIR_ERR_INVALID_NWFILTER`, 61).
        public static let invalidNWFilter = Code(VIR_ERR_INVALID_NWFILTER)
        /// Nw filter pool not found (`VIR_ERR_NO_NWFILTER`, 62).
        public static let noNWFilter = Code(VIR_ERR_NO_NWFILTER)
        /// Building the firewall failed (`VIR_ERR_BUILD_FIREWALL`, 63).
        public static let buildFirewall = Code(VIR_ERR_BUILD_FIREWALL)
        /// Invalid secret (`VIR_ERR_INVALID_SECRET`, 65).
        public static let invalidSecret = Code(VIR_ERR_INVALID_SECRET)
        /// Secret not found (`VIR_ERR_NO_SECRET`, 66).
        public static let noSecret = Code(VIR_ERR_NO_SECRET)
        /// Unsupported configuration construct (`VIR_ERR_CONFIG_UNSUPPORTED`, 67).
        public static let configUnsupported = Code(VIR_ERR_CONFIG_UNSUPPORTED)
        /// Timeout occurred during operation (`VIR_ERR_OPERATION_TIMEOUT`, 68).
        public static let operationTimeout = Code(VIR_ERR_OPERATION_TIMEOUT)
        /// A migration worked, but making the VM persist on the dest host failed (`VIR_ERR_MIGRATE_PERSIST_FAILED`, 69).
        public static let migratePersistFailed = Code(VIR_ERR_MIGRATE_PERSIST_FAILED)
        /// A synchronous hook script failed (`VIR_ERR_HOOK_SCRIPT_FAILED`, 70).
        public static let hookScriptFailed = Code(VIR_ERR_HOOK_SCRIPT_FAILED)
        /// Invalid domain snapshot (`VIR_ERR_INVALID_DOMAIN_SNAPSHOT`, 71).
        public static let invalidDomainSnapshot = Code(VIR_ERR_INVALID_DOMAIN_SNAPSHOT)
        /// Domain snapshot not found (`VIR_ERR_NO_DOMAIN_SNAPSHOT`, 72).
        public static let noDomainSnapshot = Code(VIR_ERR_NO_DOMAIN_SNAPSHOT)
        /// Stream pointer not valid (`VIR_ERR_INVALID_STREAM`, 73).
        public static let invalidStream = Code(VIR_ERR_INVALID_STREAM)
        /// Valid API use but unsupported by the given driver (`VIR_ERR_ARGUMENT_UNSUPPORTED`, 74).
        public static let argumentUnsupported = Code(VIR_ERR_ARGUMENT_UNSUPPORTED)
        /// Storage pool probe failed (`VIR_ERR_STORAGE_PROBE_FAILED`, 75).
        public static let storageProbeFailed = Code(VIR_ERR_STORAGE_PROBE_FAILED)
        /// Storage pool already built (`VIR_ERR_STORAGE_POOL_BUILT`, 76).
        public static let storagePoolBuilt = Code(VIR_ERR_STORAGE_POOL_BUILT)
        /// Force was not requested for a risky domain snapshot revert (`VIR_ERR_SNAPSHOT_REVERT_RISKY`, 77).
        public static let snapshotRevertRisky = Code(VIR_ERR_SNAPSHOT_REVERT_RISKY)
        /// Operation on a domain was canceled/aborted by user (`VIR_ERR_OPERATION_ABORTED`, 78).
        public static let operationAborted = Code(VIR_ERR_OPERATION_ABORTED)
        /// Authentication cancelled (`VIR_ERR_AUTH_CANCELLED`, 79).
        public static let authCancelled = Code(VIR_ERR_AUTH_CANCELLED)
        /// The metadata is not present (`VIR_ERR_NO_DOMAIN_METADATA`, 80).
        public static let noDomainMetadata = Code(VIR_ERR_NO_DOMAIN_METADATA)
        /// Migration is not safe (`VIR_ERR_MIGRATE_UNSAFE`, 81).
        public static let migrateUnsafe = Code(VIR_ERR_MIGRATE_UNSAFE)
        /// Integer overflow (`VIR_ERR_OVERFLOW`, 82).
        public static let overflow = Code(VIR_ERR_OVERFLOW)
        /// Action prevented by block copy job (`VIR_ERR_BLOCK_COPY_ACTIVE`, 83).
        public static let blockCopyActive = Code(VIR_ERR_BLOCK_COPY_ACTIVE)
        /// The requested operation is not supported (`VIR_ERR_OPERATION_UNSUPPORTED`, 84).
        public static let operationUnsupported = Code(VIR_ERR_OPERATION_UNSUPPORTED)
        /// Error in ssh transport driver (`VIR_ERR_SSH`, 85).
        public static let ssh = Code(VIR_ERR_SSH)
        /// Guest agent is unresponsive, not running or not usable (`VIR_ERR_AGENT_UNRESPONSIVE`, 86).
        public static let agentUnresponsive = Code(VIR_ERR_AGENT_UNRESPONSIVE)
        /// Resource is already in use (`VIR_ERR_RESOURCE_BUSY`, 87).
        public static let resourceBusy = Code(VIR_ERR_RESOURCE_BUSY)
        /// Operation on the object/resource was denied (`VIR_ERR_ACCESS_DENIED`, 88).
        public static let accessDenied = Code(VIR_ERR_ACCESS_DENIED)
        /// Error from a dbus service (`VIR_ERR_DBUS_SERVICE`, 89).
        public static let dbusService = Code(VIR_ERR_DBUS_SERVICE)
        /// The storage vol already exists (`VIR_ERR_STORAGE_VOL_EXIST`, 90).
        public static let storageVolumeExists = Code(VIR_ERR_STORAGE_VOL_EXIST)
        /// Given CPU is incompatible with host CPU (`VIR_ERR_CPU_INCOMPATIBLE`, 91).
        public static let cpuIncompatible = Code(VIR_ERR_CPU_INCOMPATIBLE)
        /// XML document doesn't validate against schema (`VIR_ERR_XML_INVALID_SCHEMA`, 92).
        public static let xmlInvalidSchema = Code(VIR_ERR_XML_INVALID_SCHEMA)
        /// Finish API succeeded but it is expected to return NULL (`VIR_ERR_MIGRATE_FINISH_OK`, 93).
        public static let migrateFinishOk = Code(VIR_ERR_MIGRATE_FINISH_OK)
        /// Authentication unavailable (`VIR_ERR_AUTH_UNAVAILABLE`, 94).
        public static let authUnavailable = Code(VIR_ERR_AUTH_UNAVAILABLE)
        /// Server was not found (`VIR_ERR_NO_SERVER`, 95).
        public static let noServer = Code(VIR_ERR_NO_SERVER)
        /// Client was not found (`VIR_ERR_NO_CLIENT`, 96).
        public static let noClient = Code(VIR_ERR_NO_CLIENT)
        /// Guest agent replies with wrong id to guest-sync command (DEPRECATED) (`VIR_ERR_AGENT_UNSYNCED`, 97).
        public static let agentUnsynced = Code(VIR_ERR_AGENT_UNSYNCED)
        /// Error in libssh transport driver (`VIR_ERR_LIBSSH`, 98).
        public static let libssh = Code(VIR_ERR_LIBSSH)
        /// Fail to find the desired device (`VIR_ERR_DEVICE_MISSING`, 99).
        public static let deviceMissing = Code(VIR_ERR_DEVICE_MISSING)
        /// Invalid nwfilter binding (`VIR_ERR_INVALID_NWFILTER_BINDING`, 100).
        public static let invalidNWFilterBinding = Code(VIR_ERR_INVALID_NWFILTER_BINDING)
        /// No nwfilter binding (`VIR_ERR_NO_NWFILTER_BINDING`, 101).
        public static let noNWFilterBinding = Code(VIR_ERR_NO_NWFILTER_BINDING)
        /// Invalid domain checkpoint (`VIR_ERR_INVALID_DOMAIN_CHECKPOINT`, 102).
        public static let invalidDomainCheckpoint = Code(VIR_ERR_INVALID_DOMAIN_CHECKPOINT)
        /// Domain checkpoint not found (`VIR_ERR_NO_DOMAIN_CHECKPOINT`, 103).
        public static let noDomainCheckpoint = Code(VIR_ERR_NO_DOMAIN_CHECKPOINT)
        /// Domain backup job id not found (`VIR_ERR_NO_DOMAIN_BACKUP`, 104).
        public static let noDomainBackup = Code(VIR_ERR_NO_DOMAIN_BACKUP)
        /// Invalid network port object (`VIR_ERR_INVALID_NETWORK_PORT`, 105).
        public static let invalidNetworkPort = Code(VIR_ERR_INVALID_NETWORK_PORT)
        /// The network port already exist (`VIR_ERR_NETWORK_PORT_EXIST`, 106).
        public static let networkPortExists = Code(VIR_ERR_NETWORK_PORT_EXIST)
        /// Network port not found (`VIR_ERR_NO_NETWORK_PORT`, 107).
        public static let noNetworkPort = Code(VIR_ERR_NO_NETWORK_PORT)
        /// No domain's hostname found (`VIR_ERR_NO_HOSTNAME`, 108).
        public static let noHostname = Code(VIR_ERR_NO_HOSTNAME)
        /// Checkpoint can't be used (`VIR_ERR_CHECKPOINT_INCONSISTENT`, 109).
        public static let checkpointInconsistent = Code(VIR_ERR_CHECKPOINT_INCONSISTENT)
        /// More than one matching domain found (`VIR_ERR_MULTIPLE_DOMAINS`, 110).
        public static let multipleDomains = Code(VIR_ERR_MULTIPLE_DOMAINS)

        /// The C name of every code libvirt 9.0 defines.
        public static let names: [Code: String] = [
            .internalError: "VIR_ERR_INTERNAL_ERROR",
            .noMemory: "VIR_ERR_NO_MEMORY",
            .noSupport: "VIR_ERR_NO_SUPPORT",
            .unknownHost: "VIR_ERR_UNKNOWN_HOST",
            .noConnect: "VIR_ERR_NO_CONNECT",
            .invalidConn: "VIR_ERR_INVALID_CONN",
            .invalidDomain: "VIR_ERR_INVALID_DOMAIN",
            .invalidArg: "VIR_ERR_INVALID_ARG",
            .operationFailed: "VIR_ERR_OPERATION_FAILED",
            .getFailed: "VIR_ERR_GET_FAILED",
            .postFailed: "VIR_ERR_POST_FAILED",
            .httpError: "VIR_ERR_HTTP_ERROR",
            .sexprSerial: "VIR_ERR_SEXPR_SERIAL",
            .noXen: "VIR_ERR_NO_XEN",
            .xenCall: "VIR_ERR_XEN_CALL",
            .osType: "VIR_ERR_OS_TYPE",
            .noKernel: "VIR_ERR_NO_KERNEL",
            .noRoot: "VIR_ERR_NO_ROOT",
            .noSource: "VIR_ERR_NO_SOURCE",
            .noTarget: "VIR_ERR_NO_TARGET",
            .noName: "VIR_ERR_NO_NAME",
            .noOS: "VIR_ERR_NO_OS",
            .noDevice: "VIR_ERR_NO_DEVICE",
            .noXenstore: "VIR_ERR_NO_XENSTORE",
            .driverFull: "VIR_ERR_DRIVER_FULL",
            .callFailed: "VIR_ERR_CALL_FAILED",
            .xmlError: "VIR_ERR_XML_ERROR",
            .domainExists: "VIR_ERR_DOM_EXIST",
            .operationDenied: "VIR_ERR_OPERATION_DENIED",
            .openFailed: "VIR_ERR_OPEN_FAILED",
            .readFailed: "VIR_ERR_READ_FAILED",
            .parseFailed: "VIR_ERR_PARSE_FAILED",
            .confSyntax: "VIR_ERR_CONF_SYNTAX",
            .writeFailed: "VIR_ERR_WRITE_FAILED",
            .xmlDetail: "VIR_ERR_XML_DETAIL",
            .invalidNetwork: "VIR_ERR_INVALID_NETWORK",
            .networkExists: "VIR_ERR_NETWORK_EXIST",
            .systemError: "VIR_ERR_SYSTEM_ERROR",
            .rpc: "VIR_ERR_RPC",
            .gnutlsError: "VIR_ERR_GNUTLS_ERROR",
            .noDomain: "VIR_ERR_NO_DOMAIN",
            .noNetwork: "VIR_ERR_NO_NETWORK",
            .invalidMAC: "VIR_ERR_INVALID_MAC",
            .authFailed: "VIR_ERR_AUTH_FAILED",
            .invalidStoragePool: "VIR_ERR_INVALID_STORAGE_POOL",
            .invalidStorageVolume: "VIR_ERR_INVALID_STORAGE_VOL",
            .noStoragePool: "VIR_ERR_NO_STORAGE_POOL",
            .noStorageVolume: "VIR_ERR_NO_STORAGE_VOL",
            .invalidNodeDevice: "VIR_ERR_INVALID_NODE_DEVICE",
            .noNodeDevice: "VIR_ERR_NO_NODE_DEVICE",
            .noSecurityModel: "VIR_ERR_NO_SECURITY_MODEL",
            .operationInvalid: "VIR_ERR_OPERATION_INVALID",
            .noInterface: "VIR_ERR_NO_INTERFACE",
            .invalidInterface: "VIR_ERR_INVALID_INTERFACE",
            .multipleInterfaces: "VIR_ERR_MULTIPLE_INTERFACES",
            .invalidNWFilter: "VIR_ERR_INVALID_NWFILTER",
            .noNWFilter: "VIR_ERR_NO_NWFILTER",
            .buildFirewall: "VIR_ERR_BUILD_FIREWALL",
            .invalidSecret: "VIR_ERR_INVALID_SECRET",
            .noSecret: "VIR_ERR_NO_SECRET",
            .configUnsupported: "VIR_ERR_CONFIG_UNSUPPORTED",
            .operationTimeout: "VIR_ERR_OPERATION_TIMEOUT",
            .migratePersistFailed: "VIR_ERR_MIGRATE_PERSIST_FAILED",
            .hookScriptFailed: "VIR_ERR_HOOK_SCRIPT_FAILED",
            .invalidDomainSnapshot: "VIR_ERR_INVALID_DOMAIN_SNAPSHOT",
            .noDomainSnapshot: "VIR_ERR_NO_DOMAIN_SNAPSHOT",
            .invalidStream: "VIR_ERR_INVALID_STREAM",
            .argumentUnsupported: "VIR_ERR_ARGUMENT_UNSUPPORTED",
            .storageProbeFailed: "VIR_ERR_STORAGE_PROBE_FAILED",
            .storagePoolBuilt: "VIR_ERR_STORAGE_POOL_BUILT",
            .snapshotRevertRisky: "VIR_ERR_SNAPSHOT_REVERT_RISKY",
            .operationAborted: "VIR_ERR_OPERATION_ABORTED",
            .authCancelled: "VIR_ERR_AUTH_CANCELLED",
            .noDomainMetadata: "VIR_ERR_NO_DOMAIN_METADATA",
            .migrateUnsafe: "VIR_ERR_MIGRATE_UNSAFE",
            .overflow: "VIR_ERR_OVERFLOW",
            .blockCopyActive: "VIR_ERR_BLOCK_COPY_ACTIVE",
            .operationUnsupported: "VIR_ERR_OPERATION_UNSUPPORTED",
            .ssh: "VIR_ERR_SSH",
            .agentUnresponsive: "VIR_ERR_AGENT_UNRESPONSIVE",
            .resourceBusy: "VIR_ERR_RESOURCE_BUSY",
            .accessDenied: "VIR_ERR_ACCESS_DENIED",
            .dbusService: "VIR_ERR_DBUS_SERVICE",
            .storageVolumeExists: "VIR_ERR_STORAGE_VOL_EXIST",
            .cpuIncompatible: "VIR_ERR_CPU_INCOMPATIBLE",
            .xmlInvalidSchema: "VIR_ERR_XML_INVALID_SCHEMA",
            .migrateFinishOk: "VIR_ERR_MIGRATE_FINISH_OK",
            .authUnavailable: "VIR_ERR_AUTH_UNAVAILABLE",
            .noServer: "VIR_ERR_NO_SERVER",
            .noClient: "VIR_ERR_NO_CLIENT",
            .agentUnsynced: "VIR_ERR_AGENT_UNSYNCED",
            .libssh: "VIR_ERR_LIBSSH",
            .deviceMissing: "VIR_ERR_DEVICE_MISSING",
            .invalidNWFilterBinding: "VIR_ERR_INVALID_NWFILTER_BINDING",
            .noNWFilterBinding: "VIR_ERR_NO_NWFILTER_BINDING",
            .invalidDomainCheckpoint: "VIR_ERR_INVALID_DOMAIN_CHECKPOINT",
            .noDomainCheckpoint: "VIR_ERR_NO_DOMAIN_CHECKPOINT",
            .noDomainBackup: "VIR_ERR_NO_DOMAIN_BACKUP",
            .invalidNetworkPort: "VIR_ERR_INVALID_NETWORK_PORT",
            .networkPortExists: "VIR_ERR_NETWORK_PORT_EXIST",
            .noNetworkPort: "VIR_ERR_NO_NETWORK_PORT",
            .noHostname: "VIR_ERR_NO_HOSTNAME",
            .checkpointInconsistent: "VIR_ERR_CHECKPOINT_INCONSISTENT",
            .multipleDomains: "VIR_ERR_MULTIPLE_DOMAINS",
        ]
    }

    /// The libvirt subsystem that raised an error (`virErrorDomain`), e.g. `.qemu` for
    /// `VIR_FROM_QEMU`. Not to be confused with a virtual machine ("domain" in libvirt).
    public struct Domain: NamedLibvirtConstant {
        /// The `virErrorDomain` value.
        public let rawValue: Int32
        /// A subsystem from its `virErrorDomain` value.
        public init(rawValue: Int32) { self.rawValue = rawValue }
        init(_ value: virErrorDomain) { rawValue = cInt(value) }

        /// Shown for numbers without a name.
        public static let unknownName = "VIR_FROM_?"

        /// No particular subsystem (`VIR_FROM_NONE`, 0).
        public static let unspecified = Domain(VIR_FROM_NONE)
        /// Error at Xen hypervisor layer (`VIR_FROM_XEN`, 1).
        public static let xen = Domain(VIR_FROM_XEN)
        /// Error at connection with xend daemon (`VIR_FROM_XEND`, 2).
        public static let xend = Domain(VIR_FROM_XEND)
        /// Error at connection with xen store (`VIR_FROM_XENSTORE`, 3).
        public static let xenstore = Domain(VIR_FROM_XENSTORE)
        /// Error in the S-Expression code (`VIR_FROM_SEXPR`, 4).
        public static let sexpr = Domain(VIR_FROM_SEXPR)
        /// Error in the XML code (`VIR_FROM_XML`, 5).
        public static let xml = Domain(VIR_FROM_XML)
        /// Error when operating on a domain (`VIR_FROM_DOM`, 6).
        public static let dom = Domain(VIR_FROM_DOM)
        /// Error in the XML-RPC code (`VIR_FROM_RPC`, 7).
        public static let rpc = Domain(VIR_FROM_RPC)
        /// Error in the proxy code; unused since 0.8.6 (`VIR_FROM_PROXY`, 8).
        public static let proxy = Domain(VIR_FROM_PROXY)
        /// Error in the configuration file handling (`VIR_FROM_CONF`, 9).
        public static let conf = Domain(VIR_FROM_CONF)
        /// Error at the QEMU daemon (`VIR_FROM_QEMU`, 10).
        public static let qemu = Domain(VIR_FROM_QEMU)
        /// Error when operating on a network (`VIR_FROM_NET`, 11).
        public static let net = Domain(VIR_FROM_NET)
        /// Error from test driver (`VIR_FROM_TEST`, 12).
        public static let test = Domain(VIR_FROM_TEST)
        /// Error from remote driver (`VIR_FROM_REMOTE`, 13).
        public static let remote = Domain(VIR_FROM_REMOTE)
        /// Error from OpenVZ driver (`VIR_FROM_OPENVZ`, 14).
        public static let openvz = Domain(VIR_FROM_OPENVZ)
        /// Error at Xen XM layer (`VIR_FROM_XENXM`, 15).
        public static let xenXM = Domain(VIR_FROM_XENXM)
        /// Error in the Linux Stats code (`VIR_FROM_STATS_LINUX`, 16).
        public static let statsLinux = Domain(VIR_FROM_STATS_LINUX)
        /// Error from Linux Container driver (`VIR_FROM_LXC`, 17).
        public static let lxc = Domain(VIR_FROM_LXC)
        /// Error from storage driver (`VIR_FROM_STORAGE`, 18).
        public static let storage = Domain(VIR_FROM_STORAGE)
        /// Error from network config (`VIR_FROM_NETWORK`, 19).
        public static let network = Domain(VIR_FROM_NETWORK)
        /// Error from domain config (`VIR_FROM_DOMAIN`, 20).
        public static let domain = Domain(VIR_FROM_DOMAIN)
        /// Error at the UML driver; unused since 5.0.0 (`VIR_FROM_UML`, 21).
        public static let uml = Domain(VIR_FROM_UML)
        /// Error from node device monitor (`VIR_FROM_NODEDEV`, 22).
        public static let nodedev = Domain(VIR_FROM_NODEDEV)
        /// Error from xen inotify layer (`VIR_FROM_XEN_INOTIFY`, 23).
        public static let xenInotify = Domain(VIR_FROM_XEN_INOTIFY)
        /// Error from security framework (`VIR_FROM_SECURITY`, 24).
        public static let security = Domain(VIR_FROM_SECURITY)
        /// Error from VirtualBox driver (`VIR_FROM_VBOX`, 25).
        public static let vbox = Domain(VIR_FROM_VBOX)
        /// Error when operating on an interface (`VIR_FROM_INTERFACE`, 26).
        public static let interface = Domain(VIR_FROM_INTERFACE)
        /// The OpenNebula driver no longer exists. Retained for ABI/API compat only (`VIR_FROM_ONE`, 27).
        public static let one = Domain(VIR_FROM_ONE)
        /// Error from ESX driver (`VIR_FROM_ESX`, 28).
        public static let esx = Domain(VIR_FROM_ESX)
        /// Error from the phyp driver, unused since 6.0.0 (`VIR_FROM_PHYP`, 29).
        public static let phyp = Domain(VIR_FROM_PHYP)
        /// Error from secret storage (`VIR_FROM_SECRET`, 30).
        public static let secret = Domain(VIR_FROM_SECRET)
        /// Error from CPU driver (`VIR_FROM_CPU`, 31).
        public static let cpu = Domain(VIR_FROM_CPU)
        /// Error from XenAPI (`VIR_FROM_XENAPI`, 32).
        public static let xenAPI = Domain(VIR_FROM_XENAPI)
        /// Error from network filter driver (`VIR_FROM_NWFILTER`, 33).
        public static let nwfilter = Domain(VIR_FROM_NWFILTER)
        /// Error from Synchronous hooks (`VIR_FROM_HOOK`, 34).
        public static let hook = Domain(VIR_FROM_HOOK)
        /// Error from domain snapshot (`VIR_FROM_DOMAIN_SNAPSHOT`, 35).
        public static let domainSnapshot = Domain(VIR_FROM_DOMAIN_SNAPSHOT)
        /// Error from auditing subsystem (`VIR_FROM_AUDIT`, 36).
        public static let audit = Domain(VIR_FROM_AUDIT)
        /// Error from sysinfo/SMBIOS (`VIR_FROM_SYSINFO`, 37).
        public static let sysinfo = Domain(VIR_FROM_SYSINFO)
        /// Error from I/O streams (`VIR_FROM_STREAMS`, 38).
        public static let streams = Domain(VIR_FROM_STREAMS)
        /// Error from VMware driver (`VIR_FROM_VMWARE`, 39).
        public static let vmware = Domain(VIR_FROM_VMWARE)
        /// Error from event loop impl (`VIR_FROM_EVENT`, 40).
        public static let event = Domain(VIR_FROM_EVENT)
        /// Error from libxenlight driver (`VIR_FROM_LIBXL`, 41).
        public static let libxl = Domain(VIR_FROM_LIBXL)
        /// Error from lock manager (`VIR_FROM_LOCKING`, 42).
        public static let locking = Domain(VIR_FROM_LOCKING)
        /// Error from Hyper-V driver (`VIR_FROM_HYPERV`, 43).
        public static let hyperv = Domain(VIR_FROM_HYPERV)
        /// Error from capabilities (`VIR_FROM_CAPABILITIES`, 44).
        public static let capabilities = Domain(VIR_FROM_CAPABILITIES)
        /// Error from URI handling (`VIR_FROM_URI`, 45).
        public static let uri = Domain(VIR_FROM_URI)
        /// Error from auth handling (`VIR_FROM_AUTH`, 46).
        public static let auth = Domain(VIR_FROM_AUTH)
        /// Error from DBus (`VIR_FROM_DBUS`, 47).
        public static let dbus = Domain(VIR_FROM_DBUS)
        /// Error from Parallels (`VIR_FROM_PARALLELS`, 48).
        public static let parallels = Domain(VIR_FROM_PARALLELS)
        /// Error from Device (`VIR_FROM_DEVICE`, 49).
        public static let device = Domain(VIR_FROM_DEVICE)
        /// Error from libssh2 connection transport (`VIR_FROM_SSH`, 50).
        public static let ssh = Domain(VIR_FROM_SSH)
        /// Error from lockspace (`VIR_FROM_LOCKSPACE`, 51).
        public static let lockspace = Domain(VIR_FROM_LOCKSPACE)
        /// Error from initctl device communication (`VIR_FROM_INITCTL`, 52).
        public static let initctl = Domain(VIR_FROM_INITCTL)
        /// Error from identity code (`VIR_FROM_IDENTITY`, 53).
        public static let identity = Domain(VIR_FROM_IDENTITY)
        /// Error from cgroups (`VIR_FROM_CGROUP`, 54).
        public static let cgroup = Domain(VIR_FROM_CGROUP)
        /// Error from access control manager (`VIR_FROM_ACCESS`, 55).
        public static let access = Domain(VIR_FROM_ACCESS)
        /// Error from systemd code (`VIR_FROM_SYSTEMD`, 56).
        public static let systemd = Domain(VIR_FROM_SYSTEMD)
        /// Error from bhyve driver (`VIR_FROM_BHYVE`, 57).
        public static let bhyve = Domain(VIR_FROM_BHYVE)
        /// Error from crypto code (`VIR_FROM_CRYPTO`, 58).
        public static let crypto = Domain(VIR_FROM_CRYPTO)
        /// Error from firewall (`VIR_FROM_FIREWALL`, 59).
        public static let firewall = Domain(VIR_FROM_FIREWALL)
        /// Error from polkit code (`VIR_FROM_POLKIT`, 60).
        public static let polkit = Domain(VIR_FROM_POLKIT)
        /// Error from thread utils (`VIR_FROM_THREAD`, 61).
        public static let thread = Domain(VIR_FROM_THREAD)
        /// Error from admin backend (`VIR_FROM_ADMIN`, 62).
        public static let admin = Domain(VIR_FROM_ADMIN)
        /// Error from log manager (`VIR_FROM_LOGGING`, 63).
        public static let logging = Domain(VIR_FROM_LOGGING)
        /// Error from Xen xl config code (`VIR_FROM_XENXL`, 64).
        public static let xenXL = Domain(VIR_FROM_XENXL)
        /// Error from perf (`VIR_FROM_PERF`, 65).
        public static let perf = Domain(VIR_FROM_PERF)
        /// Error from libssh connection transport (`VIR_FROM_LIBSSH`, 66).
        public static let libssh = Domain(VIR_FROM_LIBSSH)
        /// Error from resource control (`VIR_FROM_RESCTRL`, 67).
        public static let resctrl = Domain(VIR_FROM_RESCTRL)
        /// Error from firewalld (`VIR_FROM_FIREWALLD`, 68).
        public static let firewalld = Domain(VIR_FROM_FIREWALLD)
        /// Error from domain checkpoint (`VIR_FROM_DOMAIN_CHECKPOINT`, 69).
        public static let domainCheckpoint = Domain(VIR_FROM_DOMAIN_CHECKPOINT)
        /// Error from TPM (`VIR_FROM_TPM`, 70).
        public static let tpm = Domain(VIR_FROM_TPM)
        /// Error from BPF code (`VIR_FROM_BPF`, 71).
        public static let bpf = Domain(VIR_FROM_BPF)
        /// Error from Cloud-Hypervisor driver (`VIR_FROM_CH`, 72).
        public static let ch = Domain(VIR_FROM_CH)

        /// The C name of every subsystem libvirt 9.0 defines.
        public static let names: [Domain: String] = [
            .unspecified: "VIR_FROM_NONE",
            .xen: "VIR_FROM_XEN",
            .xend: "VIR_FROM_XEND",
            .xenstore: "VIR_FROM_XENSTORE",
            .sexpr: "VIR_FROM_SEXPR",
            .xml: "VIR_FROM_XML",
            .dom: "VIR_FROM_DOM",
            .rpc: "VIR_FROM_RPC",
            .proxy: "VIR_FROM_PROXY",
            .conf: "VIR_FROM_CONF",
            .qemu: "VIR_FROM_QEMU",
            .net: "VIR_FROM_NET",
            .test: "VIR_FROM_TEST",
            .remote: "VIR_FROM_REMOTE",
            .openvz: "VIR_FROM_OPENVZ",
            .xenXM: "VIR_FROM_XENXM",
            .statsLinux: "VIR_FROM_STATS_LINUX",
            .lxc: "VIR_FROM_LXC",
            .storage: "VIR_FROM_STORAGE",
            .network: "VIR_FROM_NETWORK",
            .domain: "VIR_FROM_DOMAIN",
            .uml: "VIR_FROM_UML",
            .nodedev: "VIR_FROM_NODEDEV",
            .xenInotify: "VIR_FROM_XEN_INOTIFY",
            .security: "VIR_FROM_SECURITY",
            .vbox: "VIR_FROM_VBOX",
            .interface: "VIR_FROM_INTERFACE",
            .one: "VIR_FROM_ONE",
            .esx: "VIR_FROM_ESX",
            .phyp: "VIR_FROM_PHYP",
            .secret: "VIR_FROM_SECRET",
            .cpu: "VIR_FROM_CPU",
            .xenAPI: "VIR_FROM_XENAPI",
            .nwfilter: "VIR_FROM_NWFILTER",
            .hook: "VIR_FROM_HOOK",
            .domainSnapshot: "VIR_FROM_DOMAIN_SNAPSHOT",
            .audit: "VIR_FROM_AUDIT",
            .sysinfo: "VIR_FROM_SYSINFO",
            .streams: "VIR_FROM_STREAMS",
            .vmware: "VIR_FROM_VMWARE",
            .event: "VIR_FROM_EVENT",
            .libxl: "VIR_FROM_LIBXL",
            .locking: "VIR_FROM_LOCKING",
            .hyperv: "VIR_FROM_HYPERV",
            .capabilities: "VIR_FROM_CAPABILITIES",
            .uri: "VIR_FROM_URI",
            .auth: "VIR_FROM_AUTH",
            .dbus: "VIR_FROM_DBUS",
            .parallels: "VIR_FROM_PARALLELS",
            .device: "VIR_FROM_DEVICE",
            .ssh: "VIR_FROM_SSH",
            .lockspace: "VIR_FROM_LOCKSPACE",
            .initctl: "VIR_FROM_INITCTL",
            .identity: "VIR_FROM_IDENTITY",
            .cgroup: "VIR_FROM_CGROUP",
            .access: "VIR_FROM_ACCESS",
            .systemd: "VIR_FROM_SYSTEMD",
            .bhyve: "VIR_FROM_BHYVE",
            .crypto: "VIR_FROM_CRYPTO",
            .firewall: "VIR_FROM_FIREWALL",
            .polkit: "VIR_FROM_POLKIT",
            .thread: "VIR_FROM_THREAD",
            .admin: "VIR_FROM_ADMIN",
            .logging: "VIR_FROM_LOGGING",
            .xenXL: "VIR_FROM_XENXL",
            .perf: "VIR_FROM_PERF",
            .libssh: "VIR_FROM_LIBSSH",
            .resctrl: "VIR_FROM_RESCTRL",
            .firewalld: "VIR_FROM_FIREWALLD",
            .domainCheckpoint: "VIR_FROM_DOMAIN_CHECKPOINT",
            .tpm: "VIR_FROM_TPM",
            .bpf: "VIR_FROM_BPF",
            .ch: "VIR_FROM_CH",
        ]
    }
}

/// A libvirt enumeration value with its C name, for `LibvirtError.Code` and `.Domain`.
public protocol NamedLibvirtConstant: RawRepresentable<Int32>, Hashable, Sendable, CustomStringConvertible {
    /// The C name of each known value.
    static var names: [Self: String] { get }
    /// What `description` shows in place of a name this wrapper does not know.
    static var unknownName: String { get }
}

extension NamedLibvirtConstant {
    /// libvirt's C name, e.g. "VIR_ERR_NO_DOMAIN"; nil for a number this wrapper does not know.
    public var name: String? { Self.names[self] }

    /// The C name with the number, e.g. "VIR_ERR_NO_DOMAIN (42)".
    public var description: String { "\(name ?? Self.unknownName) (\(rawValue))" }
}
