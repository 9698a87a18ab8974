import VMMSModel

/// Everything the VM object publishes, read from libvirt in one go and kept in memory.
struct VMRecord: Sendable, Equatable {
    var uuid: String
    var name: String
    /// libvirt's state mapped to the contract's; a running operation may override it.
    var state: VMState
    var configuration: VMConfiguration
    var autostart: Bool
    var memoryAssignedBytes: UInt64
    /// Capacity of each disk image by path, where libvirt knows it.
    var diskCapacities: [String: UInt64]
}
