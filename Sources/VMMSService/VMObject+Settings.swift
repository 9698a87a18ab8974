import Foundation
import DBus
import Libvirt
import VMMSModel

/// The setters of `org.example.VMMS1.VM`: processor, memory, Secure Boot, hard disks.
///
/// Each one validates everything first (InvalidArgs leaves the domain as it was), then
/// holds the VM (no power operation can interleave), changes the running VM where libvirt can
/// and the persistent definition with one `virDomainDefineXML`, and replies once the inventory
/// shows the new values.
extension VMObject {
    /// States in which the definition may change. Not Saved: the saved image holds the old
    /// hardware and restoring it onto different hardware fails, as on Hyper-V.
    static let configurable: Set<VMState> = [.off, .running, .paused]

    // MARK: SetProcessor

    func setProcessor(_ call: MethodCall) async throws {
        guard call.arguments.count == 2, let count = call.arguments[0].uint32 else {
            throw VMMSError.invalidArgs("SetProcessor takes (u count, a{sv} options)")
        }
        let options = try Options(call.arguments[1], method: "SetProcessor",
                                  allowed: ["Reserve": "u", "Maximum": "u", "RelativeWeight": "u"])
        let hostProcessors = context.host.model.info.logicalProcessorCount
        @Sendable func validate(_ configuration: VMConfiguration) throws -> ProcessorChange {
            do {
                return try ProcessorChange(count: count, reserve: options.uint32("Reserve"), maximum: options.uint32("Maximum"),
                                           relativeWeight: options.uint32("RelativeWeight"),
                                           current: configuration, hostProcessorCount: hostProcessors)
            } catch { throw VMMSError.invalidArgs(error.message) }
        }
        _ = try validate(try current().configuration)
        try await authorize(call, .vmConfigure, verb: "SetProcessor")
        try await holding("SetProcessor") { record in
            // Validated again: the configuration may have changed while polkit answered.
            let change = try validate(record.configuration)
            let old = record.configuration
            let running = record.state != .off
            if running {
                try self.checkReserve(change, excluding: record.uuid)
            }
            try await self.withConnection { connection, domain in
                try Self.redefine(connection, domain, edit: { editor in
                    if running, change.count != old.processorCount {
                        let slots = editor.maximumProcessorCount ?? old.processorCount
                        guard change.count <= slots else {
                            throw VMMSError.invalidState(current: record.state.rawValue,
                                message: "\(record.name) has \(slots) virtual processor slot(s) while it runs; turn it off to give it \(change.count)")
                        }
                    }
                    editor.setProcessor(count: change.count, reserve: change.reserve, maximum: change.maximum, weight: change.relativeWeight)
                }, live: {
                    guard running else { return }
                    if change.count != old.processorCount {
                        do {
                            try domain.setVcpus(count: change.count, flags: .live)
                        } catch let error as LibvirtError {
                            throw VMMSError.invalidState(current: record.state.rawValue,
                                message: "the processors of the running \(record.name) cannot change (\(error.message)); turn it off first")
                        }
                    }
                    if change.relativeWeight != old.processorRelativeWeight || change.maximum != old.processorMaximum {
                        try domain.setSchedulerParameters(
                            shares: DomainXML.cpuShares(forWeight: change.relativeWeight),
                            vcpuPeriod: DomainEditor.cpuPeriodMicroseconds,
                            vcpuQuota: change.maximum < 100 ? DomainEditor.quota(forMaximum: change.maximum) : -1,
                            flags: .live)
                    }
                })
            }
        }
    }

    /// Hyper-V refuses a reserve the host cannot honour; so does vmms, summing the reserves of
    /// the running VMs (percent of one logical processor each).
    func checkReserve(_ change: ProcessorChange, excluding uuid: String) throws {
        guard change.reserve > 0 else { return }
        let capacity = UInt64(context.host.model.info.logicalProcessorCount) * 100
        guard capacity > 0 else { return }
        let others = inventory.records(except: uuid)
            .filter { $0.state == .running || $0.state == .paused || $0.state == .starting }
            .reduce(UInt64(0)) { $0 + UInt64($1.configuration.processorCount) * UInt64($1.configuration.processorReserve) }
        guard others + change.reservedCapacity <= capacity else {
            throw VMMSError.invalidArgs("""
            the host cannot reserve \(change.reserve) % of \(change.count) processor(s): running VMs already reserve \
            \(others) % of the host's \(capacity) % (\(capacity / 100) logical processors)
            """)
        }
    }

    // MARK: SetMemory

    func setMemory(_ call: MethodCall) async throws {
        guard call.arguments.count == 2, let startup = call.arguments[0].uint64 else {
            throw VMMSError.invalidArgs("SetMemory takes (t startup_bytes, a{sv} options)")
        }
        let options = try Options(call.arguments[1], method: "SetMemory",
                                  allowed: ["DynamicMemory": "b", "MinimumBytes": "t", "MaximumBytes": "t"])
        let hostMemory = context.host.model.info.memoryCapacityBytes
        @Sendable func validate(_ configuration: VMConfiguration) throws -> MemoryChange {
            do {
                return try MemoryChange(startupBytes: startup, dynamic: options.bool("DynamicMemory"),
                                        minimumBytes: options.uint64("MinimumBytes"), maximumBytes: options.uint64("MaximumBytes"),
                                        current: configuration, hostMemoryBytes: hostMemory)
            } catch { throw VMMSError.invalidArgs(error.message) }
        }
        _ = try validate(try current().configuration)
        try await authorize(call, .vmConfigure, verb: "SetMemory")
        try await holding("SetMemory") { record in
            let change = try validate(record.configuration)
            let old = record.configuration
            let running = record.state != .off
            if running {
                // The guest's RAM size is fixed while it runs; the balloon moves within it.
                if change.dynamic != old.dynamicMemoryEnabled {
                    throw VMMSError.invalidState(current: record.state.rawValue,
                        message: "dynamic memory of \(record.name) can only be turned on or off while it is Off")
                }
                if change.maximumBytes != old.memoryMaximumBytes {
                    throw VMMSError.invalidState(current: record.state.rawValue,
                        message: "\(record.name) runs with \(old.memoryMaximumBytes) bytes at most; turn it off to change that")
                }
            }
            try await self.withConnection { connection, domain in
                try Self.redefine(connection, domain, edit: { editor in
                    editor.setMemory(startupBytes: change.startupBytes, maximumBytes: change.maximumBytes,
                                     dynamic: change.dynamic, minimumBytes: change.minimumBytes)
                }, live: {
                    if running && change.startupBytes != old.memoryStartupBytes {
                        try domain.setMemory(kib: change.startupBytes / 1024, flags: .live)
                    }
                })
            }
        }
    }

    // MARK: SetSecureBoot

    func setSecureBoot(_ call: MethodCall) async throws {
        guard let enabled = call.arguments.first?.boolean else { throw VMMSError.invalidArgs("SetSecureBoot takes (b enabled)") }
        // Authorized first: the refusals below tell what kind of VM this is.
        try await authorize(call, .vmConfigure, verb: "SetSecureBoot")
        let record = try current()
        if record.configuration.generation != 2 {
            throw VMMSError.notSupported("Secure Boot needs UEFI firmware: \(record.name) is a generation 1 (BIOS) VM")
        }
        if enabled, context.domainType != "test", !context.host.model.info.secureBootAvailable {
            throw VMMSError.notSupported("this host has no UEFI firmware with Secure Boot (Debian package ovmf)")
        }
        try await holding("SetSecureBoot", allowed: [.off]) { record in
            guard record.configuration.secureBoot != enabled else { return }
            try await self.withConnection { connection, domain in
                try Self.redefine(connection, domain, edit: { $0.setSecureBoot(enabled) }, live: {})
            }
        }
    }

    /// Start, with a fresh NVRAM when the firmware changed since the last start.
    static func start(_ domain: LibvirtDomain) throws {
        let metadata = (try? domain.metadata(type: .element, uri: VMMetadata.namespace, flags: .config))
            .flatMap { $0 }.flatMap { try? VMMetadata.parse($0) }
        guard var metadata, metadata.resetNVRAM == true else {
            try domain.start()
            return
        }
        do {
            try domain.start(flags: .resetNVRAM)
        } catch let error as LibvirtError where error.code == .invalidArg || error.code == .noSupport {
            // A driver without NVRAM (libvirt's test driver).
            try domain.start()
        }
        metadata.resetNVRAM = nil
        try? domain.setMetadata(type: .element, value: metadata.elementForSetMetadata,
                                key: VMMetadata.prefix, uri: VMMetadata.namespace, flags: .config)
    }

    // MARK: Hard disks

    func addHardDisk(_ call: MethodCall) async throws -> String {
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
        let settings = context.host.model.settings
        let roots = settings.storageRoots
        let callerIsRoot = (try? await call.callerUID()) == 0
        let existing = try path.map {
            try StorageRoots.checkFile($0, roots: roots, callerIsRoot: callerIsRoot, what: "Path", allowBlockDevice: true)
        }
        let added = try await holding("AddHardDisk") { record -> String in
            // One writable image in two VMs corrupts it, and would hand one VM's data to
            // whoever may configure the other.
            if let existing, record.configuration.hardDisks.contains(where: { StorageRoots.resolve($0.path) == existing }) {
                throw VMMSError.alreadyExists("\(existing) is already attached to \(record.name)")
            }
            if let existing, let user = self.inventory.vmUsingDisk(existing, except: self.uuid) {
                throw VMMSError.invalidArgs("\(existing) is a hard disk of \(user)")
            }
            var created: String?
            if let size {
                created = try await self.context.disks.create(name: Self.newDiskName(for: record, in: settings.virtualHardDiskPath),
                                                              sizeBytes: size, in: settings.virtualHardDiskPath)
            }
            let diskPath = created ?? existing ?? ""
            let format = created != nil ? "qcow2" : DomainXML.imageFormat(diskPath)
            let running = record.state != .off
            do {
                try await self.withConnection { connection, domain in
                    // Every disk counts, in the definition and (hot-plugged by others) in the live VM.
                    var used = running ? try DomainEditor(xml: try domain.xml()).diskTargets : []
                    var target = ""
                    try Self.redefine(connection, domain, edit: { editor in
                        used.formUnion(editor.diskTargets)
                        guard let free = DomainEditor.freeDiskTarget(notIn: used) else {
                            throw VMMSError.invalidState(current: record.state.rawValue, message: "\(record.name) has no free disk slot")
                        }
                        target = free
                        try editor.addDisk(path: diskPath, format: format, target: target)
                    }, live: {
                        guard running else { return }
                        do {
                            try domain.attachDevice(xml: DomainXML.diskXML(path: diskPath, format: format, target: target), flags: .live)
                        } catch let error as LibvirtError {
                            throw VMMSError.invalidState(current: record.state.rawValue,
                                message: "the disk cannot be added to the running \(record.name) (\(error.message)); turn it off first")
                        }
                    })
                }
            } catch {
                if let created { await self.context.disks.delete(paths: [created]) }
                throw error
            }
            return diskPath
        }
        return added
    }

    func removeHardDisk(_ call: MethodCall) async throws {
        guard call.arguments.count == 2, let path = call.arguments[0].string else {
            throw VMMSError.invalidArgs("RemoveHardDisk takes (s path, a{sv} options)")
        }
        let options = try Options(call.arguments[1], method: "RemoveHardDisk", allowed: ["DeleteFile": "b"])
        let deleteFile = options.bool("DeleteFile") ?? false
        @Sendable func disk(of record: VMRecord) throws -> VMConfiguration.HardDisk {
            guard let disk = record.configuration.hardDisks.first(where: { $0.path == path }) else {
                throw VMMSError.invalidArgs("\(record.name) has no hard disk \(path)")
            }
            return disk
        }
        try await authorize(call, .vmConfigure, verb: "RemoveHardDisk")
        let roots = context.host.model.settings.storageRoots
        _ = try disk(of: try current())
        if deleteFile, !roots.contains(where: { StorageRoots.contains($0, path) }) {
            throw VMMSError.invalidArgs("DeleteFile only deletes images inside the host's storage paths (\(roots.joined(separator: ", "))); \(path) is not")
        }
        try await holding("RemoveHardDisk") { record in
            let disk = try disk(of: record)
            if deleteFile, let user = self.inventory.vmUsingDisk(path, except: self.uuid) {
                throw VMMSError.invalidArgs("\(path) is also a disk of \(user); not deleting it")
            }
            let running = record.state != .off
            try await self.withConnection { connection, domain in
                if running {
                    // Detaching from a running guest only asks it to let go; the disk is gone
                    // when the live XML no longer has it. Until then nothing else changes.
                    do {
                        try domain.detachDevice(xml: DomainXML.diskXML(path: disk.path, format: disk.format, target: disk.device), flags: .live)
                    } catch let error as LibvirtError {
                        throw VMMSError.invalidState(current: record.state.rawValue,
                            message: "the disk cannot be removed from the running \(record.name) (\(error.message)); turn it off first")
                    }
                    var released = false
                    for _ in 0..<50 {
                        if !(try DomainEditor(xml: try domain.xml()).diskTargets.contains(disk.device)) { released = true; break }
                        usleep(100_000)
                    }
                    guard released else {
                        throw VMMSError.invalidState(current: record.state.rawValue,
                            message: "the guest in \(record.name) has not released \(disk.path) within 5 seconds; it stays attached")
                    }
                }
                try Self.redefine(connection, domain, edit: { $0.removeDisk(target: disk.device) }, live: {})
            }
            if deleteFile { await self.context.disks.delete(paths: [disk.path]) }
        }
    }

    /// `<vm>-<n>.qcow2` with the first n not taken in `directory` (CreateVM's disk is
    /// `<vm>.qcow2`).
    static func newDiskName(for record: VMRecord, in directory: String) -> String {
        var n = 2
        while FileManagerShim.exists(directory + "/\(record.name)-\(n).qcow2") { n += 1 }
        return "\(record.name)-\(n).qcow2"
    }

    // MARK: Redefining

    /// Defines the edited persistent XML, then applies `live` to the running VM; when that
    /// fails the old definition is put back, so a refused change leaves both as they were.
    /// Defining first lets libvirt check the whole new definition before anything runs.
    static func redefine(_ connection: LibvirtConnection, _ domain: LibvirtDomain,
                         edit: (DomainEditor) throws -> Void, live: () throws -> Void) throws {
        let original = try domain.xml(flags: [.inactive, .secure])
        let editor = try DomainEditor(xml: original)
        try edit(editor)
        _ = try connection.defineDomain(xml: editor.xml)
        do {
            try live()
        } catch {
            _ = try? connection.defineDomain(xml: original)
            throw error
        }
    }

    // MARK: Holding the VM

    /// Runs `body` with the VM held against other operations, in one of `allowed` states,
    /// then waits until the inventory shows the change.
    @discardableResult
    func holding<T: Sendable>(_ verb: String, allowed: Set<VMState> = VMObject.configurable,
                              _ body: @escaping @Sendable (VMRecord) async throws -> T) async throws -> T {
        let record = try inventory.beginOperation(uuid: uuid, verb: verb, allowed: allowed, showing: nil)
        let result: T
        do {
            result = try await body(record)
        } catch {
            await inventory.endOperation(uuid: uuid)
            throw error
        }
        // A full reading: the definition changed, not only the run state.
        await inventory.endOperation(uuid: uuid, full: true)
        return result
    }
}
