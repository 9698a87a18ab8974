import Foundation
import Libvirt
import VMMSModel

/// The work of a storage Move job (Move-VMStorage): every disk, and for a VM that is off
/// its NVRAM, into one directory.
///
/// Off: sparse copies, then one redefine pointing at them, then the old files go. Running:
/// libvirt's block copy of each disk (`--transient-job`, so a persistent domain may copy;
/// the live and persistent definitions both follow the pivot), all disks mirrored until
/// ready, then pivoted; the old files go only once the VM uses the new ones. Whatever
/// happens, the cleanup removes exactly the files (old or new) that no domain uses, which
/// is also what the journal's recovery does after a crash.
///
/// Checkpoints move along (`CheckpointTransfer` has the layout): every image of the chains,
/// the NVRAM copies and the memory images, the overlays rebased onto the new files, the tree
/// rewritten with the new paths. A running VM's frozen images are copied as files (nothing
/// writes them), a new top is made on the copy of "Now"'s backing file, and a shallow block
/// copy into it (`--reuse-external`) mirrors only the top layer before the pivot. The tree
/// moves in a `CheckpointIntent` (`.move`): recovery keeps the old files and tree when the
/// domain does not use the new top images, else writes the new tree and removes the old files.
///
/// A running VM's own NVRAM stays where it is (QEMU holds it open and libvirt cannot switch
/// it live); a Move while it is Off moves it.
struct VMMover {
    struct Plan: Sendable {
        var uuid: String
        var name: String
        var running: Bool
        /// Saved: its managed-save image names the disks and NVRAM too, and follows them.
        var saved = false
        var disks: [File]
        var nvram: File?
        struct File: Sendable {
            var target: String
            var from: String
            var to: String
            var format: String
            /// A running disk's block copy goes only into the top layer, made beforehand.
            var shallow = false
        }
        /// Files outside the checkpoints (the disks of a VM without checkpoints, the NVRAM).
        var all: [File] { disks + (nvram.map { [$0] } ?? []) }
        /// With checkpoints: every file of the tree that moves (`target` is the disk target
        /// for "Now"'s images, else empty), and the tree before and after.
        var chain: [File] = []
        var intent: CheckpointIntent?
        /// `<destination>/Snapshots/<uuid>`, when the move makes it.
        var snapshots: String?
    }

    let services: Services
    let plan: Plan
    let caller: Caller

    /// What moves where; refused when a destination file exists, a disk has a backing chain,
    /// or the destination has not room for the data (InsufficientResources).
    static func plan(_ record: VMRecord, to folder: String, services: Services) async throws -> Plan {
        let uuid = record.uuid, name = record.name
        let tree = services.checkpoints.tree(uuid), treePath = services.checkpoints.path(of: uuid)
        return try await services.link.run { connection -> Plan in
            let domain = try connection.domain(uuid: uuid)
            let files = try DomainFiles(xml: try domain.xml(flags: [.inactive]))
            let running = try domain.isActive
            var taken: Set<String> = []
            func destination(_ path: String) throws -> String? {
                guard (path as NSString).deletingLastPathComponent != folder,
                      StorageRoots.resolve((path as NSString).deletingLastPathComponent) != folder else { return nil }
                let fileName = (path as NSString).lastPathComponent
                guard !taken.contains(fileName) else {
                    throw VMMSError.invalidArgs("two files of \(name) are named \(fileName); they cannot move into one directory")
                }
                taken.insert(fileName)
                let target = folder + "/" + fileName
                if FileManager.default.fileExists(atPath: target) {
                    throw VMMSError.alreadyExists("\(target) exists already; move \(name) elsewhere or remove that file")
                }
                return target
            }
            var disks: [Plan.File] = []
            for disk in files.hardDisks where tree.isEmpty {
                if StorageRoots.hasBackingFile(disk.path) {
                    throw VMMSError.notSupported("the disk \(disk.path) of \(name) has a backing file that is not one of its checkpoints (made outside vmms); merge it into the disk (qemu-img commit) to move the VM")
                }
                if let to = try destination(disk.path) { disks.append(.init(target: disk.target, from: disk.path, to: to, format: disk.format)) }
            }
            // The NVRAM is open while the VM runs and libvirt cannot switch it live.
            var nvram: Plan.File?
            if !running, let path = JobFiles.nvram(of: domain, inactive: files, name: name), let to = try destination(path) {
                nvram = .init(target: "nvram", from: path, to: to, format: "raw")
            }
            var plan = Plan(uuid: uuid, name: name, running: running, disks: disks, nvram: nvram)
            plan.saved = !running && ((try? domain.hasManagedSaveImage) ?? false)
            if !tree.isEmpty {
                guard CheckpointFiles.uses(try domain.xml(flags: [.inactive]), tree.active), files.hardDisks.count == tree.active.count else {
                    throw VMMSError.invalidState(current: running ? "Running" : "Off",
                        message: "the disks of \(name) are not the ones its checkpoints know (changed outside vmms); put them back or delete its checkpoints")
                }
                try checkpointPlan(&plan, tree: tree, treePath: treePath, folder: folder)
            }
            let needed = try (plan.all + plan.chain).reduce(UInt64(0)) { $0 + (try SparseCopy.dataBytes($1.from)) }
            let margin: UInt64 = 64 << 20
            if let free = SparseCopy.freeBytes(folder), free < needed + margin {
                throw VMMSError.insufficientResources("\(folder) has \(free >> 20) MiB free; moving \(name) needs \((needed + margin) >> 20) MiB")
            }
            return plan
        }
    }

    /// Where each checkpoint file goes: base images into `folder` (as disks without
    /// checkpoints), everything else into `folder/Snapshots/<uuid>`. Blocking.
    private static func checkpointPlan(_ plan: inout Plan, tree: CheckpointTree, treePath: String, folder: String) throws {
        let snapshots = folder + "/Snapshots/" + plan.uuid
        var map: [String: String] = [:], taken: Set<String> = []
        for file in tree.files {
            let base = tree.images[file] != nil && tree.images[file]?.backing == nil
            let directory = base ? folder : snapshots
            let fileName = (file as NSString).lastPathComponent
            guard !taken.contains(directory + "/" + fileName) else {
                throw VMMSError.invalidArgs("two files of \(plan.name) are named \(fileName); they cannot move into one directory")
            }
            taken.insert(directory + "/" + fileName)
            map[file] = directory + "/" + fileName
        }
        let staying = map.filter { $0.key == $0.value || StorageRoots.resolve($0.key) == $0.value }
        if staying.count == map.count { return }
        if let file = staying.keys.sorted().first {
            throw VMMSError.invalidArgs("\(file) of the checkpoints of \(plan.name) is in \(folder) already, and the others are not; move the VM to another directory")
        }
        for destination in map.values where FileManager.default.fileExists(atPath: destination) {
            throw VMMSError.alreadyExists("\(destination) exists already; move \(plan.name) elsewhere or remove that file")
        }
        let targets = Dictionary(tree.active.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        plan.chain = map.keys.sorted().map { file in
            Plan.File(target: targets[file] ?? "", from: file, to: map[file] ?? file, format: tree.images[file]?.format ?? "raw")
        }
        var after = tree.relocated(to: plan.uuid) { map[$0] ?? $0 }
        after.garbage = tree.garbage
        if let nvram = plan.nvram { after = try CheckpointTransfer.rewritingDefinitions(after, nvram: nvram.to, identity: nil) }
        let made = FileManager.default.fileExists(atPath: snapshots) ? nil : snapshots
        plan.snapshots = made
        plan.intent = CheckpointIntent(kind: .move, vmUUID: plan.uuid, vmName: plan.name, treePath: treePath, before: tree, after: after,
                                       checkpoint: "", created: plan.chain.map(\.to) + [made].compactMap { $0 }, resume: false)
    }

    func run(_ job: JobContext) async throws {
        let journal = services.journal.begin("Move \(plan.name) storage", caller: caller.description)
        let paths = plan.all.flatMap { [$0.to, $0.from] }
        let intent = plan.intent
        do {
            for path in paths { try await journal.intend(.removeUnlessUsed(path: path)) }
            if let intent { try await journal.intend(.checkpoint(intent)) }
            // Undone first: the saved state then names the same files as the definition.
            if plan.saved { try await journal.intend(.savedStateFollowsDefinition(uuid: plan.uuid)) }
            CrashPoint.reached("Move.intended")
            if plan.running { try await moveLive(job) } else { try await moveOff(job) }
            CrashPoint.reached("Move.switched")
            if let intent { try await services.checkpoints.save(intent.after) }
        } catch {
            do {
                let tree = try await services.link.runLong { connection -> CheckpointTree? in
                    let tree = try intent.map { try CheckpointRecovery.settle($0, connection: connection) }
                    try JobFiles.removeUnlessUsed(paths, connection: connection)
                    return tree
                }
                if let tree { services.checkpoints.adopt(tree) }
                await journal.finish()
            } catch {
                // libvirt is gone (restarting): the journal keeps the files for recovery,
                // which removes the unused ones on the next connection.
                services.logger.error("could not clean up after the failed move of \(plan.name) now (\(error)); recovery will")
                journal.abandon()
            }
            throw error
        }
        // Done: the old files are no longer used (and the new ones are, so they stay).
        do {
            try await services.link.runLong { connection in
                try JobFiles.removeUnlessUsed(paths, connection: connection)
                if let intent { CheckpointRecovery.removeMovedFiles(intent) }
            }
            await journal.finish()
        } catch {
            services.logger.error("\(plan.name) uses its new files; the old ones are removed by recovery (\(error))")
            journal.abandon()
        }
        services.audit(caller, "Move \(plan.name) (\(plan.uuid)) storage to \((plan.all + plan.chain).map(\.to).joined(separator: ", "))")
    }

    /// Sparse copies of `files`, progress `weight` percent of the job.
    private func copy(_ files: [Plan.File], job: JobContext, weight: UInt64) async throws {
        try await job.blocking {
            let total = try files.reduce(UInt64(0)) { $0 + (try SparseCopy.dataBytes($1.from)) }
            var done: UInt64 = 0
            for file in files {
                // `<destination>/Snapshots/<uuid>` for checkpoint files.
                let directory = (file.to as NSString).deletingLastPathComponent
                if !FileManager.default.fileExists(atPath: directory) { try CheckpointFiles.makeDirectory(directory) }
                try SparseCopy.copy(file.from, to: file.to, progress: { moved in
                    done += moved
                    job.progress(done * weight, of: total * 100)
                }, cancelled: { job.isCancelled })
            }
        }
        try job.checkCancelled()
    }

    private func moveOff(_ job: JobContext) async throws {
        try await copy(plan.all + plan.chain, job: job, weight: 100)
        let plan = self.plan
        try await services.link.run { connection in
            if let after = plan.intent?.after { try CheckpointTransfer.rebase(after, file: { $0 }, backingName: { $0 }) }
            let domain = try connection.domain(uuid: plan.uuid)
            guard !(try domain.isActive) else {
                throw VMMSError.invalidState(current: "Running", message: "\(plan.name) was started while its storage was copied; nothing was moved")
            }
            let definition = try DomainFiles(xml: try domain.xml(flags: [.inactive, .secure]))
            for disk in plan.disks { definition.setDiskSource(target: disk.target, path: disk.to) }
            if let nvram = plan.nvram { definition.setNVRAM(nvram.to) }
            var xml = definition.xml
            if let after = plan.intent?.after {
                // "Now"'s images are overlays: libvirt reads their chains from the headers.
                xml = try CheckpointXML.repointing(xml, sources: after.active, formats: CheckpointFiles.formats(after))
            }
            _ = try connection.defineDomain(xml: xml)
            CrashPoint.reached("Move.defined")
            // A Saved VM's memory image holds a definition of its own: it names the new files
            // too, so that Start restores onto them (recovery does the same after a crash here).
            if plan.saved { try VMMover.savedStateFollowsDefinition(domain) }
        }
    }

    /// Points the disks and NVRAM of `domain`'s managed-save image at the files its persistent
    /// definition names, by disk target; nothing when it has no such image or they agree.
    /// Blocking (libvirt calls).
    static func savedStateFollowsDefinition(_ domain: LibvirtDomain) throws {
        guard try domain.hasManagedSaveImage else { return }
        let definition = try DomainFiles(xml: try domain.xml(flags: [.inactive, .secure]))
        let saved = try DomainFiles(xml: try domain.managedSaveXML(secure: true))
        let wanted = Dictionary(definition.hardDisks.map { ($0.target, $0.path) }, uniquingKeysWith: { first, _ in first })
        var changed = false
        for disk in saved.hardDisks {
            if let path = wanted[disk.target], path != disk.path {
                saved.setDiskSource(target: disk.target, path: path)
                changed = true
            }
        }
        if let nvram = definition.nvram, saved.nvram != nil, saved.nvram != nvram {
            saved.setNVRAM(nvram)
            changed = true
        }
        if changed { try domain.defineManagedSaveXML(saved.xml) }
    }

    private func moveLive(_ job: JobContext) async throws {
        let plan = self.plan
        var prepared = plan.disks
        if let after = plan.intent?.after {
            // The frozen files first (nothing writes them), then a new top on the copy of
            // each backing file: the block copy then mirrors only the top layer.
            let tops = plan.chain.filter { !$0.target.isEmpty }
            try await copy(plan.chain.filter { $0.target.isEmpty }, job: job, weight: 50)
            prepared = try await job.blocking {
                // The new tops are made below, on their new backing files.
                try CheckpointTransfer.rebase(after, file: { $0 }, backingName: { $0 }, except: Set(after.active.values))
                return try tops.map { top in
                    guard let backing = after.images[top.to]?.backing else {
                        return top
                    }
                    try CheckpointFiles.createOverlay(top.to, backing: backing, format: after.images[backing]?.format ?? "qcow2")
                    return Plan.File(target: top.target, from: top.from, to: top.to, format: "qcow2", shallow: true)
                }
            }
        }
        let share: UInt64 = plan.intent == nil ? 0 : 50, copies = prepared
        let connection = try services.link.connection()
        try await job.blocking {
            let domain = try connection.domain(uuid: plan.uuid)
            var started: [String] = []
            do {
                for disk in copies {
                    let e = XMLText.escape
                    let flags: BlockCopyFlags = disk.shallow ? [.transientJob, .shallow, .reuseExternal] : [.transientJob]
                    try domain.blockCopy(disk: disk.target,
                                         destinationXML: "<disk type='file'><source file='\(e(disk.to))'/><driver type='\(e(disk.format))'/></disk>",
                                         bandwidthBytesPerSecond: SparseCopy.testLimit, flags: flags)
                    started.append(disk.target)
                }
                // Mirrored until every copy has caught up; the guest writes on meanwhile.
                while true {
                    try job.checkCancelled()
                    var cursor: UInt64 = 0, end: UInt64 = 0, ready = true
                    for disk in copies {
                        guard let info = try domain.blockJobInfo(disk: disk.target) else {
                            throw VMMSError.failed("the copy of \(disk.from) stopped (the VM was turned off, or libvirt failed it); nothing was moved")
                        }
                        cursor += info.cursor
                        end += info.end
                        if info.end == 0 || info.cursor < info.end { ready = false }
                    }
                    job.progress(share * end + (100 - share) * cursor, of: 100 * end)
                    if ready { break }
                    Thread.sleep(forTimeInterval: 0.5)
                }
                // Pivot; libvirt says "not ready" until QEMU has announced readiness.
                for disk in copies {
                    var attempts = 0
                    while true {
                        do {
                            try domain.blockJobAbort(disk: disk.target, flags: .pivot)
                            started.removeAll { $0 == disk.target }
                            break
                        } catch let error as LibvirtError where attempts < 150 && (error.code == .blockCopyActive || error.code == .operationInvalid) {
                            attempts += 1
                            Thread.sleep(forTimeInterval: 0.2)
                        }
                    }
                }
            } catch {
                for target in started { try? domain.blockJobAbort(disk: target) }
                throw error
            }
        }
        // QEMU wrote the copies through the page cache: on disk before the old files go.
        try await job.blocking { for disk in copies { try SparseCopy.flush(disk.to) } }
        if let after = plan.intent?.after {
            // The pivot left the chain in the persistent definition; the headers are what counts.
            try await services.link.run { connection in
                try CheckpointFiles.syncDefinition(try connection.domain(uuid: plan.uuid), connection, after)
            }
        }
        await services.monitor.refresh(uuid: plan.uuid, full: true)
    }
}
