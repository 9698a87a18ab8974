import Foundation
import Libvirt
import VMMSModel

/// Takes, applies, renames and deletes checkpoints, and folds the images nobody needs any
/// more (`tidy`). The callers hold the VM (`VMModel.beginOperation`), so one VM sees one
/// checkpoint operation at a time. See `CheckpointStore` for the files and the tree.
///
/// - **Take**: Off → a qcow2 overlay on every disk (`qemu-img create`), a sparse NVRAM copy,
///   the definition re-pointed at the overlays. Running or Paused → the guest is paused, the
///   NVRAM copied, then one external snapshot with memory (`--no-metadata`: libvirt keeps no
///   record) makes the overlays and the memory image, and the guest resumes.
/// - **Apply** (Off or Saved): new overlays on the checkpoint's frozen images, the
///   checkpoint's definition (under the VM's current name) on them, its NVRAM copied back;
///   with memory, the image is restored paused with a re-pointed XML and saved again, so the
///   VM shows Saved and Start resumes it.
/// - **Delete**: the checkpoint leaves the tree (its children move up), its own files go,
///   then `tidy` merges or removes the images that nobody refers to.
struct CheckpointEngine: Sendable {
    let services: Services
    var store: CheckpointStore { services.checkpoints }

    /// Where the VM's new checkpoint files go: beside "Now"'s images when they are in a
    /// `Snapshots/<uuid>` folder (a Move put them under its destination), else
    /// `<VirtualMachinePath>/Snapshots/<uuid>`.
    func directory(_ uuid: String) -> String {
        let folders = store.tree(uuid).active.values.map { ($0 as NSString).deletingLastPathComponent }
        return folders.sorted().first { $0.hasSuffix("/Snapshots/" + uuid) } ?? services.host.settings.virtualMachinePath + "/Snapshots/" + uuid
    }

    static func newID() -> String { String(UUID().uuidString.lowercased().prefix(13)).replacingOccurrences(of: "-", with: "") }

    /// The domain's persistent XML with its hard disks, checked against the tree: the disks
    /// must be files, and the ones the tree knows (a VM changed by `virsh snapshot-create-as`
    /// or `blockcommit` behind vmms's back no longer matches).
    private func definition(_ record: VMRecord, tree: CheckpointTree) async throws -> (xml: String, disks: [CheckpointXML.Disk]) {
        let uuid = record.uuid
        let xml = try await services.link.run { connection in try connection.domain(uuid: uuid).xml(flags: [.inactive, .secure]) }
        let disks = try CheckpointXML.disks(in: xml)
        guard !disks.isEmpty else {
            throw VMMSError.notSupported("\(record.name) has no hard disk; a checkpoint holds the disks' state, so add one first")
        }
        if let disk = disks.first(where: { $0.file == nil }) {
            throw VMMSError.notSupported("the disk \(disk.target) of \(record.name) is no image file (a block device or LUN); checkpoints need image files")
        }
        if !tree.active.isEmpty, !CheckpointFiles.uses(xml, tree.active) || disks.count != tree.active.count {
            throw VMMSError.invalidState(current: record.state.rawValue,
                message: "the disks of \(record.name) were changed outside vmms (\(disks.compactMap(\.file).joined(separator: ", ")) instead of \(tree.active.values.sorted().joined(separator: ", ")), e.g. by virsh snapshot-create-as or blockcommit); put them back or delete its checkpoints")
        }
        return (xml, disks)
    }

    // MARK: Take

    func take(_ name: String, record: VMRecord, caller: Caller) async throws -> CheckpointTree.Entry {
        let uuid = record.uuid
        let before = store.tree(uuid)
        if let problem = before.nameProblem(name) {
            throw before.entry(named: name) != nil ? VMMSError.alreadyExists("\(record.name) already has a checkpoint named \(name)")
                                                    : VMMSError.invalidArgs(problem)
        }
        let (xml, disks) = try await definition(record, tree: before)
        let live = record.state == .running || record.state == .paused
        let directory = directory(uuid)
        let id = Self.newID()
        var overlays: [String: String] = [:], formats: [String: String] = [:], frozen: [String: String] = [:]
        for disk in disks {
            overlays[disk.target] = directory + "/\(id)-\(disk.target).qcow2"
            formats[disk.target] = disk.format
            frozen[disk.target] = disk.file
        }
        let nvram = try CheckpointXML.nvram(in: xml) ?? (xml.contains("firmware='efi'") ? CheckpointFiles.defaultNVRAM(name: record.name) : nil)
        let hasNVRAM = nvram.map { FileManager.default.fileExists(atPath: $0) } ?? false
        let nvramCopy = hasNVRAM ? directory + "/\(id).nvram" : nil
        let memory = live ? directory + "/\(id).mem" : nil
        let entry = CheckpointTree.Entry(id: id, name: name, parent: nil, creationTime: UInt64(Date().timeIntervalSince1970),
                                         disks: frozen, nvram: nvramCopy, memory: memory, paused: record.state == .paused,
                                         definition: xml)
        var after = before
        after.take(entry, overlays: overlays, formats: formats)
        let intent = CheckpointIntent(kind: .take, vmUUID: uuid, vmName: record.name, treePath: store.path(of: uuid),
                                      before: before, after: after, checkpoint: id,
                                      created: Array(overlays.values) + [nvramCopy, memory].compactMap { $0 },
                                      resume: record.state == .running)
        let journal = services.journal.begin("Checkpoint \(name) of \(record.name)", caller: caller.description)
        try await journal.intend(.checkpoint(intent))
        CrashPoint.reached("Checkpoint.intended")
        let removable = try CheckpointXML.removableTargets(in: xml)
        let running = record.state == .running
        let (overlayFiles, finished) = (overlays, after)
        do {
            try await services.link.runLong { connection in
                let domain = try connection.domain(uuid: uuid)
                try CheckpointFiles.makeDirectory(directory)
                if live {
                    // Paused only for as long as the NVRAM copy and the memory image take.
                    if running { try domain.suspend() }
                    do {
                        if let nvram, let nvramCopy { try CheckpointFiles.copy(nvram, to: nvramCopy) }
                        _ = try domain.createSnapshot(xml: CheckpointXML.snapshot(name: "vmms-\(id)", memory: memory ?? "",
                                                                                   overlays: overlayFiles, excluded: removable),
                                                      flags: [.noMetadata])
                        CrashPoint.reached("Checkpoint.snapshotTaken")
                    } catch {
                        if running { try? domain.resume() }
                        throw error
                    }
                    if running { try domain.resume() }
                    // libvirt wrote the chain into the definition; the headers are what counts.
                    try CheckpointFiles.syncDefinition(domain, connection, finished)
                } else {
                    for disk in disks {
                        try CheckpointFiles.createOverlay(overlayFiles[disk.target] ?? "", backing: disk.file ?? "", format: disk.format)
                    }
                    if let nvram, let nvramCopy { try CheckpointFiles.copy(nvram, to: nvramCopy) }
                    CrashPoint.reached("Checkpoint.filesMade")
                    _ = try connection.defineDomain(xml: CheckpointXML.repointing(xml, sources: overlayFiles))
                }
            }
            CrashPoint.reached("Checkpoint.switched")
            try await store.save(after)
            await journal.finish()
        } catch {
            await settleAfterFailure(intent, journal: journal)
            throw error
        }
        return entry
    }

    /// A failed Checkpoint or Apply: brought to the previous (or, past the switch, the
    /// finished) state now, or left to recovery when libvirt does not let it.
    private func settleAfterFailure(_ intent: CheckpointIntent, journal: JournalRecord) async {
        do {
            let tree = try await services.link.runLong { connection in try CheckpointRecovery.settle(intent, connection: connection) }
            store.adopt(tree)
            await journal.finish()
        } catch {
            services.logger.error("could not settle the interrupted \(intent.kind) on \(intent.vmName) now (\(error)); recovery will")
            journal.abandon()
        }
    }

    // MARK: Apply

    func apply(_ id: String, record: VMRecord, caller: Caller) async throws {
        let uuid = record.uuid
        let before = store.tree(uuid)
        guard let entry = before.entry(id: id) else { throw VMMSError.notFound("the checkpoint no longer exists") }
        let (_, _) = try await definition(record, tree: before)
        if let memory = entry.memory {
            // libvirt 9.0 restores a memory image only under the name it was saved with.
            let saved = try await services.link.run { connection in
                try CheckpointXML.name(in: try connection.saveImageXML(path: memory))
            }
            if let saved, saved != record.name {
                throw VMMSError.invalidState(current: record.state.rawValue,
                    message: "the memory of checkpoint \(entry.name) was saved while the VM was named \(saved), and libvirt restores it only under that name; rename \(record.name) back to \(saved) to apply it")
            }
        }
        let directory = directory(uuid)
        let newID = Self.newID()
        var overlays: [String: String] = [:]
        for target in entry.disks.keys { overlays[target] = directory + "/\(newID)-\(target).qcow2" }
        var after = before
        after.apply(id, overlays: overlays)
        let intent = CheckpointIntent(kind: .apply, vmUUID: uuid, vmName: record.name, treePath: store.path(of: uuid),
                                      before: before, after: after, checkpoint: id, created: Array(overlays.values), resume: false)
        let journal = services.journal.begin("Apply \(entry.name) to \(record.name)", caller: caller.description)
        try await journal.intend(.checkpoint(intent))
        CrashPoint.reached("Apply.intended")
        let formats = CheckpointFiles.formats(after)
        let name = record.name
        let overlayFiles = overlays
        do {
            try await services.link.runLong { connection in
                let domain = try connection.domain(uuid: uuid)
                try CheckpointFiles.makeDirectory(directory)
                for (target, frozen) in entry.disks {
                    try CheckpointFiles.createOverlay(overlayFiles[target] ?? "", backing: frozen, format: before.images[frozen]?.format ?? "qcow2")
                }
                CrashPoint.reached("Apply.overlaysMade")
                _ = try connection.defineDomain(xml: CheckpointXML.repointing(entry.definition, sources: overlayFiles, formats: formats, name: name))
                CrashPoint.reached("Apply.switched")
                try CheckpointFiles.finishApply(entry, active: overlayFiles, formats: formats, vmName: name, domain: domain, connection: connection)
            }
            try await store.save(after)
            await journal.finish()
        } catch {
            await settleAfterFailure(intent, journal: journal)
            throw error
        }
        try await tidy(uuid)
    }

    // MARK: Rename and Delete

    func rename(_ id: String, to name: String, vm uuid: String) async throws {
        var tree = store.tree(uuid)
        guard tree.entry(id: id) != nil else { throw VMMSError.notFound("the checkpoint no longer exists") }
        if let problem = tree.nameProblem(name, except: id) {
            throw tree.entry(named: name) != nil ? VMMSError.alreadyExists(problem) : VMMSError.invalidArgs(problem)
        }
        tree.rename(id, to: name)
        try await store.save(tree)
    }

    /// Removes the checkpoint (and its subtree), then folds the images. The tree is written
    /// in one step, so a crash leaves the checkpoint there or gone; the folding resumes at
    /// the next start from what the tree says.
    func delete(_ id: String, includeChildren: Bool, vm uuid: String) async throws {
        var tree = store.tree(uuid)
        guard tree.entry(id: id) != nil else { throw VMMSError.notFound("the checkpoint no longer exists") }
        tree.delete(id, includeChildren: includeChildren)
        try await store.save(tree)
        CrashPoint.reached("Delete.recorded")
        try await tidy(uuid)
        if store.tree(uuid).isEmpty { await removeEmptyDirectory(uuid) }
    }

    /// Every checkpoint of the VM goes and its disks fold back into the original files (VM
    /// Delete, before the domain goes). Returns the VM's disk files after, nil when it had no
    /// checkpoints.
    @discardableResult
    func deleteAll(vm uuid: String) async throws -> [String]? {
        var tree = store.tree(uuid)
        guard !tree.isEmpty || !tree.garbage.isEmpty || tree.cleanupStep() != nil else { return nil }
        for root in tree.children(of: nil) { tree.delete(root.id, includeChildren: true) }
        for orphan in tree.checkpoints { tree.delete(orphan.id, includeChildren: true) }
        try await store.save(tree)
        try await tidy(uuid)
        await removeEmptyDirectory(uuid)
        return tree.cleanedUp().tree.active.sorted { $0.key < $1.key }.map(\.value)
    }

    /// The VM's Snapshots folder goes with its last file.
    private func removeEmptyDirectory(_ uuid: String) async {
        let directory = directory(uuid)
        _ = try? await BlockingIO.run {
            if (try? FileManager.default.contentsOfDirectory(atPath: directory))?.isEmpty == true {
                try FileManager.default.removeItem(atPath: directory)
            }
        }
    }

    /// Deletes garbage and carries out cleanup steps until every hidden image is a shared
    /// base. Each step is written to the tree when done and is safe to repeat, so a crash
    /// in the middle resumes here at the next start.
    func tidy(_ uuid: String) async throws {
        var rounds = 0
        while rounds < 1000 {
            rounds += 1
            var tree = store.tree(uuid)
            if !tree.garbage.isEmpty {
                let garbage = tree.garbage
                try await BlockingIO.run { CheckpointFiles.remove(garbage) }
                tree.garbage = []
                try await store.save(tree)
                continue
            }
            guard let step = tree.cleanupStep() else { return }
            let snapshot = tree
            try await services.link.runLong { connection in try CheckpointFiles.carryOut(step, in: snapshot, connection: connection) }
            CrashPoint.reached("Tidy.merged")
            tree.complete(step)
            try await store.save(tree)
        }
    }
}

extension Services {
    /// Adding or removing a disk would leave the checkpoints' disk sets behind (Apply would
    /// bring back a different set of disks), so it waits until the checkpoints are gone.
    func refuseDiskChangeWithCheckpoints(_ record: VMRecord) throws {
        guard checkpoints.hasCheckpoints(record.uuid) else { return }
        throw VMMSError.invalidState(current: record.state.rawValue,
            message: "\(record.name) has checkpoints (\(record.checkpoints.joined(separator: ", "))); delete them before adding or removing hard disks")
    }
}
