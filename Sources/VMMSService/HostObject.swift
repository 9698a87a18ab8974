import DBus
import Foundation
import VMMSModel

/// `org.example.VMMS1.Host` at `/org/example/VMMS1/Host`.
final class HostObject: DBusInterface {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.Host",
        properties: [
            .init("Hostname", "s"),
            .init("Hypervisor", "s"),
            .init("ConnectionURI", "s", changeSignal: .const),
            .init("Connected", "b"),
            .init("ServiceVersion", "s", changeSignal: .const),
            .init("HypervisorVersion", "s"),
            .init("LogicalProcessorCount", "u"),
            .init("MemoryCapacityBytes", "t"),
            .init("SecureBootAvailable", "b"),
            .init("VirtualMachinePath", "s", access: .readwrite),
            .init("VirtualHardDiskPath", "s", access: .readwrite),
        ])

    let description = HostObject.interface
    let model: HostModel
    let store: SettingsStore
    let authorizer: any Authorizer
    let server: ObjectServer

    init(model: HostModel, store: SettingsStore, authorizer: any Authorizer, server: ObjectServer) {
        self.model = model
        self.store = store
        self.authorizer = authorizer
        self.server = server
    }

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        throw DBusError(DBusError.Name.unknownMethod, "no method \(call.member)")
    }

    func properties() async -> [String: DBusValue] { Self.values(model.info, model.settings) }

    static func values(_ info: HostInfo, _ settings: HostSettings) -> [String: DBusValue] {
        [
            "Hostname": .string(info.hostname),
            "Hypervisor": .string(info.hypervisor),
            "ConnectionURI": .string(info.connectionURI),
            "Connected": .boolean(info.connected),
            "ServiceVersion": .string(ServiceVersion.current),
            "HypervisorVersion": .string(info.hypervisorVersion),
            "LogicalProcessorCount": .uint32(info.logicalProcessorCount),
            "MemoryCapacityBytes": .uint64(info.memoryCapacityBytes),
            "SecureBootAvailable": .boolean(info.secureBootAvailable),
            "VirtualMachinePath": .string(settings.virtualMachinePath),
            "VirtualHardDiskPath": .string(settings.virtualHardDiskPath),
        ]
    }

    func setProperty(_ name: String, _ value: DBusValue, _ call: MethodCall) async throws {
        try await translatingErrors {
            guard let path = value.string else { throw VMMSError.invalidArgs("\(name) must be a string") }
            if let problem = StoragePathRule.validate(path) { throw VMMSError.invalidArgs("\(name): \(problem)") }
            try await authorizer.authorize(call, .hostConfigure, AuthorizationDetails(verb: "Set" + name))
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw VMMSError.invalidArgs("\(name): \(path) is not an existing directory")
            }
            var settings = model.settings
            switch name {
            case "VirtualMachinePath": settings.virtualMachinePath = path
            case "VirtualHardDiskPath": settings.virtualHardDiskPath = path
            default: throw VMMSError.invalidArgs("property \(name) is not writable")
            }
            guard settings != model.settings else { return }
            do { try store.save(settings) } catch { throw VMMSError.failed("cannot save the host settings: \(error)") }
            model.setSettings(settings)
            server.emitPropertiesChanged(path: Paths.host, interface: Self.interface.name, changed: [name: .string(path)])
        }
    }

    /// Announces the properties that differ between two snapshots.
    func announceChanges(from old: HostInfo, to new: HostInfo) {
        let settings = model.settings
        let before = Self.values(old, settings), after = Self.values(new, settings)
        let changed = after.filter { before[$0.key] != $0.value }
        if !changed.isEmpty {
            server.emitPropertiesChanged(path: Paths.host, interface: Self.interface.name, changed: changed)
        }
    }
}

public enum ServiceVersion {
    public static let current = "0.1.0"
}
