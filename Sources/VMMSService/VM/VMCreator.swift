import DBus
import Foundation
import Libvirt
import VMMSModel

/// `Host.CreateVM`: validate everything, then define step by step. A step that fails undoes
/// the ones made; a crash between steps is undone at the next start from the journal, where
/// each step is recorded before it runs — a failed create leaves no domain and no disk behind.
struct VMCreator {
    let services: Services

    func create(_ call: MethodCall) async throws -> ObjectPath {
        guard let name = call.arguments.first?.string else { throw VMMSError.invalidArgs("CreateVM takes a name") }
        if let problem = VMNameRule.validate(name) { throw VMMSError.invalidArgs(problem) }
        let raw = try Self.settingValues(call.arguments.count > 1 ? call.arguments[1] : nil)
        if raw["Generation"] == .uint32(1), raw["SecureBoot"] == .bool(true) {
            throw VMMSError.notSupported("Secure Boot needs UEFI firmware: it is available on generation 2 VMs only")
        }
        // The switch by name too, so a rule can allow a user new VMs on one switch only.
        let switchName = raw["Switch"].flatMap { if case .objectPath(let p) = $0 { ObjectPath(p).flatMap(Paths.switchName(of:)) } else { nil } }
        try await services.authorizer.authorize(call, .vmCreate, AuthorizationDetails(verb: "CreateVM", vmName: name, switchName: switchName))

        // Validated against the host after authorization: its limits are not for everyone.
        let info = services.host.info
        let settings: VMSettings
        do {
            settings = try VMSettings(validating: raw, hostMemoryBytes: info.memoryCapacityBytes,
                                      hostProcessorCount: info.logicalProcessorCount)
        } catch {
            throw VMMSError.invalidArgs(error.message)
        }
        let hostSettings = services.host.settings
        let roots = hostSettings.storageRoots
        let callerIsRoot = (try? await call.callerUID()) == 0
        let diskPath = try settings.diskPath.map {
            try StorageRoots.checkImage($0, roots: roots, callerIsRoot: callerIsRoot, what: "DiskPath", kind: .disk)
        }
        let installMedia = try settings.installMedia.map {
            try StorageRoots.checkImage($0, roots: roots, callerIsRoot: callerIsRoot, what: "InstallMedia", kind: .installMedia)
        }
        for (what, path) in [("DiskPath", diskPath), ("InstallMedia", installMedia)] {
            if let path, let user = services.vmUsingDisk(path) {
                throw VMMSError.invalidArgs("\(what) \(path) is a hard disk of \(user)")
            }
        }
        var adapter: (mac: String, network: String)?
        if let switchPath = settings.switchPath {
            guard let network = switchName, services.switches.record(named: network) != nil else {
                throw VMMSError.notFound("the switch \(switchPath) does not exist; see Host.Switches")
            }
            adapter = (try services.macs.allocate(vms: services.vms), network)
        }
        defer { if let adapter { services.macs.release(adapter.mac) } }
        let domainType = services.domainType
        if settings.generation == 2, settings.secureBoot, domainType != "test", !info.secureBootAvailable {
            throw VMMSError.notSupported("Secure Boot needs UEFI firmware with Secure Boot (Debian package ovmf); create with SecureBoot=false or install it")
        }
        // Claimed for the whole create: of two creates with one name, one gets AlreadyExists.
        let reservation = try services.vms.reserveName(name)
        defer { services.vms.release(reservation) }

        let caller = await call.caller()
        let journal = services.journal.begin("CreateVM \(name)", caller: caller.description)
        var createdDisk: String?
        var definedUUID: String?
        do {
            if let size = settings.newDiskSizeBytes {
                createdDisk = try await services.disks.create(base: name, sizeBytes: size, in: hostSettings.virtualHardDiskPath,
                                                              journal: journal)
                CrashPoint.reached("CreateVM.diskCreated")
            }
            let disk = createdDisk ?? diskPath
            let format = createdDisk != nil ? "qcow2" : diskPath.map(DomainXML.imageFormat)
            // The UUID is chosen here, so the journal can name the domain before it exists.
            let uuid = UUID().uuidString.lowercased()
            let xml = DomainXML.build(name: name, uuid: uuid, settings: settings, domainType: domainType,
                                      diskPath: disk, diskFormat: format, installMedia: installMedia, networkAdapter: adapter)
            try await journal.intend(.defineDomain(uuid: uuid, name: name))
            CrashPoint.reached("CreateVM.domainIntended")
            definedUUID = uuid
            try await services.link.run { connection in
                do {
                    _ = try connection.defineDomain(xml: xml)
                } catch let error as LibvirtError where error.code == .operationFailed || error.code == .domainExists {
                    // Taken behind our back (virsh define) since the check.
                    if (try? connection.domain(name: name)) != nil {
                        throw VMMSError.alreadyExists("a virtual machine named \(name) already exists (\(error.message))")
                    }
                    throw error
                }
            }
            CrashPoint.reached("CreateVM.domainDefined")
            if settings.generation == 2, domainType != "test" {
                try await services.link.run { connection in try VMInterface.keepSpareRootPorts(connection, try connection.domain(uuid: uuid)) }
            }
            let autostart = settings.autostart, start = settings.start
            try await services.link.run { connection in
                let domain = try connection.domain(uuid: uuid)
                if autostart { try domain.setAutostart(true) }
                if start { try domain.start() }
            }
            CrashPoint.reached("CreateVM.configured")
            await services.monitor.refresh(uuid: uuid)
            await journal.finish()
            services.audit(caller, "CreateVM \(name) (\(uuid))\(createdDisk.map { " with new disk \($0)" } ?? "")")
            return Paths.vm(uuid: uuid)
        } catch {
            if await rollBack(uuid: definedUUID, disk: createdDisk) {
                await journal.finish()
            } else {
                journal.abandon()
            }
            throw error
        }
    }

    /// Undoes a create that failed; false when libvirt did not let it (the journal's recovery
    /// then finishes the job).
    private func rollBack(uuid: String?, disk: String?) async -> Bool {
        var undone = true
        if let uuid {
            do {
                try await services.link.run { connection in
                    guard let domain = try? connection.domain(uuid: uuid) else { return }
                    if try domain.isActive { try domain.destroy() }
                    try VMInterface.undefine(domain)
                }
            } catch {
                services.logger.error("could not remove the half-created VM \(uuid) now (\(error)); recovery will")
                undone = false
            }
            await services.monitor.refresh(uuid: uuid)
        }
        if undone, let disk { undone = await services.disks.delete(paths: [disk]) }
        return undone
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
