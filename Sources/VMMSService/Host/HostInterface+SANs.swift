import DBus
import Foundation
import Libvirt
import VMMSModel

/// `Host.CreateSAN` (Hyper-V's New-VMSan): an iSCSI target as an `iscsi-direct` pool, or an
/// NPIV vHBA as a `scsi` pool. Everything is checked before libvirt is touched, the target
/// is asked whether it answers, and a pool that will not start is removed again: a failed
/// CreateSAN leaves nothing defined.
extension HostInterface {
    /// What CreateSAN was asked for, validated.
    enum SANRequest: Sendable {
        case iSCSI(portal: SANAddress.Portal, target: String, initiator: String)
        case fibreChannel(parent: String?, wwnn: String, wwpn: String)
    }

    /// One SAN creation at a time: the name and target checks hold until the pool exists.
    static let sanGate = SerialGate()

    func createSAN(_ call: MethodCall) async throws -> ObjectPath {
        guard call.arguments.count == 3, let name = call.arguments[0].string, let typeName = call.arguments[1].string else {
            throw VMMSError.invalidArgs("CreateSAN takes (s name, s type, a{sv} options)")
        }
        if let problem = SANAddress.validateName(name) { throw VMMSError.invalidArgs(problem) }
        guard let type = SANType(rawValue: typeName) else {
            throw VMMSError.invalidArgs("unknown SAN type \(typeName); the types are \(SANType.allCases.map(\.rawValue).joined(separator: " and "))")
        }
        let request = try Self.decodeSAN(type, call.arguments[2])
        try await services.authorizer.authorize(call, .hostConfigure, .san(name, verb: "CreateSAN"))
        let caller = await call.caller()
        let services = self.services
        let uuid = try await Self.sanGate.run { () -> String in
            if services.sans.record(named: name) != nil { throw VMMSError.alreadyExists("a SAN named \(name) already exists") }
            let taken = try await services.link.run { connection -> Bool in
                do { _ = try connection.pool(name: name); return true } catch let error as LibvirtError where error.isNoStoragePool { return false }
            }
            if taken { throw VMMSError.alreadyExists("libvirt already has a storage pool named \(name); choose another name") }
            switch request {
            case .iSCSI(let portal, let target, let initiator):
                if let other = services.sans.records.first(where: { $0.type == .iSCSI && $0.portal == portal.description && $0.target == target }) {
                    throw VMMSError.alreadyExists("the target \(target) at \(portal) is already the SAN \(other.name)")
                }
                try await Self.checkTarget(portal: portal, target: target, initiator: initiator, services: services)
            case .fibreChannel(let parent, _, _):
                try await Self.checkNPIV(parent: parent, services: services)
            }
            return try await Self.defineAndStart(name: name, request: request, services: services, caller: caller)
        }
        await services.sanMonitor.refresh(uuid: uuid)
        services.audit(caller, "CreateSAN \(name) (\(typeName))")
        return Paths.san(name: name)
    }

    /// The options of one SAN type; unknown keys, wrong types and bad names are refused.
    static func decodeSAN(_ type: SANType, _ argument: DBusValue) throws -> SANRequest {
        switch type {
        case .iSCSI:
            let options = try Options(argument, method: "CreateSAN", allowed: ["Portal": "s", "Target": "s", "InitiatorName": "s"])
            guard let portalText = options.string("Portal"), let target = options.string("Target") else {
                throw VMMSError.invalidArgs("an iSCSI SAN needs the options Portal (host[:port]) and Target (the target's IQN)")
            }
            let portal: SANAddress.Portal
            do { portal = try SANAddress.portal(portalText) } catch { throw VMMSError.invalidArgs(error.description) }
            if let problem = SANAddress.validateISCSIName(target, what: "Target") { throw VMMSError.invalidArgs(problem) }
            let initiator = options.string("InitiatorName") ?? defaultInitiatorName()
            if let problem = SANAddress.validateISCSIName(initiator, what: "InitiatorName") { throw VMMSError.invalidArgs(problem) }
            return .iSCSI(portal: portal, target: target, initiator: initiator)
        case .fibreChannel:
            let options = try Options(argument, method: "CreateSAN", allowed: ["ParentAdapter": "s", "WWNN": "s", "WWPN": "s"])
            guard let wwnnText = options.string("WWNN"), let wwpnText = options.string("WWPN") else {
                throw VMMSError.invalidArgs("a FibreChannel SAN needs the options WWNN and WWPN (16 hex digits each) of the vHBA to create")
            }
            guard let wwnn = SANAddress.wwn(wwnnText) else { throw VMMSError.invalidArgs("WWNN \(wwnnText) must be 16 hex digits, e.g. 5001a4a93526d0a1") }
            guard let wwpn = SANAddress.wwn(wwpnText) else { throw VMMSError.invalidArgs("WWPN \(wwpnText) must be 16 hex digits, e.g. 5001a4ace3ee047d") }
            let parent = options.string("ParentAdapter")
            if let parent, !SANAddress.isAdapterName(parent) {
                throw VMMSError.invalidArgs("ParentAdapter \(parent) must name a host adapter like scsi_host5 (virsh nodedev-list --cap vports)")
            }
            return .fibreChannel(parent: parent, wwnn: wwnn, wwpn: wwpn)
        }
    }

    /// The host's initiator name (`/etc/iscsi/initiatorname.iscsi`, as open-iscsi keeps it),
    /// else one made from the host name.
    static func defaultInitiatorName() -> String {
        if let text = try? String(contentsOfFile: "/etc/iscsi/initiatorname.iscsi", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("InitiatorName=") }) {
            let name = String(line.dropFirst("InitiatorName=".count)).trimmingCharacters(in: .whitespaces)
            if SANAddress.validateISCSIName(name, what: "") == nil { return name }
        }
        let host = ProcessInfo.processInfo.hostName.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
        return "iqn.2026-01.org.example.vmms:" + (host.isEmpty ? "host" : host)
    }

    /// The portal answers within a few seconds and offers the target to this initiator.
    static func checkTarget(portal: SANAddress.Portal, target: String, initiator: String, services: Services) async throws {
        if let reason = await SANProbe.reach(portal) {
            throw VMMSError.failed("the iSCSI portal \(portal) does not answer (\(reason)), so the target \(target) cannot be reached; check that the target runs and listens there")
        }
        let spec = SANXML.discoverySpec(portal: portal, initiator: initiator)
        let offered: [String]
        do {
            offered = SANXML.discoveredTargets(try await services.link.run { try $0.findPoolSources(type: "iscsi-direct", spec: spec) })
        } catch let error as LibvirtError where !error.isConnectionBroken {
            throw VMMSError.failed("the iSCSI portal \(portal) does not list its targets to \(initiator), so the target \(target) cannot be used (libvirt: \(error.message))")
        }
        guard offered.contains(target) else {
            throw VMMSError.failed("the iSCSI portal \(portal) offers no target \(target) to \(initiator)"
                + (offered.isEmpty ? "" : "; it offers \(offered.joined(separator: ", "))") + "; check the IQN and the target's ACL")
        }
    }

    /// A host needs an NPIV-capable HBA (a node device with the `vports` capability) for a vHBA.
    static func checkNPIV(parent: String?, services: Services) async throws {
        let capable = try await services.link.run { connection in
            try connection.allNodeDevices(flags: [.vports]).compactMap { try? $0.name }
        }
        guard !capable.isEmpty else {
            throw VMMSError.notSupported("this host has no NPIV-capable Fibre Channel HBA (virsh nodedev-list --cap vports lists none); a FibreChannel SAN needs one to create its vHBA on")
        }
        if let parent, !capable.contains(parent) {
            throw VMMSError.notSupported("ParentAdapter \(parent) is not an NPIV-capable HBA; this host's are \(capable.sorted().joined(separator: ", "))")
        }
    }

    /// Defines the pool (journalled: a crash in between leaves no pool behind), starts it and
    /// marks it autostart; a pool that does not start is removed again.
    static func defineAndStart(name: String, request: SANRequest, services: Services, caller: Caller) async throws -> String {
        let uuid = UUID().uuidString.lowercased()
        let xml: String
        switch request {
        case .iSCSI(let portal, let target, let initiator):
            xml = SANXML.iSCSIPool(name: name, uuid: uuid, portal: portal, target: target, initiator: initiator)
        case .fibreChannel(let parent, let wwnn, let wwpn):
            xml = SANXML.fibreChannelPool(name: name, uuid: uuid, parent: parent, wwnn: wwnn, wwpn: wwpn)
        }
        let journal = services.journal.begin("CreateSAN \(name)", caller: caller.description)
        try await journal.intend(.definePool(uuid: uuid, name: name))
        let started: Result<Void, LibvirtError>
        do {
            started = try await services.link.run { connection in
                let pool = try connection.definePool(xml: xml)
                CrashPoint.reached("CreateSAN.defined")
                do {
                    try pool.create()
                } catch let error as LibvirtError where !error.isConnectionBroken {
                    try? pool.undefine()
                    return .failure(error)
                }
                try? pool.setAutostart(true)
                return .success(())
            }
        } catch {
            if (try? await services.link.run({ try SANInterface.undefinePool(uuid: uuid, connection: $0) })) != nil {
                await journal.finish()
            } else {
                journal.abandon()
            }
            throw error
        }
        await journal.finish()
        if case .failure(let error) = started {
            switch request {
            case .iSCSI(let portal, let target, _):
                let san = SANRecord(uuid: uuid, name: name, type: .iSCSI, poolType: "iscsi-direct", active: false,
                                    portal: portal.description, target: target)
                throw SANProbe.unreachable(san, libvirt: error, inactive: false)
            case .fibreChannel:
                throw VMMSError.failed("the vHBA for \(name) cannot be created: \(error.message)")
            }
        }
        return uuid
    }
}
