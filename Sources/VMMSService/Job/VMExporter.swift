import Foundation
import Glibc
import Libvirt
import VMMSModel

/// The work of an Export job: the VM's files into `<directory>/<VM name>/` in Hyper-V's
/// layout (`ExportLayout`).
///
/// Everything is written into a hidden staging folder beside the destination, which is
/// renamed into place only when complete, so a failed or cancelled export, or one cut short
/// by a crash (the journal names the staging folder; recovery removes it), leaves no partial
/// folder. An Off or Saved VM's disks, NVRAM and memory image are copied sparsely; a running
/// VM's disks are taken by libvirt's push-mode backup, which holds them as they were when
/// the job started while the guest keeps running.
///
/// Checkpoints travel along (`CheckpointTransfer`): every image of the chains, the NVRAM
/// copies, the memory images and the tree. Their frozen images do not change while the job
/// holds the VM, so they are copied as files also while it runs; a running VM's "Now" is
/// the backup (one whole image: libvirt's backup cannot take only the top layer).
struct VMExporter {
    let services: Services
    let uuid: String
    let name: String
    /// The resolved directory the caller named, and `<directory>/<name>`.
    let directory: String
    let destination: String
    let caller: Caller

    private struct Plan: Sendable {
        var xml: String
        var active: Bool
        var saved: Bool
        var disks: [(target: String, path: String, format: String)]
        var others: [String]
        var nvram: String?
        /// The VM's checkpoints; nil when it has none.
        var tree: CheckpointTree?
    }

    func run(_ job: JobContext) async throws {
        let uuid = self.uuid, name = self.name
        let tree = services.checkpoints.tree(uuid)
        var plan = try await services.link.run { connection -> Plan in
            let domain = try connection.domain(uuid: uuid)
            let xml = try domain.xml(flags: [.inactive, .secure])
            let files = try DomainFiles(xml: xml)
            let active = try domain.isActive
            let saved = !active && ((try? domain.hasManagedSaveImage) ?? false)
            let nvram = JobFiles.nvram(of: domain, inactive: files, name: name)
            return Plan(xml: xml, active: active, saved: saved, disks: files.hardDisks, others: files.otherDiskTargets, nvram: nvram)
        }
        if !tree.isEmpty {
            guard Set(plan.disks.map(\.target)) == Set(tree.active.keys), plan.disks.allSatisfy({ tree.active[$0.target] == $0.path }) else {
                throw VMMSError.invalidState(current: plan.active ? "Running" : "Off",
                    message: "the disks of \(name) are not the ones its checkpoints know (changed outside vmms); put them back or delete its checkpoints")
            }
            plan.tree = tree
        }
        for disk in plan.disks where plan.tree == nil && StorageRoots.hasBackingFile(disk.path) {
            throw VMMSError.notSupported("the disk \(disk.path) of \(name) has a backing file that is not one of its checkpoints (made outside vmms); merge it into the disk (qemu-img commit) to export the VM")
        }
        let staging = directory + "/.\(name).vmms-export-\(job.number)-\(UUID().uuidString.prefix(8).lowercased())"
        let journal = services.journal.begin("Export \(name) to \(destination)", caller: caller.description)
        do {
            try await journal.intend(.removeUnlessUsed(path: staging))
            try await export(plan, into: staging, job: job)
            CrashPoint.reached("Export.copied")
            // A VM deleted meanwhile (virsh undefine behind the service's back) has no export.
            let exists = try await services.link.run { connection in (try? connection.domain(uuid: uuid)) != nil }
            guard exists else { throw VMMSError.notFound("\(name) was deleted while it was being exported; nothing was exported") }
            try job.checkCancelled()
            let destination = self.destination
            try await job.blocking {
                // Claimed with mkdir (which fails if the folder exists), then replaced by the
                // staging folder: an export folder made meanwhile is never overwritten.
                guard mkdir(destination, 0o755) == 0 else {
                    if errno == EEXIST { throw VMMSError.alreadyExists("\(destination) appeared while the export ran; nothing was exported") }
                    throw VMMSError.failed("cannot create \(destination): \(String(cString: strerror(errno)))")
                }
                guard rename(staging, destination) == 0 else {
                    let error = errno
                    rmdir(destination)
                    throw VMMSError.failed("cannot rename \(staging) to \(destination): \(String(cString: strerror(error)))")
                }
            }
            await journal.finish()
            services.audit(caller, "Export \(name) (\(uuid)) to \(destination)")
        } catch {
            _ = try? await job.blocking { SparseCopy.remove(staging) }
            await journal.finish()
            throw error
        }
    }

    /// Fills the staging folder: copies (or a backup of a running VM), the definition
    /// pointing at them, and the manifest.
    private func export(_ plan: Plan, into staging: String, job: JobContext) async throws {
        let final = destination
        var taken: Set<String> = []
        var disks: [(target: String, source: String, file: String, format: String)] = []
        for disk in plan.disks {
            let base = ((disk.path as NSString).lastPathComponent as NSString).deletingPathExtension
            let fileName = JobFiles.freeName(base.isEmpty ? name : base, JobFiles.suffix(of: disk.path), in: "/nonexistent", taken: taken)
            taken.insert(fileName)
            disks.append((disk.target, disk.path, ExportLayout.disks + "/" + fileName, disk.format))
        }
        // With checkpoints: the export's name of every file of the tree.
        var names = Dictionary(disks.map { ($0.source, $0.file) }, uniquingKeysWith: { a, _ in a })
        var exported: CheckpointTree?
        if let tree = plan.tree {
            for image in tree.images.keys.sorted() where names[image] == nil {
                names[image] = CheckpointTransfer.name(for: image, in: ExportLayout.disks, taken: &taken)
            }
            var own: Set<String> = []
            for file in tree.checkpoints.flatMap(\.ownFiles) {
                names[file] = CheckpointTransfer.name(for: file, in: ExportLayout.snapshots, taken: &own)
            }
            var relative = tree.relocated(to: uuid) { names[$0] ?? $0 }
            // The backup of a running VM is "Now" as one whole image.
            if plan.active { for top in relative.active.values { relative.images[top] = .init(backing: nil, format: "qcow2") } }
            exported = relative
        }
        let nvramFile = plan.nvram.map { _ in ExportLayout.machines + "/\(uuid).nvram" }
        let savedFile = plan.saved ? ExportLayout.machines + "/\(uuid).vmrs" : nil
        let savedSource = JobFiles.managedSaveImage(name: name)
        try await job.blocking {
            for folder in ["", ExportLayout.machines, ExportLayout.disks, ExportLayout.snapshots] {
                try FileManager.default.createDirectory(atPath: staging + (folder.isEmpty ? "" : "/" + folder), withIntermediateDirectories: folder.isEmpty ? false : true,
                                                        attributes: [.posixPermissions: 0o755])
            }
        }
        CrashPoint.reached("Export.staged")

        // What is copied as files: disks of a VM that does not run, NVRAM, memory image.
        var files: [(source: String, file: String)] = []
        if !plan.active { files += disks.map { ($0.source, $0.file) } }
        if let tree = plan.tree {
            let tops = Set(tree.active.values)
            for image in tree.images.keys.sorted() where !tops.contains(image) { files.append((image, names[image] ?? image)) }
            for file in tree.checkpoints.flatMap(\.ownFiles) { files.append((file, names[file] ?? file)) }
        }
        if let nvram = plan.nvram, let nvramFile { files.append((nvram, nvramFile)) }
        if let savedFile {
            guard FileManager.default.fileExists(atPath: savedSource) else {
                throw VMMSError.failed("\(name) is Saved but its memory image \(savedSource) is missing")
            }
            files.append((savedSource, savedFile))
        }
        let copies = files, relativeTree = exported
        if plan.active {
            try await backUp(disks.map { ($0.target, staging + "/" + $0.file) }, others: plan.others, job: job, weight: (0, 95))
        }
        try await job.blocking {
            let total = try copies.reduce(UInt64(0)) { $0 + (try SparseCopy.dataBytes($1.source)) }
            var done: UInt64 = 0
            for copy in copies {
                try SparseCopy.copy(copy.source, to: staging + "/" + copy.file, progress: { moved in
                    done += moved
                    job.progress(plan.active ? 95 * total + 5 * done : done, of: plan.active ? 100 * total : total)
                }, cancelled: { job.isCancelled })
            }
            // Each overlay names its backing file by its bare name: the export folder can move.
            if let relativeTree {
                try CheckpointTransfer.rebase(relativeTree, file: { staging + "/" + $0 }, backingName: { ($0 as NSString).lastPathComponent })
            }
        }
        try job.checkCancelled()

        // The definition as it was, pointing at the copies where the export will be.
        let definition = try DomainFiles(xml: plan.xml)
        for disk in disks { definition.setDiskSource(target: disk.target, path: final + "/" + disk.file) }
        if let nvramFile { definition.setNVRAM(final + "/" + nvramFile) }
        let manifest = ExportManifest(name: name, uuid: uuid, state: plan.active ? "Running" : plan.saved ? "Saved" : "Off",
                                      exportedAt: JobRunner.now(), definition: ExportLayout.machines + "/\(uuid).xml",
                                      disks: disks.map { .init(target: $0.target, file: $0.file, format: $0.format) },
                                      nvram: nvramFile, savedState: savedFile, checkpoints: exported.map { _ in CheckpointTransfer.treeFile })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let manifestData = try encoder.encode(manifest)
        var definitionXML = definition.xml
        if let exported {
            // "Now"'s images are overlays: no `<backingStore>`, libvirt reads the chains from their headers.
            definitionXML = try CheckpointXML.repointing(definitionXML, sources: exported.active.mapValues { final + "/" + $0 },
                                                         formats: Dictionary(exported.images.map { (final + "/" + $0.key, $0.value.format) }, uniquingKeysWith: { a, _ in a }))
        }
        let xml = Data(definitionXML.utf8)
        let treeData = try exported.map { try encoder.encode($0) }
        try await job.blocking {
            if let treeData { try DurableFile.write(treeData, to: staging + "/" + CheckpointTransfer.treeFile) }
            try DurableFile.write(xml, to: staging + "/" + manifest.definition)
            try DurableFile.write(manifestData, to: staging + "/" + ExportLayout.machines + "/\(manifest.uuid).json")
        }
    }

    /// A full push-mode backup of a running VM's disks to `targets` (target, file): libvirt
    /// holds the point in time of its start while the guest writes on. Progress from the
    /// domain job (`weight`: the share of the job's percent it covers); Cancel aborts it.
    private func backUp(_ targets: [(target: String, file: String)], others: [String], job: JobContext,
                        weight: (from: UInt32, to: UInt32)) async throws {
        guard !targets.isEmpty else { return }
        let e = XMLText.escape
        var xml = "<domainbackup mode='push'><disks>"
        for target in targets {
            xml += "<disk name='\(e(target.target))' backup='yes' type='file'><driver type='qcow2'/><target file='\(e(target.file))'/></disk>"
        }
        for other in others { xml += "<disk name='\(e(other))' backup='no'/>" }
        xml += "</disks></domainbackup>"
        let uuid = self.uuid, backupXML = xml
        let connection = try services.link.connection()
        try await job.blocking {
            let domain = try connection.domain(uuid: uuid)
            try domain.backupBegin(xml: backupXML)
            var aborted = false
            while true {
                if job.isCancelled, !aborted {
                    try? domain.abortJob()
                    aborted = true
                }
                let stats = try domain.jobStats()
                guard stats.jobType == .bounded || stats.jobType == .unbounded else { break }
                if let total = stats.dataTotal, total > 0, let processed = stats.dataProcessed {
                    job.progress(UInt64(weight.from) * total + UInt64(weight.to - weight.from) * processed, of: 100 * total)
                }
                Thread.sleep(forTimeInterval: 0.2)
            }
            let final = try? domain.jobStats(completed: true)
            if job.isCancelled { throw VMMSError.cancelled("the backup was cancelled") }
            if let final, final.jobType == .failed || final.jobType == .cancelled || final.success == false {
                throw VMMSError.failed("libvirt's backup of the running VM failed: \(final.errorMessage ?? "no reason given")")
            }
        }
    }
}
