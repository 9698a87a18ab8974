import DBus
import Libvirt
import VMMSModel

/// `AddHardDisk` and `RemoveHardDisk` (Add-/Remove-VMHardDiskDrive).
extension VMInterface {
    /// How long a running guest gets to release a disk before RemoveHardDisk gives up.
    static let deviceRemovalTimeout: Duration = .seconds(10)

    func addHardDisk(_ call: MethodCall) async throws -> String {
        if Self.namesSANDisk(call.arguments.first) { return try await addSANDisk(call) }
        let options = try Options(call.arguments.first, method: "AddHardDisk", allowed: ["SizeBytes": "t", "Path": "s"])
        let size = options.uint64("SizeBytes"), path = options.string("Path")
        guard (size == nil) != (path == nil) else {
            throw VMMSError.invalidArgs("AddHardDisk takes either SizeBytes (a new disk) or Path (an existing image), not \(size == nil ? "neither" : "both")")
        }
        if let size, !(VMSettings.minimumNewDiskBytes...VMSettings.maximumNewDiskBytes).contains(size) {
            throw VMMSError.invalidArgs("SizeBytes must be between \(VMSettings.minimumNewDiskBytes) and \(VMSettings.maximumNewDiskBytes)")
        }
        // Authorized before the path is looked at: whether a file exists is not for everyone to learn.
        try await authorize(call, .vmConfigure, verb: "AddHardDisk")
        let settings = services.host.settings
        let callerIsRoot = (try? await call.callerUID()) == 0
        let existing = try path.map {
            try StorageRoots.checkImage($0, roots: settings.storageRoots, callerIsRoot: callerIsRoot, what: "Path", kind: .disk)
        }
        let caller = await call.caller()
        let services = self.services
        let (record, added) = try await operation("AddHardDisk", allowed: Self.configurable, full: true) { record -> (VMRecord, String) in
            try services.refuseDiskChangeWithCheckpoints(record)
            // One writable image in two VMs corrupts it, and would hand one VM's data to
            // whoever may configure the other.
            if let existing, record.configuration.hardDisks.contains(where: { StorageRoots.resolve($0.path) == existing }) {
                throw VMMSError.alreadyExists("\(existing) is already attached to \(record.name)")
            }
            if let existing, let user = services.vmUsingDisk(existing, except: uuid) {
                throw VMMSError.invalidArgs("\(existing) is a hard disk of \(user); detach it there first")
            }
            let journal = services.journal.begin("AddHardDisk \(record.name)", caller: caller.description)
            var created: String?
            do {
                if let size {
                    let new = try await services.disks.create(base: record.name, additional: true, sizeBytes: size,
                                                              in: settings.virtualHardDiskPath, journal: journal)
                    created = new
                    CrashPoint.reached("AddHardDisk.diskCreated")
                }
                let diskPath = created ?? existing ?? ""
                let format = created != nil ? "qcow2" : DomainXML.imageFormat(diskPath)
                try await attach(diskPath, format: format, to: record)
                CrashPoint.reached("AddHardDisk.attached")
                await journal.finish()
                return (record, diskPath)
            } catch {
                if let created, await !services.disks.delete(paths: [created]) {
                    journal.abandon()
                } else {
                    await journal.finish()
                }
                throw error
            }
        }
        services.audit(caller, "AddHardDisk \(added) to \(record.name) (\(uuid))")
        return added
    }

    /// Adds the disk to the definition and, while the VM runs, to the guest.
    private func attach(_ path: String, format: String, to record: VMRecord) async throws {
        let running = record.state != .off
        try await withConnection { connection, domain in
            // Every disk counts, in the definition and (hot-plugged by others) in the live VM.
            var used = running ? try DomainEditor(xml: try domain.xml()).diskTargets : []
            var target = ""
            try Self.redefine(connection, domain, edit: { editor in
                used.formUnion(editor.diskTargets)
                guard let free = DomainEditor.freeDiskTarget(notIn: used) else {
                    throw VMMSError.invalidState(current: record.state.rawValue, message: "\(record.name) has no free disk slot; remove a disk first")
                }
                target = free
                try editor.addDisk(path: path, format: format, target: target)
            }, live: {
                guard running else { return }
                do {
                    try domain.attachDevice(xml: DomainXML.diskXML(path: path, format: format, target: target), flags: .live)
                } catch let error as LibvirtError {
                    throw VMMSError.invalidState(current: record.state.rawValue,
                        message: "the disk cannot be added to the running \(record.name) (\(error.message)); turn it off first")
                }
            })
        }
    }

    func removeHardDisk(_ call: MethodCall) async throws {
        guard call.arguments.count == 2, let path = call.arguments[0].string else {
            throw VMMSError.invalidArgs("RemoveHardDisk takes (s path, a{sv} options)")
        }
        let options = try Options(call.arguments[1], method: "RemoveHardDisk", allowed: ["DeleteFile": "b"])
        let deleteFile = options.bool("DeleteFile") ?? false
        try await authorize(call, .vmConfigure, verb: "RemoveHardDisk")
        let roots = services.host.settings.storageRoots
        if deleteFile, !roots.contains(where: { StorageRoots.contains($0, path) }) {
            throw VMMSError.invalidArgs("DeleteFile only deletes images inside the host's storage paths (\(roots.joined(separator: ", "))); \(path) is not")
        }
        let services = self.services
        let record = try await operation("RemoveHardDisk", allowed: Self.configurable, full: true) { record in
            try services.refuseDiskChangeWithCheckpoints(record)
            guard let disk = record.configuration.hardDisks.first(where: { $0.path == path }) else {
                throw VMMSError.invalidArgs("\(record.name) has no hard disk \(path); its disks are in HardDisks")
            }
            if deleteFile, let user = services.vmUsingDisk(path, except: uuid) {
                throw VMMSError.invalidArgs("\(path) is also a disk of \(user); not deleting it")
            }
            if record.state != .off { try await unplug(disk, from: record) }
            try await withConnection { connection, domain in
                try Self.redefine(connection, domain, edit: { $0.removeDisk(target: disk.device) }, live: {})
            }
            if deleteFile { await services.disks.delete(paths: [disk.path]) }
            return record
        }
        services.audit(await call.caller(), "RemoveHardDisk \(path) from \(record.name) (\(uuid))\(deleteFile ? ", file deleted" : "")")
    }

    /// Detaches a disk from the running guest and waits for libvirt's device-removed event:
    /// detaching only asks the guest to let go, and nothing else may change until it has.
    private func unplug(_ disk: VMConfiguration.HardDisk, from record: VMRecord) async throws {
        let alias = try await withDomain { domain in
            try DomainEditor(xml: try domain.xml()).alias(ofDiskTarget: disk.device)
        }
        guard let alias else {
            // Not in the running guest (added to the definition only): nothing to unplug.
            return
        }
        services.monitor.expectRemoval(uuid: uuid, alias: alias)
        do {
            try await withDomain { domain in
                try domain.detachDevice(xml: DomainXML.diskXML(path: disk.path, format: disk.format, target: disk.device), flags: .live)
            }
        } catch let error as LibvirtError {
            _ = await services.monitor.waitForRemoval(uuid: uuid, alias: alias, timeout: .zero)
            throw VMMSError.invalidState(current: record.state.rawValue,
                message: "the disk cannot be removed from the running \(record.name) (\(error.message)); turn it off first")
        }
        // libvirt itself waits a moment for the guest: a disk already gone from the live
        // definition (or a driver that removes at once) needs no event.
        let stillThere = try await withDomain { domain in
            try DomainEditor(xml: try domain.xml()).alias(ofDiskTarget: disk.device) == alias
        }
        let timeout = stillThere ? Self.deviceRemovalTimeout : .zero
        guard await services.monitor.waitForRemoval(uuid: uuid, alias: alias, timeout: timeout) || !stillThere else {
            throw VMMSError.timeout("the guest in \(record.name) did not release \(disk.path) within \(Self.deviceRemovalTimeout); it stays attached (a guest without an OS never releases it: turn the VM off to remove the disk)")
        }
    }
}
