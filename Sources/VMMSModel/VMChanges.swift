/// `VM.SetProcessor` arguments, validated against the VM's current settings with
/// Set-VMProcessor's semantics: an option left out keeps its current value.
public struct ProcessorChange: Sendable, Equatable {
    public static let maximumRelativeWeight: UInt32 = 10_000

    public var count: UInt32
    /// Percent of each virtual processor's capacity set aside for the VM (0…100).
    public var reserve: UInt32
    /// Percent of each virtual processor's capacity the VM may use at most (1…100).
    public var maximum: UInt32
    /// Share of the host's processors relative to other VMs (0…10000, default 100).
    public var relativeWeight: UInt32

    public init(count: UInt32, reserve: UInt32?, maximum: UInt32?, relativeWeight: UInt32?,
                current: VMConfiguration, hostProcessorCount: UInt32) throws(SettingsError) {
        var limit = VMSettings.maximumProcessorCount
        if hostProcessorCount > 0 { limit = min(limit, hostProcessorCount) }
        guard (1...limit).contains(count) else {
            throw SettingsError("the processor count must be between 1 and \(limit), not \(count)")
        }
        let reserve = reserve ?? current.processorReserve
        let maximum = maximum ?? current.processorMaximum
        let weight = relativeWeight ?? current.processorRelativeWeight
        guard reserve <= 100 else { throw SettingsError("Reserve is a percentage (0 to 100), not \(reserve)") }
        guard (1...100).contains(maximum) else { throw SettingsError("Maximum is a percentage (1 to 100), not \(maximum)") }
        guard reserve <= maximum else {
            throw SettingsError("Reserve (\(reserve) %) must not exceed Maximum (\(maximum) %)")
        }
        guard weight <= Self.maximumRelativeWeight else {
            throw SettingsError("RelativeWeight must be between 0 and \(Self.maximumRelativeWeight), not \(weight)")
        }
        self.count = count
        self.reserve = reserve
        self.maximum = maximum
        self.relativeWeight = weight
    }

    /// The host capacity this VM reserves, in percent of one logical processor.
    public var reservedCapacity: UInt64 { UInt64(count) * UInt64(reserve) }
}

/// `VM.SetMemory` arguments, validated like CreateVM's memory settings: multiples of 1 MiB,
/// at least 32 MiB, at most the host's memory, and minimum ≤ startup ≤ maximum with dynamic
/// memory. Left-out options keep their current values; turning dynamic memory on without
/// bounds gives Hyper-V's defaults (512 MiB or the startup amount, whichever is less, up to
/// 1 TiB or the host's memory).
public struct MemoryChange: Sendable, Equatable {
    public var startupBytes: UInt64
    public var dynamic: Bool
    public var minimumBytes: UInt64
    public var maximumBytes: UInt64

    public init(startupBytes: UInt64, dynamic: Bool?, minimumBytes: UInt64?, maximumBytes: UInt64?,
                current: VMConfiguration, hostMemoryBytes: UInt64) throws(SettingsError) {
        func check(_ key: String, _ value: UInt64) throws(SettingsError) {
            try VMSettings.checkMemoryAmount(key, value, hostMemoryBytes: hostMemoryBytes)
        }
        try check("the startup memory", startupBytes)
        let dynamic = dynamic ?? current.dynamicMemoryEnabled
        if !dynamic {
            if minimumBytes != nil || maximumBytes != nil {
                throw SettingsError("\(minimumBytes != nil ? "MinimumBytes" : "MaximumBytes") only applies with DynamicMemory=true")
            }
            self.startupBytes = startupBytes
            self.dynamic = false
            self.minimumBytes = startupBytes
            self.maximumBytes = startupBytes
            return
        }
        if let minimumBytes { try check("MinimumBytes", minimumBytes) }
        if let maximumBytes { try check("MaximumBytes", maximumBytes) }
        let defaults = current.dynamicMemoryEnabled
            ? (minimum: current.memoryMinimumBytes, maximum: current.memoryMaximumBytes)
            : VMSettings.defaultDynamicBounds(startupBytes: startupBytes, hostMemoryBytes: hostMemoryBytes)
        let minimum = minimumBytes ?? defaults.minimum
        let maximum = maximumBytes ?? defaults.maximum
        guard minimum <= startupBytes else {
            throw SettingsError("MinimumBytes (\(minimum)) must not exceed the startup memory (\(startupBytes))")
        }
        guard startupBytes <= maximum else {
            throw SettingsError("MaximumBytes (\(maximum)) must not be less than the startup memory (\(startupBytes))")
        }
        self.startupBytes = startupBytes
        self.dynamic = true
        self.minimumBytes = minimum
        self.maximumBytes = maximum
    }
}
