import DBus
import Foundation
import Synchronization
import VMMSModel

/// `org.example.VMMS1.Host` at `/org/example/VMMS1/Host`.
final class HostObject: DBusInterface {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.Host",
        methods: [
            .init("CreateVM", in: [.init("name", "s"), .init("settings", "a{sv}")], out: [.init("vm", "o")]),
            .init("LookupVM", in: [.init("name_or_uuid", "s")], out: [.init("vm", "o")]),
        ],
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
            .init("VirtualMachines", "ao"),
            .init("VirtualMachinePath", "s", access: .readwrite),
            .init("VirtualHardDiskPath", "s", access: .readwrite),
        ])

    let description = HostObject.interface
    let model: HostModel
    let store: SettingsStore
    let authorizer: any Authorizer
    let server: ObjectServer
    private let context = Mutex<ServiceContext?>(nil)

    init(model: HostModel, store: SettingsStore, authorizer: any Authorizer, server: ObjectServer) {
        self.model = model
        self.store = store
        self.authorizer = authorizer
        self.server = server
    }

    /// Connects the host to the VM inventory once the service's context exists.
    func attach(_ context: ServiceContext) { self.context.withLock { $0 = context } }

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        try await translatingErrors {
            guard let context = context.withLock({ $0 }) else { throw VMMSError.hypervisorUnavailable("the service is starting") }
            switch call.member {
            case "CreateVM":
                return [.objectPath(try await VMCreator(context: context).create(call))]
            case "LookupVM":
                return [.objectPath(try await lookup(call, context))]
            default:
                throw VMMSError.notSupported("\(call.member) is not implemented")
            }
        }
    }

    /// A VM by name or UUID (with or without dashes, any case); read access.
    private func lookup(_ call: MethodCall, _ context: ServiceContext) async throws -> ObjectPath {
        guard let key = call.arguments.first?.string, !key.isEmpty, key.utf8.count <= 256 else {
            throw VMMSError.invalidArgs("LookupVM takes a VM name or UUID")
        }
        try await authorizer.authorize(call, .read, AuthorizationDetails(verb: "LookupVM"))
        let normalized = key.lowercased().replacingOccurrences(of: "-", with: "")
        if let uuid = context.inventory.uuids.first(where: { $0.replacingOccurrences(of: "-", with: "") == normalized })
            ?? context.inventory.uuid(named: key) {
            return Paths.vm(uuid: uuid)
        }
        throw VMMSError.notFound("no virtual machine is named or has the UUID \(key)")
    }

    func properties() async -> [String: DBusValue] { values(model.info, model.settings) }

    var virtualMachinePaths: [ObjectPath] { context.withLock { $0 }?.inventory.paths ?? [] }

    func values(_ info: HostInfo, _ settings: HostSettings) -> [String: DBusValue] {
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
            "VirtualMachines": .objectPaths(virtualMachinePaths),
            "VirtualMachinePath": .string(settings.virtualMachinePath),
            "VirtualHardDiskPath": .string(settings.virtualHardDiskPath),
        ]
    }

    func setProperty(_ name: String, _ value: DBusValue, _ call: MethodCall) async throws {
        try await translatingErrors {
            guard var path = value.string else { throw VMMSError.invalidArgs("\(name) must be a string") }
            if path.count > 1, path.hasSuffix("/") { path.removeLast() }
            if let problem = StoragePathRule.validate(path) { throw VMMSError.invalidArgs("\(name): \(problem)") }
            try await authorizer.authorize(call, .hostConfigure, AuthorizationDetails(verb: "Set" + name))
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw VMMSError.invalidArgs("\(name): \(path) is not an existing directory")
            }
            // The rule again on where the path really leads (a symlink to / would make every
            // file "inside" the storage roots).
            if let resolved = StorageRoots.resolve(path), let problem = StoragePathRule.validate(resolved) {
                throw VMMSError.invalidArgs("\(name): \(path) leads to \(resolved): \(problem)")
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

    /// Announces the new list of VMs.
    func announceVirtualMachines() {
        server.emitPropertiesChanged(path: Paths.host, interface: Self.interface.name,
                                     changed: ["VirtualMachines": .objectPaths(virtualMachinePaths)])
    }

    /// Announces the properties that differ between two snapshots.
    func announceChanges(from old: HostInfo, to new: HostInfo) {
        let settings = model.settings
        let before = values(old, settings), after = values(new, settings)
        let changed = after.filter { before[$0.key] != $0.value }
        if !changed.isEmpty {
            server.emitPropertiesChanged(path: Paths.host, interface: Self.interface.name, changed: changed)
        }
    }
}

public enum ServiceVersion {
    public static let current = "0.1.0"
}
