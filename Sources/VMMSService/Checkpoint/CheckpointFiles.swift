import Foundation
import Libvirt
import Spawn
import VMMSModel

/// The blocking file and libvirt steps of checkpoints, run on the libvirt worker. Each is
/// safe to repeat, so recovery can carry an interrupted operation forward by doing it again.
enum CheckpointFiles {
    static let qemuImg = "/usr/bin/qemu-img"
    /// The longest a block commit may take before Delete gives up on it (it keeps running in
    /// QEMU; the next tidy waits for it).
    static let blockJobTimeout: Duration = .seconds(1800)

    /// Runs `qemu-img`; its own message on failure.
    static func image(_ arguments: [String]) throws {
        let result = try runToCompletion(qemuImg, arguments)
        guard result.status == 0 else {
            throw VMMSError.failed("qemu-img \(arguments.first ?? "") failed: \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// A new qcow2 overlay `path` on `backing` (of `format`).
    static func createOverlay(_ path: String, backing: String, format: String) throws {
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try image(["create", "-q", "-f", "qcow2", "-F", format, "-b", backing, path])
        // Like vmms's new disks: only root (and QEMU, which libvirt lets in) reads the guest's data.
        chmod(path, 0o600)
    }

    /// A sparse copy of `source` at `destination`, replacing it in one rename.
    static func copy(_ source: String, to destination: String) throws {
        let temporary = destination + ".vmms-tmp"
        let result = try runToCompletion("/bin/cp", ["--sparse=always", "--preserve=mode,ownership", source, temporary])
        guard result.status == 0 else {
            throw VMMSError.failed("cannot copy \(source) to \(destination): \(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard rename(temporary, destination) == 0 else {
            let error = String(cString: strerror(errno))
            unlink(temporary)
            throw VMMSError.failed("cannot replace \(destination): \(error)")
        }
    }

    /// `<VirtualMachinePath>/Snapshots/<uuid>`, made reachable for QEMU (which runs as
    /// libvirt-qemu and opens the overlays by path).
    static func makeDirectory(_ directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o711])
    }

    static func remove(_ paths: [String]) {
        for path in paths where FileManager.default.fileExists(atPath: path) { DurableFile.remove(path) }
    }

    /// The default NVRAM file libvirt makes for a UEFI domain without an `<nvram>` path.
    static func defaultNVRAM(name: String) -> String { "/var/lib/libvirt/qemu/nvram/\(name)_VARS.fd" }

    // MARK: Definitions

    /// The formats of the images `sources` names, from the tree.
    static func formats(_ tree: CheckpointTree) -> [String: String] { tree.images.mapValues(\.format) }

    /// Points the persistent definition (and a managed-save image's) at `tree.active`
    /// without `<backingStore>`; nothing when they already are.
    static func syncDefinition(_ domain: LibvirtDomain, _ connection: LibvirtConnection, _ tree: CheckpointTree) throws {
        let persistent = try domain.xml(flags: [.inactive, .secure])
        let wanted = try CheckpointXML.repointing(persistent, sources: tree.active, formats: formats(tree))
        if wanted != (try CheckpointXML.normalized(persistent)) {
            _ = try connection.defineDomain(xml: wanted)
        }
        if (try? domain.hasManagedSaveImage) == true, let saved = try? domain.managedSaveXML(secure: true) {
            let repointed = try CheckpointXML.repointing(saved, sources: tree.active, formats: formats(tree))
            if repointed != saved { try domain.defineManagedSaveXML(repointed) }
        }
    }

    /// Whether the domain's disks are `active` (target → file).
    static func uses(_ xml: String, _ active: [String: String]) -> Bool {
        guard let disks = try? CheckpointXML.disks(in: xml) else { return false }
        let files = Dictionary(disks.compactMap { disk in disk.file.map { (disk.target, $0) } }, uniquingKeysWith: { a, _ in a })
        return !active.isEmpty && active.allSatisfy { files[$0.key] == $0.value }
    }

    // MARK: Apply

    /// Everything of an Apply after the definition names the new images: a half-restored
    /// guest or an old managed-save image goes, the NVRAM copy comes back, and a checkpoint
    /// with memory is restored paused and saved again, so the VM shows Saved.
    static func finishApply(_ entry: CheckpointTree.Entry, active: [String: String], formats: [String: String],
                            vmName: String, domain: LibvirtDomain, connection: LibvirtConnection) throws {
        if try domain.isActive { try domain.destroy() }
        if try domain.hasManagedSaveImage {
            let saved = try domain.managedSaveXML(secure: true)
            if entry.memory != nil, uses(saved, active) { return }
            try domain.managedSaveRemove()
        }
        let persistent = try domain.xml(flags: [.inactive, .secure])
        let nvram = try CheckpointXML.nvram(in: persistent) ?? (persistent.contains("firmware='efi'") ? defaultNVRAM(name: vmName) : nil)
        if let nvram {
            if let saved = entry.nvram {
                try copy(saved, to: nvram)
            } else if FileManager.default.fileExists(atPath: nvram) {
                // The VM had not made its NVRAM yet: the next start makes a fresh one.
                try FileManager.default.removeItem(atPath: nvram)
            }
        }
        guard let memory = entry.memory else { return }
        let imageXML = try connection.saveImageXML(path: memory, secure: true)
        var restoreXML = try CheckpointXML.repointing(imageXML, sources: active, formats: formats, name: vmName)
        if let nvram {
            // The image names the NVRAM where it was (before a Move or an Import).
            let files = try DomainFiles(xml: restoreXML)
            files.setNVRAM(nvram)
            restoreXML = files.xml
        }
        try connection.restore(from: memory, xml: restoreXML, flags: .paused)
        CrashPoint.reached("Apply.restored")
        try domain.managedSave(flags: entry.paused ? .paused : .running)
    }

    // MARK: Merges

    /// Carries out one cleanup step's file work: a merge commits `top` into `base`, live
    /// (block commit, pivoting when `top` is the running image) when QEMU has the chain open,
    /// else with qemu-img; the other overlays of `top` are rebased onto `base` and the
    /// definitions follow. A removal needs nothing here (the file goes as garbage).
    static func carryOut(_ step: CheckpointTree.CleanupStep, in tree: CheckpointTree, connection: LibvirtConnection) throws {
        guard case .merge(let top, let base) = step else { return }
        let domain = try? connection.domain(uuid: tree.vmUUID)
        var after = tree
        after.complete(step)
        // Either as the tree says, or already past this step (a crash before the tree was
        // written): anything else would drop what was layered on the disks behind vmms's back.
        if let domain, let persistent = try? domain.xml(flags: [.inactive]),
           !uses(persistent, tree.active), !uses(persistent, after.active) {
            throw VMMSError.invalidState(current: "changed outside vmms",
                message: "the disks of the VM are no longer \(tree.active.values.sorted().joined(separator: ", ")) (changed outside vmms, e.g. by virsh snapshot-create-as); put them back before checkpoints are merged")
        }
        let running = (try? domain?.isActive) == true
        let liveTarget = tree.active.first { tree.chain(from: $0.value).contains(base) }?.key
        var rebased: Set<String> = []
        if running, let domain, let target = liveTarget {
            let topIsActive = tree.active[target] == top
            if try domain.blockJobInfo(disk: target) == nil, try stillInChain(domain, target: target, file: top) {
                try domain.blockCommit(disk: target, base: base, top: topIsActive ? nil : top, flags: topIsActive ? [.active] : [])
            }
            try waitForBlockJob(domain, target: target, pivot: topIsActive)
            // QEMU rewrote the header of the overlay it has open.
            if let above = tree.chain(from: tree.active[target] ?? "").firstIndex(of: top), above > 0 {
                rebased.insert(tree.chain(from: tree.active[target] ?? "")[above - 1])
            }
        } else if FileManager.default.fileExists(atPath: top) {
            try image(["commit", "-q", "-d", "-f", "qcow2", top])
        }
        let baseFormat = tree.images[base]?.format ?? "qcow2"
        for overlay in tree.overlays(of: top) where !rebased.contains(overlay) {
            try image(["rebase", "-u", "-f", "qcow2", "-F", baseFormat, "-b", base, overlay])
        }
        if let domain { try syncDefinition(domain, connection, after) }
    }

    private static func stillInChain(_ domain: LibvirtDomain, target: String, file: String) throws -> Bool {
        let live = try domain.xml()
        guard let range = live.range(of: "<target dev='\(target)'") else { return true }
        // The <disk> element holding this target: its chain is written before the target.
        let start = live[..<range.lowerBound].range(of: "<disk ", options: .backwards)?.lowerBound ?? live.startIndex
        return live[start..<range.lowerBound].contains("'\(file)'")
    }

    /// Waits until the block job on `target` has finished (`pivot`: until it is ready, then
    /// pivots).
    private static func waitForBlockJob(_ domain: LibvirtDomain, target: String, pivot: Bool) throws {
        let deadline = ContinuousClock.now + blockJobTimeout
        while let info = try domain.blockJobInfo(disk: target) {
            if pivot, info.end > 0, info.cursor == info.end {
                try domain.blockJobAbort(disk: target, flags: .pivot)
                return
            }
            guard ContinuousClock.now < deadline else {
                throw VMMSError.timeout("merging the checkpoint's disk \(target) did not finish within \(blockJobTimeout); it goes on in QEMU")
            }
            usleep(50_000)
        }
    }
}
