/// The tree's files as Export, Import and Move carry them.
extension CheckpointTree {
    /// Every file the tree names: the images of every chain, "Now"'s images, the NVRAM copies
    /// and the memory images.
    public var files: [String] {
        Array(Set(images.keys).union(active.values).union(checkpoints.flatMap(\.ownFiles))).sorted()
    }

    /// The images built on another one (qcow2 overlays), with their backing file.
    public var overlays: [(path: String, backing: String)] {
        images.compactMap { path, image in image.backing.map { (path, $0) } }.sorted { $0.path < $1.path }
    }

    /// The tree with every path replaced by `map(path)`, for the VM `vmUUID`; files still to
    /// delete are not carried over.
    public func relocated(to vmUUID: String, _ map: (String) -> String) -> CheckpointTree {
        var tree = CheckpointTree(vmUUID: vmUUID, current: current)
        for (path, image) in images { tree.images[map(path)] = Image(backing: image.backing.map(map), format: image.format) }
        tree.active = active.mapValues(map)
        tree.checkpoints = checkpoints.map { entry in
            var entry = entry
            entry.disks = entry.disks.mapValues(map)
            entry.nvram = entry.nvram.map(map)
            entry.memory = entry.memory.map(map)
            return entry
        }
        return tree
    }

    /// The tree without memory images (a copy under a new identity: libvirt restores a
    /// memory image only into the UUID, MACs and name it was saved with).
    public func withoutMemory() -> CheckpointTree {
        var tree = self
        for index in tree.checkpoints.indices {
            tree.checkpoints[index].memory = nil
            tree.checkpoints[index].paused = false
        }
        return tree
    }

    /// Why a tree read from an export cannot be imported; nil when it can. `isInside` checks
    /// each file name (relative to the export).
    public func problem(isInside: (String) -> Bool) -> String? {
        for file in files where !isInside(file) { return "its checkpoints name the file \(file), which is not inside the export" }
        for (path, image) in images {
            if let backing = image.backing, images[backing] == nil { return "the image \(path) is built on \(backing), which its checkpoints do not list" }
            if let bottom = chain(from: path).last, images[bottom]?.backing != nil { return "the images of its checkpoints form a loop" }
        }
        for entry in checkpoints {
            if let problem = VMNameRule.validate(entry.name) { return "the checkpoint name \(entry.name) is invalid: \(problem)" }
            if let parent = entry.parent, self.entry(id: parent) == nil { return "the checkpoint \(entry.name) has a parent it does not list" }
            for (_, path) in entry.disks where images[path] == nil { return "the checkpoint \(entry.name) names the image \(path), which it does not list" }
        }
        for (_, path) in active where images[path] == nil { return "its current image \(path) is not listed" }
        if Set(checkpoints.map(\.id)).count != checkpoints.count { return "it lists a checkpoint twice" }
        if Set(checkpoints.map(\.name)).count != checkpoints.count { return "it lists a checkpoint name twice" }
        return nil
    }
}
