import Synchronization
import Testing
import VMMSModel

/// The job model's rules: progress only grows and reaches 100 only by completing, a job ends
/// once, one running job per VM, finished jobs expire.
@Suite struct JobModelTests {
    final class Recorder: Sendable {
        let changes = Mutex<[String]>([])
        var sink: ChangeSink<JobRecord> {
            { [self] batch in
                changes.withLock { log in
                    for change in batch {
                        switch change {
                        case .added(let r): log.append("+\(r.number) \(r.state.rawValue)")
                        case .updated(_, let new): log.append("~\(new.number) \(new.state.rawValue) \(new.percentComplete)")
                        case .removed(let r): log.append("-\(r.number)")
                        }
                    }
                }
            }
        }
        var log: [String] { changes.withLock { $0 } }
    }

    static func start(_ model: JobModel, vm: String? = "u1", at time: UInt64 = 100) throws -> JobRecord {
        try model.start(operation: "Export", target: "/org/example/VMMS1/VM/u1", vmUUID: vm, vmName: "web", startedByUID: 1000, startTime: time)
    }

    @Test func progressOnlyGrowsAndStaysBelow100WhileRunning() throws {
        let recorder = Recorder()
        let model = JobModel(sink: recorder.sink)
        let job = try Self.start(model)
        for percent: UInt32 in [10, 5, 40, 40, 100, 250] { model.progress(job.number, percent: percent) }
        #expect(model.record(job.number)?.percentComplete == 99)
        #expect(recorder.log == ["+1 Running", "~1 Running 10", "~1 Running 40", "~1 Running 99"])
    }

    @Test func completingSetsHundredAndAJobEndsOnlyOnce() throws {
        let model = JobModel(sink: { _ in })
        let job = try Self.start(model)
        model.progress(job.number, percent: 30)
        #expect(model.finish(job.number, .completed, at: 200)?.percentComplete == 100)
        #expect(model.finish(job.number, JobOutcome(state: .failed, errorName: "x", errorMessage: "y"), at: 201) == nil)
        model.progress(job.number, percent: 50)
        let record = try #require(model.record(job.number))
        #expect(record.state == .completed && record.percentComplete == 100 && record.errorName.isEmpty && record.finishTime == 200)
    }

    @Test func aFailedJobKeepsItsProgressAndTheError() throws {
        let model = JobModel(sink: { _ in })
        let job = try Self.start(model)
        model.progress(job.number, percent: 30)
        model.finish(job.number, JobOutcome(state: .cancelled, errorName: "org.example.VMMS1.Error.Cancelled", errorMessage: "cancelled"), at: 5)
        let record = try #require(model.record(job.number))
        #expect(record.state == .cancelled && record.percentComplete == 30 && record.errorName == "org.example.VMMS1.Error.Cancelled")
    }

    @Test func aVMHasAtMostOneRunningJob() throws {
        let model = JobModel(sink: { _ in })
        let first = try Self.start(model)
        #expect(throws: JobModelError.vmBusy(job: first.number, operation: "Export")) { try Self.start(model) }
        let other = try Self.start(model, vm: "u2")
        #expect(other.number == first.number + 1)
        #expect(model.runningJob(vm: "u1")?.number == first.number)
        model.finish(first.number, .completed, at: 1)
        #expect(model.runningJob(vm: "u1") == nil)
        #expect(try Self.start(model).number == other.number + 1)
    }

    @Test func claimingAVMThatHasAJobIsRefused() throws {
        let model = JobModel(sink: { _ in })
        let export = try Self.start(model, vm: "u1")
        let importing = try Self.start(model, vm: nil)
        #expect(throws: JobModelError.vmBusy(job: export.number, operation: "Export")) {
            try model.claim(importing.number, vm: "u1", target: "/x")
        }
        try model.claim(importing.number, vm: "u3", target: "/org/example/VMMS1/VM/u3")
        #expect(model.record(importing.number)?.target == "/org/example/VMMS1/VM/u3")
        #expect(model.runningJob(vm: "u3")?.number == importing.number)
    }

    @Test func onlyFinishedJobsExpire() throws {
        let recorder = Recorder()
        let model = JobModel(sink: recorder.sink)
        let done = try Self.start(model, vm: "a")
        let late = try Self.start(model, vm: "b")
        let running = try Self.start(model, vm: "c")
        model.finish(done.number, .completed, at: 100)
        model.finish(late.number, .completed, at: 400)
        model.expire(finishedBefore: 300)
        #expect(model.all.map(\.number) == [late.number, running.number])
        model.expire(finishedBefore: 10_000)
        #expect(model.all.map(\.number) == [running.number])
        #expect(recorder.log.filter { $0.hasPrefix("-") } == ["-1", "-2"])
    }

    @Test(arguments: JobState.allCases) func stateNamesAreTheContracts(state: JobState) {
        let names: [JobState: String] = [.running: "Running", .completed: "Completed", .failed: "Failed", .cancelled: "Cancelled"]
        #expect(state.rawValue == names[state])
        #expect(state.isFinished == (state != .running))
    }
}

/// What Export writes and Import trusts.
@Suite struct ExportLayoutTests {
    static let xml = """
    <domain type='qemu'><name>web</name><uuid>0F0E0D0C-0000-0000-0000-000000000001</uuid>\
    <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type><nvram>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram></os>\
    <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/images/web.qcow2'/>\
    <backingStore type='file'><format type='qcow2'/><source file='/images/base.qcow2'/></backingStore><target dev='vda' bus='virtio'/></disk>\
    <disk type='file' device='cdrom'><source file='/isos/install.iso'/><target dev='sda' bus='sata'/></disk>\
    <interface type='network'><mac address='52:54:00:11:22:33'/><source network='lan'/></interface></devices></domain>
    """

    @Test func filesAndNetworksAreRead() throws {
        let files = try DomainFiles(xml: Self.xml)
        #expect(files.hardDisks.map(\.path) == ["/images/web.qcow2"])
        #expect(files.otherDiskSources == ["/isos/install.iso"])
        #expect(files.otherDiskTargets == ["sda"])
        #expect(files.nvram == "/var/lib/libvirt/qemu/nvram/web_VARS.fd")
        #expect(files.usesUEFI)
        #expect(files.networks == ["lan"])
        #expect(files.uuid == "0f0e0d0c-0000-0000-0000-000000000001")
        #expect(Set(files.allPaths) == ["/images/web.qcow2", "/isos/install.iso", "/var/lib/libvirt/qemu/nvram/web_VARS.fd"])
    }

    /// Regression: libvirt trusts `<backingStore>` over the image header, so an imported copy
    /// that kept it opened the original VM's base image.
    @Test func aNewDiskSourceDropsTheOldBackingChain() throws {
        let files = try DomainFiles(xml: Self.xml)
        files.setDiskSource(target: "vda", path: "/export/Virtual Hard Disks/web.qcow2")
        let again = try DomainFiles(xml: files.xml)
        #expect(again.hardDisks.map(\.path) == ["/export/Virtual Hard Disks/web.qcow2"])
        #expect(!files.xml.contains("base.qcow2"))
        #expect(files.xml.contains("<backingStore/>"))
    }

    @Test func aNewIdentityDropsTheMACsAndSetsTheUUID() throws {
        let files = try DomainFiles(xml: Self.xml)
        files.setNewIdentity(uuid: "11111111-2222-3333-4444-555555555555")
        files.setName("web-copy")
        files.setNVRAM("/vms/web-copy_VARS.fd")
        let again = try DomainFiles(xml: files.xml)
        #expect(again.uuid == "11111111-2222-3333-4444-555555555555" && again.name == "web-copy")
        #expect(again.nvram == "/vms/web-copy_VARS.fd")
        #expect(!files.xml.contains("52:54:00:11:22:33"))
    }

    @Test func whatReachesTheHostBeyondTheDisksIsNamed() throws {
        #expect(try DomainFiles(xml: Self.xml).hostResources.isEmpty)
        let crafted = Self.xml.replacingOccurrences(of: "<domain type='qemu'>", with: "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
            .replacingOccurrences(of: "</devices>", with: """
            <hostdev mode='subsystem' type='pci'/><serial type='file'><source path='/etc/cron.d/x'/></serial>            <interface type='direct'><source dev='eth0'/></interface></devices><qemu:commandline><qemu:arg value='-x'/></qemu:commandline>
            """)
        let found = try DomainFiles(xml: crafted).hostResources
        #expect(found == ["<qemu:commandline>", "<hostdev>", "<serial type='file'>", "<interface type='direct'>"], "\(found)")
    }

    @Test(arguments: ["../etc/shadow", "/etc/shadow", "Virtual Hard Disks/../../x", "", "a//b", "./a"])
    func aManifestNamingFilesOutsideTheExportIsRefused(file: String) {
        let manifest = ExportManifest(name: "web", uuid: "u", state: "Off", exportedAt: 0, definition: "Virtual Machines/u.xml",
                                      disks: [.init(target: "vda", file: file, format: "qcow2")], nvram: nil, savedState: nil)
        #expect(manifest.problem != nil)
    }

    @Test func aManifestExportWritesIsAccepted() {
        let manifest = ExportManifest(name: "web", uuid: "u", state: "Off", exportedAt: 0, definition: "Virtual Machines/u.xml",
                                      disks: [.init(target: "vda", file: "Virtual Hard Disks/web.qcow2", format: "qcow2")],
                                      nvram: "Virtual Machines/u.nvram", savedState: nil)
        #expect(manifest.problem == nil)
    }
}
