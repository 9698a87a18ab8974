import Foundation
import Libvirt
import TestSupport
import Testing

/// Domain calls libvirt's test driver lacks, on the real libvirtd with tiny TCG guests (64 MiB,
/// no OS, one qcow2 disk on virtio-scsi). One at a time: the machine has two cores.
@Suite("Domains on qemu:///system", .usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason),
       .timeLimit(.minutes(15)))
struct RealDomainTests {
    let connection: LibvirtConnection

    init() throws {
        connection = try openSystem()
    }

    /// Records the domain events of one domain.
    func recordEvents(of uuid: String) throws -> (Recorder<DomainEvent>, EventRegistration) {
        let recorder = Recorder<DomainEvent>()
        let registration = try connection.registerDomainEvents { event in
            if event.uuid == uuid { recorder.record(event) }
        }
        return (recorder, registration)
    }

    // MARK: Statistics and sizes

    @Test func allDomainStatsOfARunningGuestHaveCPUBalloonVcpuAndBlock() async throws {
        let scratch = try await ScratchDomain.make(on: connection, transient: true)
        defer { scratch.remove() }
        func record() throws -> DomainStatsRecord? {
            try connection.allDomainStats(groups: [.state, .cpuTotal, .balloon, .vcpu, .block], flags: .active)
                .first { $0.uuid == scratch.uuid }
        }
        let first = try #require(try record())
        #expect(first.name == scratch.name)
        #expect(first.state == .running)
        #expect(first.balloon?.currentKiB == 65536)
        #expect(first.vcpuCurrent == 1)
        #expect(first.vcpus?.count == 1)
        let block = try #require(first.blocks?.first)
        #expect(block.name == "sda")
        #expect(block.path == scratch.diskPath)
        #expect(block.capacityBytes == 64 << 20)
        let start = try #require(first.cpu?.timeNs)
        // A guest without an OS still spins in the firmware: cpu.time grows.
        #expect(try await poll(timeout: .seconds(20)) { (try record()?.cpu?.timeNs ?? 0) > start })
    }

    @Test func blockInfoAnswersForAnInactiveAndARunningDomain() async throws {
        let scratch = try await ScratchDomain.make(on: connection, start: false)
        defer { scratch.remove() }
        #expect(try scratch.domain.blockInfo(disk: "sda").capacityBytes == 64 << 20)
        #expect(try scratch.domain.blockInfo(disk: scratch.diskPath).capacityBytes == 64 << 20)
        try scratch.domain.start()
        let info = try scratch.domain.blockInfo(disk: "sda")
        #expect(info.capacityBytes == 64 << 20)
        #expect(info.physicalBytes > 0)
    }

    @Test func maxMemoryVcpusAndMigrationSpeedOfARunningDomain() async throws {
        let scratch = try await ScratchDomain.make(on: connection, transient: true)
        defer { scratch.remove() }
        #expect(try scratch.domain.maxMemoryKiB() == 65536)
        #expect(try scratch.domain.vcpuCount(flags: .live) == 1)
        try scratch.domain.setMigrationMaxSpeed(mibPerSecond: 100)
        #expect(try scratch.domain.migrationMaxSpeed() == 100)
    }

    // MARK: Block jobs

    @Test func blockCopyWithATransientJobBecomesReadyAndPivotsToTheCopy() async throws {
        let scratch = try await ScratchDomain.make(on: connection, patternMiB: 2)
        defer { scratch.remove() }
        let (events, registration) = try recordEvents(of: scratch.uuid)
        defer { registration.deregister() }
        let destination = scratch.directory.path("moved.qcow2")

        // A persistent domain needs the transient-job flag (libvirt 9.0: "domain is not transient").
        try scratch.domain.blockCopy(
            disk: "sda", destinationXML: "<disk type='file'><source file='\(destination)'/><driver type='qcow2'/></disk>",
            granularity: 65536, bufferSize: 1 << 20, flags: .transientJob)
        #expect(await events.wait(timeout: .seconds(60)) { $0.contains { $0.blockJobStatus == .ready } }, "\(events.all)")
        let info = try #require(try scratch.domain.blockJobInfo(disk: "sda"))
        #expect(info.jobType == .copy)
        #expect(info.cursor == info.end)

        try scratch.domain.blockJobAbort(disk: "sda", flags: .pivot)
        #expect(try scratch.diskSource() == destination)
        #expect(try scratch.domain.blockJobInfo(disk: "sda") == nil)
        #expect(await events.wait { $0.contains { $0.blockJobStatus == .completed } }, "\(events.all)")
        try scratch.domain.destroy()
        try await run("/usr/bin/qemu-img", ["compare", scratch.diskPath, destination])
    }

    @Test func aThrottledCopyReportsProgressAndAbortKeepsTheSource() async throws {
        let scratch = try await ScratchDomain.make(on: connection, patternMiB: 16)
        defer { scratch.remove() }
        let destination = scratch.directory.path("partial.qcow2")
        try scratch.domain.blockCopy(
            disk: "sda", destinationXML: "<disk type='file'><source file='\(destination)'/><driver type='qcow2'/></disk>",
            bandwidthBytesPerSecond: 1 << 20, flags: .transientJob)
        let info = try #require(try scratch.domain.blockJobInfo(disk: "sda"))
        #expect(info.jobType == .copy)
        #expect(info.bandwidthBytesPerSecond == 1 << 20)
        #expect(info.cursor < info.end)
        try scratch.domain.setBlockJobSpeed(disk: "sda", bytesPerSecond: 2 << 20)
        #expect(try scratch.domain.blockJobInfo(disk: "sda")?.bandwidthBytesPerSecond == 2 << 20)

        try scratch.domain.blockJobAbort(disk: "sda")
        #expect(try scratch.domain.blockJobInfo(disk: "sda") == nil)
        #expect(try scratch.diskSource() == scratch.diskPath)
    }

    @Test func aDiskOnlySnapshotWithoutMetadataIsCommittedBackWithAPivot() async throws {
        let scratch = try await ScratchDomain.make(on: connection)
        defer { scratch.remove() }
        let (events, registration) = try recordEvents(of: scratch.uuid)
        defer { registration.deregister() }
        let overlay = scratch.directory.path("overlay.qcow2")

        let snapshot = try scratch.domain.createSnapshot(xml: """
            <domainsnapshot><name>c1</name><disks><disk name='sda' snapshot='external'>\
            <source file='\(overlay)'/></disk></disks></domainsnapshot>
            """, flags: [.diskOnly, .noMetadata, .atomic])
        #expect(try snapshot.name == "c1")
        #expect(try scratch.domain.allSnapshots().isEmpty)
        #expect(try scratch.diskSource() == overlay)

        try scratch.domain.blockCommit(disk: "sda", flags: [.active, .delete])
        #expect(await events.wait(timeout: .seconds(60)) { $0.contains { $0.blockJobStatus == .ready } }, "\(events.all)")
        #expect(try scratch.domain.blockJobInfo(disk: "sda")?.jobType == .activeCommit)
        try scratch.domain.blockJobAbort(disk: "sda", flags: .pivot)
        #expect(try scratch.diskSource() == scratch.diskPath)
        #expect(await poll(timeout: .seconds(10)) { !FileManager.default.fileExists(atPath: overlay) })
    }

    @Test func pullCopiesTheBackingDataIntoTheActiveImage() async throws {
        let scratch = try await ScratchDomain.make(on: connection)
        defer { scratch.remove() }
        let (events, registration) = try recordEvents(of: scratch.uuid)
        defer { registration.deregister() }
        let overlay = scratch.directory.path("top.qcow2")
        _ = try scratch.domain.createSnapshot(xml: """
            <domainsnapshot><disks><disk name='sda' snapshot='external'><source file='\(overlay)'/></disk>\
            </disks></domainsnapshot>
            """, flags: [.diskOnly, .noMetadata])
        try scratch.domain.blockRebase(disk: "sda")
        #expect(await events.wait(timeout: .seconds(60)) { $0.contains { $0.blockJobStatus == .completed } }, "\(events.all)")
        // The overlay no longer has a backing file.
        #expect(!(try scratch.domain.xml()).contains("<backingStore type='file'"))
    }

    // MARK: Save, restore and managed save

    @Test func saveWithANewDefinitionAndRestorePaused() async throws {
        let scratch = try await ScratchDomain.make(on: connection)
        defer { scratch.remove() }
        let image = scratch.directory.path("memory.save")
        let live = try scratch.domain.xml(flags: [.secure, .migratable])
        try scratch.domain.save(to: image, xml: live.replacingOccurrences(
            of: "</domain>", with: "<description>from the save</description></domain>"))
        #expect(try scratch.domain.state().state == .shutoff)
        #expect(try connection.saveImageXML(path: image).contains("from the save"))
        let edited = try connection.saveImageXML(path: image, secure: true)
            .replacingOccurrences(of: "from the save", with: "edited")
        try connection.defineSaveImageXML(path: image, xml: edited)

        try connection.restore(from: image, flags: .paused)
        #expect(try scratch.domain.state().state == .paused)
        #expect(try scratch.domain.xml().contains("<description>edited</description>"))
    }

    @Test func managedSaveImageXMLCanBeReadAndReplaced() async throws {
        let scratch = try await ScratchDomain.make(on: connection)
        defer { scratch.remove() }
        try scratch.domain.managedSave(flags: .paused)
        #expect(try scratch.domain.hasManagedSaveImage)
        let stored = try scratch.domain.managedSaveXML(secure: true)
        #expect(stored.contains("<name>\(scratch.name)</name>"))
        try scratch.domain.defineManagedSaveXML(
            stored.replacingOccurrences(of: "</domain>", with: "<description>managed</description></domain>"),
            flags: .running)
        #expect(try scratch.domain.managedSaveXML().contains("managed"))
        try scratch.domain.start()
        #expect(try scratch.domain.state().state == .running)
    }

    // MARK: Jobs and backups

    @Test func abortWithoutAJobIsOperationInvalidAndStatsSayNone() async throws {
        let scratch = try await ScratchDomain.make(on: connection, transient: true)
        defer { scratch.remove() }
        #expect(try scratch.domain.jobStats().jobType == DomainJobType.none)
        let error = #expect(throws: LibvirtError.self) { try scratch.domain.abortJob() }
        #expect(error?.code == .operationInvalid)
        #expect(error?.function == "virDomainAbortJob")
    }

    @Test func aPullBackupIsARunningJobUntilAborted() async throws {
        let scratch = try await ScratchDomain.make(on: connection)
        defer { scratch.remove() }
        // QEMU runs as libvirt-qemu and must create its NBD socket here.
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: scratch.directory.url.path)
        let socket = scratch.directory.path("nbd.sock")
        try scratch.domain.backupBegin(xml: """
            <domainbackup mode='pull'><server transport='unix' socket='\(socket)'/><disks>\
            <disk name='sda' backup='yes' type='file'><scratch file='\(scratch.directory.path("scratch.qcow2"))'/></disk>\
            </disks></domainbackup>
            """)
        let stats = try scratch.domain.jobStats()
        #expect(stats.jobType == .unbounded)
        #expect(stats.operation == .backup)
        #expect(stats.timeElapsedMs != nil)
        #expect(try scratch.domain.backupXML().contains("mode='pull'"))

        try scratch.domain.abortJob()
        #expect(try await poll(timeout: .seconds(10)) { try scratch.domain.jobStats().jobType == DomainJobType.none })
    }

    @Test func aPushBackupCompletesWithStatsInItsEvent() async throws {
        let scratch = try await ScratchDomain.make(on: connection, patternMiB: 4)
        defer { scratch.remove() }
        let (events, registration) = try recordEvents(of: scratch.uuid)
        defer { registration.deregister() }
        let target = scratch.directory.path("backup.qcow2")
        try scratch.domain.backupBegin(xml: """
            <domainbackup mode='push'><disks><disk name='sda' backup='yes' type='file'>\
            <target file='\(target)'/><driver type='qcow2'/></disk></disks></domainbackup>
            """)
        #expect(await events.wait(timeout: .seconds(60)) { events in
            events.contains { if case .jobCompleted = $0 { return true } else { return false } }
        }, "\(events.all)")
        guard case .jobCompleted(_, let stats)? = events.all.first(where: {
            if case .jobCompleted = $0 { return true } else { return false }
        }) else { return }
        #expect(stats.operation == .backup)
        #expect(stats.jobType == .completed)
        #expect(stats.success == true)
        // A backup counts in disk_* fields: the whole 64 MiB disk.
        #expect(stats.diskTotal == 64 << 20, "\(stats.raw)")
        #expect(stats.diskProcessed == 64 << 20)
        #expect(stats.diskRemaining == 0)
        #expect(stats.timeElapsedMs != nil)
        // Compared once QEMU has closed both images (the event may precede the target's close).
        try scratch.domain.destroy()
        try await run("/usr/bin/qemu-img", ["compare", scratch.diskPath, target])
    }

    // MARK: Devices

    @Test func detachingAScsiDiskDeliversDeviceAddedAndDeviceRemoved() async throws {
        let scratch = try await ScratchDomain.make(on: connection, transient: true)
        defer { scratch.remove() }
        let (events, registration) = try recordEvents(of: scratch.uuid)
        defer { registration.deregister() }
        let extra = scratch.directory.path("extra.qcow2")
        try await makeQcow2(extra)
        let disk = """
            <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='\(extra)'/>\
            <target dev='sdb' bus='scsi'/></disk>
            """
        try scratch.domain.attachDevice(xml: disk, flags: .live)
        #expect(await events.wait(timeout: .seconds(20)) { $0.contains(.deviceAdded(uuid: scratch.uuid, alias: "scsi0-0-0-1")) },
                "\(events.all)")
        try scratch.domain.detachDevice(xml: disk, flags: .live)
        #expect(await events.wait(timeout: .seconds(20)) { $0.contains(.deviceRemoved(uuid: scratch.uuid, alias: "scsi0-0-0-1")) },
                "\(events.all)")
    }

    // MARK: Migration

    @Test func migratingToTheSameHostIsRefusedNamingTheFunction() async throws {
        let scratch = try await ScratchDomain.make(on: connection)
        defer { scratch.remove() }
        let parameters = MigrationParameters(migrateURI: "tcp://127.0.0.1", destinationName: scratch.name,
                                             bandwidthMiBPerSecond: 10, disks: ["sda"])
        let direct = #expect(throws: LibvirtError.self) {
            try scratch.domain.migrate(to: connection, parameters: parameters, flags: [.live, .persistDestination])
        }
        #expect(direct?.function == "virDomainMigrate3")
        let peer = #expect(throws: LibvirtError.self) {
            try scratch.domain.migrate(toURI: "qemu:///system", parameters: parameters,
                                       flags: [.live, .peerToPeer, .persistDestination, .undefineSource])
        }
        #expect(peer?.function == "virDomainMigrateToURI3")
        #expect(peer?.message.contains("same host") == true, "\(String(describing: peer))")
        #expect(try scratch.domain.state().state == .running)
    }
}
