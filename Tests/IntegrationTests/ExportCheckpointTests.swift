import DBus
import Foundation
import TestSupport
import Testing

/// Checkpoints travel with Export, Import and storage Move (real stack, generation 2 VMs on
/// OVMF under TCG, 32 MiB disks): the chains, NVRAM copies, memory images and the tree come
/// along, and Apply on the other side brings back what each checkpoint held.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct ExportCheckpointTests {
    typealias Client = LifecycleTests.Client
    typealias C = CheckpointTests
    static let host: ObjectPath = "/org/example/VMMS1/Host"

    /// A generation 2 VM whose disk holds 0x11 at 1 MiB in checkpoint "off" (taken Off), 0x33
    /// in checkpoint "running" (taken Running, with memory), and 0x44 "Now"; it runs.
    static func vmWithTwoCheckpoints(_ client: Client, _ prefix: String) async throws -> (name: String, path: ObjectPath, off: ObjectPath, running: ObjectPath) {
        let (name, vm) = try await C.makeVM(client, generation: 2, prefix: prefix)
        try await C.write(0x11, at: 1, try await C.disk(client, vm))
        let off = try await C.checkpoint(client, vm, "off")
        try await client.vm(vm, "Start")
        try await C.writeLive(0x33, at: 1, name)
        let running = try await C.checkpoint(client, vm, "running")
        try await C.writeLive(0x44, at: 1, name)
        return (name, vm, off, running)
    }

    static func job(_ client: Client, _ watcher: JobTests.Watcher, _ path: ObjectPath, _ interface: String, _ member: String,
                    _ body: [DBusValue]) async throws {
        let job = try #require(try await client.call(path, interface, member, body).first?.objectPath)
        let ending = await watcher.wait(job, seconds: 120)
        guard ending?.state == "Completed" else { throw TestFailure("\(member): \(String(describing: ending))") }
    }

    static func importVM(_ client: Client, _ watcher: JobTests.Watcher, _ export: String, _ options: [String: DBusValue]) async throws -> ObjectPath {
        try await job(client, watcher, host, "org.example.VMMS1.Host", "ImportVM", [.string(export), .vardict(options)])
        let name = options["Name"]?.string ?? (export as NSString).lastPathComponent
        return try #require(try await client.call(host, "org.example.VMMS1.Host", "LookupVM", [.string(name)]).first?.objectPath)
    }

    /// The checkpoints of `vm` as (name, parent's name, includes memory).
    static func tree(_ client: Client, _ vm: ObjectPath) async throws -> [String] {
        let paths = try await C.checkpoints(client, vm)
        var names: [ObjectPath: String] = [:]
        for path in paths { names[path] = try await C.property(client, path, "Name")?.string ?? "?" }
        var result: [String] = []
        for path in paths {
            let parent = try await C.property(client, path, "Parent")?.objectPath
            let memory = try await C.property(client, path, "IncludesMemory") == .boolean(true)
            result.append("\(names[path] ?? "?") < \(parent.flatMap { names[$0] } ?? "-")\(memory ? " +memory" : "")")
        }
        return result
    }

    static func named(_ client: Client, _ vm: ObjectPath, _ name: String) async throws -> ObjectPath {
        for path in try await C.checkpoints(client, vm) where try await C.property(client, path, "Name")?.string == name { return path }
        throw TestFailure("no checkpoint \(name) on \(vm)")
    }

    static func files(_ folder: String) -> [String] {
        ((FileManager.default.enumerator(atPath: folder)?.allObjects as? [String]) ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }

    static func backingName(_ image: String) async throws -> String? {
        let info = try await runCommand("/usr/bin/qemu-img", ["info", "-U", "--output=json", image])
        guard let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any] else { return nil }
        return object["backing-filename"] as? String
    }

    /// Exported Running and Off: every image, NVRAM copy, memory image and the tree are in the
    /// export, overlays name their backing file relatively. Imported with new identities
    /// (from both exports), the checkpoints are there without memory and Apply brings back
    /// each one's disk; imported under its own identity (the original deleted), a checkpoint
    /// with memory applies as Saved and Start resumes it.
    @Test func checkpointsTravelWithExportAndImport() async throws {
        try await C.withService { service, client in
            let watcher = try await JobTests.Watcher(client.bus)
            let (name, vm, _, _) = try await Self.vmWithTwoCheckpoints(client, "ckexp")
            var imported: [(String, ObjectPath)] = []
            let folder = try await JobTests.folder(client, "ckexp")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            do {
                for round in ["running", "off"] {
                    if round == "off" { try await client.vm(vm, "TurnOff") }
                    try FileManager.default.createDirectory(atPath: folder + "/" + round, withIntermediateDirectories: false)
                    try await Self.job(client, watcher, vm, C.vmInterface, "Export", [.string(folder + "/" + round), .vardict([:])])
                    let root = folder + "/" + round + "/" + name
                    let snapshots = Self.files(root + "/Snapshots")
                    #expect(snapshots.contains("checkpoints.json"), "\(snapshots)")
                    #expect(snapshots.filter { $0.hasSuffix(".nvram") }.count == 2 && snapshots.filter { $0.hasSuffix(".mem") }.count == 1, "\(snapshots)")
                    let images = Self.files(root + "/Virtual Hard Disks")
                    #expect(images.count == 3, "the base, two overlays: \(images)")
                    var overlays = 0
                    for image in images {
                        guard let backing = try await Self.backingName(root + "/Virtual Hard Disks/" + image) else { continue }
                        overlays += 1
                        #expect(!backing.contains("/") && images.contains(backing), "\(image) on \(backing)")
                    }
                    // Running: "Now" is libvirt's backup, one whole image.
                    #expect(overlays == (round == "off" ? 2 : 1), "\(round): \(overlays) overlays")
                    let manifest = Self.files(root + "/Virtual Machines").first { $0.hasSuffix(".json") } ?? ""
                    let data = try Data(contentsOf: URL(fileURLWithPath: root + "/Virtual Machines/" + manifest))
                    let top = try #require(((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["disks"] as? [[String: Any]])?.first?["file"] as? String)
                    #expect(try await C.holds(0x44, at: 1, root + "/" + top), "the export holds \"Now\" (\(round))")
                }
                let expected = ["off < -", "running < off +memory"]
                #expect(try await Self.tree(client, vm) == expected)

                // New identities, from both exports: no memory; Apply brings back the disk.
                for round in ["running", "off"] {
                    let copy = try await Self.importVM(client, watcher, folder + "/" + round + "/" + name,
                                                       ["GenerateNewId": .boolean(true), "Name": .string(name + "-" + round.prefix(1))])
                    imported.append((name + "-" + round.prefix(1), copy))
                    #expect(try await Self.tree(client, copy) == ["off < -", "running < off"], "\(round)")
                    #expect(try await C.holds(0x44, at: 1, try await C.disk(client, copy)), "\(round)")
                    for (checkpoint, byte) in [("off", UInt8(0x11)), ("running", 0x33)] {
                        try await C.act(client, try await Self.named(client, copy, checkpoint), "Apply")
                        #expect(try await client.state(copy) == "Off")
                        #expect(try await C.holds(byte, at: 1, try await C.disk(client, copy)), "\(round): \(checkpoint)")
                    }
                    let disk = try await C.disk(client, copy)
                    #expect(!disk.hasPrefix(folder), "a copy: \(disk)")
                }

                // The same identity, the original gone: the memory came along.
                await C.deleteVM(client, vm, name)
                let again = try await Self.importVM(client, watcher, folder + "/off/" + name, [:])
                imported.append((name, again))
                #expect(try await Self.tree(client, again) == expected)
                try await C.act(client, try await Self.named(client, again, "running"), "Apply")
                #expect(try await client.state(again) == "Saved")
                #expect(try await C.holds(0x33, at: 1, try await C.disk(client, again)))
                try await client.vm(again, "Start")
                let reason = try await virsh(["domstate", "--reason", name]).stdout
                #expect(reason.contains("restored"), "resumed from the imported memory image: \(reason)")
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
                await C.deleteVM(client, vm, name)
            }
            for (copyName, copy) in imported { await C.deleteVM(client, copy, copyName) }
        }
    }

    /// Moved Running, then Off: every checkpoint file moves into the destination
    /// (`Snapshots/<uuid>/` there), nothing stays behind, the guest runs on, and Apply works
    /// on the moved files (the memory checkpoint resumes).
    @Test func checkpointsMoveWithTheVMRunningAndOff() async throws {
        try await C.withService { service, client in
            let watcher = try await JobTests.Watcher(client.bus)
            let (name, vm, off, running) = try await Self.vmWithTwoCheckpoints(client, "ckmov")
            let first = try await JobTests.folder(client, "ckmov1"), second = try await JobTests.folder(client, "ckmov2")
            defer {
                try? FileManager.default.removeItem(atPath: first)
                try? FileManager.default.removeItem(atPath: second)
            }
            do {
                let before = try await C.disk(client, vm)
                let oldSnapshots = C.snapshotFiles(vm)
                #expect(oldSnapshots.count == 5, "two overlays, the top, two NVRAM copies and a memory image: \(oldSnapshots)")
                let uuid = try #require(try await C.vmProperty(client, vm, "UUID")?.string)

                try await Self.job(client, watcher, vm, C.vmInterface, "Move", [.string(first), .vardict([:])])
                #expect(try await LifecycleTests.domstate(name) == "running")
                #expect(C.snapshotFiles(vm).isEmpty, "\(C.snapshotFiles(vm))")
                #expect(!FileManager.default.fileExists(atPath: before))
                let moved = Self.files(first)
                #expect(moved.filter { $0.hasPrefix("Snapshots/\(uuid)/") }.count == 5, "\(moved)")
                #expect(try await C.disk(client, vm).hasPrefix(first + "/Snapshots/\(uuid)/"))
                try await C.writeLive(0x55, at: 2, name)
                try await client.vm(vm, "TurnOff")
                #expect(try await C.holds(0x44, at: 1, try await C.disk(client, vm)))
                #expect(try await C.holds(0x55, at: 2, try await C.disk(client, vm)))

                try await Self.job(client, watcher, vm, C.vmInterface, "Move", [.string(second), .vardict([:])])
                #expect(Self.files(first).isEmpty, "\(Self.files(first))")
                let nvram = try #require(try await C.nvram(name))
                #expect(nvram.hasPrefix(second + "/"), "Off, the NVRAM moves too: \(nvram)")
                #expect(try await C.holds(0x44, at: 1, try await C.disk(client, vm)))

                try await C.act(client, off, "Apply")
                #expect(try await C.holds(0x11, at: 1, try await C.disk(client, vm)))
                try await C.act(client, running, "Apply")
                #expect(try await client.state(vm) == "Saved")
                #expect(try await C.holds(0x33, at: 1, try await C.disk(client, vm)))
                try await client.vm(vm, "Start")
                let reason = try await virsh(["domstate", "--reason", name]).stdout
                #expect(reason.contains("restored"), "\(reason)")
                #expect(try await C.disk(client, vm).hasPrefix(second + "/Snapshots/\(uuid)/"), "new overlays beside the moved ones")
            } catch {
                Issue.record("\(error)\n\(service.log.suffix(3000))")
            }
            await C.deleteVM(client, vm, name)
        }
    }

    /// kill -9 of vmmsd during a storage Move of a VM with a checkpoint (Off): after the
    /// restart either the old files and tree (cut short before the switch) or the new ones
    /// with the old files gone (after it); the journal empty, Apply works either way.
    @Test(arguments: ["Move.intended", "Move.switched"])
    func aCrashDuringAMoveWithCheckpointsLeavesTheOldOrTheNewFiles(point: String) async throws {
        try await SystemBusNameLock.with {
            let state = NSTemporaryDirectory() + "vmms-ckcrash-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let client = Client(bus: try DBusConnection(bus: .system))
            defer { client.bus.close() }
            let first = try await SystemVMMSD(stateDirectory: state)
            var running: SystemVMMSD? = first
            defer { running?.stop() }
            let (name, vm) = try await C.makeVM(client, generation: 1, prefix: "ckcrash")
            let folder = try await JobTests.folder(client, "ckcrash")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            do {
                try await C.write(0x11, at: 1, try await C.disk(client, vm))
                let checkpoint = try await C.checkpoint(client, vm, "a")
                try await C.write(0x22, at: 1, try await C.disk(client, vm))
                let before = try await C.disk(client, vm), oldFiles = C.snapshotFiles(vm)
                first.stop()
                running = nil
                running = try await JobTests.crash(at: point, state: state) {
                    _ = try? await client.call(vm, C.vmInterface, "Move", [.string(folder), .vardict([:])])
                }
                let now = try await C.disk(client, vm)
                if point == "Move.switched" {
                    #expect(now.hasPrefix(folder + "/Snapshots/"), "\(now)")
                    #expect(C.snapshotFiles(vm).isEmpty && !FileManager.default.fileExists(atPath: before), "\(C.snapshotFiles(vm))")
                } else {
                    #expect(now == before)
                    #expect(C.snapshotFiles(vm) == oldFiles)
                    #expect(Self.files(folder).isEmpty, "\(Self.files(folder))")
                }
                #expect(try await C.holds(0x22, at: 1, now))
                #expect(try await C.checkpoints(client, vm) == [checkpoint])
                try await C.act(client, checkpoint, "Apply")
                #expect(try await C.holds(0x11, at: 1, try await C.disk(client, vm)))
            } catch {
                Issue.record("\(error)\n\(running?.log.suffix(3000) ?? "")")
            }
            await C.deleteVM(client, vm, name)
        }
    }
}
