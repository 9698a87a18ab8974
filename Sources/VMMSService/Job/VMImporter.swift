import DBus
import Foundation
import Libvirt
import VMMSModel

/// `Host.ImportVM` (Import-VM): everything about the export is checked before the job starts,
/// so bad input is the call's error; the job copies (unless `Copy` is false), defines, and
/// for a Saved export imported with its own identity brings the memory image back.
///
/// Crash safety as for CreateVM: the copies and the domain are journaled before they are
/// made; recovery undefines the domain and removes the copies no domain uses.
///
/// An export with checkpoints (`CheckpointTransfer`) brings them along: the chains' base
/// images go where disks go, every other checkpoint file into
/// `<VirtualMachinePath>/Snapshots/<vm uuid>/`, the overlays are rebased onto their new
/// backing files, and the tree is written into the `CheckpointStore`.
struct VMImporter {
    let services: Services

    /// An export read from its folder and checked.
    struct Source: Sendable {
        var root: String
        var manifest: ExportManifest
        var xml: String
        var networks: [String]
        var otherSources: [String]
        var hostResources: [String]
        /// The checkpoints, paths relative to `root`; nil when the export has none.
        var tree: CheckpointTree?
    }

    /// One file of the import: where it is in the export, where the VM will use it.
    struct File: Sendable {
        var from: String
        var to: String
        var copy: Bool
    }

    struct Plan: Sendable {
        var name: String
        var uuid: String
        var newIdentity: Bool
        var source: Source
        var disks: [(target: String, file: File)]
        var nvram: File?
        var savedState: File?
        /// The other files of the checkpoints (by their path in the export) and the tree with
        /// the paths the VM will use; a `snapshots` folder made for them.
        var checkpointFiles: [File] = []
        var tree: CheckpointTree?
        var snapshots: String?
        var copies: [File] { (disks.map(\.file) + [nvram, savedState].compactMap { $0 } + checkpointFiles).filter(\.copy) }
    }

    func start(_ call: MethodCall) async throws -> ObjectPath {
        guard call.arguments.count == 2, let directory = call.arguments[0].string else {
            throw VMMSError.invalidArgs("ImportVM takes (s directory, a{sv} options)")
        }
        let options = try Options(call.arguments[1], method: "ImportVM", allowed: ["Copy": "b", "GenerateNewId": "b", "Name": "s"])
        let copy = options.bool("Copy") ?? true, newIdentity = options.bool("GenerateNewId") ?? false
        let requestedName = options.string("Name")
        if let requestedName, let problem = VMNameRule.validate(requestedName) { throw VMMSError.invalidArgs("Name: \(problem)") }
        try await services.authorizer.authorize(call, .vmCreate, AuthorizationDetails(verb: "ImportVM", vmName: requestedName))
        let uid = try await call.callerUID()
        let settings = services.host.settings
        let folder = try JobFiles.checkFolder(directory, what: "ImportVM directory", roots: settings.storageRoots, callerIsRoot: uid == 0)
        let source = try await BlockingIO.run { try Self.read(folder) }
        if uid != 0, let other = source.otherSources.first {
            throw VMMSError.invalidArgs("the export's definition uses \(other), which is not one of its disks; only root may import it")
        }
        if uid != 0, !source.hostResources.isEmpty {
            throw VMMSError.invalidArgs("the export's definition reaches host resources (\(source.hostResources.joined(separator: ", "))); only root may import it")
        }
        let name = requestedName ?? source.manifest.name
        let uuid = newIdentity ? UUID().uuidString.lowercased() : source.manifest.uuid
        if !newIdentity, let existing = services.vms.record(uuid: uuid) {
            throw VMMSError.alreadyExists("a virtual machine with the UUID \(uuid) exists already (\(existing.name)); import with GenerateNewId to make a copy beside it")
        }
        let networks = source.networks
        let missing = try await services.link.run { connection in
            Array(Set(networks.filter { (try? connection.network(name: $0)) == nil })).sorted()
        }
        if !missing.isEmpty {
            throw VMMSError.notFound("the VM uses switches that do not exist on this host: \(missing.joined(separator: ", ")); create them first")
        }
        let reservation = try services.vms.reserveName(name)
        let plan: Plan
        do {
            plan = try await BlockingIO.run {
                try Self.plan(source, name: name, uuid: uuid, newIdentity: newIdentity, copy: copy, settings: settings, callerIsRoot: uid == 0)
            }
        } catch {
            services.vms.release(reservation)
            throw error
        }
        let caller = await call.caller()
        let services = self.services
        do {
            return try services.jobs.start(operation: "Import", vm: (uuid, name), target: Paths.vm(uuid: uuid), uid: uid, action: .vmCreate,
                                           work: { job in try await VMImporter(services: services).run(plan, job: job, caller: caller) },
                                           finally: { services.vms.release(reservation) })
        } catch {
            services.vms.release(reservation)
            throw error
        }
    }

    /// Reads and checks an export folder (blocking file reads).
    static func read(_ folder: String) throws -> Source {
        let machines = folder + "/" + ExportLayout.machines
        let manifests = ((try? FileManager.default.contentsOfDirectory(atPath: machines)) ?? []).filter { $0.hasSuffix(".json") }
        guard manifests.count == 1 else {
            throw VMMSError.invalidArgs(manifests.isEmpty
                ? "\(folder) is not an export: it has no \(ExportLayout.machines)/<UUID>.json; name the folder VM.Export wrote, <directory>/<VM name>"
                : "\(folder) holds \(manifests.count) definitions in \(ExportLayout.machines); an export holds one")
        }
        let corrupt = { (why: String) in VMMSError.invalidArgs("\(folder) is not a usable export: \(why)") }
        guard let data = FileManager.default.contents(atPath: machines + "/" + manifests[0]),
              let manifest = try? JSONDecoder().decode(ExportManifest.self, from: data) else {
            throw corrupt("\(ExportLayout.machines)/\(manifests[0]) cannot be read as an export manifest")
        }
        if let problem = manifest.problem { throw corrupt(problem) }
        guard let xml = try? String(contentsOfFile: folder + "/" + manifest.definition, encoding: .utf8) else {
            throw corrupt("its definition \(manifest.definition) is missing")
        }
        let files: DomainFiles
        do { files = try DomainFiles(xml: xml) } catch { throw corrupt("its definition \(manifest.definition): \(error.message)") }
        let targets = Set(files.hardDisks.map(\.target))
        let tree = try manifest.checkpoints.map { try readTree(folder, $0, manifest: manifest) }
        let overlays = Set(tree?.overlays.map(\.path) ?? [])
        for disk in manifest.disks {
            guard targets.contains(disk.target) else { throw corrupt("the definition has no disk \(disk.target)") }
            let path = folder + "/" + disk.file
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw corrupt("the disk \(disk.file) is missing") }
            if let problem = DiskImageRule.problem(resolvedPath: path, type: .regular, header: StorageRoots.firstBytes(of: path, count: 16), kind: .disk) {
                throw corrupt("\(disk.file): \(problem)")
            }
            if !overlays.contains(disk.file), StorageRoots.hasBackingFile(path) {
                throw corrupt("the disk \(disk.file) has a backing file its checkpoints do not name")
            }
        }
        if targets.count != manifest.disks.count { throw corrupt("its definition has disks the manifest does not list") }
        for file in [manifest.nvram, manifest.savedState].compactMap({ $0 }) {
            var info = stat()
            guard lstat(folder + "/" + file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw corrupt("\(file) is missing") }
        }
        return Source(root: folder, manifest: manifest, xml: xml, networks: files.networks, otherSources: files.otherDiskSources,
                      hostResources: files.hostResources, tree: tree)
    }

    /// Reads and checks the checkpoint tree of an export: every file it names is inside the
    /// export and there, its images are disk images, "Now" is the manifest's disks.
    private static func readTree(_ folder: String, _ file: String, manifest: ExportManifest) throws -> CheckpointTree {
        let corrupt = { (why: String) in VMMSError.invalidArgs("\(folder) is not a usable export: \(why)") }
        guard let data = FileManager.default.contents(atPath: folder + "/" + file),
              let tree = try? JSONDecoder().decode(CheckpointTree.self, from: data) else {
            throw corrupt("\(file) cannot be read as a checkpoint tree")
        }
        if let problem = tree.problem(isInside: ExportManifest.isInside) { throw corrupt("\(file): \(problem)") }
        guard tree.active == Dictionary(manifest.disks.map { ($0.target, $0.file) }, uniquingKeysWith: { a, _ in a }) else {
            throw corrupt("\(file): its current images are not the disks the manifest lists")
        }
        let images = Set(tree.images.keys)
        for name in tree.files {
            let path = folder + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw corrupt("\(name), named in \(file), is missing") }
            if images.contains(name),
               let problem = DiskImageRule.problem(resolvedPath: path, type: .regular, header: StorageRoots.firstBytes(of: path, count: 16), kind: .disk) {
                throw corrupt("\(name): \(problem)")
            }
        }
        return tree
    }

    /// Where every file goes: copies into VirtualHardDiskPath (disks) and VirtualMachinePath
    /// (NVRAM, memory image), named after the VM; in place, the export's own files (but a
    /// new identity always gets its own NVRAM: two VMs on one NVRAM file would share it).
    static func plan(_ source: Source, name: String, uuid: String, newIdentity: Bool, copy: Bool, settings: HostSettings,
                     callerIsRoot: Bool) throws -> Plan {
        let root = source.root, manifest = source.manifest
        var taken: Set<String> = []
        func destination(_ directory: String, _ base: String, _ suffix: String) throws -> String {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let name = JobFiles.freeName(base, suffix, in: directory, taken: taken)
            taken.insert(directory + "/" + name)
            taken.insert(name)
            return directory + "/" + name
        }
        let tree = source.tree
        let snapshots = settings.virtualMachinePath + "/Snapshots/" + uuid
        let overlays = Set(tree?.overlays.map(\.path) ?? [])
        var snapshotNames: Set<String> = []
        var made: String?, planned = false
        defer { if !planned, let made { try? FileManager.default.removeItem(atPath: made) } }
        /// An overlay, NVRAM copy or memory image of a checkpoint: beside the VM's other checkpoint files.
        func checkpointDestination(_ file: String) throws -> String {
            if made == nil, !FileManager.default.fileExists(atPath: snapshots) {
                try CheckpointFiles.makeDirectory(snapshots)
                made = snapshots
            }
            let last = (file as NSString).lastPathComponent
            let name = JobFiles.freeName((last as NSString).deletingPathExtension, JobFiles.suffix(of: last), in: snapshots, taken: snapshotNames)
            snapshotNames.insert(name)
            return snapshots + "/" + name
        }
        var disks: [(target: String, file: File)] = []
        for disk in manifest.disks {
            let from = root + "/" + disk.file
            if copy, overlays.contains(disk.file) {
                disks.append((disk.target, File(from: from, to: try checkpointDestination(disk.file), copy: true)))
            } else if copy {
                disks.append((disk.target, File(from: from, to: try destination(settings.virtualHardDiskPath, name, JobFiles.suffix(of: disk.file)), copy: true)))
            } else {
                let resolved = try StorageRoots.checkImage(from, roots: settings.storageRoots, callerIsRoot: callerIsRoot, what: "the export's disk", kind: .disk)
                disks.append((disk.target, File(from: resolved, to: resolved, copy: false)))
            }
        }
        let nvram = try manifest.nvram.map { file -> File in
            let from = root + "/" + file
            return copy || newIdentity ? File(from: from, to: try destination(settings.virtualMachinePath, name + "_VARS", ".fd"), copy: true)
                : File(from: from, to: from, copy: false)
        }
        // A memory image only fits the identity it was saved with.
        let saved = try manifest.savedState.flatMap { file -> File? in
            guard !newIdentity else { return nil }
            let from = root + "/" + file
            return copy ? File(from: from, to: try destination(settings.virtualMachinePath, name, ".vmrs"), copy: true) : File(from: from, to: from, copy: false)
        }
        var plan = Plan(name: name, uuid: uuid, newIdentity: newIdentity, source: source, disks: disks, nvram: nvram, savedState: saved)
        if let tree {
            var map = Dictionary(zip(manifest.disks.map(\.file), disks.map(\.file.to)), uniquingKeysWith: { a, _ in a })
            for image in tree.images.keys.sorted() where map[image] == nil {
                let from = root + "/" + image
                let file: File
                if !copy {
                    let resolved = try StorageRoots.checkImage(from, roots: settings.storageRoots, callerIsRoot: callerIsRoot,
                                                               what: "the export's checkpoint image", kind: .disk)
                    file = File(from: resolved, to: resolved, copy: false)
                } else if tree.images[image]?.backing == nil {
                    file = File(from: from, to: try destination(settings.virtualHardDiskPath, name, JobFiles.suffix(of: image)), copy: true)
                } else {
                    file = File(from: from, to: try checkpointDestination(image), copy: true)
                }
                map[image] = file.to
                plan.checkpointFiles.append(file)
            }
            let kept = newIdentity ? tree.withoutMemory() : tree
            for own in kept.checkpoints.flatMap(\.ownFiles) {
                let from = root + "/" + own
                let file = copy ? File(from: from, to: try checkpointDestination(own), copy: true) : File(from: from, to: from, copy: false)
                map[own] = file.to
                plan.checkpointFiles.append(file)
            }
            plan.tree = kept.relocated(to: uuid) { map[$0] ?? $0 }
            plan.snapshots = made
        }
        var needed: [String: UInt64] = [:]
        for file in plan.copies { needed[(file.to as NSString).deletingLastPathComponent, default: 0] += try SparseCopy.dataBytes(file.from) }
        for (directory, bytes) in needed {
            if let free = SparseCopy.freeBytes(directory), free < bytes + (64 << 20) {
                throw VMMSError.insufficientResources("\(directory) has \(free >> 20) MiB free; the import needs \((bytes >> 20) + 64) MiB there")
            }
        }
        planned = true
        return plan
    }

    func run(_ plan: Plan, job: JobContext, caller: Caller) async throws {
        let journal = services.journal.begin("ImportVM \(plan.name)", caller: caller.description)
        let copies = plan.copies
        let treePath = services.checkpoints.path(of: plan.uuid)
        var made = copies.map(\.to) + [plan.snapshots].compactMap { $0 }
        if plan.tree != nil { made.append(treePath) }
        var defined = false, recorded = false
        do {
            for path in made { try await journal.intend(.removeUnlessUsed(path: path)) }
            try await job.blocking {
                let total = try copies.reduce(UInt64(0)) { $0 + (try SparseCopy.dataBytes($1.from)) }
                var done: UInt64 = 0
                for file in copies {
                    try SparseCopy.copy(file.from, to: file.to, progress: { moved in
                        done += moved
                        job.progress(done * 95, of: total * 100)
                    }, cancelled: { job.isCancelled })
                }
                // Each overlay on its backing file where the VM will use it.
                if let tree = plan.tree { try CheckpointTransfer.rebase(tree, file: { $0 }, backingName: { $0 }) }
            }
            CrashPoint.reached("Import.copied")
            try job.checkCancelled()

            let definition = try DomainFiles(xml: plan.source.xml)
            definition.setName(plan.name)
            definition.dropEmulator()
            if plan.newIdentity { definition.setNewIdentity(uuid: plan.uuid) }
            for disk in plan.disks { definition.setDiskSource(target: disk.target, path: disk.file.to) }
            definition.setNVRAM(plan.nvram?.to)
            let xml = try plan.tree.map { tree in
                // "Now"'s images are overlays: libvirt reads their chains from the headers.
                try CheckpointXML.repointing(definition.xml, sources: tree.active, formats: CheckpointFiles.formats(tree))
            } ?? definition.xml
            let uuid = plan.uuid, name = plan.name
            try await journal.intend(.defineDomain(uuid: uuid, name: name))
            defined = true
            let macs = try await services.link.run { connection -> [String?] in
                do {
                    return try DomainFiles(xml: try connection.defineDomain(xml: xml).xml(flags: [.inactive])).macs
                } catch let error as LibvirtError where error.code == .operationFailed || error.code == .domainExists {
                    throw VMMSError.alreadyExists("libvirt refused the definition: \(error.message)")
                }
            }
            CrashPoint.reached("Import.defined")
            if let tree = plan.tree {
                let identity = CheckpointTransfer.Identity(name: name, uuid: plan.newIdentity ? uuid : nil, macs: macs)
                recorded = true
                try await services.checkpoints.save(try CheckpointTransfer.rewritingDefinitions(tree, nvram: plan.nvram?.to, identity: identity))
            }
            if let saved = plan.savedState {
                try await restoreSavedState(saved.to, plan: plan, job: job)
            }
            try job.checkCancelled()
            await services.monitor.refresh(uuid: uuid)
            await journal.finish()
            services.audit(caller, "ImportVM \(name) (\(uuid)) from \(plan.source.root)\(copies.isEmpty ? " in place" : "")")
        } catch {
            if recorded { try? await services.checkpoints.save(CheckpointTree(vmUUID: plan.uuid)) }
            let undone = await rollBack(plan, defined: defined, copies: made)
            if undone { await journal.finish() } else { journal.abandon() }
            throw error
        }
    }

    /// Brings a Saved export back as Saved: restore the memory image onto the imported disks
    /// (its embedded definition rewritten to them), then save it as libvirt's managed save.
    private func restoreSavedState(_ image: String, plan: Plan, job: JobContext) async throws {
        let disks = plan.disks.map { ($0.target, $0.file.to) }, nvram = plan.nvram?.to, uuid = plan.uuid, tree = plan.tree
        let copied = plan.savedState?.copy ?? false
        try await services.link.runLong { connection in
            let embedded = try DomainFiles(xml: try connection.saveImageXML(path: image, secure: true))
            for (target, path) in disks { embedded.setDiskSource(target: target, path: path) }
            embedded.setNVRAM(nvram)
            var xml = embedded.xml
            if let tree { xml = try CheckpointXML.repointing(xml, sources: tree.active, formats: CheckpointFiles.formats(tree)) }
            try connection.restore(from: image, xml: xml, flags: .paused)
            try connection.domain(uuid: uuid).managedSave(flags: .running)
        }
        job.progress(99, of: 100)
        if copied { SparseCopy.remove(image) }
    }

    /// Undoes a failed import; false when libvirt did not let it (recovery finishes it).
    private func rollBack(_ plan: Plan, defined: Bool, copies: [String]) async -> Bool {
        let uuid = plan.uuid
        do {
            try await services.link.runLong { connection in
                if defined, let domain = try? connection.domain(uuid: uuid) {
                    if try domain.isActive { try domain.destroy() }
                    try VMInterface.undefine(domain)
                }
                try JobFiles.removeUnlessUsed(copies, connection: connection)
            }
        } catch {
            services.logger.error("could not undo the failed import of \(plan.name) now (\(error)); recovery will")
            return false
        }
        await services.monitor.refresh(uuid: uuid)
        return true
    }
}
