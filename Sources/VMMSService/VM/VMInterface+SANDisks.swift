import DBus
import Libvirt
import VMMSModel

/// `AddHardDisk {SAN o, LUN s}`: a SAN's LUN as a VM's hard disk, on a virtio-scsi
/// controller (hot-plugged and unplugged at once; virtio-blk would wait for the guest).
/// RemoveHardDisk detaches it like any disk and never touches the SAN.
extension VMInterface {
    /// Whether an AddHardDisk options argument names a SAN LUN (then `addSANDisk` decodes it).
    static func namesSANDisk(_ argument: DBusValue?) -> Bool {
        guard case .dictionary(_, _, let entries)? = argument else { return false }
        return entries.contains { $0.key.string == "SAN" || $0.key.string == "LUN" }
    }

    func addSANDisk(_ call: MethodCall) async throws -> String {
        let options = try Options(call.arguments.first, method: "AddHardDisk", allowed: ["SAN": "o", "LUN": "s", "Shared": "b"])
        guard let sanPath = options.values["SAN"]?.objectPath, let lunName = options.string("LUN") else {
            throw VMMSError.invalidArgs("AddHardDisk from a SAN takes SAN (the SAN's object path) and LUN (a name from its LUNs)")
        }
        let shared = options.bool("Shared") ?? false
        guard let sanName = Paths.sanName(of: sanPath) else {
            throw VMMSError.invalidArgs("\(sanPath) is not a SAN path (\(Paths.sanRoot)/<name>)")
        }
        try await authorize(call, .vmConfigure, verb: "AddHardDisk")
        guard let san = services.sans.record(named: sanName) else { throw VMMSError.notFound("the SAN at \(sanPath) does not exist") }
        guard san.active else {
            throw VMMSError.invalidState(current: "Inactive", message: "the SAN \(sanName) is not active; Refresh it once its target \(san.target) at \(san.portal) answers")
        }
        guard let lun = san.luns.first(where: { $0.name == lunName }) else {
            throw VMMSError.invalidArgs("the SAN \(sanName) has no LUN \(lunName); its LUNs are \(san.luns.map(\.name).joined(separator: ", "))")
        }
        let caller = await call.caller()
        let services = self.services
        let record = try await operation("AddHardDisk", allowed: Self.configurable, full: true) { record -> VMRecord in
            if record.configuration.hardDisks.contains(where: { $0.path == lun.source }) {
                throw VMMSError.alreadyExists("\(lun.source) is already attached to \(record.name)")
            }
            try await checkExclusive(lun, san: san, shared: shared, services: services)
            try await attachLUN(lun, of: san, shared: shared, to: record)
            return record
        }
        services.audit(caller, "AddHardDisk \(lun.source) (SAN \(sanName), LUN \(lunName)\(shared ? ", shared" : "")) to \(record.name) (\(uuid))")
        return lun.source
    }

    /// libvirt lets two VMs open one LUN with no locking, which corrupts any ordinary file
    /// system on it: another VM's use is refused unless every use, this one included, is
    /// declared `Shared` (`<shareable/>`: a cluster file system's business).
    private func checkExclusive(_ lun: SANLUN, san: SANRecord, shared: Bool, services: Services) async throws {
        let users = services.vms.records(except: uuid).filter { $0.configuration.hardDisks.contains { $0.path == lun.source } }
        guard !users.isEmpty else { return }
        guard shared else {
            throw VMMSError.invalidArgs("LUN \(lun.name) of the SAN \(san.name) is a hard disk of \(users.map(\.name).sorted().joined(separator: ", ")); detach it there first, or attach it with Shared on every VM (for cluster file systems only)")
        }
        let source = lun.source
        let exclusive = try await services.link.run { connection in
            try users.filter { user in
                let xml = try connection.domain(uuid: user.uuid).xml(flags: [.inactive])
                return !SANXML.shareableDiskPaths(domainXML: xml).contains(source)
            }.map(\.name)
        }
        if !exclusive.isEmpty {
            throw VMMSError.invalidArgs("LUN \(lun.name) of the SAN \(san.name) is an unshared hard disk of \(exclusive.sorted().joined(separator: ", ")); Shared needs every VM to share it")
        }
    }

    /// Adds the disk (and a virtio-scsi controller, when there is none) to the definition and,
    /// while the VM runs, to the guest; the definition is put back when the guest refuses.
    private func attachLUN(_ lun: SANLUN, of san: SANRecord, shared: Bool, to record: VMRecord) async throws {
        let running = record.state != .off
        try await withConnection { connection, domain in
            let live = running ? try domain.xml() : nil
            let used = try live.map { try DomainEditor(xml: $0).diskTargets } ?? []
            let original = try domain.xml(flags: [.inactive, .secure])
            let edited: (xml: String, address: SANXML.SCSIAddress, addedController: Int?)
            do {
                edited = try SANXML.addingLUNDisk(to: original, used: used) { SANXML.lunDiskXML(lun, of: san, address: $0, shareable: shared) }
            } catch let error as DomainXMLError {
                throw VMMSError.invalidState(current: record.state.rawValue, message: "\(record.name): \(error.message)")
            }
            _ = try connection.defineDomain(xml: edited.xml)
            guard let live else { return }
            do {
                if !SANXML.hasVirtioSCSIController(domainXML: live, index: edited.address.controller) {
                    try domain.attachDevice(xml: SANXML.controllerXML(index: edited.address.controller), flags: .live)
                }
                try domain.attachDevice(xml: SANXML.lunDiskXML(lun, of: san, address: edited.address, shareable: shared), flags: .live)
            } catch let error as LibvirtError {
                _ = try? connection.defineDomain(xml: original)
                if error.message.contains("iSCSI") || error.message.contains("iscsi") {
                    throw SANProbe.unreachable(san, libvirt: error, inactive: false)
                }
                throw VMMSError.invalidState(current: record.state.rawValue,
                    message: "LUN \(lun.name) cannot be added to the running \(record.name) (\(error.message)); turn it off first")
            }
        }
    }
}

extension Services {
    /// A VM that does not start because QEMU cannot log in to an iSCSI LUN fails with an
    /// error naming the SAN, its target and portal (libiscsi says "Can not reconnect right now").
    func explainingLUNFailure<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as LibvirtError where error.message.contains("iSCSI: Failed to connect") {
            let message = error.message
            guard let san = sans.records.first(where: { message.contains("\"target\":\"\($0.target)\"") }) else { throw error }
            // libvirt learns that the target is gone only when it reads the pool again, which
            // then stops it: the SAN shows Active false until a Refresh finds the target back.
            let uuid = san.uuid
            _ = try? await link.run { connection in try? connection.pool(uuid: uuid).refresh() }
            await sanMonitor.refresh(uuid: uuid)
            sanMonitor.lostTarget(uuid: uuid)
            throw VMMSError.failed("a hard disk is a LUN of the SAN \(san.name), whose iSCSI target \(san.target) at \(san.portal) "
                + "does not answer; start the target (then Refresh the SAN) or remove the disk (libvirt: \(message.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
    }
}
