/// One VM's checkpoints and the image files behind them, as vmms keeps them (libvirt 9.0 can
/// neither revert external snapshots nor capture a UEFI VM's NVRAM, so the service manages
/// Hyper-V's standard checkpoints itself). No I/O here: the service carries the steps out.
///
/// Two trees live side by side:
/// - **checkpoints** (what clients see): each has a parent (the checkpoint "Now" descended
///   from when it was taken), in creation order; `current` is the one "Now" descends from.
/// - **images** (qcow2 files): each knows its backing file. A checkpoint freezes one image per
///   disk (`disks`), "Now" writes into the `active` images. An image that nobody refers to is
///   *hidden*: with no image on top of it, it is garbage; with exactly one, that one is merged
///   down into it (its data committed into the older file, which takes its place, so the
///   original disk file is the VM's disk again once every checkpoint is gone); with two or
///   more it stays as their shared base. `cleanupStep()` names the next such step.
public struct CheckpointTree: Codable, Sendable, Equatable {
    /// One checkpoint.
    public struct Entry: Codable, Sendable, Equatable {
        /// Stable for the checkpoint's life (renames keep it); names its files.
        public var id: String
        public var name: String
        /// The parent checkpoint's id; nil for a root.
        public var parent: String?
        /// Unix seconds.
        public var creationTime: UInt64
        /// The frozen image of each disk, by target (`vda`, `sda`).
        public var disks: [String: String]
        /// The copy of the VM's NVRAM; nil when the VM had none (generation 1, or never started).
        public var nvram: String?
        /// The memory image (a libvirt save image); nil for a checkpoint of a VM that was off.
        public var memory: String?
        /// The guest was paused (not running) when the checkpoint was taken.
        public var paused: Bool
        /// The persistent domain XML when the checkpoint was taken.
        public var definition: String

        public init(id: String, name: String, parent: String?, creationTime: UInt64, disks: [String: String],
                    nvram: String?, memory: String?, paused: Bool, definition: String) {
            self.id = id
            self.name = name
            self.parent = parent
            self.creationTime = creationTime
            self.disks = disks
            self.nvram = nvram
            self.memory = memory
            self.paused = paused
            self.definition = definition
        }

        /// Every file that belongs to this checkpoint alone (not its frozen images, which
        /// the image tree accounts for).
        public var ownFiles: [String] { [nvram, memory].compactMap { $0 } }
    }

    /// One image file in the chains.
    public struct Image: Codable, Sendable, Equatable {
        /// The file this one is an overlay of; nil for a base image.
        public var backing: String?
        /// Its format (`qcow2`, `raw`).
        public var format: String

        public init(backing: String?, format: String) {
            self.backing = backing
            self.format = format
        }
    }

    /// What to do next to tidy the images.
    public enum CleanupStep: Sendable, Equatable {
        /// Delete this file: nothing refers to it and nothing is built on it.
        case remove(String)
        /// Commit `top`'s data into `base` (its backing file, which nothing refers to and which
        /// has no other overlay); everything that referred to `top` refers to `base` after.
        case merge(top: String, base: String)
    }

    public var vmUUID: String
    /// In creation order.
    public var checkpoints: [Entry]
    /// The checkpoint "Now" descends from; nil when none (no checkpoints, or all deleted).
    public var current: String?
    /// Every file of every chain, by path.
    public var images: [String: Image]
    /// "Now"'s writable image of each disk, by target.
    public var active: [String: String]
    /// Files to delete: no longer part of anything, removed after this tree is written.
    public var garbage: [String]

    public init(vmUUID: String, checkpoints: [Entry] = [], current: String? = nil, images: [String: Image] = [:],
                active: [String: String] = [:], garbage: [String] = []) {
        self.vmUUID = vmUUID
        self.checkpoints = checkpoints
        self.current = current
        self.images = images
        self.active = active
        self.garbage = garbage
    }

    public var isEmpty: Bool { checkpoints.isEmpty }

    // MARK: Reads

    public func entry(id: String) -> Entry? { checkpoints.first { $0.id == id } }
    public func entry(named name: String) -> Entry? { checkpoints.first { $0.name == name } }

    /// The checkpoints whose parent is `id`, in creation order.
    public func children(of id: String?) -> [Entry] { checkpoints.filter { $0.parent == id } }

    /// `id` and every checkpoint below it.
    public func subtree(of id: String) -> [String] {
        var result = [id]
        var index = 0
        while index < result.count {
            result += children(of: result[index]).map(\.id)
            index += 1
        }
        return result
    }

    /// The images built directly on `path`.
    public func overlays(of path: String) -> [String] {
        images.filter { $0.value.backing == path }.map(\.key).sorted()
    }

    /// Whether a checkpoint froze `path` or "Now" writes into it.
    public func isReferenced(_ path: String) -> Bool {
        active.values.contains(path) || checkpoints.contains { $0.disks.values.contains(path) }
    }

    /// `path` and the files below it, top first.
    public func chain(from path: String) -> [String] {
        var result: [String] = []
        var next: String? = path
        while let current = next, !result.contains(current) {
            result.append(current)
            next = images[current]?.backing
        }
        return result
    }

    // MARK: Changes

    /// Why a name cannot be a new (or renamed) checkpoint's; nil when it can.
    public func nameProblem(_ name: String, except id: String? = nil) -> String? {
        if let problem = VMNameRule.validate(name) {
            return problem.replacingOccurrences(of: "the VM name", with: "the checkpoint name")
        }
        if let other = entry(named: name), other.id != id { return "a checkpoint named \(name) already exists" }
        return nil
    }

    /// Records a checkpoint: "Now"'s images (`frozen`, by disk target, in their `formats`)
    /// become the checkpoint's, and "Now" continues in the new `overlays`.
    public mutating func take(_ entry: Entry, overlays: [String: String], formats: [String: String]) {
        var entry = entry
        entry.parent = current
        for (target, frozen) in entry.disks {
            if images[frozen] == nil { images[frozen] = Image(backing: nil, format: formats[target] ?? "qcow2") }
            if let overlay = overlays[target] { images[overlay] = Image(backing: frozen, format: "qcow2") }
        }
        active = overlays
        checkpoints.append(entry)
        current = entry.id
    }

    /// "Now" continues from checkpoint `id` in the new `overlays` (one per disk of the
    /// checkpoint, built on its frozen images); the images "Now" used become hidden.
    public mutating func apply(_ id: String, overlays: [String: String]) {
        guard let entry = entry(id: id) else { return }
        for (target, overlay) in overlays {
            images[overlay] = Image(backing: entry.disks[target], format: "qcow2")
        }
        active = overlays
        current = id
    }

    public mutating func rename(_ id: String, to name: String) {
        guard let index = checkpoints.firstIndex(where: { $0.id == id }) else { return }
        checkpoints[index].name = name
    }

    /// Removes checkpoint `id` (with `includeChildren`, its whole subtree): its children move
    /// up to its parent, "Now" descends from the nearest remaining ancestor, its own files
    /// become garbage. Its frozen images become hidden; `cleanupStep()` then folds them.
    /// Returns the ids removed.
    @discardableResult
    public mutating func delete(_ id: String, includeChildren: Bool) -> [String] {
        guard let entry = entry(id: id) else { return [] }
        let removed = includeChildren ? subtree(of: id) : [id]
        let removedSet = Set(removed)
        // The nearest ancestor that stays.
        var survivor = entry.parent
        while let candidate = survivor, removedSet.contains(candidate) { survivor = self.entry(id: candidate)?.parent }
        for index in checkpoints.indices where checkpoints[index].parent.map(removedSet.contains) == true {
            checkpoints[index].parent = survivor
        }
        if let current, removedSet.contains(current) {
            var ancestor: String? = current
            while let candidate = ancestor, removedSet.contains(candidate) { ancestor = self.entry(id: candidate)?.parent }
            self.current = ancestor
        }
        for gone in checkpoints where removedSet.contains(gone.id) { garbage += gone.ownFiles }
        checkpoints.removeAll { removedSet.contains($0.id) }
        return removed
    }

    /// The next step that tidies the images, or nil when every hidden image is a shared base.
    public func cleanupStep() -> CleanupStep? {
        for path in images.keys.sorted() where !isReferenced(path) {
            let tops = overlays(of: path)
            if tops.isEmpty { return .remove(path) }
            if tops.count == 1 { return .merge(top: tops[0], base: path) }
        }
        return nil
    }

    /// Records a step as done.
    public mutating func complete(_ step: CleanupStep) {
        switch step {
        case .remove(let path):
            images[path] = nil
            garbage.append(path)
        case .merge(let top, let base):
            for (target, path) in active where path == top { active[target] = base }
            for index in checkpoints.indices {
                for (target, path) in checkpoints[index].disks where path == top { checkpoints[index].disks[target] = base }
            }
            for (path, image) in images where image.backing == top { images[path]?.backing = base }
            images[top] = nil
            garbage.append(top)
        }
    }

    /// What the tree would look like with every step done (for tests and planning).
    public func cleanedUp() -> (tree: CheckpointTree, steps: [CleanupStep]) {
        var tree = self, steps: [CleanupStep] = []
        while let step = tree.cleanupStep(), steps.count <= images.count {
            steps.append(step)
            tree.complete(step)
        }
        return (tree, steps)
    }
}
