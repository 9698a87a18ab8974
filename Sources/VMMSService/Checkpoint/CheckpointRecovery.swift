import Foundation
import Libvirt
import VMMSModel

/// What a Checkpoint, Apply or storage Move (of a VM with checkpoints) is about to do, written to the journal before it touches
/// anything. Recovery decides by what the domain shows, not by how far the operation got:
/// when its definition names the new images (`after.active`) the switch happened and the
/// operation is finished from there; otherwise it is undone (the new files go, the tree stays
/// as `before`). Either way the VM and the tree agree: the previous state or the finished one.
struct CheckpointIntent: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable { case take, apply, move }
    var kind: Kind
    var vmUUID: String
    var vmName: String
    /// The tree file.
    var treePath: String
    var before: CheckpointTree
    var after: CheckpointTree
    /// The checkpoint taken or applied (empty for a move).
    var checkpoint: String
    /// Files the operation makes (removed when it is undone).
    var created: [String]
    /// The guest ran and was paused for the checkpoint: resume it.
    var resume: Bool
}

enum CheckpointRecovery {
    /// Brings an interrupted (or failed) operation to the previous or the finished state and
    /// writes the tree to match; returns that tree.
    @discardableResult
    static func settle(_ intent: CheckpointIntent, connection: LibvirtConnection) throws -> CheckpointTree {
        guard let domain = try? connection.domain(uuid: intent.vmUUID) else {
            // The VM is gone (deleted meanwhile): nothing to finish.
            CheckpointFiles.remove(intent.created)
            try CheckpointStore.write(intent.before, to: intent.treePath)
            return intent.before
        }
        let persistent = try domain.xml(flags: [.inactive, .secure])
        let tree: CheckpointTree
        if CheckpointFiles.uses(persistent, intent.after.active) {
            if intent.kind == .apply, let entry = intent.after.entry(id: intent.checkpoint) {
                try CheckpointFiles.finishApply(entry, active: intent.after.active, formats: CheckpointFiles.formats(intent.after),
                                                vmName: intent.vmName, domain: domain, connection: connection)
            }
            tree = intent.after
        } else if intent.kind == .move {
            // A block copy into the new files may still run (vmmsd was killed mid-Move).
            try JobFiles.removeUnlessUsed(intent.created, connection: connection)
            tree = intent.before
        } else {
            let live = (try? domain.isActive) == true ? (try? domain.xml()) ?? "" : ""
            CheckpointFiles.remove(intent.created.filter { !persistent.contains($0) && !live.contains($0) })
            tree = intent.before
        }
        if intent.resume, (try? domain.state().state) == .paused { try? domain.resume() }
        try CheckpointStore.write(tree, to: intent.treePath)
        if intent.kind == .move, tree == intent.after { removeMovedFiles(intent) }
        return tree
    }

    /// After a move the VM uses the new files and the tree names them: the old ones go, and
    /// the old `Snapshots/<uuid>` folder when it is empty.
    static func removeMovedFiles(_ intent: CheckpointIntent) {
        let old = Set(intent.before.files).subtracting(intent.after.files)
        CheckpointFiles.remove(Array(old))
        for folder in Set(old.map { ($0 as NSString).deletingLastPathComponent }) where folder.hasSuffix("/Snapshots/" + intent.vmUUID) {
            if (try? FileManager.default.contentsOfDirectory(atPath: folder))?.isEmpty == true { rmdir(folder) }
        }
    }
}
