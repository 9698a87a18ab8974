@testable import Libvirt
import Testing

/// The typed-parameter plumbing and the record parsers, without libvirt in the loop.
@Suite("Typed parameters")
struct TypedParameterTests {
    @Test func builtParametersReadBackWithTheirTypes() throws {
        let list = TypedParameterList()
        try list.add("a", UInt64(1) << 40)
        try list.add("b", Int64(-5))
        try list.add("c", UInt32(7))
        try list.add("d", Int32(-2))
        try list.add("e", "text")
        try list.add("f", nil as String?)
        let read = list.withParameters { params, count in readTypedParameters(params, count: count) }
        #expect(read == ["a": .ullong(1 << 40), "b": .llong(-5), "c": .uint(7), "d": .int(-2), "e": .string("text")])
        #expect(read["d"]?.unsigned == nil)
        #expect(read["c"]?.signed == 7)
    }

    @Test func migrationParametersRepeatTheDiskName() throws {
        let parameters = MigrationParameters(migrateURI: "tcp://10.250.0.2", bandwidthMiBPerSecond: 50,
                                             disks: ["vda", "vdb"], disksPort: 49153)
        let list = try parameters.typedParameters()
        let count = list.withParameters { _, count in count }
        // migrate_uri, bandwidth, two migrate_disks, disks_port.
        #expect(count == 5)
        let read = list.withParameters { params, count in readTypedParameters(params, count: count) }
        #expect(read["migrate_uri"] == .string("tcp://10.250.0.2"))
        #expect(read["bandwidth"] == .ullong(50))
        #expect(read["disks_port"] == .int(49153))
        #expect(try MigrationParameters().typedParameters().isEmpty)
    }

    @Test func statsRecordGroupsComeFromTheirFields() {
        let record = DomainStatsRecord(uuid: "u", name: "n", parameters: [
            "state.state": .int(3), "state.reason": .int(1),
            "cpu.time": .ullong(5_000), "cpu.user": .ullong(1_000),
            "balloon.current": .ullong(65536), "balloon.maximum": .ullong(131072),
            "vcpu.current": .uint(1), "vcpu.maximum": .uint(2), "vcpu.0.time": .ullong(900), "vcpu.0.state": .int(1),
            "block.count": .uint(1), "block.0.name": .string("sda"), "block.0.capacity": .ullong(1 << 26),
            "net.count": .uint(1), "net.0.name": .string("vnet0"), "net.0.rx.bytes": .ullong(42),
        ])
        #expect(record.state == .paused)
        #expect(PausedReason(rawValue: record.stateReason ?? -1) == .user)
        #expect(record.cpu == DomainCPUStats(timeNs: 5_000, userNs: 1_000, systemNs: nil))
        #expect(record.balloon?.currentKiB == 65536 && record.balloon?.maximumKiB == 131072)
        // vCPU 1 is offline and reports nothing: only vCPU 0 is listed.
        #expect(record.vcpus == [DomainVcpuStats(index: 0, state: 1, timeNs: 900, waitNs: nil)])
        #expect(record.blocks?.map(\.name) == ["sda"])
        #expect(record.blocks?.first?.capacityBytes == 1 << 26)
        #expect(record.interfaces?.first?.receivedBytes == 42)
    }

    @Test func groupsThatWereNotReportedAreNil() {
        let record = DomainStatsRecord(uuid: "u", name: "n", parameters: ["state.state": .int(5)])
        #expect(record.state == .shutoff)
        #expect(record.cpu == nil && record.balloon == nil && record.vcpus == nil && record.blocks == nil
                && record.interfaces == nil)
    }

    @Test func jobStatsReadTheirFields() {
        let stats = DomainJobStats(type: 3, parameters: [
            "operation": .int(9), "time_elapsed": .ullong(32), "disk_total": .ullong(64),
            "disk_processed": .ullong(64), "disk_remaining": .ullong(0), "success": .boolean(true),
        ])
        #expect(stats.jobType == .completed)
        #expect(stats.operation == .backup)
        #expect(stats.timeElapsedMs == 32)
        #expect(stats.diskTotal == 64 && stats.diskRemaining == 0)
        #expect(stats.success == true)
        #expect(stats.memoryTotal == nil && stats.dataTotal == nil)
    }
}
