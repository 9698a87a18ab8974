import Foundation
import Testing
import VMMSModel

/// The tree as Export, Import and Move carry it: its files, relocated paths, memory dropped
/// for a new identity, and the checks on a tree read from an export.
@Suite struct CheckpointTreeFilesTests {
    typealias T = CheckpointTreeTests

    static func twoCheckpoints() -> CheckpointTree {
        var tree = CheckpointTree(vmUUID: "u")
        T.take(&tree, "a")
        T.take(&tree, "b")
        tree.checkpoints[1].memory = "/s/b.mem"
        tree.checkpoints[1].paused = true
        return tree
    }

    @Test func filesNameEveryImageAndEveryOwnFile() {
        let tree = Self.twoCheckpoints()
        #expect(tree.files == ["/disks/vm.qcow2", "/s/a-vda.qcow2", "/s/a.nvram", "/s/b-vda.qcow2", "/s/b.mem", "/s/b.nvram"])
        #expect(tree.overlays.map(\.path) == ["/s/a-vda.qcow2", "/s/b-vda.qcow2"])
    }

    @Test func relocatingRewritesEveryPathAndKeepsTheShape() {
        let tree = Self.twoCheckpoints()
        let moved = tree.relocated(to: "v") { "/new" + $0 }
        #expect(moved.vmUUID == "v")
        #expect(moved.files == tree.files.map { "/new" + $0 })
        #expect(moved.active == ["vda": "/new/s/b-vda.qcow2"])
        #expect(moved.images["/new/s/b-vda.qcow2"]?.backing == "/new/s/a-vda.qcow2")
        #expect(moved.entry(id: "b")?.memory == "/new/s/b.mem" && moved.entry(id: "b")?.parent == "a")
        #expect(moved.relocated(to: "u") { String($0.dropFirst(4)) } == tree)
    }

    @Test func aNewIdentityKeepsNoMemory() {
        let tree = Self.twoCheckpoints().withoutMemory()
        #expect(tree.checkpoints.allSatisfy { $0.memory == nil && !$0.paused })
        #expect(!tree.files.contains("/s/b.mem"))
    }

    @Test func aTreeFromAnExportMustNameFilesInsideAndBeWhole() {
        let relative = Self.twoCheckpoints().relocated(to: "u") { String($0.dropFirst()) }
        #expect(relative.problem(isInside: ExportManifest.isInside) == nil)
        let absolute = Self.twoCheckpoints()
        #expect(absolute.problem(isInside: ExportManifest.isInside)?.contains("not inside the export") == true)
        var dangling = relative
        dangling.images["s/a-vda.qcow2"]?.backing = "s/gone.qcow2"
        #expect(dangling.problem(isInside: ExportManifest.isInside)?.contains("do not list") == true)
        var loop = relative
        loop.images["disks/vm.qcow2"]?.backing = "s/b-vda.qcow2"
        #expect(loop.problem(isInside: ExportManifest.isInside)?.contains("loop") == true)
        var orphan = relative
        orphan.checkpoints[1].parent = "x"
        #expect(orphan.problem(isInside: ExportManifest.isInside)?.contains("parent") == true)
    }
}
