import Testing
import VMMSModel

struct MemoryAdmissionTests {
    @Test func availableMemoryIsReadFromMeminfo() {
        let meminfo = """
        MemTotal:       24608484 kB
        MemFree:          912340 kB
        MemAvailable:   20480000 kB
        Buffers:          104032 kB
        """
        #expect(MemoryAdmission.availableBytes(meminfo: meminfo) == 20_480_000 * 1024)
        #expect(MemoryAdmission.availableBytes(meminfo: "MemTotal: 1 kB\n") == nil)
        #expect(MemoryAdmission.availableBytes(meminfo: "MemAvailable: lots kB\n") == nil)
    }

    @Test func aStartThatDoesNotFitIsRefusedNamingTheFigures() {
        let gib: UInt64 = 1 << 30
        #expect(MemoryAdmission.refusal(name: "web01", startupBytes: gib, availableBytes: 2 * gib) == nil)
        #expect(MemoryAdmission.refusal(name: "web01", startupBytes: 2 * gib, availableBytes: 2 * gib) == nil)
        let refusal = MemoryAdmission.refusal(name: "web01", startupBytes: 3 * gib, availableBytes: 2 * gib)
        #expect(refusal?.contains("web01") == true && refusal?.contains("3072 MiB") == true && refusal?.contains("2048 MiB") == true)
    }
}

struct DiskSpaceAdmissionTests {
    @Test func aNewDiskNeedsSomeRoomWhereItIsMade() {
        let mib: UInt64 = 1 << 20
        #expect(DiskSpaceAdmission.refusal(directory: "/var/lib/libvirt/images", freeBytes: 10 * 1024 * mib, sizeBytes: 100 * 1024 * mib) == nil,
                "a dynamically expanding disk may be larger than the free space")
        let refusal = DiskSpaceAdmission.refusal(directory: "/var/lib/libvirt/images", freeBytes: 12 * mib, sizeBytes: 1024 * mib)
        #expect(refusal?.contains("/var/lib/libvirt/images has 12 MiB free") == true, "\(String(describing: refusal))")
        #expect(DiskSpaceAdmission.isNoSpace("cannot create: No space left on device"))
        #expect(!DiskSpaceAdmission.isNoSpace("Permission denied"))
    }
}
