import DBus
import Foundation
import TestSupport
import Testing

/// Export, Import and storage Move as Job objects on the real stack (system bus, polkit,
/// libvirtd, QEMU under TCG), driven with busctl, gdbus and our own client.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct JobTests {
    typealias Client = LifecycleTests.Client
    static let job = "org.example.VMMS1.Job"
    static let vmInterface = "org.example.VMMS1.VM"
    static let host: ObjectPath = "/org/example/VMMS1/Host"
    static let props = "org.freedesktop.DBus.Properties"
    static let mib: UInt64 = 1 << 20

    /// How a job ended, and the PercentComplete values its PropertiesChanged carried.
    struct Ending: CustomStringConvertible {
        var state: String
        var errorName: String
        var message: String
        var percents: [UInt32]
        var description: String { "\(state) \(errorName) \(message) after \(percents)" }
    }

    /// Follows every job's signals from before the call that makes it: one consumer per
    /// stream for the watcher's life, so any number of jobs can be waited for.
    final class Watcher: Sendable {
        actor Seen {
            var percents: [ObjectPath: [UInt32]] = [:]
            var endings: [ObjectPath: [String]] = [:]
            func percent(_ path: ObjectPath, _ value: UInt32) { percents[path, default: []].append(value) }
            func ended(_ path: ObjectPath, _ body: [String]) { endings[path] = body }
        }
        let seen = Seen()
        let consumers: [Task<Void, Never>]

        init(_ bus: DBusConnection) async throws {
            let changes = try await bus.signals(matching: MatchRule(sender: "org.example.VMMS1", pathNamespace: "/org/example/VMMS1/Job",
                                                                    interface: JobTests.props, member: "PropertiesChanged"))
            let completions = try await bus.signals(matching: MatchRule(sender: "org.example.VMMS1", interface: JobTests.job, member: "Completed"))
            let seen = self.seen
            consumers = [
                Task {
                    for await signal in changes {
                        if let value = signal.body.dropFirst().first?.stringKeyedDictionary?["PercentComplete"]?.uint32 {
                            if let path = signal.path { await seen.percent(path, value) }
                        }
                    }
                },
                Task {
                    for await signal in completions { if let path = signal.path { await seen.ended(path, signal.body.compactMap(\.string)) } }
                },
            ]
        }

        deinit { consumers.forEach { $0.cancel() } }

        /// Waits (at most `seconds`) for `job` to end; `onPercent` sees each progress value.
        func wait(_ job: ObjectPath, seconds: Int = 90, onPercent: @escaping @Sendable (UInt32) async -> Void = { _ in }) async -> Ending? {
            let deadline = ContinuousClock.now + .seconds(seconds)
            var reported = 0
            while ContinuousClock.now < deadline {
                let percents = await seen.percents[job] ?? []
                for value in percents.dropFirst(reported) { await onPercent(value) }
                reported = percents.count
                if let body = await seen.endings[job] {
                    try? await Task.sleep(for: .milliseconds(200))
                    let all = await seen.percents[job] ?? []
                    guard body.count == 3 else { return nil }
                    return Ending(state: body[0], errorName: body[1], message: body[2], percents: all)
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return nil
        }
    }

    /// A generation-2 VM with a 1 GiB sparse disk holding `dataMiB` of a pattern and a second
    /// 64 MiB disk, created through the service; `body` gets it; everything is removed after.
    static func withVM(_ client: Client, _ prefix: String, dataMiB: Int = 16,
                       _ body: (_ path: ObjectPath, _ name: String, _ disks: [String]) async throws -> Void) async throws {
        let name = Names.unique(prefix)
        let path = try await client.create(name, ["Generation": .uint32(2), "MemoryStartupBytes": .uint64(128 * mib),
                                                  "NewDiskSizeBytes": .uint64(1024 * mib)])
        defer { Task { await Self.remove(name) } }
        _ = try await client.call(path, vmInterface, "AddHardDisk", [.vardict(["SizeBytes": .uint64(64 * mib)])])
        let disks = try await Self.disks(name)
        #expect(disks.count == 2)
        let written = try await runCommand("/usr/bin/qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 1M \(dataMiB)M", disks[0]])
        #expect(written.status == 0, "\(written.stderr)")
        do {
            try await body(path, name, disks)
        } catch {
            await Self.remove(name, files: disks)
            throw error
        }
        await Self.remove(name, files: disks)
    }

    /// Removes a VM and its files behind the service's back (also after a failed test, or
    /// when the test undefined it already): `files` go whether or not the domain is there.
    static func remove(_ name: String, files: [String] = []) async {
        let disks = (try? await Self.disks(name)) ?? []
        _ = try? await virsh(["destroy", name])
        _ = try? await virsh(["undefine", name, "--nvram", "--managed-save"])
        for disk in Set(disks + files) { try? FileManager.default.removeItem(atPath: disk) }
        _ = try? await virsh(["pool-refresh", "vmms-disks"])
    }

    static func disks(_ name: String) async throws -> [String] {
        let list = try await virsh(["domblklist", name, "--details"])
        guard list.status == 0 else { throw TestFailure("no domain \(name)") }
        return list.stdout.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count == 4 && fields[1] == "disk" ? String(fields[3]) : nil
        }
    }

    /// A fresh folder inside VirtualMachinePath (where non-root callers may export).
    static func folder(_ client: Client, _ prefix: String) async throws -> String {
        let reply = try await client.call(host, props, "Get", [.string("org.example.VMMS1.Host"), .string("VirtualMachinePath")])
        let root = try #require(reply.first?.variant?.string)
        let folder = root + "/\(Names.unique(prefix))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Starts a vmmsd on `state` that dies at `point` (VMMSD_TEST_CRASH_AT), runs `act` (the
    /// call that gets it there), and returns a vmmsd restarted on the same state once its
    /// recovery has emptied the journal; expects both.
    static func crash(at point: String, state: String, _ act: () async throws -> Void) async throws -> SystemVMMSD {
        let crashing = try await SystemVMMSD(stateDirectory: state, environment: ["VMMSD_TEST_CRASH_AT": point])
        try await act()
        let died = await HardeningTests.eventually(60) { crashing.process.exitStatusIfExited() != nil }
        #expect(died, "vmmsd did not die at \(point): \(crashing.log)")
        crashing.stop()
        let restarted = try await SystemVMMSD(stateDirectory: state)
        let journalEmpty = await HardeningTests.eventually(10) {
            ((try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? []).isEmpty
        }
        #expect(journalEmpty, "after \(point) the journal holds \((try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? [])")
        return restarted
    }

    static func compare(_ a: String, _ b: String) async throws -> Bool {
        let result = try await runCommand("/usr/bin/qemu-img", ["compare", "-U", a, b])
        return result.status == 0
    }

    /// Allocated bytes of a file.
    static func allocated(_ path: String) -> UInt64 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_blocks) * 512 : 0
    }

    /// Names, sizes and modification times of the files in `folders` (and below, for
    /// `recursive` ones), and the names of the folders: what Cancel must not change. A
    /// folder's own time is left out (the staging folder came and went inside it).
    static func listing(_ folders: [(path: String, recursive: Bool)]) -> [String] {
        folders.flatMap { folder -> [String] in
            let names: [String]
            if folder.recursive {
                let enumerator = FileManager.default.enumerator(atPath: folder.path)
                names = (enumerator?.allObjects as? [String]) ?? []
            } else {
                names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            }
            return names.map { name in
                var info = stat()
                stat(folder.path + "/" + name, &info)
                if info.st_mode & S_IFMT == S_IFDIR { return "\(folder.path)/\(name)/" }
                return "\(folder.path)/\(name) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            }.sorted()
        }
    }

    /// `virsh list --all`, one sorted line per domain.
    static func domainList() async throws -> [String] {
        try await virsh(["list", "--all"]).stdout.split(separator: "\n").dropFirst(2)
            .map { $0.split(separator: " ").dropFirst().joined(separator: " ") }.sorted()
    }

    static func objectPath(_ output: String) -> ObjectPath? {
        guard let start = output.range(of: "'/"), let end = output[start.upperBound...].firstIndex(of: "'") else {
            guard let quote = output.range(of: "\"/"), let close = output[quote.upperBound...].firstIndex(of: "\"") else { return nil }
            return ObjectPath(String(output[output.index(before: quote.upperBound)..<close]))
        }
        return ObjectPath(String(output[output.index(before: start.upperBound)..<end]))
    }

    // MARK: Export

    /// Off and Running: Hyper-V's layout, sparse copies whose contents match, and a running
    /// VM keeps running. Driven with busctl.
    @Test func exportOfAnOffAndARunningVMHasTheLayoutAndTheSameDisks() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let watcher = try await Watcher(client.bus)
            try await Self.withVM(client, "export", dataMiB: 100) { path, name, disks in
                let folder = try await Self.folder(client, "exp")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                for (round, start) in [("off", false), ("running", true)] {
                    if start { try await client.vm(path, "Start") }
                    let into = folder + "/" + round
                    try FileManager.default.createDirectory(atPath: into, withIntermediateDirectories: false)
                    let call = try await busctl(as: "root", ["call", "org.example.VMMS1", path.rawValue, Self.vmInterface, "Export", "sa{sv}", into, "0"])
                    let job = try #require(Self.objectPath(call.stdout), "\(call.stdout) \(call.stderr)")
                    let ending = await watcher.wait(job)
                    #expect(ending?.state == "Completed" && ending?.percents.last == 100, "\(String(describing: ending))")
                    let root = into + "/" + name
                    let items = Set((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
                    #expect(items == ["Virtual Machines", "Virtual Hard Disks", "Snapshots"], "\(items)")
                    let machines = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Virtual Machines")) ?? []
                    #expect(machines.contains { $0.hasSuffix(".xml") } && machines.contains { $0.hasSuffix(".json") }, "\(machines)")
                    if start { #expect(machines.contains { $0.hasSuffix(".nvram") }, "a started UEFI VM has an NVRAM: \(machines)") }
                    let copies = ((try? FileManager.default.contentsOfDirectory(atPath: root + "/Virtual Hard Disks")) ?? []).sorted()
                    #expect(copies.count == 2)
                    for disk in disks {
                        let copy = root + "/Virtual Hard Disks/" + (disk as NSString).lastPathComponent
                        #expect(try await Self.compare(disk, copy), "\(disk) vs \(copy) (\(round))")
                    }
                    // 1 GiB virtual with 100 MiB of data: the copy holds about the data.
                    let big = root + "/Virtual Hard Disks/" + (disks[0] as NSString).lastPathComponent
                    #expect(Self.allocated(big) < 140 * Self.mib && Self.allocated(big) > 90 * Self.mib, "\(Self.allocated(big))")
                    if start {
                        #expect(try await LifecycleTests.domstate(name) == "running")
                        try await client.vm(path, "TurnOff")
                    }
                }
                // An existing export folder is refused at the call.
                let again = try await busctl(as: "root", ["call", "org.example.VMMS1", path.rawValue, Self.vmInterface, "Export", "sa{sv}", folder + "/off", "0"])
                #expect(again.status != 0 && again.stderr.contains("exists already"), "\(again.stderr)")
            }
        }
    }

    // MARK: Import

    /// One export imported twice with new identities next to the original, all three start;
    /// then the original deleted and its export registered in place.
    @Test func importWithNewIdsTwiceAndInPlace() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let watcher = try await Watcher(client.bus)
            let gdbus = GDBus(user: "root")
            try await Self.withVM(client, "import") { path, name, disks in
                // Started once, so the UEFI VM has an NVRAM file the copies must not share.
                try await client.vm(path, "Start")
                try await client.vm(path, "TurnOff")
                let folder = try await Self.folder(client, "imp")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let exported = try #require(try await client.call(path, Self.vmInterface, "Export", [.string(folder), .vardict([:])]).first?.objectPath)
                #expect(await watcher.wait(exported)?.state == "Completed")
                let export = folder + "/" + name
                var copies: [String] = []
                defer { for copy in copies { Task { await Self.remove(copy) } } }
                for copy in [name + "-a", name + "-b"] {
                    let call = try await gdbus.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM",
                                                    [export, "{'GenerateNewId': <true>, 'Name': <'\(copy)'>}"])
                    let job = try #require(Self.objectPath(call.output), "\(call)")
                    let ending = await watcher.wait(job)
                    #expect(ending?.state == "Completed", "\(String(describing: ending))")
                    copies.append(copy)
                }
                var uuids: Set<String> = [], nvrams: Set<String> = [], files: Set<String> = Set(disks)
                for vm in [name] + copies {
                    let xml = try await virsh(["dumpxml", "--inactive", vm]).stdout
                    uuids.insert(xml.components(separatedBy: "<uuid>").dropFirst().first?.components(separatedBy: "<").first ?? "")
                    if let nvram = xml.components(separatedBy: "<nvram").dropFirst().first?.components(separatedBy: ">").dropFirst().first?.components(separatedBy: "<").first {
                        nvrams.insert(nvram)
                    }
                    if vm != name { for disk in try await Self.disks(vm) { files.insert(disk) } }
                }
                #expect(uuids.count == 3, "\(uuids)")
                #expect(files.count == 6, "\(files)")
                #expect(nvrams.count == 2, "each copy has its own NVRAM: \(nvrams)")
                for vm in [name] + copies {
                    let vmPath = try #require(try await client.call(Self.host, "org.example.VMMS1.Host", "LookupVM", [.string(vm)]).first?.objectPath)
                    try await client.vm(vmPath, "Start")
                    #expect(try await LifecycleTests.domstate(vm) == "running", "\(vm)")
                }
                // A name or UUID that exists is refused at the call.
                let same = try await gdbus.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM", [export, "{}"])
                #expect(!same.ok && same.errorName == "org.example.VMMS1.Error.AlreadyExists", "\(same)")
                let taken = try await gdbus.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM",
                                                 [export, "{'GenerateNewId': <true>, 'Name': <'\(copies[0])'>}"])
                #expect(!taken.ok && taken.errorName == "org.example.VMMS1.Error.AlreadyExists", "\(taken)")

                // In place: the original gone, its export registered where it lies.
                try await client.vm(path, "Delete", [.vardict(["Force": .boolean(true), "DeleteDisks": .boolean(true)])])
                let inPlace = try await gdbus.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM", [export, "{'Copy': <false>}"])
                let job = try #require(Self.objectPath(inPlace.output), "\(inPlace)")
                #expect(await watcher.wait(job)?.state == "Completed")
                let registered = try await Self.disks(name)
                #expect(registered.allSatisfy { $0.hasPrefix(export + "/Virtual Hard Disks/") }, "\(registered)")
                try await client.vm(path, "Start")
                #expect(try await LifecycleTests.domstate(name) == "running")
                for copy in copies { await Self.remove(copy) }
            }
        }
    }

    // MARK: Move

    /// A running VM's disks move (block copy, pivot): it keeps running on the new files, the
    /// old ones are gone, the data came along.
    @Test func storageMoveOfARunningVM() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let watcher = try await Watcher(client.bus)
            try await Self.withVM(client, "move") { path, name, disks in
                try await client.vm(path, "Start")
                let folder = try await Self.folder(client, "mov")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let job = try #require(try await client.call(path, Self.vmInterface, "Move", [.string(folder), .vardict([:])]).first?.objectPath)
                let ending = await watcher.wait(job)
                #expect(ending?.state == "Completed", "\(String(describing: ending))")
                #expect(try await LifecycleTests.domstate(name) == "running")
                let now = try await Self.disks(name)
                #expect(now == disks.map { folder + "/" + ($0 as NSString).lastPathComponent }, "\(now)")
                let inactive = try await virsh(["dumpxml", "--inactive", name]).stdout
                #expect(now.allSatisfy { inactive.contains($0) }, "the persistent definition follows")
                for old in disks { #expect(!FileManager.default.fileExists(atPath: old), "\(old) is left") }
                let read = try await runCommand("/usr/bin/qemu-io", ["-r", "-U", "-f", "qcow2", "-c", "read -P 0x5a 1M 16M", now[0]])
                #expect(read.status == 0 && !read.stdout.contains("Pattern verification failed"), "\(read.stdout) \(read.stderr)")
                let hardDisks = try await client.call(path, Self.props, "Get", [.string(Self.vmInterface), .string("HardDisks")]).first?.variant
                #expect("\(String(describing: hardDisks))".contains(folder), "\(String(describing: hardDisks))")
            }
        }
    }

    /// A Saved VM's storage moves too: its disks and NVRAM go to the folder, the memory image
    /// (where libvirt keeps managed saves) is re-pointed at them, the VM stays Saved, and Start
    /// restores it onto the new files. With `crashAt`, vmmsd is killed at that step of the Move
    /// and restarted first: recovery then makes the memory image name what the definition
    /// names, and the unused files go.
    static func savedMove(crashAt point: String?) async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-savedmove-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            var service: SystemVMMSD? = try await SystemVMMSD(stateDirectory: state)
            defer { service?.stop() }
            let watcher = try await Watcher(client.bus)
            try await Self.withVM(client, "savedmv") { path, name, disks in
                try await client.vm(path, "Start")
                try await client.vm(path, "Save")
                #expect(try await client.state(path) == "Saved")
                let folder = try await Self.folder(client, "svm")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let moved = disks.map { folder + "/" + ($0 as NSString).lastPathComponent }
                if let point {
                    service?.stop()
                    service = try await Self.crash(at: point, state: state) {
                        _ = try? await client.call(path, Self.vmInterface, "Move", [.string(folder), .vardict([:])])
                    }
                } else {
                    let job = try #require(try await client.call(path, Self.vmInterface, "Move", [.string(folder), .vardict([:])]).first?.objectPath)
                    let ending = await watcher.wait(job)
                    #expect(ending?.state == "Completed", "\(String(describing: ending))")
                }
                #expect(try await client.state(path) == "Saved")
                #expect(try await Self.disks(name) == moved, "the definition does not name the moved disks")
                let image = try await virsh(["managedsave-dumpxml", name]).stdout
                #expect(moved.allSatisfy { image.contains("file='\($0)'") }, "the memory image does not name the moved disks: \(image)")
                #expect(!disks.contains { image.contains("file='\($0)'") }, "the memory image still names an old disk")
                // Generation 2: the image names its NVRAM (<nvram>PATH</nvram>) too.
                if let nvram = image.components(separatedBy: "<nvram").dropFirst().first?
                    .components(separatedBy: ">").dropFirst().first?.components(separatedBy: "<").first, !nvram.isEmpty {
                    #expect(nvram.hasPrefix(folder + "/"), "the memory image's NVRAM \(nvram) did not move")
                }
                for old in disks { #expect(!FileManager.default.fileExists(atPath: old), "\(old) is left") }
                try await client.vm(path, "Start")
                #expect(try await virsh(["domstate", "--reason", name]).stdout.contains("restored"))
                let live = try await virsh(["domblklist", name]).stdout
                #expect(moved.allSatisfy { live.contains($0) }, "\(live)")
                try await client.vm(path, "TurnOff")
                for file in moved { await Self.remove("", files: [file]) }
            }
        }
    }

    @Test func storageMoveOfASavedVMRestoresOntoTheNewFiles() async throws {
        try await Self.savedMove(crashAt: nil)
    }

    /// Killed between the definition and the memory image: recovery finishes the pair.
    @Test func aCrashInTheSavedMoveBetweenDefinitionAndMemoryImageIsFinished() async throws {
        try await Self.savedMove(crashAt: "Move.defined")
    }

    // MARK: Progress and Cancel

    /// A copy throttled to 24 MiB/s: a subscriber sees PercentComplete grow several times,
    /// never fall, end at 100 with Completed.
    @Test func progressIsMonotonicAndEndsAt100WithCompleted() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD(environment: ["VMMSD_TEST_COPY_BYTES_PER_SECOND": String(24 << 20)])
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let watcher = try await Watcher(client.bus)
            try await Self.withVM(client, "progress", dataMiB: 96) { path, _, _ in
                let folder = try await Self.folder(client, "prog")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let job = try #require(try await client.call(path, Self.vmInterface, "Export", [.string(folder), .vardict([:])]).first?.objectPath)
                // bob may neither read nor cancel it.
                let bob = GDBus(user: "bob")
                let read = try await bob.get(job.rawValue, Self.job, "State")
                #expect(!read.ok && read.errorName == "org.example.VMMS1.Error.NotAuthorized", "\(read)")
                let cancel = try await bob.call(job.rawValue, "org.example.VMMS1.Job.Cancel")
                #expect(!cancel.ok && cancel.errorName == "org.example.VMMS1.Error.NotAuthorized", "\(cancel)")
                let ending = try #require(await watcher.wait(job))
                #expect(ending.state == "Completed" && ending.errorName.isEmpty)
                #expect(ending.percents.count >= 4, "\(ending.percents)")
                #expect(ending.percents == ending.percents.sorted(), "\(ending.percents)")
                #expect(ending.percents.last == 100 && ending.percents.dropLast().allSatisfy { $0 < 100 }, "\(ending.percents)")
            }
        }
    }

    enum CancelKind: String, CaseIterable, Sendable { case exportOff, importCopy, moveOff, moveRunning }

    /// Cancel between 10 and 50 %: `virsh list --all`, `virsh dumpxml` and the folders are as
    /// before, the job ends Cancelled.
    @Test(arguments: CancelKind.allCases)
    func cancelMidwayLeavesEverythingAsBefore(kind: CancelKind) async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD(environment: ["VMMSD_TEST_COPY_BYTES_PER_SECOND": String(16 << 20)])
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let watcher = try await Watcher(client.bus)
            try await Self.withVM(client, "cancel", dataMiB: 96) { path, name, disks in
                let folder = try await Self.folder(client, "cnl")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                var export = ""
                if kind == .importCopy {
                    // Exported at full speed first is not possible with the throttle; export, then cancel the import.
                    let exported = try #require(try await client.call(path, Self.vmInterface, "Export", [.string(folder), .vardict([:])]).first?.objectPath)
                    #expect(await watcher.wait(exported)?.state == "Completed")
                    export = folder + "/" + name
                }
                if kind == .moveRunning { try await client.vm(path, "Start") }
                let diskFolder = (disks[0] as NSString).deletingLastPathComponent
                let machines = (folder as NSString).deletingLastPathComponent
                let watched = [(folder, true), (diskFolder, false), (machines, false)]
                let before = (try await Self.domainList(), try await virsh(["dumpxml", "--inactive", name]).stdout,
                              Self.listing(watched))
                let reply: [DBusValue] = switch kind {
                case .exportOff: try await client.call(path, Self.vmInterface, "Export", [.string(folder), .vardict([:])])
                case .importCopy: try await client.call(Self.host, "org.example.VMMS1.Host", "ImportVM",
                                                        [.string(export), .vardict(["GenerateNewId": .boolean(true), "Name": .string(name + "-c")])])
                case .moveOff, .moveRunning: try await client.call(path, Self.vmInterface, "Move", [.string(folder), .vardict([:])])
                }
                let job = try #require(reply.first?.objectPath)
                let bus = client.bus
                let cancelled = Log()
                let ending = await watcher.wait(job) { percent in
                    guard percent >= 10, percent <= 50, await cancelled.values.isEmpty else { return }
                    await cancelled.append(String(percent))
                    _ = try? await bus.call(destination: "org.example.VMMS1", path: job, interface: JobTests.job, member: "Cancel", [])
                }
                #expect(await !cancelled.values.isEmpty, "no progress between 10 and 50 % was seen: \(String(describing: ending))")
                #expect(ending?.state == "Cancelled" && ending?.errorName == "org.example.VMMS1.Error.Cancelled", "\(String(describing: ending))")
                let after = (try await Self.domainList(), try await virsh(["dumpxml", "--inactive", name]).stdout,
                             Self.listing(watched))
                #expect(after.0 == before.0, "\(after.0) \(before.0)")
                #expect(after.1 == before.1)
                #expect(after.2 == before.2, "\(Set(after.2).symmetricDifference(before.2))")
                if kind == .moveRunning { #expect(try await LifecycleTests.domstate(name) == "running") }
            }
        }
    }

    // MARK: Bad input

    @Test func badInputIsRefusedClearly() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD(environment: ["VMMSD_TEST_COPY_BYTES_PER_SECOND": String(16 << 20)])
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let watcher = try await Watcher(client.bus)
            let alice = GDBus(user: "alice")
            try await Self.withVM(client, "bad", dataMiB: 64) { path, name, _ in
                let folder = try await Self.folder(client, "bad")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let outside = NSTemporaryDirectory() + Names.unique("outside")
                try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: outside) }
                // alice (vmms-admins) may export, import and move, but only within the storage paths.
                for (method, args) in [("org.example.VMMS1.VM.Export", [outside, "{}"]), ("org.example.VMMS1.VM.Move", [outside, "{}"])] {
                    let outcome = try await alice.call(path.rawValue, method, args)
                    #expect(!outcome.ok && outcome.errorName == "org.freedesktop.DBus.Error.InvalidArgs" && outcome.output.contains("outside"), "\(outcome)")
                }
                let imported = try await alice.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM", [outside, "{}"])
                #expect(!imported.ok && imported.errorName == "org.freedesktop.DBus.Error.InvalidArgs", "\(imported)")
                // Not an export, a corrupt one, a missing switch.
                let notExport = try await alice.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM", [folder, "{}"])
                #expect(!notExport.ok && notExport.output.contains("not an export"), "\(notExport)")
                let fake = folder + "/fake/Virtual Machines"
                try FileManager.default.createDirectory(atPath: fake, withIntermediateDirectories: true)
                try Data("{\"format\": 3".utf8).write(to: URL(fileURLWithPath: fake + "/x.json"))
                let corrupt = try await alice.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM", [folder + "/fake", "{}"])
                #expect(!corrupt.ok && corrupt.output.contains("not a usable export"), "\(corrupt)")

                let exported = try #require(try await client.call(path, Self.vmInterface, "Export", [.string(folder), .vardict([:])]).first?.objectPath)
                #expect(await watcher.wait(exported)?.state == "Completed")
                let export = folder + "/" + name
                let machines = export + "/Virtual Machines"
                let definition = try #require(try FileManager.default.contentsOfDirectory(atPath: machines).first { $0.hasSuffix(".xml") })
                let xml = try String(contentsOfFile: machines + "/" + definition, encoding: .utf8)
                // A definition reaching host files beyond its disks is root's to import.
                try xml.replacingOccurrences(of: "</devices>", with: "<serial type='file'><source path='/etc/cron.d/it-job'/></serial></devices>")
                    .write(toFile: machines + "/" + definition, atomically: true, encoding: .utf8)
                let crafted = try await alice.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM",
                                                   [export, "{'GenerateNewId': <true>, 'Name': <'\(name)-x'>}"])
                #expect(!crafted.ok && crafted.errorName == "org.freedesktop.DBus.Error.InvalidArgs" && crafted.output.contains("serial"), "\(crafted)")
                try xml.replacingOccurrences(of: "</devices>", with: "<interface type='network'><source network='it-nosuch-switch'/></interface></devices>")
                    .write(toFile: machines + "/" + definition, atomically: true, encoding: .utf8)
                let noSwitch = try await alice.call(Self.host.rawValue, "org.example.VMMS1.Host.ImportVM",
                                                    [export, "{'GenerateNewId': <true>, 'Name': <'\(name)-x'>}"])
                #expect(!noSwitch.ok && noSwitch.errorName == "org.example.VMMS1.Error.NotFound" && noSwitch.output.contains("it-nosuch-switch"), "\(noSwitch)")

                // The VM deleted (behind the service's back) while its export runs: Failed, no folder.
                let second = folder + "/second"
                try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: false)
                let job = try #require(try await client.call(path, Self.vmInterface, "Export", [.string(second), .vardict([:])]).first?.objectPath)
                let ending = await watcher.wait(job) { percent in
                    if percent >= 5 { _ = try? await virsh(["undefine", name, "--nvram"]) }
                }
                #expect(ending?.state == "Failed" && ending?.errorName == "org.example.VMMS1.Error.NotFound", "\(String(describing: ending))")
                #expect((try FileManager.default.contentsOfDirectory(atPath: second)).isEmpty)
            }
        }
    }

    // MARK: Crash safety

    /// kill -9 of vmmsd when an export's copies are made: after the restart there is no
    /// export folder and no staging folder, and the journal is empty.
    @Test func aCrashDuringExportLeavesNoPartialFolder() async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-crash-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let crashing = try await SystemVMMSD(stateDirectory: state, environment: ["VMMSD_TEST_CRASH_AT": "Export.copied"])
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            try await Self.withVM(client, "crash") { path, name, _ in
                let folder = try await Self.folder(client, "crash")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                _ = try await client.call(path, Self.vmInterface, "Export", [.string(folder), .vardict([:])])
                let died = await HardeningTests.eventually(30) { crashing.process.exitStatusIfExited() != nil }
                #expect(died, "vmmsd did not die at Export.copied: \(crashing.log)")
                crashing.stop()
                let leftBehind = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
                #expect(!leftBehind.isEmpty, "the staging folder should exist before recovery")
                let restarted = try await SystemVMMSD(stateDirectory: state)
                defer { restarted.stop() }
                let cleaned = await HardeningTests.eventually(10) {
                    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? ["?"]).isEmpty
                }
                #expect(cleaned, "\((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])")
                #expect(!FileManager.default.fileExists(atPath: folder + "/" + name))
                let journal = (try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? []
                #expect(journal.isEmpty, "\(journal)")
                #expect(try await virsh(["dominfo", name]).status == 0, "the VM itself is untouched")
            }
        }
    }
    /// kill -9 of vmmsd at each step of an import and of a storage move (VM off): after the
    /// restart either the state before (no imported domain, no copies; the VM on its old
    /// files) or, once switched, the finished move with the old files gone; the journal empty.
    @Test(arguments: ["Import.copied", "Import.defined", "Move.intended", "Move.switched"])
    func aCrashDuringImportOrMoveLeavesTheOldOrTheNewState(point: String) async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-crash-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            var first: SystemVMMSD? = try await SystemVMMSD(stateDirectory: state)
            try await Self.withVM(client, "crash2") { path, name, disks in
                let folder = try await Self.folder(client, "crash2")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let copyName = name + "-c"
                if point.hasPrefix("Import") {
                    let watcher = try await Watcher(client.bus)
                    let exported = try #require(try await client.call(path, Self.vmInterface, "Export", [.string(folder), .vardict([:])]).first?.objectPath)
                    #expect(await watcher.wait(exported)?.state == "Completed")
                }
                first?.stop()
                first = nil
                let imageFolder = (disks[0] as NSString).deletingLastPathComponent
                let imagesBefore = Set((try? FileManager.default.contentsOfDirectory(atPath: imageFolder)) ?? [])
                let restarted = try await Self.crash(at: point, state: state) {
                    if point.hasPrefix("Import") {
                        _ = try? await client.call(Self.host, "org.example.VMMS1.Host", "ImportVM",
                                                   [.string(folder + "/" + name), .vardict(["GenerateNewId": .boolean(true), "Name": .string(copyName)])])
                    } else {
                        _ = try? await client.call(path, Self.vmInterface, "Move", [.string(folder), .vardict([:])])
                    }
                }
                defer { restarted.stop() }
                if point.hasPrefix("Import") {
                    #expect(try await virsh(["dominfo", copyName]).status != 0, "the half-imported domain is left after \(point)")
                    let imagesAfter = Set((try? FileManager.default.contentsOfDirectory(atPath: imageFolder)) ?? [])
                    #expect(imagesAfter == imagesBefore, "copies left after \(point): \(imagesAfter.subtracting(imagesBefore))")
                } else {
                    let now = try await Self.disks(name)
                    let moved = point == "Move.switched"
                    let expected = moved ? disks.map { folder + "/" + ($0 as NSString).lastPathComponent } : disks
                    #expect(now == expected, "after \(point): \(now)")
                    for file in moved ? disks : expected.map({ folder + "/" + ($0 as NSString).lastPathComponent }) {
                        #expect(!FileManager.default.fileExists(atPath: file), "\(file) is left after \(point)")
                    }
                    for file in now { #expect(FileManager.default.fileExists(atPath: file)) }
                    if moved { for file in now { await Self.remove("", files: [file]) } }
                }
                await Self.remove(copyName)
            }
            first?.stop()
        }
    }
}

/// A libvirtd restart during a running storage Move: the job fails cleanly, the VM keeps
/// running on its old disk, and once libvirtd is back the journal's recovery removes the
/// partial copy (aborting the block copy if QEMU still runs it).
@Suite(.disturbsLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct JobLibvirtdRestartTests {
    @Test func aLibvirtdRestartDuringAMoveFailsTheJobAndLeavesTheOldDisks() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD(environment: ["VMMSD_TEST_COPY_BYTES_PER_SECOND": String(8 << 20)])
            defer { service.stop() }
            let client = JobTests.Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let watcher = try await JobTests.Watcher(client.bus)
            try await JobTests.withVM(client, "restart", dataMiB: 96) { path, name, disks in
                try await client.vm(path, "Start")
                let folder = try await JobTests.folder(client, "rst")
                defer { try? FileManager.default.removeItem(atPath: folder) }
                let job = try #require(try await client.call(path, JobTests.vmInterface, "Move", [.string(folder), .vardict([:])]).first?.objectPath)
                let stopped = Log()
                let ending = await watcher.wait(job, seconds: 60) { percent in
                    guard percent >= 5, await stopped.values.isEmpty else { return }
                    await stopped.append("stopped")
                    try? await Libvirtd.stop()
                }
                do {
                    if Libvirtd.pid().map({ kill($0, 0) != 0 }) ?? true { try await Libvirtd.start() }
                } catch {
                    Issue.record("libvirtd did not come back: \(error)")
                }
                #expect(await !stopped.values.isEmpty, "the move ended before libvirtd could be stopped: \(String(describing: ending))")
                #expect(ending?.state == "Failed" && ending?.errorName == "org.example.VMMS1.Error.HypervisorUnavailable", "\(String(describing: ending))")
                // Recovery on the new connection: the old disks, no copy, no block job.
                let clean = await HardeningTests.eventually(30) {
                    ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? ["?"]).isEmpty
                }
                #expect(clean, "\((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])")
                #expect(try await JobTests.disks(name) == disks)
                #expect(try await LifecycleTests.domstate(name) == "running")
                let blockJob = try await virsh(["blockjob", name, "vda", "--info"])
                #expect(!blockJob.stdout.contains("Block Copy"), "\(blockJob.stdout)")
            }
        }
    }
}
