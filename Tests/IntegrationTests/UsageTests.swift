import DBus
import Foundation
import TestSupport
import Testing

/// CPUUsage and StartTime, Get-VM's CPU and uptime, on real QEMU under TCG.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct UsageTests {
    typealias Client = LifecycleTests.Client

    @Test func startTimeAndCPUUsageFollowARunningVMAndSurviveARestart() async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-usage-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            var service = try await SystemVMMSD(stateDirectory: state)
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let name = Names.unique("usage")
            // A boot sector that spins (`jmp $`): SeaBIOS boots it and the processor stays busy.
            let spinner = try await client.diskDirectory() + "/\(name)-spin.img"
            var sector = [UInt8](repeating: 0, count: 512)
            sector[0] = 0xEB; sector[1] = 0xFE; sector[510] = 0x55; sector[511] = 0xAA
            try Data(sector + [UInt8](repeating: 0, count: 512 * 2047)).write(to: URL(fileURLWithPath: spinner))
            defer { try? FileManager.default.removeItem(atPath: spinner) }
            let path = try await client.create(name, ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(32 << 20),
                                                      "DiskPath": .string(spinner)])
            #expect(try await HardeningTests.property(client, path, "StartTime") == .uint64(0))
            #expect(try await HardeningTests.property(client, path, "CPUUsage") == .uint32(0))
            let before = UInt64(Date().timeIntervalSince1970)
            try await client.vm(path, "Start")
            let after = UInt64(Date().timeIntervalSince1970)
            let started = try #require(try await HardeningTests.property(client, path, "StartTime")?.uint64)
            #expect(started >= before - 1 && started <= after + 1, "\(started) not in \(before)…\(after)")
            // The spinning guest keeps its one processor busy.
            let busy = try await HardeningTests.eventually(10) {
                (try await HardeningTests.property(client, path, "CPUUsage")?.uint32 ?? 0) > 0
            }
            #expect(busy)
            // A restarted vmmsd reads the start from the QEMU process, not from when it looked.
            service.stop()
            try await Task.sleep(for: .seconds(1))
            service = try await SystemVMMSD(stateDirectory: state)
            #expect(try await HardeningTests.property(client, path, "StartTime") == .uint64(started))
            try await client.vm(path, "TurnOff")
            #expect(try await HardeningTests.property(client, path, "StartTime") == .uint64(0))
            #expect(try await HardeningTests.eventually(5) {
                try await HardeningTests.property(client, path, "CPUUsage") == .uint32(0)
            })
            try await client.vm(path, "Delete", [.vardict([:])])
        }
    }
}
