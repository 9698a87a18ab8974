/// Everything the VM object publishes, read from libvirt and kept in memory.
public struct VMRecord: Sendable, Equatable {
    public var uuid: String
    public var name: String
    /// libvirt's state mapped to the contract's; the model shows a running operation's
    /// transition (Starting, Saving, Stopping) instead while it lasts.
    public var state: VMState
    public var configuration: VMConfiguration
    public var autostart: Bool
    public var memoryAssignedBytes: UInt64
    /// Capacity of each disk image by path, where libvirt knows it.
    public var diskCapacities: [String: UInt64]
    /// Percent of the VM's processors used over the last sample (2 s); 0 when not running.
    public var cpuUsage: UInt32
    /// Unix seconds of the last start; 0 when not running.
    public var startTime: UInt64
    /// The names of the VM's checkpoints in creation order (vmms's own, not libvirt's).
    public var checkpoints: [String] = []

    public init(uuid: String, name: String, state: VMState, configuration: VMConfiguration, autostart: Bool = false,
                memoryAssignedBytes: UInt64 = 0, diskCapacities: [String: UInt64] = [:], cpuUsage: UInt32 = 0,
                startTime: UInt64 = 0) {
        self.cpuUsage = cpuUsage
        self.startTime = startTime
        self.uuid = uuid
        self.name = name
        self.state = state
        self.configuration = configuration
        self.autostart = autostart
        self.memoryAssignedBytes = memoryAssignedBytes
        self.diskCapacities = diskCapacities
    }
}

/// What changes while a VM runs, read without its definition.
public struct VMRunState: Sendable, Equatable {
    public var state: VMState
    /// False when libvirt could not say whether a shut-off domain has a managed-save image:
    /// then Off and Saved cannot be told apart, and the model keeps what it showed.
    public var savedStateKnown: Bool
    public var memoryAssignedBytes: UInt64
    /// When the running VM's process started (Unix seconds), where that can be read; nil
    /// leaves the model to keep the start it saw, or to take the time it first sees it run.
    public var startTime: UInt64?

    public init(state: VMState, savedStateKnown: Bool = true, memoryAssignedBytes: UInt64, startTime: UInt64? = nil) {
        self.state = state
        self.savedStateKnown = savedStateKnown
        self.memoryAssignedBytes = memoryAssignedBytes
        self.startTime = startTime
    }
}

extension VMState {
    /// The guest exists (a process runs it), whatever it is doing: it has an uptime.
    public var isActive: Bool {
        switch self {
        case .running, .paused, .starting, .saving, .stopping, .crashed: true
        case .off, .saved: false
        }
    }
}

/// A whole VM read from libvirt, with what could not be read this time marked as such, so a
/// passing libvirt error never becomes an announced change (Autostart false, Saved → Off,
/// capacity 0).
public struct VMFullReading: Sendable, Equatable {
    public var record: VMRecord
    public var autostartKnown: Bool
    public var savedStateKnown: Bool
    /// Disks whose capacity could not be read; they keep the one read before.
    public var unreadCapacities: Set<String>
    /// See `VMRunState.startTime`.
    public var startTime: UInt64?

    public init(record: VMRecord, autostartKnown: Bool = true, savedStateKnown: Bool = true, unreadCapacities: Set<String> = [],
                startTime: UInt64? = nil) {
        self.startTime = startTime
        self.record = record
        self.autostartKnown = autostartKnown
        self.savedStateKnown = savedStateKnown
        self.unreadCapacities = unreadCapacities
    }

    /// The record to keep: this reading, with the parts it could not read taken from `old`.
    /// `now`: Unix seconds, for a start first seen now.
    public func merged(into old: VMRecord?, now: UInt64) -> VMRecord {
        var record = self.record
        record.cpuUsage = old?.cpuUsage ?? 0
        if let old {
            if !autostartKnown { record.autostart = old.autostart }
            if !savedStateKnown, record.state == .off, old.state == .saved { record.state = .saved }
            for path in unreadCapacities {
                if let capacity = old.diskCapacities[path] { record.diskCapacities[path] = capacity }
            }
        }
        record.settleRunTimes(startTime: startTime, old: old, now: now)
        return record
    }
}

/// One reading of a VM from libvirt.
public enum VMReading: Sendable, Equatable {
    /// The whole VM; nil: libvirt has no such domain (any more).
    case full(VMFullReading?)
    /// Only its run state, for events and operations that cannot change the definition.
    case runState(VMRunState)
}

extension VMRecord {
    /// Start time and CPU usage follow the state: a VM that does not run has neither; one that
    /// runs keeps the start it had, takes the one read, or (first seen running) `now`.
    mutating func settleRunTimes(startTime read: UInt64?, old: VMRecord?, now: UInt64) {
        guard state.isActive else {
            startTime = 0
            cpuUsage = 0
            return
        }
        if let read, read > 0 {
            startTime = read
        } else if let old, old.state.isActive, old.startTime > 0 {
            startTime = old.startTime
        } else {
            startTime = now
        }
    }
}
