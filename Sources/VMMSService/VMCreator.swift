import DBus
import Libvirt
import VMMSModel

/// `Host.CreateVM`: validate everything, then define step by step, undoing every step made
/// when a later one fails — a failed create leaves no domain and no disk behind.
struct VMCreator {
    let context: ServiceContext

    func create(_ call: MethodCall) async throws -> ObjectPath {
        guard let name = call.arguments.first?.string else { throw VMMSError.invalidArgs("CreateVM takes a name") }
        if let problem = VMNameRule.validate(name) { throw VMMSError.invalidArgs(problem) }
        let raw = try Self.settingValues(call.arguments.count > 1 ? call.arguments[1] : nil)
        if raw["Generation"] == .uint32(1), raw["SecureBoot"] == .bool(true) {
            throw VMMSError.notSupported("Secure Boot needs UEFI firmware: it is available on generation 2 VMs only")
        }
        let info = context.host.model.info
        let settings: VMSettings
        do {
            settings = try VMSettings(validating: raw, hostMemoryBytes: info.memoryCapacityBytes,
                                      hostProcessorCount: info.logicalProcessorCount)
        } catch {
            throw VMMSError.invalidArgs(error.message)
        }
        try await context.authorizer.authorize(call, .vmCreate, AuthorizationDetails(verb: "CreateVM", vmName: name))

        let hostSettings = context.host.model.settings
        let roots = hostSettings.storageRoots
        let callerIsRoot = (try? await call.callerUID()) == 0
        let diskPath = try settings.diskPath.map {
            try StorageRoots.checkFile($0, roots: roots, callerIsRoot: callerIsRoot, what: "DiskPath", allowBlockDevice: true)
        }
        let installMedia = try settings.installMedia.map {
            try StorageRoots.checkFile($0, roots: roots, callerIsRoot: callerIsRoot, what: "InstallMedia")
        }
        for (what, path) in [("DiskPath", diskPath), ("InstallMedia", installMedia)] {
            if let path, let user = context.inventory.vmUsingDisk(path) {
                throw VMMSError.invalidArgs("\(what) \(path) is a hard disk of \(user)")
            }
        }
        if let switchPath = settings.switchPath {
            throw VMMSError.notFound("the switch \(switchPath) does not exist")
        }
        let domainType = context.domainType
        if settings.generation == 2, settings.secureBoot, domainType != "test", !info.secureBootAvailable {
            throw VMMSError.notSupported("Secure Boot needs UEFI firmware with Secure Boot (Debian package ovmf); create with SecureBoot=false or install it")
        }
        if context.inventory.uuid(named: name) != nil {
            throw VMMSError.alreadyExists("a virtual machine named \(name) already exists")
        }

        var createdDisk: String?
        var definedUUID: String?
        do {
            if let size = settings.newDiskSizeBytes {
                createdDisk = try await context.disks.create(name: name + ".qcow2", sizeBytes: size,
                                                             in: hostSettings.virtualHardDiskPath)
            }
            let disk = createdDisk ?? diskPath
            let format = createdDisk != nil ? "qcow2" : diskPath.map(DomainXML.imageFormat)
            let xml = DomainXML.build(name: name, uuid: nil, settings: settings, domainType: domainType,
                                      diskPath: disk, diskFormat: format, installMedia: installMedia)
            let uuid = try await context.link.run { connection -> String in
                do {
                    return try connection.defineDomain(xml: xml).uuid
                } catch let error as LibvirtError where error.code == .operationFailed || error.code == .domainExists {
                    // The name was taken meanwhile: libvirt 9.0 reports that as OPERATION_FAILED
                    // ("domain 'x' already exists with uuid …"); DOM_EXIST is what other drivers use.
                    // (The old code's 52 was VIR_ERR_INVALID_NODE_DEVICE.) For the lead:
                    // OPERATION_FAILED is generic, so re-check that the name exists before
                    // answering AlreadyExists.
                    throw VMMSError.alreadyExists("\(name): \(error.message)")
                }
            }
            definedUUID = uuid
            let autostart = settings.autostart, start = settings.start
            try await context.link.run { connection in
                let domain = try connection.domain(uuid: uuid)
                if autostart { try domain.setAutostart(true) }
                if start { try domain.start() }
            }
            await context.inventory.refresh(uuid: uuid)
            context.logger.info("created VM \(name) (\(uuid)) for \(call.sender)")
            return Paths.vm(uuid: uuid)
        } catch {
            await rollBack(uuid: definedUUID, disk: createdDisk)
            throw error
        }
    }

    private func rollBack(uuid: String?, disk: String?) async {
        if let uuid {
            do {
                try await context.link.run { connection in
                    let domain = try connection.domain(uuid: uuid)
                    if try domain.isActive { try domain.destroy() }
                    try VMObject.undefine(domain)
                }
            } catch {
                context.logger.error("could not remove the half-created VM \(uuid): \(error)")
            }
            await context.inventory.refresh(uuid: uuid)
        }
        if let disk { await context.disks.delete(paths: [disk]) }
    }

    /// The settings dictionary as model values; a type the contract never uses is refused.
    static func settingValues(_ argument: DBusValue?) throws -> [String: SettingValue] {
        guard case .dictionary(let key, let value, let entries)? = argument, key == "s", value == "v" else {
            throw VMMSError.invalidArgs("CreateVM takes its settings as a{sv}")
        }
        var result: [String: SettingValue] = [:]
        for entry in entries {
            guard let name = entry.key.string, let inner = entry.value.variant else { continue }
            guard result[name] == nil else { throw VMMSError.invalidArgs("setting \(name) is given twice") }
            switch inner {
            case .boolean(let v): result[name] = .bool(v)
            case .uint32(let v): result[name] = .uint32(v)
            case .uint64(let v): result[name] = .uint64(v)
            case .string(let v): result[name] = .string(v)
            case .objectPath(let v): result[name] = .objectPath(v.rawValue)
            default: throw VMMSError.invalidArgs("setting \(name) has a value of type \(inner.signature), which no setting takes")
            }
        }
        return result
    }
}
