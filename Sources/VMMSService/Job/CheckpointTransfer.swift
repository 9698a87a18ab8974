import Foundation
import VMMSModel

/// How a VM's checkpoints travel with Export, Import and Move (their files: `CheckpointStore`).
///
/// - Export: every image of the chains into `Virtual Hard Disks/`, overlays rebased (header
///   only) onto the bare file name of their backing image, so the export folder can move; the
///   NVRAM copies and memory images into `Snapshots/`, and the tree, with paths relative to
///   the export folder, as `Snapshots/checkpoints.json`.
/// - Import: the chain copied (or used in place), overlays rebased onto the absolute paths of
///   their new backing files, the tree written with the new paths. Under a new identity the
///   memory images stay behind (libvirt restores one only into the UUID, MACs and name it was
///   saved with): the checkpoints are disk + NVRAM, and Apply leaves the VM Off.
/// - Move: base images into the destination directory like disks without checkpoints, and
///   every other checkpoint file into `<destination>/Snapshots/<vm uuid>/`, the layout of
///   `<VirtualMachinePath>/Snapshots/<vm uuid>/`; new checkpoints are then made there too.
enum CheckpointTransfer {
    /// The tree in an export.
    static let treeFile = ExportLayout.snapshots + "/checkpoints.json"

    /// Rebases (`qemu-img rebase -u`: the header only, the data stays) each overlay of `tree`
    /// onto `backingName(backing)`, with the backing format the tree records. `file(path)`
    /// names the overlay's file on disk; `skipped` overlays are left alone. Blocking.
    static func rebase(_ tree: CheckpointTree, file: (String) -> String, backingName: (String) -> String,
                       except skipped: Set<String> = []) throws {
        for overlay in tree.overlays where !skipped.contains(overlay.path) {
            let format = tree.images[overlay.backing]?.format ?? "qcow2"
            try CheckpointFiles.image(["rebase", "-q", "-u", "-f", "qcow2", "-F", format, "-b", backingName(overlay.backing), file(overlay.path)])
        }
    }

    /// What an imported VM's checkpoint definitions take over from the VM's own.
    struct Identity: Sendable {
        var name: String
        /// A new identity: the UUID and the MAC addresses libvirt gave the imported VM.
        var uuid: String?
        var macs: [String?]
    }

    /// A checkpoint's stored definition for its VM as it is now: its disks on the
    /// checkpoint's frozen images (no `<backingStore>`), its NVRAM at `nvram`, and for an
    /// import (`identity`) the VM's name, its UUID and MACs when new, no `<emulator>`.
    static func definition(_ entry: CheckpointTree.Entry, in tree: CheckpointTree, nvram: String?, identity: Identity?) throws -> String {
        let files = try DomainFiles(xml: entry.definition)
        files.setNVRAM(nvram)
        if let identity {
            files.setName(identity.name)
            files.dropEmulator()
            if let uuid = identity.uuid {
                files.setNewIdentity(uuid: uuid)
                files.setMACs(identity.macs)
            }
        }
        return try CheckpointXML.repointing(files.xml, sources: entry.disks, formats: CheckpointFiles.formats(tree))
    }

    /// Every checkpoint's definition rewritten by `definition`.
    static func rewritingDefinitions(_ tree: CheckpointTree, nvram: String?, identity: Identity?) throws -> CheckpointTree {
        var tree = tree
        for index in tree.checkpoints.indices {
            tree.checkpoints[index].definition = try definition(tree.checkpoints[index], in: tree, nvram: nvram, identity: identity)
        }
        return tree
    }

    /// `path`'s file name in `folder`, unique among `taken` (which it joins).
    static func name(for path: String, in folder: String, taken: inout Set<String>) -> String {
        let last = (path as NSString).lastPathComponent
        let base = (last as NSString).deletingPathExtension
        let file = JobFiles.freeName(base.isEmpty ? "image" : base, JobFiles.suffix(of: last), in: "/nonexistent", taken: taken)
        taken.insert(file)
        return folder + "/" + file
    }
}
