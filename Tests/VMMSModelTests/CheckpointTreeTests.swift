import Foundation
import Testing
import VMMSModel

/// The checkpoint and image trees without I/O: what each operation leaves, and which
/// images the cleanup removes, merges or keeps as a shared base.
@Suite struct CheckpointTreeTests {
    static let base = "/disks/vm.qcow2"

    static func entry(_ id: String, memory: Bool = false) -> CheckpointTree.Entry {
        CheckpointTree.Entry(id: id, name: "name-\(id)", parent: nil, creationTime: 0, disks: [:], nvram: "/s/\(id).nvram",
                             memory: memory ? "/s/\(id).mem" : nil, paused: false, definition: "<domain/>")
    }

    /// Takes checkpoint `id` of "Now" (one disk, vda).
    static func take(_ tree: inout CheckpointTree, _ id: String) {
        var entry = entry(id)
        entry.disks = ["vda": tree.active["vda"] ?? base]
        tree.take(entry, overlays: ["vda": "/s/\(id)-vda.qcow2"], formats: ["vda": "qcow2"])
    }

    static func apply(_ tree: inout CheckpointTree, _ id: String, overlay: String) {
        tree.apply(id, overlays: ["vda": overlay])
        tree = tree.cleanedUp().tree
    }

    @Test func takingFreezesNowAndContinuesInAnOverlay() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        #expect(tree.checkpoints.map(\.id) == ["a"])
        #expect(tree.entry(id: "a")?.parent == nil)
        #expect(tree.entry(id: "a")?.disks == ["vda": Self.base])
        #expect(tree.active == ["vda": "/s/a-vda.qcow2"])
        #expect(tree.images["/s/a-vda.qcow2"]?.backing == Self.base)
        #expect(tree.images[Self.base] == CheckpointTree.Image(backing: nil, format: "qcow2"))
        Self.take(&tree, "b")
        #expect(tree.entry(id: "b")?.parent == "a")
        #expect(tree.current == "b")
        #expect(tree.chain(from: tree.active["vda"] ?? "") == ["/s/b-vda.qcow2", "/s/a-vda.qcow2", Self.base])
        #expect(tree.cleanupStep() == nil, "every image is referenced")
    }

    @Test func applyingDropsNowsOldOverlayAndBranches() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        Self.take(&tree, "b")
        Self.apply(&tree, "a", overlay: "/s/n1.qcow2")
        #expect(tree.garbage == ["/s/b-vda.qcow2"], "Now's image before the Apply had nothing on it")
        #expect(tree.images["/s/n1.qcow2"]?.backing == Self.base)
        Self.take(&tree, "c")
        #expect(tree.entry(id: "c")?.parent == "a", "a branch beside b")
        #expect(tree.children(of: "a").map(\.id) == ["b", "c"])
    }

    @Test func deletingAMiddleCheckpointMergesIntoItsOnlyChild() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        Self.take(&tree, "b")
        tree.delete("a", includeChildren: false)
        #expect(tree.entry(id: "b")?.parent == nil)
        #expect(tree.garbage == ["/s/a.nvram"])
        // The base (a's frozen image) has one overlay, b's: b's data is committed into it.
        #expect(tree.cleanupStep() == .merge(top: "/s/a-vda.qcow2", base: Self.base))
        let (after, steps) = tree.cleanedUp()
        #expect(steps == [.merge(top: "/s/a-vda.qcow2", base: Self.base)])
        #expect(after.entry(id: "b")?.disks == ["vda": Self.base], "b now freezes the older file")
        #expect(after.images["/s/b-vda.qcow2"]?.backing == Self.base)
        #expect(after.images["/s/a-vda.qcow2"] == nil)
        #expect(after.garbage.contains("/s/a-vda.qcow2"))
    }

    @Test func deletingTheLastCheckpointFoldsNowBackIntoTheOriginalFile() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        tree.delete("a", includeChildren: false)
        #expect(tree.current == nil)
        let (after, steps) = tree.cleanedUp()
        #expect(steps == [.merge(top: "/s/a-vda.qcow2", base: Self.base)])
        #expect(after.active == ["vda": Self.base])
        #expect(after.isEmpty)
        #expect(after.cleanupStep() == nil)
    }

    @Test func aBaseTwoBranchesShareIsKeptUntilOneIsLeft() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        Self.take(&tree, "b")
        Self.apply(&tree, "a", overlay: "/s/n1.qcow2")
        Self.take(&tree, "c")
        tree.delete("a", includeChildren: false)
        #expect(tree.children(of: nil).map(\.id) == ["b", "c"])
        var (after, steps) = tree.cleanedUp()
        #expect(steps.isEmpty, "the base has two overlays (b's and c's): kept")
        #expect(after.images[Self.base] != nil)
        // Now descends from c: deleting b frees b's image, then the base folds into c's.
        after.delete("b", includeChildren: false)
        (after, steps) = after.cleanedUp()
        #expect(steps == [.remove("/s/a-vda.qcow2"), .merge(top: "/s/n1.qcow2", base: Self.base)])
        #expect(after.entry(id: "c")?.disks == ["vda": Self.base])
        #expect(after.images["/s/c-vda.qcow2"]?.backing == Self.base)
    }

    @Test func includeChildrenDeletesTheSubtreeAndNowMovesUp() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        Self.take(&tree, "b")
        Self.take(&tree, "c")
        #expect(tree.subtree(of: "b") == ["b", "c"])
        let removed = tree.delete("b", includeChildren: true)
        #expect(removed == ["b", "c"])
        #expect(tree.checkpoints.map(\.id) == ["a"])
        #expect(tree.current == "a", "Now descends from the nearest checkpoint left")
        let (after, _) = tree.cleanedUp()
        // b's and c's images fold down into a's overlay, which "Now" writes into after.
        #expect(after.chain(from: after.active["vda"] ?? "") == ["/s/a-vda.qcow2", Self.base])
        #expect(after.checkpoints.map(\.id) == ["a"])
    }

    @Test func deletingTheChildOfNowsParentKeepsNowsChain() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        Self.take(&tree, "b")
        Self.apply(&tree, "a", overlay: "/s/n1.qcow2")
        tree.delete("b", includeChildren: false)
        let (after, steps) = tree.cleanedUp()
        #expect(steps == [.remove("/s/a-vda.qcow2")])
        #expect(after.chain(from: after.active["vda"] ?? "") == ["/s/n1.qcow2", Self.base])
    }

    @Test(arguments: [("", "empty"), ("-x", "'-'"), ("a/b", "'/'"), (String(repeating: "c", count: 65), "longer")])
    func badNamesAreRefusedAsCheckpointNames(name: String, reason: String) {
        let problem = CheckpointTree(vmUUID: "u").nameProblem(name)
        #expect(problem?.contains(reason) == true, "\(problem ?? "nil")")
        #expect(problem?.contains("checkpoint name") == true)
    }

    @Test func namesAreUniquePerVMButARenameMayKeepItsOwn() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        #expect(tree.nameProblem("name-a")?.contains("already exists") == true)
        #expect(tree.nameProblem("name-a", except: "a") == nil)
        tree.rename("a", to: "fresh")
        #expect(tree.entry(named: "fresh")?.id == "a")
        #expect(tree.nameProblem("name-a") == nil)
    }

    @Test func theTreeSurvivesJSON() throws {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        Self.take(&tree, "b")
        let decoded = try JSONDecoder().decode(CheckpointTree.self, from: JSONEncoder().encode(tree))
        #expect(decoded == tree)
    }

    @Test func publishedRecordsNameTheParentAndMemory() {
        var tree = CheckpointTree(vmUUID: "u")
        Self.take(&tree, "a")
        var withMemory = Self.entry("b", memory: true)
        withMemory.disks = ["vda": tree.active["vda"] ?? ""]
        tree.take(withMemory, overlays: ["vda": "/s/b-vda.qcow2"], formats: ["vda": "qcow2"])
        let records = CheckpointRecord.records(of: tree)
        #expect(records.map(\.name) == ["name-a", "name-b"])
        #expect(records.map(\.parentName) == [nil, "name-a"])
        #expect(records.map(\.includesMemory) == [false, true])
    }

    @Test func repointingSetsSourcesAndDropsBackingStores() throws {
        let xml = """
        <domain type='qemu'><name>old</name><devices>\
        <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/d/a.img'/><backingStore/><target dev='vda' bus='virtio'/></disk>\
        <disk type='file' device='cdrom'><source file='/d/x.iso'/><target dev='sda' bus='sata'/></disk>\
        </devices></domain>
        """
        let out = try CheckpointXML.repointing(xml, sources: ["vda": "/s/o.qcow2"], name: "new")
        #expect(try CheckpointXML.disks(in: out) == [CheckpointXML.Disk(target: "vda", file: "/s/o.qcow2", format: "qcow2")])
        #expect(!out.contains("backingStore"))
        #expect(out.contains("<name>new</name>"))
        #expect(out.contains("/d/x.iso"))
        #expect(try CheckpointXML.removableTargets(in: out) == ["sda"])
        let snapshot = CheckpointXML.snapshot(name: "s", memory: "/s/m", overlays: ["vda": "/s/o2.qcow2"], excluded: ["sda"])
        #expect(snapshot.contains("<memory snapshot='external' file='/s/m'/>"))
        #expect(snapshot.contains("<disk name='sda' snapshot='no'/>"))
    }
}
