import Foundation
import Synchronization
import VMMSModel

/// vmms's own record of every VM's checkpoints (libvirt holds none: its snapshots are made
/// with `VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA`, so `virsh undefine` and libvirt's own
/// snapshot list never see them).
///
/// ## On disk (for Export/Move, which carry checkpoints)
/// - `<state-dir>/checkpoints/<vm uuid>.json`: one `CheckpointTree` (VMMSModel) per VM with
///   checkpoints, replaced durably (`DurableFile`); no file means no checkpoints. It holds
///   absolute paths: per checkpoint its id, name, parent id, creation time, the frozen image
///   per disk target, the NVRAM copy, the memory image, whether the guest was paused, and the
///   persistent domain XML of the moment; the image tree (`images`: path → backing path and
///   format), "Now"'s writable image per target (`active`), the checkpoint "Now" descends
///   from (`current`) and files still to delete (`garbage`).
/// - `<VirtualMachinePath>/Snapshots/<vm uuid>/` (outside every storage pool, so a pool
///   refresh does not list them): `<id>-<target>.qcow2` overlays (qcow2, backing file by
///   absolute path with its format in the header), `<id>.nvram` (sparse copy of the VM's
///   NVRAM), `<id>.mem` (a libvirt save image whose `<domain>` still names the disks as they
///   were: Apply passes an XML re-pointed at "Now"'s new images to `virDomainRestoreFlags`).
///   The VM's original disk file stays where it was: it is the bottom of every chain, and
///   once no checkpoint needs the overlays they are merged back into it. After a storage Move
///   the folder is `<destination>/Snapshots/<vm uuid>/` (and the base images are in
///   `<destination>`); an import in place leaves them in the export folder. Export, Import
///   and Move carry all of it: `CheckpointTransfer`.
/// - The domain's persistent XML names "Now"'s images without `<backingStore>`, so libvirt
///   reads the chain from the qcow2 headers.
/// - Operations in progress are in the `OperationJournal` (`JournalStep.checkpoint`).
final class CheckpointStore: Sendable {
    let directory: String
    private let trees = Mutex<[String: CheckpointTree]>([:])
    let model: CheckpointModel
    let vms: VMModel

    init(stateDirectory: String, model: CheckpointModel, vms: VMModel) {
        directory = stateDirectory + "/checkpoints"
        self.model = model
        self.vms = vms
    }

    func path(of uuid: String) -> String { directory + "/" + uuid + ".json" }

    /// The VM's tree; an empty one when it has no checkpoints.
    func tree(_ uuid: String) -> CheckpointTree { trees.withLock { $0[uuid] } ?? CheckpointTree(vmUUID: uuid) }

    func hasCheckpoints(_ uuid: String) -> Bool { trees.withLock { $0[uuid]?.isEmpty == false } }

    var uuids: [String] { trees.withLock { Array($0.keys) } }

    /// Writes `tree` durably (a tree with nothing left to remember removes the file), then
    /// publishes it.
    func save(_ tree: CheckpointTree) async throws {
        let path = path(of: tree.vmUUID)
        let forget = tree.isEmpty && tree.garbage.isEmpty && tree.cleanupStep() == nil
        let data = try JSONEncoder.sorted.encode(tree)
        do {
            try await BlockingIO.run {
                if forget { DurableFile.remove(path) } else { try DurableFile.write(data, to: path) }
            }
        } catch {
            throw VMMSError.failed("cannot record the checkpoints in \(path): \(error)")
        }
        publish(tree, forget: forget)
    }

    /// Publishes a tree already written (by recovery).
    func adopt(_ tree: CheckpointTree) {
        publish(tree, forget: tree.isEmpty && tree.garbage.isEmpty && tree.cleanupStep() == nil)
    }

    /// The VM's list names only published objects: a new checkpoint appears before the list
    /// names it, a deleted one leaves the list before it disappears.
    private func publish(_ tree: CheckpointTree, forget: Bool) {
        let names = tree.checkpoints.map(\.name)
        let shrinking = trees.withLock { trees in
            let before = Set(trees[tree.vmUUID]?.checkpoints.map(\.id) ?? [])
            trees[tree.vmUUID] = forget ? nil : tree
            return !Set(tree.checkpoints.map(\.id)).isSuperset(of: before)
        }
        if shrinking { vms.setCheckpoints(uuid: tree.vmUUID, names: names) }
        model.replace(vm: tree.vmUUID, with: tree)
        if !shrinking { vms.setCheckpoints(uuid: tree.vmUUID, names: names) }
    }

    /// Reads every tree from disk (after recovery has settled interrupted operations) and
    /// publishes them; VMs whose file vanished lose their checkpoints.
    func load() async -> [String] {
        let directory = self.directory
        let (loaded, problems) = (try? await BlockingIO.run { () -> ([CheckpointTree], [String]) in
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            var loaded: [CheckpointTree] = [], problems: [String] = []
            for name in names where name.hasSuffix(".json") && !name.contains(".tmp-") {
                let path = directory + "/" + name
                do {
                    loaded.append(try JSONDecoder().decode(CheckpointTree.self, from: Data(contentsOf: URL(fileURLWithPath: path))))
                } catch {
                    problems.append("cannot read the checkpoints in \(path): \(error)")
                }
            }
            return (loaded, problems)
        }) ?? ([], [])
        let fresh = Set(loaded.map(\.vmUUID))
        for uuid in uuids where !fresh.contains(uuid) { publish(CheckpointTree(vmUUID: uuid), forget: true) }
        for tree in loaded { publish(tree, forget: false) }
        return problems
    }

    /// Stops publishing the checkpoints of a VM libvirt no longer has (undefined behind
    /// vmms's back); the file and the images stay for an administrator.
    func hide(_ uuid: String) {
        trees.withLock { $0[uuid] = nil }
        model.replace(vm: uuid, with: nil)
    }

    /// Reads one tree straight from its file (recovery, before the store is loaded).
    static func read(_ path: String) -> CheckpointTree? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(CheckpointTree.self, from: data)
    }

    /// Writes one tree straight to its file (recovery).
    static func write(_ tree: CheckpointTree, to path: String) throws {
        if tree.isEmpty && tree.garbage.isEmpty && tree.cleanupStep() == nil {
            DurableFile.remove(path)
        } else {
            try DurableFile.write(try JSONEncoder.sorted.encode(tree), to: path)
        }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
