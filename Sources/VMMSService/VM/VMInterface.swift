import DBus
import Libvirt
import VMMSModel

/// `org.example.VMMS1.VM`: one object per libvirt domain, at a path made from its UUID.
enum VMKind: ObjectKind {
    static let interface = InterfaceDescription(
        name: "org.example.VMMS1.VM",
        methods: [
            .init("Start"),
            .init("Shutdown", in: [.init("options", "a{sv}")]),
            .init("TurnOff"),
            .init("Save"),
            .init("Pause"),
            .init("Resume"),
            .init("Reset"),
            .init("Reboot"),
            .init("Rename", in: [.init("new_name", "s")]),
            .init("SetProcessor", in: [.init("count", "u"), .init("options", "a{sv}")]),
            .init("SetMemory", in: [.init("startup_bytes", "t"), .init("options", "a{sv}")]),
            .init("SetSecureBoot", in: [.init("enabled", "b")]),
            .init("AddHardDisk", in: [.init("options", "a{sv}")], out: [.init("path", "s")]),
            .init("RemoveHardDisk", in: [.init("path", "s"), .init("options", "a{sv}")]),
            .init("AddNetworkAdapter", in: [.init("switch", "o")], out: [.init("mac", "s")]),
            .init("RemoveNetworkAdapter", in: [.init("mac", "s")]),
            .init("RemoveNetworkAdapterWithOptions", in: [.init("mac", "s"), .init("options", "a{sv}")]),
            .init("Delete", in: [.init("options", "a{sv}")]),
            .init("Export", in: [.init("directory", "s"), .init("options", "a{sv}")], out: [.init("job", "o")]),
            .init("Move", in: [.init("destination", "s"), .init("options", "a{sv}")], out: [.init("job", "o")]),
            .init("Checkpoint", in: [.init("name", "s")], out: [.init("checkpoint", "o")]),
        ],
        properties: [
            .init("Name", "s"),
            .init("UUID", "s", changeSignal: .const),
            .init("State", "s"),
            .init("Generation", "u"),
            .init("SecureBoot", "b"),
            .init("ProcessorCount", "u"),
            .init("ProcessorReserve", "u"),
            .init("ProcessorMaximum", "u"),
            .init("ProcessorRelativeWeight", "u"),
            .init("MemoryStartupBytes", "t"),
            .init("DynamicMemoryEnabled", "b"),
            .init("MemoryMinimumBytes", "t"),
            .init("MemoryMaximumBytes", "t"),
            .init("MemoryAssignedBytes", "t"),
            .init("HardDisks", "a(sst)"),
            .init("NetworkAdapters", "a(so)"),
            .init("Checkpoints", "ao"),
            .init("CPUUsage", "u"),
            .init("StartTime", "t"),
            .init("Autostart", "b", access: .readwrite),
            .init("Notes", "s", access: .readwrite),
        ])

    static let hostList: String? = "VirtualMachines"

    static func path(of record: VMRecord) -> ObjectPath { Paths.vm(uuid: record.uuid) }

    static func values(of record: VMRecord) -> [String: DBusValue] {
        let c = record.configuration
        return [
            "Name": .string(record.name),
            "UUID": .string(record.uuid),
            "State": .string(record.state.rawValue),
            "Generation": .uint32(c.generation),
            "SecureBoot": .boolean(c.secureBoot),
            "ProcessorCount": .uint32(c.processorCount),
            "ProcessorReserve": .uint32(c.processorReserve),
            "ProcessorMaximum": .uint32(c.processorMaximum),
            "ProcessorRelativeWeight": .uint32(c.processorRelativeWeight),
            "MemoryStartupBytes": .uint64(c.memoryStartupBytes),
            "DynamicMemoryEnabled": .boolean(c.dynamicMemoryEnabled),
            "MemoryMinimumBytes": .uint64(c.memoryMinimumBytes),
            "MemoryMaximumBytes": .uint64(c.memoryMaximumBytes),
            "MemoryAssignedBytes": .uint64(record.memoryAssignedBytes),
            "HardDisks": .array("(sst)", c.hardDisks.map {
                .structure([.string($0.path), .string($0.format), .uint64(record.diskCapacities[$0.path] ?? 0)])
            }),
            // An adapter on a libvirt network names its switch; one of another kind (a bridge,
            // macvtap or user networking set up outside vmms) names none ("/").
            "NetworkAdapters": .array("(so)", c.networkAdapters.map {
                .structure([.string($0.mac), .objectPath($0.network.map { Paths.switch(name: $0) } ?? .root)])
            }),
            "Checkpoints": .objectPaths(record.checkpoints.map { Paths.checkpoint(vm: record.uuid, name: $0) }),
            "CPUUsage": .uint32(record.cpuUsage),
            "StartTime": .uint64(record.startTime),
            "Autostart": .boolean(record.autostart),
            "Notes": .string(c.notes),
        ]
    }
}

/// The handlers of one VM object. Every handler has the same shape: decode and validate the
/// arguments (nothing touched yet), authorize, hold the VM and check it again in its current
/// state (it may have changed while polkit answered), act through libvirt on the worker,
/// and reply once the model shows the result.
struct VMInterface: DBusInterface {
    let description = VMKind.interface
    let uuid: String
    let services: Services

    var vms: VMModel { services.vms }

    /// Shutdown waits this long for the guest unless told otherwise, like Stop-VM.
    static let defaultShutdownTimeout: UInt32 = 120
    static let maximumShutdownTimeout: UInt32 = 3600
    /// States in which the definition may change. Not Saved: the saved image holds the old
    /// hardware and restoring it onto different hardware fails, as on Hyper-V.
    static let configurable: Set<VMState> = [.off, .running, .paused]

    func call(_ call: MethodCall) async throws -> [DBusValue] {
        try await translatingErrors {
            switch call.member {
            case "Start": try await start(call)
            case "Shutdown": try await shutdown(call)
            case "TurnOff":
                // May cut a Shutdown or Start short, so it runs beside whatever holds the VM.
                try await power(call, allowed: [.running, .paused, .starting, .stopping, .saving, .crashed], beside: true) {
                    try $0.destroy()
                }
            case "Save": try await power(call, allowed: [.running, .paused], showing: .saving, long: true) { try $0.managedSave() }
            case "Pause": try await power(call, allowed: [.running], outcome: .paused) { try $0.suspend() }
            case "Resume": try await power(call, allowed: [.paused], outcome: .running) { try $0.resume() }
            case "Reset": try await power(call, allowed: [.running, .paused]) { try $0.reset() }
            case "Reboot": try await power(call, allowed: [.running]) { try $0.reboot() }
            case "Rename": try await rename(call)
            case "Delete": try await delete(call)
            case "SetProcessor": try await setProcessor(call)
            case "SetMemory": try await setMemory(call)
            case "SetSecureBoot": try await setSecureBoot(call)
            case "AddHardDisk": return [.string(try await addHardDisk(call))]
            case "RemoveHardDisk": try await removeHardDisk(call)
            case "Export": return [.objectPath(try await export(call))]
            case "Move": return [.objectPath(try await move(call))]
            case "AddNetworkAdapter": return [.string(try await addNetworkAdapter(call))]
            case "RemoveNetworkAdapter", "RemoveNetworkAdapterWithOptions": try await removeNetworkAdapter(call)
            case "Checkpoint": return [.objectPath(try await checkpoint(call))]
            default: throw VMMSError.notSupported("\(call.member) is not implemented")
            }
            return []
        }
    }

    // MARK: Helpers every handler uses

    /// The VM as clients see it, or NotFound when it vanished (possibly while polkit answered).
    func current() throws -> VMRecord {
        guard let record = vms.record(uuid: uuid) else {
            throw VMMSError.notFound("the virtual machine \(uuid) no longer exists")
        }
        return record
    }

    func authorize(_ call: MethodCall, _ action: Action, verb: String) async throws {
        let record = try current()
        try await services.authorizer.authorize(call, action, AuthorizationDetails(verb: verb, vmName: record.name, vmUUID: uuid))
    }

    /// Runs `body` on the domain on the libvirt worker (`long`: one that may take minutes).
    func withDomain<T: Sendable>(long: Bool = false, _ body: @escaping @Sendable (LibvirtDomain) throws -> T) async throws -> T {
        try await withConnection(long: long) { _, domain in try body(domain) }
    }

    /// Runs `body` with the connection and the domain on the libvirt worker; a domain that is
    /// gone is the contract's NotFound.
    func withConnection<T: Sendable>(long: Bool = false,
                                     _ body: @escaping @Sendable (LibvirtConnection, LibvirtDomain) throws -> T) async throws -> T {
        let uuid = self.uuid
        let link = services.link
        let act: @Sendable (LibvirtConnection) throws -> T = { connection in
            try body(connection, try link.domain(uuid: uuid, on: connection))
        }
        do {
            return try await long ? services.link.runLong(act) : services.link.run(act)
        } catch let error as LibvirtError where error.isNoDomain {
            throw VMMSError.notFound("the virtual machine \(uuid) no longer exists")
        }
    }

    /// Holds the VM for `verb` (refused unless it is in one of `allowed`), shown as `showing`
    /// meanwhile, runs `body`, then waits until the model shows the result (`full`: the
    /// definition changed, read it whole; `outcome`: the state a successful `body` leaves the VM
    /// in for certain, shown without reading libvirt again). libvirt's "not valid in this state" (another client
    /// got there first) is the contract's InvalidState, naming the state the VM is in now.
    @discardableResult
    func operation<T: Sendable>(_ verb: String, allowed: Set<VMState>, showing: VMState? = nil, beside: Bool = false,
                                hint: String? = nil, full: Bool = false, outcome: VMState? = nil,
                                _ body: @Sendable (VMRecord) async throws -> T) async throws -> T {
        let (token, record) = try vms.beginOperation(uuid: uuid, verb: verb, allowed: allowed, showing: showing,
                                                     beside: beside, hint: hint)
        let result: Result<T, any Error>
        do { result = .success(try await body(record)) } catch { result = .failure(error) }
        vms.operationActed(token)
        if let outcome, case .success = result {
            // libvirt answered only once the VM got there (Pause: paused): no need to read it back.
            vms.applyOutcome(uuid: uuid, state: outcome)
        } else {
            await services.monitor.refresh(uuid: uuid, full: full)
        }
        let interrupter = vms.finishOperation(token)
        let now = vms.record(uuid: uuid)?.state ?? record.state
        switch result {
        case .success(let value):
            return value
        case .failure(let error as LibvirtError) where error.code == .operationInvalid:
            throw VMMSError.invalidState(current: now.rawValue, message: "cannot \(verb) \(record.name): \(error.message)")
        case .failure(let error as LibvirtError) where interrupter != nil:
            // Another client's TurnOff cut this operation short: the VM is not where this call
            // was taking it, and that is the state's doing, not a libvirt failure.
            throw VMMSError.invalidState(current: now.rawValue,
                message: "\(verb) of \(record.name) was cut short by \(interrupter ?? "TurnOff") (\(error.message))")
        case .failure(let error):
            throw error
        }
    }

    // MARK: Power

    /// A power operation: allowed only from `allowed` states, shown as `showing` while it runs.
    private func power(_ call: MethodCall, allowed: Set<VMState>, showing: VMState? = nil, beside: Bool = false, long: Bool = false,
                       outcome: VMState? = nil, _ act: @escaping @Sendable (LibvirtDomain) throws -> Void) async throws {
        try await authorize(call, .vmPower, verb: call.member)
        let record = try await operation(call.member, allowed: allowed, showing: showing, beside: beside, outcome: outcome) { record in
            try await withDomain(long: long, act)
            return record
        }
        services.audit(await call.caller(), "\(call.member) \(record.name) (\(uuid))")
    }

    private func start(_ call: MethodCall) async throws {
        try await authorize(call, .vmPower, verb: "Start")
        let record = try await operation("Start", allowed: [.off, .saved], showing: .starting) { record in
            // Admission after authorization: a refused caller learns nothing about the host.
            // Restoring a saved VM reads its memory back, which may take minutes.
            try Self.admitMemory(record, services: services)
            try await services.reserves.admit(record, excluding: uuid, services: services) {
                try await services.explainingLUNFailure { try await withDomain(long: record.state == .saved) { try VMInterface.start($0) } }
            }
            return record
        }
        services.audit(await call.caller(), "Start \(record.name) (\(uuid))")
    }

    /// InsufficientResources when the VM's startup memory does not fit in the host's
    /// available memory (`MemoryAdmission`); only where QEMU runs on this machine (the
    /// monitor's `localQEMU`, which also decides where a VM's start time is read).
    static func admitMemory(_ record: VMRecord, services: Services) throws {
        guard services.monitor.localQEMU,
              let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let available = MemoryAdmission.availableBytes(meminfo: meminfo),
              let refusal = MemoryAdmission.refusal(name: record.name, startupBytes: record.configuration.memoryStartupBytes,
                                                    availableBytes: available) else { return }
        throw VMMSError.insufficientResources(refusal)
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

    private func shutdown(_ call: MethodCall) async throws {
        let options = try Options(call.arguments.first, method: "Shutdown", allowed: ["Force": "b", "TimeoutSeconds": "u"])
        let force = options.bool("Force") ?? false
        let timeout = options.uint32("TimeoutSeconds") ?? Self.defaultShutdownTimeout
        guard timeout >= 1, timeout <= Self.maximumShutdownTimeout else {
            throw VMMSError.invalidArgs("TimeoutSeconds must be between 1 and \(Self.maximumShutdownTimeout)")
        }
        try await authorize(call, .vmPower, verb: "Shutdown")
        let record = try await operation("Shutdown", allowed: [.running], showing: .stopping) { record in
            try await withDomain { try $0.shutdown() }
            let off = await vms.wait(uuid: uuid, timeout: .seconds(Int(timeout))) { record in
                record == nil || record?.state == .off || record?.state == .crashed
            }
            if !off {
                guard force else {
                    throw VMMSError.timeout("the guest in \(record.name) did not shut down within \(timeout) seconds; call again with Force to turn it off after the timeout, or TurnOff")
                }
                try await withDomain { try $0.destroy() }
            }
            return record
        }
        services.audit(await call.caller(), "Shutdown \(record.name) (\(uuid))")
    }

    // MARK: Rename and Delete

    private func rename(_ call: MethodCall) async throws {
        guard let newName = call.arguments.first?.string else { throw VMMSError.invalidArgs("Rename takes a name") }
        if let problem = VMNameRule.validate(newName) { throw VMMSError.invalidArgs(problem) }
        try await authorize(call, .vmConfigure, verb: "Rename")
        let old = try current()
        if old.name == newName { return }
        // Claimed before libvirt is asked: of two renames to one name, one gets AlreadyExists.
        let reservation = try vms.reserveName(newName, owner: uuid)
        defer { vms.release(reservation) }
        try await operation("Rename", allowed: [.off], hint: "turn it off first; libvirt renames only VMs that are off", full: true) { _ in
            do {
                try await withDomain { try $0.rename(to: newName) }
                services.link.forgetDomain(uuid: uuid)
            } catch let error as LibvirtError where error.code == .operationInvalid || error.code == .domainExists {
                if let other = vms.uuid(named: newName), other != uuid {
                    throw VMMSError.alreadyExists("a virtual machine named \(newName) already exists")
                }
                throw error
            }
        }
        services.audit(await call.caller(), "Rename \(old.name) to \(newName) (\(uuid))")
    }

    private func delete(_ call: MethodCall) async throws {
        let options = try Options(call.arguments.first, method: "Delete", allowed: ["DeleteDisks": "b", "Force": "b"])
        let deleteDisks = options.bool("DeleteDisks") ?? false
        let force = options.bool("Force") ?? false
        try await authorize(call, .vmDelete, verb: "Delete")
        let stopped: Set<VMState> = [.off, .saved, .crashed]
        let roots = services.host.settings.storageRoots
        let (record, disks) = try await operation("Delete", allowed: force ? Set(VMState.allCases) : stopped,
                                                  hint: "turn it off first, or pass Force", full: true) { record in
            // Only images vmms made (in one of its pools) or inside the storage paths, and
            // only those no other VM uses.
            // Checkpoints go first: their images fold back into the VM's own disk files.
            let folded = try await CheckpointEngine(services: services).deleteAll(vm: uuid)
            let candidates = deleteDisks ? (folded ?? record.configuration.hardDisks.map(\.path)).filter {
                services.vmUsingDisk($0, except: uuid) == nil
            } : []
            let disks = try await services.disks.deletable(candidates, roots: roots)
            try await withDomain { domain in
                if try domain.isActive { try domain.destroy() }
                try VMInterface.undefine(domain)
            }
            return (record, disks)
        }
        if !disks.isEmpty { await services.disks.delete(paths: disks) }
        services.audit(await call.caller(), "Delete \(record.name) (\(uuid))\(disks.isEmpty ? "" : ", deleting \(disks.joined(separator: ", "))")")
    }

    /// Removes the definition with everything libvirt keeps beside it; older drivers (and the
    /// test driver) reject some flags, so fall back to fewer.
    static func undefine(_ domain: LibvirtDomain) throws {
        do {
            try domain.undefine(flags: [.managedSave, .snapshotsMetadata, .checkpointsMetadata, .nvram])
        } catch let error as LibvirtError where error.isNoDomain {
            return
        } catch {
            try domain.undefine(flags: [.managedSave])
        }
    }

    // MARK: Writable properties

    func setProperty(_ name: String, _ value: DBusValue, _ call: MethodCall) async throws {
        try await translatingErrors {
            switch name {
            case "Notes":
                guard let notes = value.string else { throw VMMSError.invalidArgs("Notes must be a string") }
                guard notes.count <= 4096 else { throw VMMSError.invalidArgs("Notes are limited to 4096 characters") }
                try await configure(call, verb: "SetNotes") { domain in
                    try domain.setMetadata(type: .description, value: notes.isEmpty ? nil : notes, flags: .config)
                }
            case "Autostart":
                guard let enabled = value.boolean else { throw VMMSError.invalidArgs("Autostart must be a boolean") }
                try await configure(call, verb: "SetAutostart") { domain in try domain.setAutostart(enabled) }
            default:
                throw VMMSError.invalidArgs("property \(name) is not writable")
            }
            services.audit(await call.caller(), "set \(name) of \(try current().name) (\(uuid))")
        }
    }

    /// A configuration change that any state allows: authorized as vm.configure, held, re-read.
    private func configure(_ call: MethodCall, verb: String, _ body: @escaping @Sendable (LibvirtDomain) throws -> Void) async throws {
        try await authorize(call, .vmConfigure, verb: verb)
        try await operation(verb, allowed: Set(VMState.allCases), full: true) { _ in try await withDomain(body) }
    }
}
