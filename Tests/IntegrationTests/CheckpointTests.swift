import DBus
import Foundation
import TestSupport
import Testing

/// Hyper-V standard checkpoints on the real stack (TCG guests, generation 1 on SeaBIOS and
/// generation 2 on OVMF with Secure Boot): disk contents are written and read with qemu-io
/// (offline) or QEMU's monitor (live), the NVRAM compared byte for byte.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct CheckpointTests {
    typealias Client = LifecycleTests.Client
    static let vmInterface = "org.example.VMMS1.VM"
    static let checkpointInterface = "org.example.VMMS1.Checkpoint"
    static let props = "org.freedesktop.DBus.Properties"
    static let mib: UInt64 = 1 << 20

    // MARK: Helpers

    /// Runs `body` with this tree's vmmsd on the system bus and a client of it.
    static func withService(_ body: (SystemVMMSD, Client) async throws -> Void) async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            try await body(service, client)
        }
    }

    static func vmProperty(_ client: Client, _ vm: ObjectPath, _ name: String) async throws -> DBusValue? {
        try await client.call(vm, props, "Get", [.string(vmInterface), .string(name)]).first?.variant
    }

    static func property(_ client: Client, _ checkpoint: ObjectPath, _ name: String) async throws -> DBusValue? {
        try await client.call(checkpoint, props, "Get", [.string(checkpointInterface), .string(name)]).first?.variant
    }

    static func checkpoints(_ client: Client, _ vm: ObjectPath) async throws -> [ObjectPath] {
        guard case .array(_, let items)? = try await vmProperty(client, vm, "Checkpoints") else { return [] }
        return items.compactMap(\.objectPath)
    }

    /// The VM's (first) hard disk as the service shows it.
    static func disk(_ client: Client, _ vm: ObjectPath) async throws -> String {
        guard case .array(_, let items)? = try await vmProperty(client, vm, "HardDisks"),
              case .structure(let fields)? = items.first, let path = fields.first?.string else {
            throw TestFailure("no HardDisks on \(vm)")
        }
        return path
    }

    static func checkpoint(_ client: Client, _ vm: ObjectPath, _ name: String) async throws -> ObjectPath {
        let reply = try await client.call(vm, vmInterface, "Checkpoint", [.string(name)])
        guard let path = reply.first?.objectPath else { throw TestFailure("Checkpoint returned \(reply)") }
        return path
    }

    static func act(_ client: Client, _ checkpoint: ObjectPath, _ member: String, _ body: [DBusValue] = []) async throws {
        _ = try await client.call(checkpoint, checkpointInterface, member, body)
    }

    static func format(_ path: String) -> String { path.hasSuffix(".qcow2") ? "qcow2" : "raw" }

    /// Writes `byte` over 1 MiB at `offset` MiB of an image nobody has open.
    static func write(_ byte: UInt8, at offset: Int, _ image: String) async throws {
        let result = try await runCommand("/usr/bin/qemu-io", ["-f", format(image), "-c", "write -P \(byte) \(offset)M 1M", image])
        guard result.status == 0, !result.stderr.contains("error") else { throw TestFailure("qemu-io write on \(image): \(result.stderr)") }
    }

    /// Whether 1 MiB at `offset` MiB of the image (through its backing chain) is `byte`.
    static func holds(_ byte: UInt8, at offset: Int, _ image: String) async throws -> Bool {
        let result = try await runCommand("/usr/bin/qemu-io", ["-r", "-U", "-f", format(image), "-c", "read -P \(byte) \(offset)M 1M", image])
        return result.status == 0 && result.stdout.contains("read 1048576/1048576") && !result.stdout.contains("Pattern verification failed")
    }

    static func expectError(_ name: String, _ what: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(what) succeeded; expected \(name)")
        } catch let error as DBusError {
            #expect(error.name == name, "\(what): \(error)")
        } catch {
            Issue.record("\(what): \(error)")
        }
    }

    /// The files of the VM's checkpoints.
    static func snapshotFiles(_ vm: ObjectPath) -> [String] {
        let uuid = vm.rawValue.split(separator: "/").last.map { $0.replacingOccurrences(of: "_", with: "-") } ?? ""
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/var/lib/vmms/machines/Snapshots/\(uuid)")) ?? []).sorted()
    }

    static func nvram(_ name: String) async throws -> String? {
        let xml = try await virsh(["dumpxml", "--inactive", name]).stdout
        guard let start = xml.range(of: "<nvram"), let close = xml.range(of: ">", range: start.upperBound..<xml.endIndex),
              let end = xml.range(of: "</nvram>", range: close.upperBound..<xml.endIndex) else {
            return FileManager.default.fileExists(atPath: "/var/lib/libvirt/qemu/nvram/\(name)_VARS.fd") ? "/var/lib/libvirt/qemu/nvram/\(name)_VARS.fd" : nil
        }
        return String(xml[close.upperBound..<end.lowerBound])
    }

    /// A VM with a fresh 32 MiB qcow2 disk; a generation 2 VM is started once (under TCG,
    /// OVMF makes its NVRAM) and turned off again.
    static func makeVM(_ client: Client, generation: UInt32, prefix: String) async throws -> (name: String, path: ObjectPath) {
        let name = Names.unique(prefix)
        let path = try await client.create(name, ["Generation": .uint32(generation), "MemoryStartupBytes": .uint64(128 * mib),
                                                  "NewDiskSizeBytes": .uint64(32 * mib)])
        if generation == 2 {
            try await client.vm(path, "Start")
            try await client.vm(path, "TurnOff")
        }
        return (name, path)
    }

    static func deleteVM(_ client: Client, _ vm: ObjectPath, _ name: String) async {
        do { try await client.vm(vm, "Delete", [.vardict(["DeleteDisks": .boolean(true), "Force": .boolean(true)])]) } catch {
            Issue.record("Delete \(name): \(error)")
            _ = try? await virsh(["destroy", name])
            _ = try? await virsh(["undefine", name, "--nvram", "--managed-save"])
        }
    }

    // MARK: Off

    /// Generation 1 and 2, off: the checkpoint brings back the disk and the NVRAM exactly;
    /// the object says what it is; Rename moves it; Delete merges the overlay back into the
    /// VM's own disk file, which then holds what "Now" had.
    @Test(arguments: [UInt32(1), 2])
    func anOffCheckpointBringsBackDiskAndNVRAM(generation: UInt32) async throws {
        try await Self.withService { service, client in
            let (name, vm) = try await Self.makeVM(client, generation: generation, prefix: "ckoff\(generation)")
            let original = try await Self.disk(client, vm)
            do {
                try await Self.write(0x5a, at: 1, original)
                let nvramPath = try await Self.nvram(name)
                let nvramBefore = nvramPath.flatMap { FileManager.default.contents(atPath: $0) }
                if generation == 2 { #expect(nvramBefore != nil, "a started generation 2 VM has an NVRAM file") }

                let before = UInt64(Date().timeIntervalSince1970)
                let checkpoint = try await Self.checkpoint(client, vm, "before the update")
                #expect(checkpoint.rawValue == vm.rawValue + "/Checkpoint/before_20the_20update")
                #expect(try await Self.checkpoints(client, vm) == [checkpoint])
                #expect(try await Self.property(client, checkpoint, "Name") == .string("before the update"))
                #expect(try await Self.property(client, checkpoint, "VM") == .objectPath(vm))
                #expect(try await Self.property(client, checkpoint, "Parent") == .objectPath("/"))
                #expect(try await Self.property(client, checkpoint, "IncludesMemory") == .boolean(false))
                let created = try #require(try await Self.property(client, checkpoint, "CreationTime")?.uint64)
                #expect(created >= before - 1 && created <= UInt64(Date().timeIntervalSince1970) + 1)

                // "Now" writes into an overlay; the VM's own file is frozen.
                let overlay = try await Self.disk(client, vm)
                #expect(overlay != original && overlay.contains("/Snapshots/"), "\(overlay)")
                try await Self.write(0x33, at: 1, overlay)
                if let nvramPath { try Data(repeating: 0xEE, count: 4096).write(to: URL(fileURLWithPath: nvramPath)) }
                #expect(try await Self.holds(0x33, at: 1, overlay))

                try await Self.act(client, checkpoint, "Apply")
                #expect(try await client.state(vm) == "Off")
                let applied = try await Self.disk(client, vm)
                #expect(try await Self.holds(0x5a, at: 1, applied), "the disk is as at the checkpoint")
                if let nvramPath { #expect(FileManager.default.contents(atPath: nvramPath) == nvramBefore, "the NVRAM is as at the checkpoint") }
                #expect(!FileManager.default.fileExists(atPath: overlay), "the overlay nobody needs is gone")

                // Rename moves the object; the old path is gone.
                try await Self.act(client, checkpoint, "Rename", [.string("renamed")])
                let renamed = try #require(ObjectPath(vm.rawValue + "/Checkpoint/renamed"))
                #expect(try await Self.checkpoints(client, vm) == [renamed])
                #expect(try await Self.property(client, renamed, "Name") == .string("renamed"))
                await Self.expectError("org.example.VMMS1.Error.NotFound", "Apply at the old path") {
                    try await Self.act(client, checkpoint, "Apply")
                }

                // Delete: "Now" (with a change after the Apply) folds back into the original file.
                try await Self.write(0x77, at: 2, applied)
                try await Self.act(client, renamed, "Delete", [.vardict([:])])
                #expect(try await Self.checkpoints(client, vm).isEmpty)
                #expect(try await Self.disk(client, vm) == original)
                #expect(try await Self.holds(0x5a, at: 1, original))
                #expect(try await Self.holds(0x77, at: 2, original))
                #expect(Self.snapshotFiles(vm).isEmpty, "\(Self.snapshotFiles(vm))")
                let uuid = (vm.lastElement ?? "").replacingOccurrences(of: "_", with: "-")
                #expect(!FileManager.default.fileExists(atPath: "/var/lib/vmms/machines/Snapshots/\(uuid)"), "the folder goes with the last checkpoint")
                #expect(!(try await virsh(["dumpxml", "--inactive", name]).stdout.contains("Snapshots")))
                // And the VM still starts.
                try await client.vm(vm, "Start")
                #expect(try await client.state(vm) == "Running")
            } catch {
                Issue.record("\(error)")
            }
            await Self.deleteVM(client, vm, name)
        }
    }

    /// The signals come in an order a client can rely on: a new checkpoint's InterfacesAdded
    /// before the VM's Checkpoints names it; on Delete the list drops it before
    /// InterfacesRemoved; a Rename is InterfacesRemoved of the old path, then InterfacesAdded.
    @Test func signalsAnnounceCheckpointsBeforeTheListNamesThem() async throws {
        try await Self.withService { service, client in
            let (name, vm) = try await Self.makeVM(client, generation: 1, prefix: "cksignal")
            let signals = try await client.bus.signals(matching: MatchRule(sender: "org.example.VMMS1", pathNamespace: "/org/example/VMMS1"))
            let seen = Log()
            let watcher = Task {
                for await signal in signals {
                    switch signal.member {
                    case "InterfacesAdded", "InterfacesRemoved":
                        if let path = signal.body.first?.objectPath, path.rawValue.contains("/Checkpoint/") {
                            await seen.append("\(signal.member ?? "") \(path.lastElement ?? "")")
                        }
                    case "PropertiesChanged" where signal.path == vm:
                        if case .array(_, let items)? = signal.body.dropFirst().first?.stringKeyedDictionary?["Checkpoints"] {
                            await seen.append("list \(items.compactMap { $0.objectPath?.lastElement }.joined(separator: ","))")
                        }
                    default: break
                    }
                }
            }
            do {
                let checkpoint = try await Self.checkpoint(client, vm, "one")
                try await Self.act(client, checkpoint, "Rename", [.string("two")])
                let renamed = try #require(ObjectPath(vm.rawValue + "/Checkpoint/two"))
                try await Self.act(client, renamed, "Delete", [.vardict([:])])
                _ = await HardeningTests.eventually(5) { await seen.values.count >= 7 }
                #expect(await seen.values == ["InterfacesAdded one", "list one", "InterfacesRemoved one", "InterfacesAdded two",
                                              "list two", "list ", "InterfacesRemoved two"])
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            watcher.cancel()
            await Self.deleteVM(client, vm, name)
        }
    }

    // MARK: Running

    /// Writes `byte` over 1 MiB at `offset` MiB of the running guest's first virtio disk
    /// through QEMU's monitor (qemu-io on the device's block backend).
    static func writeLive(_ byte: UInt8, at offset: Int, _ name: String) async throws {
        let result = try await virsh(["qemu-monitor-command", name, "--hmp",
                                      "qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend \"write -P \(byte) \(offset)M 1M\""])
        guard result.status == 0, result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw TestFailure("live write on \(name): \(result.stdout) \(result.stderr)")
        }
    }

    /// A VM that runs without an OS: generation 1 boots a spinning boot sector from a raw disk
    /// (so the chain's base is raw), generation 2 sits in OVMF on a qcow2 disk.
    static func makeRunningVM(_ client: Client, generation: UInt32) async throws -> (name: String, path: ObjectPath, cleanup: String?) {
        let name = Names.unique("ckrun\(generation)")
        var settings: [String: DBusValue] = ["Generation": .uint32(generation), "MemoryStartupBytes": .uint64(128 * mib)]
        var spinner: String?
        if generation == 1 {
            let file = try await client.diskDirectory() + "/\(name)-spin.img"
            var sector = [UInt8](repeating: 0, count: 512)
            sector[0] = 0xEB; sector[1] = 0xFE; sector[510] = 0x55; sector[511] = 0xAA
            try Data(sector + [UInt8](repeating: 0, count: Int(8 * mib) - 512)).write(to: URL(fileURLWithPath: file))
            settings["DiskPath"] = .string(file)
            spinner = file
        } else {
            settings["NewDiskSizeBytes"] = .uint64(32 * mib)
        }
        let path = try await client.create(name, settings)
        try await client.vm(path, "Start")
        return (name, path, spinner)
    }

    /// A checkpoint of a running guest holds its memory; applying it leaves the VM Saved, and
    /// Start resumes it (libvirt says "restored") with the disk as it was. A paused guest stays
    /// paused while checkpointed. Deleting the checkpoints of the running VM merges live (block
    /// commit into the base, pivot off the running image) back into the VM's own disk file.
    @Test(arguments: [UInt32(1), 2])
    func aRunningCheckpointAppliesAsSavedAndStartResumes(generation: UInt32) async throws {
        try await Self.withService { service, client in
            let (name, vm, spinner) = try await Self.makeRunningVM(client, generation: generation)
            defer { if let spinner { try? FileManager.default.removeItem(atPath: spinner) } }
            do {
                let original = try await Self.disk(client, vm)
                try await Self.writeLive(0x5a, at: 1, name)
                let running = try await Self.checkpoint(client, vm, "running")
                #expect(try await client.state(vm) == "Running", "the guest runs on after the checkpoint")
                #expect(try await LifecycleTests.domstate(name) == "running")
                #expect(try await Self.property(client, running, "IncludesMemory") == .boolean(true))
                try await Self.writeLive(0x33, at: 1, name)

                await Self.expectError("org.example.VMMS1.Error.InvalidState", "Apply while Running") {
                    try await Self.act(client, running, "Apply")
                }
                try await client.vm(vm, "TurnOff")
                #expect(try await Self.holds(0x33, at: 1, try await Self.disk(client, vm)))
                try await Self.act(client, running, "Apply")
                #expect(try await client.state(vm) == "Saved")
                #expect(try await LifecycleTests.domstate(name) == "shut off")
                #expect(try await Self.holds(0x5a, at: 1, try await Self.disk(client, vm)), "the disk is as at the checkpoint")
                // Applying to a Saved VM replaces its saved state.
                try await Self.act(client, running, "Apply")
                #expect(try await client.state(vm) == "Saved")
                #expect(Self.snapshotFiles(vm).filter { $0.hasSuffix(".qcow2") }.count == 1, "\(Self.snapshotFiles(vm))")
                try await client.vm(vm, "Start")
                #expect(try await client.state(vm) == "Running")
                let reason = try await virsh(["domstate", "--reason", name]).stdout
                #expect(reason.contains("restored"), "the guest resumed from the memory image: \(reason)")

                // Paused: checkpointed paused, stays paused.
                try await client.vm(vm, "Pause")
                let paused = try await Self.checkpoint(client, vm, "paused")
                #expect(try await client.state(vm) == "Paused")
                #expect(try await Self.property(client, paused, "Parent") == .objectPath(running))
                try await client.vm(vm, "Resume")

                // Renamed, the VM keeps its checkpoints; libvirt restores a memory image only
                // under the name it was saved with, and Apply says so before touching anything.
                try await client.vm(vm, "TurnOff")
                try await client.vm(vm, "Rename", [.string(name + "-r")])
                #expect(try await Self.checkpoints(client, vm) == [running, paused])
                let diskBefore = try await Self.disk(client, vm)
                await Self.expectError("org.example.VMMS1.Error.InvalidState", "Apply of a memory checkpoint after a rename") {
                    try await Self.act(client, running, "Apply")
                }
                #expect(try await Self.disk(client, vm) == diskBefore)
                try await client.vm(vm, "Rename", [.string(name)])
                try await client.vm(vm, "Start")

                // Live merges: the older checkpoint first (an intermediate commit), then the
                // newer (an active commit with pivot), while the guest runs.
                try await Self.act(client, running, "Delete", [.vardict([:])])
                #expect(try await Self.checkpoints(client, vm) == [paused])
                #expect(try await Self.property(client, paused, "Parent") == .objectPath("/"))
                #expect(try await client.state(vm) == "Running")
                try await Self.act(client, paused, "Delete", [.vardict([:])])
                #expect(try await Self.checkpoints(client, vm).isEmpty)
                #expect(try await client.state(vm) == "Running")
                #expect(try await Self.disk(client, vm) == original)
                try await client.vm(vm, "TurnOff")
                #expect(try await Self.holds(0x5a, at: 1, original), "the VM's own file holds what the guest wrote")
                #expect(Self.snapshotFiles(vm).isEmpty, "\(Self.snapshotFiles(vm))")
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            await Self.deleteVM(client, vm, name)
        }
    }

    /// Deleting the checkpoint a Saved VM was applied from merges the VM's image offline into
    /// the original file and re-points the saved-state image too: Start still resumes it.
    @Test func deletingTheAppliedCheckpointOfASavedVMKeepsItResumable() async throws {
        try await Self.withService { service, client in
            let (name, vm, spinner) = try await Self.makeRunningVM(client, generation: 1)
            defer { if let spinner { try? FileManager.default.removeItem(atPath: spinner) } }
            do {
                try await Self.writeLive(0x5a, at: 1, name)
                let checkpoint = try await Self.checkpoint(client, vm, "c")
                try await client.vm(vm, "TurnOff")
                try await Self.act(client, checkpoint, "Apply")
                #expect(try await client.state(vm) == "Saved")
                try await Self.act(client, checkpoint, "Delete", [.vardict([:])])
                #expect(try await client.state(vm) == "Saved")
                #expect(try await Self.disk(client, vm) == spinner)
                #expect(try await Self.holds(0x5a, at: 1, try #require(spinner)))
                let saved = try await virsh(["managedsave-dumpxml", name]).stdout
                #expect(saved.contains(try #require(spinner)) && !saved.contains("/Snapshots/"), "\(saved)")
                try await client.vm(vm, "Start")
                #expect(try await client.state(vm) == "Running")
                #expect(try await virsh(["domstate", "--reason", name]).stdout.contains("restored"))
                #expect(Self.snapshotFiles(vm).isEmpty, "\(Self.snapshotFiles(vm))")
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            await Self.deleteVM(client, vm, name)
        }
    }

    /// kill -9 while the guest is paused for its memory image, and while an Apply restores
    /// memory: after a restart the guest runs again (not left paused) with the checkpoint
    /// recorded, and the Apply is finished (the VM is Saved and resumes).
    @Test(arguments: ["Checkpoint.snapshotTaken", "Apply.restored"])
    func aCrashDuringARunningCheckpointOrItsApplyIsFinished(point: String) async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-ckcrashrun-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            var service = try await SystemVMMSD(stateDirectory: state)
            let (name, vm, spinner) = try await Self.makeRunningVM(client, generation: 1)
            defer { if let spinner { try? FileManager.default.removeItem(atPath: spinner) } }
            do {
                var checkpoint: ObjectPath?
                if point.hasPrefix("Apply") {
                    checkpoint = try await Self.checkpoint(client, vm, "c")
                    try await client.vm(vm, "TurnOff")
                }
                service.stop()
                let crashing = try await SystemVMMSD(stateDirectory: state, environment: ["VMMSD_TEST_CRASH_AT": point])
                do {
                    if let checkpoint { try await Self.act(client, checkpoint, "Apply") } else { _ = try await Self.checkpoint(client, vm, "c") }
                    Issue.record("the call replied although vmmsd should have died at \(point)")
                } catch {}
                #expect(await HardeningTests.eventually(20) { crashing.process.exitStatusIfExited() != nil })
                crashing.stop()
                service = try await SystemVMMSD(stateDirectory: state)
                #expect(((try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? []).isEmpty)
                let checkpoints = try await Self.checkpoints(client, vm)
                #expect(checkpoints.count == 1)
                if point.hasPrefix("Checkpoint") {
                    #expect(try await HardeningTests.eventually(5) { try await client.state(vm) == "Running" }, "the guest was resumed")
                    #expect(try await Self.property(client, try #require(checkpoints.first), "IncludesMemory") == .boolean(true))
                } else {
                    #expect(try await HardeningTests.eventually(5) { try await client.state(vm) == "Saved" }, "the Apply was finished")
                    try await client.vm(vm, "Start")
                    #expect(try await virsh(["domstate", "--reason", name]).stdout.contains("restored"))
                }
            } catch {
                Issue.record("\(point): \(error)\n\(service.log.suffix(3000))")
            }
            await Self.deleteVM(client, vm, name)
            service.stop()
        }
    }

    /// A VM Delete racing a Checkpoint of the running VM: one of them waits its turn
    /// (InvalidState naming the other) or finds the VM gone, and a deleted VM leaves no
    /// checkpoint file behind.
    @Test func aDeleteRacingACheckpointLeavesNoHalfCheckpoint() async throws {
        try await Self.withService { service, client in
            let (name, vm, spinner) = try await Self.makeRunningVM(client, generation: 1)
            defer { if let spinner { try? FileManager.default.removeItem(atPath: spinner) } }
            async let taken: Result<ObjectPath, any Error> = Result { try await Self.checkpoint(client, vm, "racing") }
            async let deleted: Result<Void, any Error> = Result { try await client.vm(vm, "Delete", [.vardict(["Force": .boolean(true)])]) }
            let (checkpoint, deletion) = await (taken, deleted)
            for case .failure(let error) in [checkpoint.map { _ in () }, deletion] {
                let name = (error as? DBusError)?.name ?? "\(error)"
                #expect(name == "org.example.VMMS1.Error.InvalidState" || name == "org.example.VMMS1.Error.NotFound", "\(error)")
            }
            if case .success = deletion {
                #expect(try await !HardeningTests.exists(name))
                #expect(Self.snapshotFiles(vm).isEmpty, "\(Self.snapshotFiles(vm))")
            } else {
                await Self.deleteVM(client, vm, name)
                #expect(Self.snapshotFiles(vm).isEmpty, "\(Self.snapshotFiles(vm))")
            }
            _ = service
        }
    }

    // MARK: Branches

    /// Apply an older checkpoint, take a new one: two branches under one parent, each applied
    /// in turn has its own contents. Deleting their shared parent keeps its image as their base;
    /// deleting one branch frees its file and folds the base into the other.
    @Test func branchesKeepTheirContentsAndDeletesKeepTheNeighbours() async throws {
        try await Self.withService { service, client in
            let (name, vm) = try await Self.makeVM(client, generation: 1, prefix: "ckbranch")
            do {
                let original = try await Self.disk(client, vm)
                try await Self.write(0x11, at: 1, original)
                let a = try await Self.checkpoint(client, vm, "A")
                try await Self.write(0x22, at: 2, try await Self.disk(client, vm))
                let b = try await Self.checkpoint(client, vm, "B")
                let bFrozen = try await Self.disk(client, vm)
                try await Self.act(client, a, "Apply")
                #expect(try await !Self.holds(0x22, at: 2, try await Self.disk(client, vm)))
                try await Self.write(0x33, at: 3, try await Self.disk(client, vm))
                let c = try await Self.checkpoint(client, vm, "C")
                #expect(try await Self.checkpoints(client, vm) == [a, b, c])
                #expect(try await Self.property(client, b, "Parent") == .objectPath(a))
                #expect(try await Self.property(client, c, "Parent") == .objectPath(a))

                for _ in 0..<2 {
                    try await Self.act(client, b, "Apply")
                    var disk = try await Self.disk(client, vm)
                    #expect(try await Self.holds(0x11, at: 1, disk))
                    #expect(try await Self.holds(0x22, at: 2, disk))
                    #expect(try await !Self.holds(0x33, at: 3, disk))
                    try await Self.act(client, c, "Apply")
                    disk = try await Self.disk(client, vm)
                    #expect(try await Self.holds(0x33, at: 3, disk))
                    #expect(try await !Self.holds(0x22, at: 2, disk))
                }

                // A, the parent of both: its image stays as their shared base.
                try await Self.act(client, a, "Delete", [.vardict([:])])
                #expect(try await Self.checkpoints(client, vm) == [b, c])
                #expect(try await Self.property(client, b, "Parent") == .objectPath("/"))
                #expect(FileManager.default.fileExists(atPath: original))
                try await Self.act(client, b, "Apply")
                #expect(try await Self.holds(0x11, at: 1, try await Self.disk(client, vm)))
                #expect(try await Self.holds(0x22, at: 2, try await Self.disk(client, vm)))

                // B: its file goes, and the base folds into C's branch.
                try await Self.act(client, c, "Apply")
                let filesBefore = Self.snapshotFiles(vm).count
                try await Self.act(client, b, "Delete", [.vardict([:])])
                #expect(!FileManager.default.fileExists(atPath: bFrozen), "B's image is deleted")
                #expect(Self.snapshotFiles(vm).count < filesBefore)
                try await Self.act(client, c, "Apply")
                let disk = try await Self.disk(client, vm)
                #expect(try await Self.holds(0x11, at: 1, disk))
                #expect(try await Self.holds(0x33, at: 3, disk))

                // A subtree at once.
                let d = try await Self.checkpoint(client, vm, "D")
                let e = try await Self.checkpoint(client, vm, "E")
                #expect(try await Self.property(client, e, "Parent") == .objectPath(d))
                try await Self.act(client, d, "Delete", [.vardict(["IncludeChildren": .boolean(true)])])
                #expect(try await Self.checkpoints(client, vm) == [c])
                try await Self.act(client, c, "Delete", [.vardict([:])])
                #expect(try await Self.disk(client, vm) == original)
                #expect(try await Self.holds(0x33, at: 3, original))
                #expect(Self.snapshotFiles(vm).isEmpty, "\(Self.snapshotFiles(vm))")
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            await Self.deleteVM(client, vm, name)
        }
    }

    // MARK: Bad input, other clients, polkit

    /// busctl and gdbus as the test users: odd names, a duplicate, Apply while Running, a
    /// checkpoint that is gone, an unknown option, disk changes while checkpoints exist, a VM
    /// without disks; bob is refused, alice (vmms-admins) is not. The object introspects as
    /// dbus/org.example.VMMS1.Checkpoint.xml says.
    @Test func badInputIsRefusedAndLeavesTheTreeAsItWas() async throws {
        try await Self.withService { service, client in
            let (name, vm) = try await Self.makeVM(client, generation: 1, prefix: "ckbad")
            let root = GDBus(user: "root"), alice = GDBus(user: "alice"), bob = GDBus(user: "bob")
            do {
                for bad in ["", "-dash", ".dot", "a/b", "tab\there", String(repeating: "x", count: 65), "caf\u{e9}"] {
                    let outcome = try await busctl(as: "root", ["call", "--", "org.example.VMMS1", vm.rawValue, Self.vmInterface, "Checkpoint", "s", bad])
                    #expect(outcome.status != 0, "\(bad.debugDescription): \(outcome.stdout)")
                    #expect(outcome.stderr.contains("checkpoint name"), "\(bad.debugDescription): \(outcome.stderr)")
                }
                #expect(try await Self.checkpoints(client, vm).isEmpty)

                let created = try await alice.call(vm.rawValue, "\(Self.vmInterface).Checkpoint", ["first one"])
                #expect(created.ok, "\(created)")
                let first = try #require(try await Self.checkpoints(client, vm).first)
                let duplicate = try await root.call(vm.rawValue, "\(Self.vmInterface).Checkpoint", ["first one"])
                #expect(duplicate.errorName == "org.example.VMMS1.Error.AlreadyExists", "\(duplicate)")
                let refused = try await bob.call(vm.rawValue, "\(Self.vmInterface).Checkpoint", ["bobs"])
                #expect(refused.errorName == "org.example.VMMS1.Error.NotAuthorized", "\(refused)")
                for method in ["Apply", "Delete"] {
                    let outcome = try await bob.call(first.rawValue, "\(Self.checkpointInterface).\(method)", method == "Delete" ? ["{}"] : [])
                    #expect(outcome.errorName == "org.example.VMMS1.Error.NotAuthorized", "\(method): \(outcome)")
                }
                let unknown = try await root.call(first.rawValue, "\(Self.checkpointInterface).Delete", ["{'Children': <true>}"])
                #expect(unknown.errorName == "org.freedesktop.DBus.Error.InvalidArgs", "\(unknown)")
                let second = try await Self.checkpoint(client, vm, "second")
                let taken = try await root.call(second.rawValue, "\(Self.checkpointInterface).Rename", ["first one"])
                #expect(taken.errorName == "org.example.VMMS1.Error.AlreadyExists", "\(taken)")
                let disk = try await root.call(vm.rawValue, "\(Self.vmInterface).AddHardDisk", ["{'SizeBytes': <uint64 16777216>}"])
                #expect(disk.errorName == "org.example.VMMS1.Error.InvalidState" && disk.output.contains("checkpoints"), "\(disk)")
                let removal = try await root.call(vm.rawValue, "\(Self.vmInterface).RemoveHardDisk", [try await Self.disk(client, vm), "{}"])
                #expect(removal.errorName == "org.example.VMMS1.Error.InvalidState" && removal.output.contains("checkpoints"), "\(removal)")

                // The introspection matches the XML file.
                let xml = try await busctl(as: "root", ["introspect", "--xml-interface", "org.example.VMMS1", first.rawValue])
                let live = try InterfaceShape.parse(xml.stdout)
                let expected = try InterfaceShape.parse(String(contentsOfFile: repositoryRoot + "/dbus/org.example.VMMS1.Checkpoint.xml", encoding: .utf8))
                #expect(!expected.isEmpty)
                for (interface, shape) in expected { #expect(live[interface] == shape, "\(interface)") }

                // Apply while Running names the state; nothing changes.
                try await client.vm(vm, "Start")
                let running = try await root.call(first.rawValue, "\(Self.checkpointInterface).Apply")
                #expect(running.errorName == "org.example.VMMS1.Error.InvalidState" && running.output.contains("Running"), "\(running)")
                #expect(try await client.state(vm) == "Running")
                try await client.vm(vm, "TurnOff")

                // Gone: NotFound at its path.
                try await Self.act(client, first, "Delete", [.vardict([:])])
                let gone = try await root.call(first.rawValue, "\(Self.checkpointInterface).Apply")
                #expect(gone.errorName == "org.example.VMMS1.Error.NotFound", "\(gone)")
                let goneDelete = try await root.call(first.rawValue, "\(Self.checkpointInterface).Delete", ["{}"])
                #expect(goneDelete.errorName == "org.example.VMMS1.Error.NotFound", "\(goneDelete)")
                #expect(try await Self.checkpoints(client, vm) == [second])
                #expect(try await Self.property(client, second, "Parent") == .objectPath("/"))

                // An external snapshot made with virsh behind vmms's back: the VM object carries
                // on, checkpoint calls say what changed, and putting the disk back heals it.
                let active = try await Self.disk(client, vm)
                let behind = NSTemporaryDirectory() + "\(name)-behind.qcow2"
                defer { try? FileManager.default.removeItem(atPath: behind) }
                let external = try await virsh(["snapshot-create-as", name, "ext", "--disk-only", "--no-metadata", "--diskspec", "vda,file=\(behind)"])
                #expect(external.status == 0, "\(external.stderr)")
                #expect(try await HardeningTests.eventually(5) { try await Self.disk(client, vm) == behind })
                #expect(try await client.state(vm) == "Off")
                let changed = try await root.call(vm.rawValue, "\(Self.vmInterface).Checkpoint", ["third"])
                #expect(changed.errorName == "org.example.VMMS1.Error.InvalidState" && changed.output.contains("outside vmms"), "\(changed)")
                let applyChanged = try await root.call(second.rawValue, "\(Self.checkpointInterface).Apply")
                #expect(applyChanged.errorName == "org.example.VMMS1.Error.InvalidState", "\(applyChanged)")
                let changedXML = try await virsh(["dumpxml", "--inactive", name]).stdout
                let healed = NSTemporaryDirectory() + "\(name)-healed.xml"
                defer { try? FileManager.default.removeItem(atPath: healed) }
                try changedXML.replacingOccurrences(of: behind, with: active).write(toFile: healed, atomically: true, encoding: .utf8)
                #expect(try await virsh(["define", healed]).status == 0)
                #expect(try await HardeningTests.eventually(5) { try await Self.disk(client, vm) == active })
                #expect(try await root.call(vm.rawValue, "\(Self.vmInterface).Checkpoint", ["third"]).ok)

                // A VM without disks has nothing to checkpoint.
                let diskless = try await root.createVM(Names.unique("cknodisk"))
                let none = try await root.call(diskless, "\(Self.vmInterface).Checkpoint", ["x"])
                #expect(none.errorName == "org.example.VMMS1.Error.NotSupported", "\(none)")
                _ = try await root.call(diskless, "\(Self.vmInterface).Delete", ["{}"])
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            await Self.deleteVM(client, vm, name)
            #expect(Self.snapshotFiles(vm).isEmpty, "VM Delete removes the checkpoints' files")
        }
    }

    // MARK: Restarts, behind the service's back

    /// The checkpoints survive a vmmsd restart (the same objects, the same tree, Apply works);
    /// a libvirt snapshot taken with virsh behind vmms's back is not shown and does not break
    /// the VM object; VM Delete removes the checkpoints, their files and the tree.
    @Test func checkpointsSurviveARestartAndVirshSnapshotsAreIgnored() async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-ckrestart-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            var service = try await SystemVMMSD(stateDirectory: state)
            defer { service.stop() }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let (name, vm) = try await Self.makeVM(client, generation: 1, prefix: "ckrestart")
            do {
                let original = try await Self.disk(client, vm)
                try await Self.write(0x42, at: 1, original)
                let a = try await Self.checkpoint(client, vm, "a")
                let b = try await Self.checkpoint(client, vm, "b")
                let tree = state + "/checkpoints/" + (vm.rawValue.split(separator: "/").last ?? "").replacingOccurrences(of: "_", with: "-") + ".json"
                #expect(FileManager.default.fileExists(atPath: tree))
                let created = try await Self.property(client, a, "CreationTime")
                service.stop()
                service = try await SystemVMMSD(stateDirectory: state)
                #expect(try await Self.checkpoints(client, vm) == [a, b])
                #expect(try await Self.property(client, b, "Parent") == .objectPath(a))
                #expect(try await Self.property(client, a, "CreationTime") == created)
                try await Self.write(0x24, at: 1, try await Self.disk(client, vm))
                // A renamed VM keeps its checkpoints and its name through Apply.
                try await client.vm(vm, "Rename", [.string(name + "-r")])
                try await Self.act(client, a, "Apply")
                #expect(try await Self.holds(0x42, at: 1, try await Self.disk(client, vm)))
                #expect(try await Self.vmProperty(client, vm, "Name") == .string(name + "-r"))
                try await client.vm(vm, "Rename", [.string(name)])

                // libvirt's own internal snapshot: listed by virsh, not by vmms.
                let snap = try await virsh(["snapshot-create-as", name, "behind-the-back"])
                #expect(snap.status == 0, "\(snap.stderr)")
                #expect(try await Self.checkpoints(client, vm) == [a, b])
                #expect(try await client.state(vm) == "Off")
                try await client.vm(vm, "Start")
                #expect(try await client.state(vm) == "Running")
                try await client.vm(vm, "TurnOff")
                // Delete with libvirt's snapshot metadata and vmms's checkpoints.
                try await client.vm(vm, "Delete", [.vardict(["DeleteDisks": .boolean(true)])])
                #expect(try await !HardeningTests.exists(name))
                #expect(Self.snapshotFiles(vm).isEmpty)
                #expect(!FileManager.default.fileExists(atPath: tree))
                #expect(!FileManager.default.fileExists(atPath: original), "DeleteDisks deletes the VM's own disk, into which the checkpoints folded")
                return
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            await Self.deleteVM(client, vm, name)
        }
    }

    // MARK: Crash safety

    /// kill -9 of vmmsd at each step of Checkpoint, Apply and Delete, then a restart: the VM
    /// has either the state before or the finished one, its definition, the tree and the files
    /// agree (every file of the tree exists, none is left over), it starts, and the journal is
    /// empty.
    @Test(arguments: ["Checkpoint.intended", "Checkpoint.filesMade", "Checkpoint.switched",
                      "Apply.intended", "Apply.overlaysMade", "Apply.switched", "Delete.recorded", "Tidy.merged"])
    func aCrashAtAnyStepLeavesThePreviousOrTheFinishedState(point: String) async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-ckcrash-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            var service = try await SystemVMMSD(stateDirectory: state)
            let (name, vm) = try await Self.makeVM(client, generation: 1, prefix: "ckcrash")
            var crashing: SystemVMMSD?
            do {
                try await Self.write(0x61, at: 1, try await Self.disk(client, vm))
                var base: ObjectPath?
                if !point.hasPrefix("Checkpoint") {
                    base = try await Self.checkpoint(client, vm, "base")
                    try await Self.write(0x62, at: 1, try await Self.disk(client, vm))
                }
                service.stop()
                crashing = try await SystemVMMSD(stateDirectory: state, environment: ["VMMSD_TEST_CRASH_AT": point])
                do {
                    if point.hasPrefix("Checkpoint") {
                        _ = try await Self.checkpoint(client, vm, "crash")
                    } else if point.hasPrefix("Apply") {
                        try await Self.act(client, try #require(base), "Apply")
                    } else {
                        try await Self.act(client, try #require(base), "Delete", [.vardict([:])])
                    }
                    Issue.record("the call replied although vmmsd should have died at \(point)")
                } catch {}
                let died = await HardeningTests.eventually(20) { crashing?.process.exitStatusIfExited() != nil }
                #expect(died && crashing?.process.exitStatusIfExited() == 128 + SIGKILL, "vmmsd did not die at \(point)")
                crashing?.stop()
                crashing = nil
                service = try await SystemVMMSD(stateDirectory: state)

                if point.hasPrefix("Delete") || point.hasPrefix("Tidy") {
                    // The restarted service finishes folding the images in the background.
                    #expect(await HardeningTests.eventually(30) { Self.snapshotFiles(vm).isEmpty }, "\(Self.snapshotFiles(vm))")
                    let folded = try await HardeningTests.eventually(10) { !(try await Self.disk(client, vm)).contains("/Snapshots/") }
                    #expect(folded, "the disk is the VM's own file again")
                }
                let journal = (try? FileManager.default.contentsOfDirectory(atPath: state + "/journal")) ?? []
                #expect(journal.isEmpty, "\(journal)")
                // The definition names the tree's images, and every file is accounted for.
                let disk = try await Self.disk(client, vm)
                let xml = try await virsh(["dumpxml", "--inactive", name]).stdout
                #expect(xml.contains("'\(disk)'"))
                #expect(FileManager.default.fileExists(atPath: disk))
                let treePath = state + "/checkpoints/" + (vm.rawValue.split(separator: "/").last ?? "").replacingOccurrences(of: "_", with: "-") + ".json"
                let treeText = (try? String(contentsOfFile: treePath, encoding: .utf8)) ?? ""
                for file in Self.snapshotFiles(vm) {
                    #expect(treeText.contains(file), "\(file) is left over after a crash at \(point)")
                }
                let checkpoints = try await Self.checkpoints(client, vm)
                switch point {
                case "Checkpoint.intended", "Checkpoint.filesMade":
                    #expect(checkpoints.isEmpty, "the checkpoint was undone")
                    #expect(try await Self.holds(0x61, at: 1, disk))
                case "Checkpoint.switched":
                    #expect(checkpoints.count == 1, "the checkpoint was finished")
                case "Apply.intended", "Apply.overlaysMade":
                    #expect(try await Self.holds(0x62, at: 1, disk), "the Apply was undone")
                case "Apply.switched":
                    #expect(try await Self.holds(0x61, at: 1, disk), "the Apply was finished")
                default:
                    #expect(checkpoints.isEmpty, "the Delete was finished")
                    #expect(try await Self.holds(0x62, at: 1, disk))
                    #expect(Self.snapshotFiles(vm).isEmpty, "\(Self.snapshotFiles(vm))")
                }
                try await client.vm(vm, "Start")
                #expect(try await client.state(vm) == "Running")
            } catch {
                Issue.record("\(point): \(error)\n\(service.log.suffix(3000))")
            }
            crashing?.stop()
            await Self.deleteVM(client, vm, name)
            service.stop()
        }
    }
}

/// A libvirtd restart under a VM with checkpoints: the checkpoints stay, and Apply, Start
/// and a live merge work on the new connection.
@Suite(.disturbsLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct CheckpointLibvirtdRestartTests {
    typealias Suite = CheckpointTests

    @Test func checkpointsSurviveALibvirtdRestart() async throws {
        try await Suite.withService { service, client in
            let (name, vm, spinner) = try await Suite.makeRunningVM(client, generation: 1)
            defer { if let spinner { try? FileManager.default.removeItem(atPath: spinner) } }
            do {
                try await Suite.writeLive(0x5a, at: 1, name)
                let checkpoint = try await Suite.checkpoint(client, vm, "before restart")
                try await Libvirtd.stop()
                try await Libvirtd.start()
                let connected = await HardeningTests.eventually(30) {
                    (try? await client.call("/org/example/VMMS1/Host", Suite.props, "Get",
                                            [.string("org.example.VMMS1.Host"), .string("Connected")]).first?.variant?.boolean) == true
                }
                #expect(connected)
                #expect(try await Suite.checkpoints(client, vm) == [checkpoint])
                #expect(try await client.state(vm) == "Running")
                try await Suite.writeLive(0x33, at: 1, name)
                try await client.vm(vm, "TurnOff")
                try await Suite.act(client, checkpoint, "Apply")
                #expect(try await client.state(vm) == "Saved")
                #expect(try await Suite.holds(0x5a, at: 1, try await Suite.disk(client, vm)))
                try await client.vm(vm, "Start")
                #expect(try await client.state(vm) == "Running")
                try await Suite.act(client, checkpoint, "Delete", [.vardict([:])])
                #expect(try await Suite.checkpoints(client, vm).isEmpty)
                #expect(try await Suite.disk(client, vm) == spinner)
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            await Suite.deleteVM(client, vm, name)
        }
    }
}
