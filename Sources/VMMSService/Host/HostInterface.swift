import DBus
import Foundation
import VMMSModel

/// `org.example.VMMS1.Host` at `/org/example/VMMS1/Host`: the declaration, what it publishes,
/// and its handlers.
enum HostKind: ObjectKind {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.Host",
        methods: [
            .init("CreateVM", in: [.init("name", "s"), .init("settings", "a{sv}")], out: [.init("vm", "o")]),
            .init("LookupVM", in: [.init("name_or_uuid", "s")], out: [.init("vm", "o")]),
            .init("CheckHealth", out: [.init("findings", "a(sss)")]),
            .init("CreateSAN", in: [.init("name", "s"), .init("type", "s"), .init("options", "a{sv}")], out: [.init("san", "o")]),
            .init("ImportVM", in: [.init("directory", "s"), .init("options", "a{sv}")], out: [.init("job", "o")]),
            .init("CreateSwitch", in: [.init("name", "s"), .init("type", "s"), .init("options", "a{sv}")], out: [.init("switch", "o")]),
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
            .init("SANs", "ao"),
            .init("Jobs", "ao"),
            .init("Switches", "ao"),
            .init("VirtualMachinePath", "s", access: .readwrite),
            .init("VirtualHardDiskPath", "s", access: .readwrite),
        ])

    /// The properties listing the objects of a kind, filled in by the publisher.
    static let lists = ["VirtualMachines", "Switches", "SANs", "Jobs"]

    static func path(of record: HostRecord) -> ObjectPath { Paths.host }

    static func values(of record: HostRecord) -> [String: DBusValue] {
        let info = record.info, settings = record.settings
        return [
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
}

/// The handlers of `org.example.VMMS1.Host`. Each: decode → validate → authorize → re-check →
/// act → reply.
struct HostInterface: DBusInterface {
    let description = HostKind.interface
    let services: Services

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        try await translatingErrors {
            switch call.member {
            case "CreateVM": return [.objectPath(try await VMCreator(services: services).create(call))]
            case "LookupVM": return [.objectPath(try await lookup(call))]
            case "CheckHealth": return [try await checkHealth(call)]
            case "CreateSAN": return [.objectPath(try await createSAN(call))]
            case "ImportVM": return [.objectPath(try await VMImporter(services: services).start(call))]
            case "CreateSwitch": return [.objectPath(try await SwitchCreator(services: services).create(call))]
            default: throw VMMSError.notSupported("\(call.member) is not implemented")
            }
        }
    }

    /// A VM by name or UUID (with or without dashes, any case). Authorized as a read of that
    /// VM (with `vm.name` and `vm.uuid`), so a user a rule gives one VM can find it by name;
    /// when there is no such VM, as a read of the host, so that whether a name exists is told
    /// only to those who may read the host.
    private func lookup(_ call: MethodCall) async throws -> ObjectPath {
        guard let key = call.arguments.first?.string, !key.isEmpty, key.utf8.count <= 256 else {
            throw VMMSError.invalidArgs("LookupVM takes a VM name or UUID")
        }
        let normalized = key.lowercased().filter { $0 != "-" }
        guard let uuid = services.vms.uuids.first(where: { $0.filter { $0 != "-" } == normalized })
            ?? services.vms.uuid(named: key), let record = services.vms.record(uuid: uuid) else {
            try await services.authorizer.authorize(call, .read, AuthorizationDetails(verb: "LookupVM"))
            throw VMMSError.notFound("no virtual machine is named or has the UUID \(key)")
        }
        try await services.authorizer.authorize(call, .read, AuthorizationDetails(verb: "LookupVM", vmName: record.name, vmUUID: uuid))
        return Paths.vm(uuid: uuid)
    }

    /// The Best Practices Analyzer's findings for this host (`HealthRules`); a read.
    private func checkHealth(_ call: MethodCall) async throws -> DBusValue {
        try await services.authorizer.authorize(call, .read, AuthorizationDetails(verb: "CheckHealth"))
        let findings = try await services.health.findings()
        return .array("(sss)", findings.map { .structure([.string($0.rule), .string($0.severity.rawValue), .string($0.message)]) })
    }

    func setProperty(_ name: String, _ value: DBusValue, _ call: MethodCall) async throws {
        try await translatingErrors {
            guard var path = value.string else { throw VMMSError.invalidArgs("\(name) must be a string") }
            guard name == "VirtualMachinePath" || name == "VirtualHardDiskPath" else {
                throw VMMSError.invalidArgs("property \(name) is not writable")
            }
            if path.count > 1, path.hasSuffix("/") { path.removeLast() }
            if let problem = StoragePathRule.validate(path) { throw VMMSError.invalidArgs("\(name): \(problem)") }
            try await services.authorizer.authorize(call, .hostConfigure, AuthorizationDetails(verb: "Set" + name))
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw VMMSError.invalidArgs("\(name): \(path) is not an existing directory; create it first")
            }
            // The rule again on where the path really leads (a symlink to / would make every
            // file "inside" the storage roots).
            if let resolved = StorageRoots.resolve(path), let problem = StoragePathRule.validate(resolved) {
                throw VMMSError.invalidArgs("\(name): \(path) leads to \(resolved): \(problem)")
            }
            // One change at a time: read, write the file, publish; a concurrent Set of the
            // other path waits instead of overwriting this one on disk.
            let (services, newPath) = (self.services, path)
            let changed = try await services.settingsGate.run { () -> Bool in
                var settings = services.host.settings
                if name == "VirtualMachinePath" { settings.virtualMachinePath = newPath } else { settings.virtualHardDiskPath = newPath }
                guard settings != services.host.settings else { return false }
                do { try await services.settingsStore.save(settings) } catch {
                    throw VMMSError.failed("cannot save the host settings: \(error)")
                }
                services.host.update { $0.settings = settings }
                return true
            }
            if changed { services.audit(await call.caller(), "set \(name) to \(newPath)") }
        }
    }
}

extension MethodCall {
    /// The caller, for the audit log.
    func caller() async -> Caller { Caller(uid: try? await callerUID(), busName: sender) }
}

public enum ServiceVersion {
    public static let current = "0.2.0"
}
