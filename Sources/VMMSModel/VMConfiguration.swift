/// What a domain's XML says about a VM, in the contract's terms.
public struct VMConfiguration: Sendable, Equatable {
    /// A disk with `device='disk'` backed by a file or a block device.
    public struct HardDisk: Sendable, Equatable {
        /// The image file or block device.
        public var path: String
        /// The image format (`<driver type>`): `qcow2`, `raw`, …; `raw` when not given.
        public var format: String
        /// The target device name, e.g. `vda`.
        public var device: String
        /// The target bus, e.g. `virtio`, `sata`; empty when not given.
        public var bus: String

        public init(path: String, format: String, device: String, bus: String = "") {
            self.path = path
            self.format = format
            self.device = device
            self.bus = bus
        }
    }

    /// A CD-ROM drive (`device='cdrom'`).
    public struct OpticalDrive: Sendable, Equatable {
        /// The inserted image or device; `nil` for an empty drive.
        public var path: String?
        public var device: String
        public var bus: String

        public init(path: String?, device: String, bus: String = "") {
            self.path = path
            self.device = device
            self.bus = bus
        }
    }

    /// An `<interface>`.
    public struct NetworkAdapter: Sendable, Equatable {
        /// Lower-case `xx:xx:xx:xx:xx:xx`; empty when the XML has none (libvirt always adds one).
        public var mac: String
        /// The libvirt network of a `type='network'` interface.
        public var network: String?
        /// The host bridge of a `type='bridge'` interface.
        public var bridge: String?
        /// The NIC model, e.g. `virtio`; `nil` when not given.
        public var model: String?

        public init(mac: String, network: String? = nil, bridge: String? = nil, model: String? = nil) {
            self.mac = mac
            self.network = network
            self.bridge = bridge
            self.model = model
        }
    }

    public var name: String
    /// Lower-case, with dashes; empty when the XML has none.
    public var uuid: String
    public var generation: UInt32
    public var secureBoot: Bool
    public var processorCount: UInt32
    public var processorReserve: UInt32
    public var processorMaximum: UInt32
    public var processorRelativeWeight: UInt32
    public var memoryStartupBytes: UInt64
    public var memoryMaximumBytes: UInt64
    public var dynamicMemoryEnabled: Bool
    public var memoryMinimumBytes: UInt64
    public var hardDisks: [HardDisk]
    public var cdroms: [OpticalDrive]
    public var networkAdapters: [NetworkAdapter]
    public var notes: String

    public init(name: String, uuid: String = "", generation: UInt32 = 1, secureBoot: Bool = false,
                processorCount: UInt32 = 1, processorReserve: UInt32 = 0, processorMaximum: UInt32 = 100,
                processorRelativeWeight: UInt32 = 100, memoryStartupBytes: UInt64 = 0, memoryMaximumBytes: UInt64 = 0,
                dynamicMemoryEnabled: Bool = false, memoryMinimumBytes: UInt64 = 0, hardDisks: [HardDisk] = [],
                cdroms: [OpticalDrive] = [], networkAdapters: [NetworkAdapter] = [], notes: String = "") {
        self.name = name
        self.uuid = uuid
        self.generation = generation
        self.secureBoot = secureBoot
        self.processorCount = processorCount
        self.processorReserve = processorReserve
        self.processorMaximum = processorMaximum
        self.processorRelativeWeight = processorRelativeWeight
        self.memoryStartupBytes = memoryStartupBytes
        self.memoryMaximumBytes = memoryMaximumBytes
        self.dynamicMemoryEnabled = dynamicMemoryEnabled
        self.memoryMinimumBytes = memoryMinimumBytes
        self.hardDisks = hardDisks
        self.cdroms = cdroms
        self.networkAdapters = networkAdapters
        self.notes = notes
    }
}

/// The settings vmms keeps in the domain's `<metadata>`, because libvirt has no place of its
/// own for them.
///
/// ```xml
/// <vmms:vm xmlns:vmms="https://example.org/vmms/1">
///   <vmms:generation>2</vmms:generation>
///   <vmms:dynamicMemory>true</vmms:dynamicMemory>
///   <vmms:memoryMinimumBytes>536870912</vmms:memoryMinimumBytes>
///   <vmms:processorReserve>0</vmms:processorReserve>
///   <vmms:processorMaximum>100</vmms:processorMaximum>
///   <vmms:processorRelativeWeight>100</vmms:processorRelativeWeight>
/// </vmms:vm>
/// ```
/// Every element is optional when read; a missing one falls back to what the rest of the
/// domain XML implies.
public struct VMMetadata: Sendable, Equatable {
    /// The namespace of the element, for `virDomainGetMetadata`/`virDomainSetMetadata` (`uri`).
    public static let namespace = "https://example.org/vmms/1"
    /// The prefix used for the namespace (`key` of `virDomainSetMetadata`).
    public static let prefix = "vmms"

    public var generation: UInt32?
    public var dynamicMemory: Bool?
    public var memoryMinimumBytes: UInt64?
    public var processorReserve: UInt32?
    public var processorMaximum: UInt32?
    public var processorRelativeWeight: UInt32?
    /// Set when the firmware choice changed (Secure Boot on or off): the NVRAM made from the
    /// old template no longer fits, so the next Start asks libvirt to recreate it.
    public var resetNVRAM: Bool?

    public init(generation: UInt32? = nil, dynamicMemory: Bool? = nil, memoryMinimumBytes: UInt64? = nil,
                processorReserve: UInt32? = nil, processorMaximum: UInt32? = nil, processorRelativeWeight: UInt32? = nil,
                resetNVRAM: Bool? = nil) {
        self.resetNVRAM = resetNVRAM
        self.generation = generation
        self.dynamicMemory = dynamicMemory
        self.memoryMinimumBytes = memoryMinimumBytes
        self.processorReserve = processorReserve
        self.processorMaximum = processorMaximum
        self.processorRelativeWeight = processorRelativeWeight
    }

    /// The element with the `vmms:` prefix and namespace declaration, as placed in
    /// `<metadata>` of a domain XML. `indent` is prepended to each line.
    public func xml(indent: String = "") -> String {
        render(prefix: Self.prefix + ":", declaration: " xmlns:\(Self.prefix)=\"\(Self.namespace)\"", indent: indent)
    }

    /// The element as `virDomainSetMetadata(…, VIR_DOMAIN_METADATA_ELEMENT, elementForSetMetadata,
    /// VMMetadata.prefix, VMMetadata.namespace, flags)` takes it: without prefix or namespace
    /// declaration (libvirt adds both, to every element; a prefixed element with its own
    /// `xmlns:vmms` fails with "failed to create a new XML namespace"). libvirt replaces the
    /// whole element, so set every field, not only the changed one.
    public var elementForSetMetadata: String {
        render(prefix: "", declaration: "", indent: "")
    }

    private func render(prefix: String, declaration: String, indent: String) -> String {
        var lines = ["\(indent)<\(prefix)vm\(declaration)>"]
        func add(_ name: String, _ value: String?) {
            if let value { lines.append("\(indent)  <\(prefix)\(name)>\(value)</\(prefix)\(name)>") }
        }
        add("generation", generation.map(String.init))
        add("dynamicMemory", dynamicMemory.map { $0 ? "true" : "false" })
        add("memoryMinimumBytes", memoryMinimumBytes.map(String.init))
        add("processorReserve", processorReserve.map(String.init))
        add("processorMaximum", processorMaximum.map(String.init))
        add("processorRelativeWeight", processorRelativeWeight.map(String.init))
        add("resetNVRAM", resetNVRAM.map { $0 ? "true" : "false" })
        lines.append("\(indent)</\(prefix)vm>")
        return lines.joined(separator: "\n")
    }
}
