/// One value of the `a{sv}` settings of `Host.CreateVM`, limited to the types settings use.
public enum SettingValue: Sendable, Equatable {
    case bool(Bool)
    case uint32(UInt32)
    case uint64(UInt64)
    case string(String)
    case objectPath(String)

    /// The D-Bus type letter of the value.
    public var typeLetter: Character {
        switch self {
        case .bool: "b"
        case .uint32: "u"
        case .uint64: "t"
        case .string: "s"
        case .objectPath: "o"
        }
    }
}

/// A setting that was refused; `message` is meant for the caller (`InvalidArgs`).
public struct SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The settings of a new VM, validated and with Hyper-V-like defaults filled in.
public struct VMSettings: Sendable, Equatable {
    public static let mebibyte: UInt64 = 1 << 20
    public static let gibibyte: UInt64 = 1 << 30
    public static let tebibyte: UInt64 = 1 << 40
    /// The least memory any memory setting may have.
    public static let minimumMemoryBytes: UInt64 = 32 * mebibyte
    /// Default `MemoryMinimumBytes` with dynamic memory, clamped to the startup memory.
    public static let defaultDynamicMinimumBytes: UInt64 = 512 * mebibyte
    /// Default `MemoryMaximumBytes` with dynamic memory, clamped to the host's memory.
    public static let defaultDynamicMaximumBytes: UInt64 = tebibyte
    /// The most virtual processors a VM may have (what QEMU's q35 machine allows with x2APIC
    /// on Debian 12 is more; 240 is Hyper-V's limit for generation 2).
    public static let maximumProcessorCount: UInt32 = 240
    public static let minimumNewDiskBytes: UInt64 = mebibyte
    public static let maximumNewDiskBytes: UInt64 = 64 * tebibyte
    public static let maximumNotesLength = 4096

    /// 1 = BIOS (i440FX), 2 = UEFI (q35).
    public var generation: UInt32 = 2
    public var processorCount: UInt32 = 1
    public var memoryStartupBytes: UInt64 = gibibyte
    public var dynamicMemory: Bool = false
    /// Set exactly when `dynamicMemory` is on (given, or the default).
    public var memoryMinimumBytes: UInt64?
    /// Set exactly when `dynamicMemory` is on (given, or the default).
    public var memoryMaximumBytes: UInt64?
    public var secureBoot: Bool = true
    /// Size of a new qcow2 disk to create, a multiple of 512 bytes.
    public var newDiskSizeBytes: UInt64?
    /// An existing image to attach.
    public var diskPath: String?
    /// An ISO image to attach as CD-ROM.
    public var installMedia: String?
    /// The object path of the switch for one network adapter.
    public var switchPath: String?
    public var notes: String = ""
    public var autostart: Bool = false
    public var start: Bool = false

    /// All defaults: generation 2, 1 processor, 1 GiB static memory, Secure Boot, no disk.
    public init() {}

    /// The memory the guest may shrink to: the minimum with dynamic memory, else the startup.
    public var effectiveMemoryMinimumBytes: UInt64 { dynamicMemory ? (memoryMinimumBytes ?? memoryStartupBytes) : memoryStartupBytes }
    /// The memory the guest may grow to: the maximum with dynamic memory, else the startup.
    public var effectiveMemoryMaximumBytes: UInt64 { dynamicMemory ? (memoryMaximumBytes ?? memoryStartupBytes) : memoryStartupBytes }

    /// Every key `CreateVM` takes, with its D-Bus type letter.
    public static let keys: [(name: String, type: Character)] = [
        ("Generation", "u"), ("ProcessorCount", "u"), ("MemoryStartupBytes", "t"), ("DynamicMemory", "b"),
        ("MemoryMinimumBytes", "t"), ("MemoryMaximumBytes", "t"), ("SecureBoot", "b"), ("NewDiskSizeBytes", "t"),
        ("DiskPath", "s"), ("InstallMedia", "s"), ("Switch", "o"), ("Notes", "s"), ("Autostart", "b"), ("Start", "b"),
    ]

    /// Validates the `CreateVM` settings dictionary.
    ///
    /// - Parameters:
    ///   - hostMemoryBytes: no memory setting may exceed it; 0 means unknown (no upper limit
    ///     from the host).
    ///   - hostProcessorCount: `ProcessorCount` may not exceed it (nor 240); 0 means unknown.
    /// - Throws: the first problem found, keys checked in a fixed order: unknown keys, value
    ///   types, then each setting.
    public init(validating raw: [String: SettingValue], hostMemoryBytes: UInt64, hostProcessorCount: UInt32) throws(SettingsError) {
        let types = Dictionary(uniqueKeysWithValues: Self.keys.map { ($0.name, $0.type) })
        if let unknown = raw.keys.sorted().first(where: { types[$0] == nil }) {
            let valid = Self.keys.map(\.name).sorted().joined(separator: ", ")
            throw SettingsError("unknown setting '\(unknown)'; valid settings are \(valid)")
        }
        for (name, type) in Self.keys {
            if let value = raw[name], value.typeLetter != type {
                throw SettingsError("\(name) must be of type \(type), not \(value.typeLetter)")
            }
        }
        func u(_ key: String) -> UInt32? { if case .uint32(let v)? = raw[key] { v } else { nil } }
        func t(_ key: String) -> UInt64? { if case .uint64(let v)? = raw[key] { v } else { nil } }
        func b(_ key: String) -> Bool? { if case .bool(let v)? = raw[key] { v } else { nil } }
        func s(_ key: String) -> String? {
            switch raw[key] {
            case .string(let v)?, .objectPath(let v)?: v
            default: nil
            }
        }

        // Generation and firmware.
        if let generation = u("Generation") {
            guard generation == 1 || generation == 2 else {
                throw SettingsError("Generation must be 1 (BIOS) or 2 (UEFI), not \(generation)")
            }
            self.generation = generation
        }
        if let secureBoot = b("SecureBoot") {
            if secureBoot && generation == 1 {
                throw SettingsError("SecureBoot needs a generation 2 VM; generation 1 VMs boot with BIOS")
            }
            self.secureBoot = secureBoot
        } else {
            self.secureBoot = generation == 2
        }

        // Processors.
        if let count = u("ProcessorCount") {
            var limit = Self.maximumProcessorCount
            if hostProcessorCount > 0 { limit = min(limit, hostProcessorCount) }
            guard (1...limit).contains(count) else {
                throw SettingsError("ProcessorCount must be between 1 and \(limit), not \(count)")
            }
            processorCount = count
        }

        // Memory.
        let hostLimit = hostMemoryBytes > 0 ? hostMemoryBytes : UInt64.max
        func checkMemory(_ key: String, _ value: UInt64) throws(SettingsError) {
            try Self.checkMemoryAmount(key, value, hostMemoryBytes: hostMemoryBytes)
        }
        if let startup = t("MemoryStartupBytes") {
            try checkMemory("MemoryStartupBytes", startup)
            memoryStartupBytes = startup
        } else if memoryStartupBytes > hostLimit {
            throw SettingsError("the default MemoryStartupBytes of 1 GiB is more than the host's memory of \(hostMemoryBytes) bytes; give MemoryStartupBytes")
        }
        dynamicMemory = b("DynamicMemory") ?? false
        let minimum = t("MemoryMinimumBytes"), maximum = t("MemoryMaximumBytes")
        if !dynamicMemory, minimum != nil || maximum != nil {
            let key = minimum != nil ? "MemoryMinimumBytes" : "MemoryMaximumBytes"
            throw SettingsError("\(key) only applies with DynamicMemory=true")
        }
        if dynamicMemory {
            if let minimum { try checkMemory("MemoryMinimumBytes", minimum) }
            if let maximum { try checkMemory("MemoryMaximumBytes", maximum) }
            let defaults = Self.defaultDynamicBounds(startupBytes: memoryStartupBytes, hostMemoryBytes: hostMemoryBytes)
            let lower = minimum ?? defaults.minimum
            let upper = maximum ?? defaults.maximum
            guard lower <= memoryStartupBytes else {
                throw SettingsError("MemoryMinimumBytes (\(lower)) must not exceed MemoryStartupBytes (\(memoryStartupBytes))")
            }
            guard memoryStartupBytes <= upper else {
                throw SettingsError("MemoryMaximumBytes (\(upper)) must not be less than MemoryStartupBytes (\(memoryStartupBytes))")
            }
            memoryMinimumBytes = lower
            memoryMaximumBytes = upper
        }

        // Storage.
        if let size = t("NewDiskSizeBytes") {
            guard size >= Self.minimumNewDiskBytes else {
                throw SettingsError("NewDiskSizeBytes must be at least 1 MiB, not \(size) bytes")
            }
            guard size <= Self.maximumNewDiskBytes else {
                throw SettingsError("NewDiskSizeBytes must be at most 64 TiB, not \(size) bytes")
            }
            guard size % 512 == 0 else {
                throw SettingsError("NewDiskSizeBytes must be a multiple of 512 bytes, not \(size)")
            }
            newDiskSizeBytes = size
        }
        if let path = s("DiskPath") {
            if newDiskSizeBytes != nil {
                throw SettingsError("give either NewDiskSizeBytes (a new disk) or DiskPath (an existing one), not both")
            }
            if let problem = Self.fileProblem(path) { throw SettingsError("DiskPath: \(problem)") }
            diskPath = path
        }
        if let path = s("InstallMedia") {
            if let problem = Self.fileProblem(path) { throw SettingsError("InstallMedia: \(problem)") }
            installMedia = path
        }

        // Network.
        if let path = s("Switch") {
            guard path.hasPrefix("/"), path != "/" else { throw SettingsError("Switch must name a switch object, not '\(path)'") }
            switchPath = path
        }

        // The rest.
        if let notes = s("Notes") {
            guard notes.count <= Self.maximumNotesLength else {
                throw SettingsError("Notes are limited to \(Self.maximumNotesLength) characters, not \(notes.count)")
            }
            // XML 1.0, where libvirt keeps the notes, cannot hold NUL or other C0 controls
            // except tab, line feed and carriage return.
            if notes.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t" && $0 != "\n" && $0 != "\r") || $0.value == 0xFFFE || $0.value == 0xFFFF }) {
                throw SettingsError("Notes must not contain NUL or control characters other than tab and line breaks")
            }
            self.notes = notes
        }
        autostart = b("Autostart") ?? false
        start = b("Start") ?? false
    }

    /// Syntax checks on an image path; whether it lies in an allowed place is checked later.
    static func fileProblem(_ path: String) -> String? {
        if path.isEmpty { return "the path is empty" }
        if path.utf8.count > 4096 { return "the path is longer than 4096 bytes" }
        if !path.hasPrefix("/") { return "the path must be absolute" }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "the path contains NUL or control characters"
        }
        if path.hasSuffix("/") { return "the path names a directory, not a file" }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if components.contains(where: { $0 == "." || $0 == ".." }) { return "the path must not contain . or .. elements" }
        return nil
    }

    /// Hyper-V's dynamic-memory bounds when none are given: 512 MiB (or the startup amount,
    /// if less) up to 1 TiB (or the host's memory in whole MiB, if less; 0 = unknown).
    public static func defaultDynamicBounds(startupBytes: UInt64, hostMemoryBytes: UInt64) -> (minimum: UInt64, maximum: UInt64) {
        let hostMiB = hostMemoryBytes > 0 ? hostMemoryBytes / mebibyte * mebibyte : UInt64.max
        return (min(defaultDynamicMinimumBytes, startupBytes), min(defaultDynamicMaximumBytes, hostMiB))
    }

    /// The rule for every memory amount: whole MiB, at least 32 MiB, at most the host's memory
    /// (`hostMemoryBytes` 0 = unknown, no upper bound).
    public static func checkMemoryAmount(_ key: String, _ value: UInt64, hostMemoryBytes: UInt64) throws(SettingsError) {
        guard value % mebibyte == 0 else {
            throw SettingsError("\(key) must be a multiple of 1 MiB (1048576 bytes), not \(value)")
        }
        guard value >= minimumMemoryBytes else {
            throw SettingsError("\(key) must be at least 32 MiB, not \(value) bytes")
        }
        guard hostMemoryBytes == 0 || value <= hostMemoryBytes else {
            throw SettingsError("\(key) is \(value) bytes, more than the host's memory of \(hostMemoryBytes) bytes")
        }
    }
}
