import DBus
import Libvirt
import VMMSModel

/// `org.example.VMMS1.Switch`: one object per libvirt network, at a path made from its name.
enum SwitchKind: ObjectKind {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.Switch",
        methods: [
            .init("Delete"),
        ],
        properties: [
            .init("Name", "s", changeSignal: .const),
            .init("Type", "s"),
            .init("Bridge", "s"),
            .init("Active", "b"),
            .init("Address", "s"),
            .init("Interface", "s"),
        ])

    static let hostList: String? = "Switches"

    static func path(of record: SwitchRecord) -> ObjectPath { Paths.switch(name: record.name) }

    static func values(of record: SwitchRecord) -> [String: DBusValue] {
        [
            "Name": .string(record.name),
            "Type": .string(record.type.rawValue),
            "Bridge": .string(record.bridge),
            "Active": .boolean(record.active),
            "Address": .string(record.address),
            "Interface": .string(record.interface),
        ]
    }
}

/// The handlers of one switch object.
struct SwitchInterface: DBusInterface {
    let description = SwitchKind.interface
    let name: String
    let services: Services

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        try await translatingErrors {
            switch call.member {
            case "Delete": try await delete(call)
            default: throw VMMSError.notSupported("\(call.member) is not implemented")
            }
            return []
        }
    }

    /// Remove-VMSwitch: refused while any VM, running or not, has an adapter on it.
    private func delete(_ call: MethodCall) async throws {
        try await services.authorizer.authorize(call, .hostConfigure, AuthorizationDetails(verb: "Delete", switchName: name))
        let services = self.services, name = self.name
        let record = try await services.switchGate.run { () -> SwitchRecord in
            guard let record = services.switches.record(named: name) else {
                throw VMMSError.notFound("the switch \(name) no longer exists")
            }
            let users = services.vmsUsingSwitch(name)
            guard users.isEmpty else {
                throw VMMSError.invalidState(current: record.active ? "Active" : "Inactive",
                    message: "the switch \(name) has network adapters of \(users.joined(separator: ", ")); remove them first (VM.RemoveNetworkAdapter)")
            }
            let bridge = record.managedBridge && !record.bridge.isEmpty ? record.bridge : nil
            let journal = services.journal.begin("Delete switch \(name)", caller: await call.caller().description)
            if let bridge { try await journal.intend(.deleteBridge(name: bridge)) }
            do {
                try await services.link.run { connection in
                    do {
                        let network = try connection.network(name: name)
                        if try network.isActive { try network.destroy() }
                        if try network.isPersistent { try network.undefine() }
                    } catch let error as LibvirtError where error.isNoNetwork {
                        return
                    }
                }
            } catch {
                await journal.finish()
                throw error
            }
            CrashPoint.reached("DeleteSwitch.networkRemoved")
            if let bridge {
                do {
                    try await BlockingIO.run { try HostNetwork.deleteBridge(bridge) }
                    await journal.finish()
                } catch {
                    // Left for recovery, which retries.
                    journal.abandon()
                    services.logger.error("the switch \(name) is deleted but its bridge \(bridge) is not yet: \(error)")
                }
            } else {
                await journal.finish()
            }
            await services.switchMonitor.refresh(name: name)
            return record
        }
        services.audit(await call.caller(), "Delete switch \(name) (\(record.type.rawValue))")
    }
}

extension Services {
    /// The names of the VMs with an adapter on the switch `name`, sorted.
    func vmsUsingSwitch(_ name: String) -> [String] {
        vms.records().filter { $0.configuration.networkAdapters.contains { $0.network == name } }.map(\.name).sorted()
    }
}

extension ObjectRegistry.Route {
    static func `switch`(_ services: Services) -> Self {
        Self(owns: { Paths.switchName(of: $0) != nil },
             handlers: { path in Paths.switchName(of: path).map { [SwitchInterface(name: $0, services: services)] } ?? [] },
             readDetails: { path in AuthorizationDetails(verb: "", switchName: Paths.switchName(of: path)) },
             missing: { VMMSError.notFound("the switch at \($0) does not exist").dbusError })
    }
}
