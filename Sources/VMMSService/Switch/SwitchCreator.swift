import DBus
import Foundation
import Libvirt
import VMMSModel

/// `Host.CreateSwitch` (New-VMSwitch): validate the options, then against the host and the
/// other switches, then make it step by step — the External bridge, the network, started,
/// autostarted. A step that fails undoes the ones made; a crash between them is undone at
/// the next start from the journal. A create that fails leaves no network and no bridge.
struct SwitchCreator {
    let services: Services

    func create(_ call: MethodCall) async throws -> ObjectPath {
        guard call.arguments.count == 3, let name = call.arguments[0].string, let type = call.arguments[1].string else {
            throw VMMSError.invalidArgs("CreateSwitch takes (s name, s type, a{sv} options)")
        }
        let options = try Self.optionValues(call.arguments[2])
        let spec = try Result { () throws(SwitchSpecError) in try SwitchSpec(validating: name, type: type, options: options) }
            .mapError(\.vmmsError).get()
        try await services.authorizer.authorize(call, .hostConfigure, AuthorizationDetails(verb: "CreateSwitch", switchName: name))
        let caller = await call.caller()
        let services = self.services
        let made = try await services.switchGate.run { () -> SwitchSpec in
            // Checked against the host after authorization: its interfaces are not for everyone.
            let facts = try await HostNetwork.facts()
            let resolved = try Result { () throws(SwitchSpecError) in try spec.resolve(switches: services.switches.all, host: facts) }
                .mapError(\.vmmsError).get()
            try await make(resolved, caller: caller)
            return resolved
        }
        services.audit(caller, "CreateSwitch \(name) (\(made.type.rawValue)\(made.address.map { " \($0)" } ?? "")\(made.interface.map { " on \($0)" } ?? ""))")
        return Paths.switch(name: name)
    }

    private func make(_ spec: SwitchSpec, caller: Caller) async throws {
        let journal = services.journal.begin("CreateSwitch \(spec.name)", caller: caller.description)
        let uuid = UUID().uuidString.lowercased()
        let xml = NetworkXML.build(spec, uuid: uuid)
        var bridgeMade: String?
        var defined = false
        do {
            if spec.type == .external, spec.mode == .bridge, let bridge = spec.bridge, let nic = spec.interface {
                try await journal.intend(.createBridge(name: bridge))
                do { try await HostNetwork.createBridge(bridge, around: nic) } catch {
                    throw VMMSError.failed("cannot make the bridge \(bridge) around \(nic): \(error)")
                }
                bridgeMade = bridge
                CrashPoint.reached("CreateSwitch.bridgeCreated")
            }
            try await journal.intend(.defineNetwork(uuid: uuid, name: spec.name))
            let name = spec.name
            try await services.link.run { connection in
                do {
                    _ = try connection.defineNetwork(xml: xml, validate: true)
                } catch let error as LibvirtError where error.code == .operationFailed || error.code == .networkExists {
                    if (try? connection.network(name: name)) != nil {
                        throw VMMSError.alreadyExists("a switch named \(name) already exists (\(error.message))")
                    }
                    throw error
                }
            }
            defined = true
            CrashPoint.reached("CreateSwitch.networkDefined")
            try await services.link.run { connection in
                let network = try connection.network(uuid: uuid)
                try network.create()
                try network.setAutostart(true)
            }
            await services.switchMonitor.refresh(name: spec.name)
            await journal.finish()
        } catch {
            if await rollBack(uuid: defined ? uuid : nil, bridge: bridgeMade) {
                await journal.finish()
            } else {
                journal.abandon()
            }
            await services.switchMonitor.refresh(name: spec.name)
            throw error
        }
    }

    private func rollBack(uuid: String?, bridge: String?) async -> Bool {
        var undone = true
        if let uuid {
            do {
                try await services.link.run { connection in try JournalRecovery.undo(.defineNetwork(uuid: uuid, name: ""), connection: connection) }
            } catch {
                services.logger.error("could not remove the half-made switch network \(uuid) now (\(error)); recovery will")
                undone = false
            }
        }
        if let bridge {
            do { try await BlockingIO.run { try HostNetwork.deleteBridge(bridge) } } catch {
                services.logger.error("could not remove the bridge \(bridge) of a failed CreateSwitch now (\(error)); recovery will")
                undone = false
            }
        }
        return undone
    }

    /// The options as model values; a type no option takes is refused.
    static func optionValues(_ argument: DBusValue) throws -> [String: SettingValue] {
        guard case .dictionary(let key, let value, let entries) = argument, key == "s", value == "v" else {
            throw VMMSError.invalidArgs("CreateSwitch takes its options as a{sv}")
        }
        var result: [String: SettingValue] = [:]
        for entry in entries {
            guard let name = entry.key.string, let inner = entry.value.variant else { continue }
            guard result[name] == nil else { throw VMMSError.invalidArgs("option \(name) is given twice") }
            switch inner {
            case .string(let v): result[name] = .string(v)
            case .boolean(let v): result[name] = .bool(v)
            case .uint32(let v): result[name] = .uint32(v)
            default: throw VMMSError.invalidArgs("option \(name) has a value of type \(inner.signature), which no option takes")
            }
        }
        return result
    }
}

extension SwitchSpecError {
    /// The contract's error: a bad value is InvalidArgs, a taken name AlreadyExists.
    var vmmsError: VMMSError {
        switch self {
        case .invalid(let message): .invalidArgs(message)
        case .taken(let message): .alreadyExists(message)
        }
    }
}
