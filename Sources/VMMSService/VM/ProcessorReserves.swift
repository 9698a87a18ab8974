import VMMSModel

/// Hyper-V refuses a processor reserve the host cannot honour; Linux has no CPU floor, so
/// vmms keeps the books: the running VMs' reserves (percent of one logical processor each)
/// may not add up to more than the host's logical processors × 100 %.
///
/// Admission and the start (or the live change) it admits happen inside one gate, so two
/// VMs starting at once cannot both take the last capacity.
struct ProcessorReserves: Sendable {
    let gate = SerialGate()

    /// Runs `act` if the host can honour the reserve of `record` (as configured) while it runs.
    func admit(_ record: VMRecord, excluding uuid: String, services: Services,
               _ act: @Sendable () async throws -> Void) async throws {
        try await admit(count: record.configuration.processorCount, reserve: record.configuration.processorReserve,
                        excluding: uuid, services: services, act)
    }

    /// Runs `act` if the host can honour `reserve` % of `count` processors besides the other
    /// running VMs' reserves.
    func admit(count: UInt32, reserve: UInt32, excluding uuid: String, services: Services,
               _ act: @Sendable () async throws -> Void) async throws {
        guard reserve > 0 else { return try await act() }
        try await gate.run {
            let capacity = UInt64(services.host.info.logicalProcessorCount) * 100
            if capacity > 0 {
                let others = services.vms.records(except: uuid)
                    .filter { [.running, .paused, .starting, .saving, .stopping].contains($0.state) }
                    .reduce(UInt64(0)) { $0 + UInt64($1.configuration.processorCount) * UInt64($1.configuration.processorReserve) }
                let wanted = UInt64(count) * UInt64(reserve)
                guard others + wanted <= capacity else {
                    throw VMMSError.insufficientResources("""
                    the host cannot reserve \(reserve) % of \(count) processor(s): running VMs already reserve \
                    \(others) % of the host's \(capacity) % (\(capacity / 100) logical processors); \
                    lower the reserve (SetProcessor Reserve) or stop another VM
                    """)
                }
            }
            try await act()
        }
    }
}
