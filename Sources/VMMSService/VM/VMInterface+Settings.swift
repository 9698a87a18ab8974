import DBus
import Libvirt
import VMMSModel

/// The setters of `org.example.VMMS1.VM`: processor, memory, Secure Boot.
///
/// Each one checks its arguments first, authorizes, then holds the VM (no power operation can
/// interleave) and validates against the VM as it is now; it changes the persistent
/// definition with one `virDomainDefineXML` and the running VM where libvirt can, and replies
/// once the model shows the new values. A refusal leaves the domain as it was.
extension VMInterface {
    // MARK: SetProcessor

    func setProcessor(_ call: MethodCall) async throws {
        guard call.arguments.count == 2, let count = call.arguments[0].uint32 else {
            throw VMMSError.invalidArgs("SetProcessor takes (u count, a{sv} options)")
        }
        let options = try Options(call.arguments[1], method: "SetProcessor",
                                  allowed: ["Reserve": "u", "Maximum": "u", "RelativeWeight": "u"])
        try await authorize(call, .vmConfigure, verb: "SetProcessor")
        let hostProcessors = services.host.info.logicalProcessorCount
        let record = try await operation("SetProcessor", allowed: Self.configurable, full: true) { record in
            let change: ProcessorChange
            do throws(SettingsError) {
                change = try ProcessorChange(count: count, reserve: options.uint32("Reserve"), maximum: options.uint32("Maximum"),
                                             relativeWeight: options.uint32("RelativeWeight"),
                                             current: record.configuration, hostProcessorCount: hostProcessors)
            } catch { throw VMMSError.invalidArgs(error.message) }
            let old = record.configuration
            let running = record.state != .off
            let apply = { @Sendable in
                try await withConnection { connection, domain in
                    try Self.redefine(connection, domain, edit: { editor in
                        if running, change.count != old.processorCount {
                            let slots = editor.maximumProcessorCount ?? old.processorCount
                            guard change.count <= slots else {
                                throw VMMSError.invalidState(current: record.state.rawValue,
                                    message: "\(record.name) has \(slots) virtual processor slot(s) while it runs; turn it off to give it \(change.count)")
                            }
                        }
                        editor.setProcessor(count: change.count, reserve: change.reserve, maximum: change.maximum, weight: change.relativeWeight)
                    }, live: {
                        guard running else { return }
                        if change.count != old.processorCount {
                            do {
                                try domain.setVcpus(count: change.count, flags: .live)
                            } catch let error as LibvirtError {
                                throw VMMSError.invalidState(current: record.state.rawValue,
                                    message: "the processors of the running \(record.name) cannot change (\(error.message)); turn it off first")
                            }
                        }
                        if change.relativeWeight != old.processorRelativeWeight || change.maximum != old.processorMaximum {
                            try domain.setSchedulerParameters(
                                shares: DomainXML.cpuShares(forWeight: change.relativeWeight),
                                vcpuPeriod: DomainEditor.cpuPeriodMicroseconds,
                                vcpuQuota: change.maximum < 100 ? DomainEditor.quota(forMaximum: change.maximum) : -1,
                                flags: .live)
                        }
                    })
                }
            }
            if running {
                // The reserve counts while the VM runs: admitted against the other running VMs.
                try await services.reserves.admit(count: change.count, reserve: change.reserve, excluding: uuid,
                                                  services: services, apply)
            } else {
                try await apply()
            }
            return record
        }
        services.audit(await call.caller(), "SetProcessor \(record.name) (\(uuid)): \(count) processor(s) \(options.values)")
    }

    // MARK: SetMemory

    func setMemory(_ call: MethodCall) async throws {
        guard call.arguments.count == 2, let startup = call.arguments[0].uint64 else {
            throw VMMSError.invalidArgs("SetMemory takes (t startup_bytes, a{sv} options)")
        }
        let options = try Options(call.arguments[1], method: "SetMemory",
                                  allowed: ["DynamicMemory": "b", "MinimumBytes": "t", "MaximumBytes": "t"])
        try await authorize(call, .vmConfigure, verb: "SetMemory")
        let hostMemory = services.host.info.memoryCapacityBytes
        let record = try await operation("SetMemory", allowed: Self.configurable, full: true) { record in
            let change: MemoryChange
            do throws(SettingsError) {
                change = try MemoryChange(startupBytes: startup, dynamic: options.bool("DynamicMemory"),
                                          minimumBytes: options.uint64("MinimumBytes"), maximumBytes: options.uint64("MaximumBytes"),
                                          current: record.configuration, hostMemoryBytes: hostMemory)
            } catch { throw VMMSError.invalidArgs(error.message) }
            let old = record.configuration
            let running = record.state != .off
            if running {
                // The guest's RAM size is fixed while it runs; the balloon moves within it.
                if change.dynamic != old.dynamicMemoryEnabled {
                    throw VMMSError.invalidState(current: record.state.rawValue,
                        message: "dynamic memory of \(record.name) can only be turned on or off while it is Off; turn it off first")
                }
                if change.maximumBytes != old.memoryMaximumBytes {
                    let what = old.dynamicMemoryEnabled ? "its dynamic memory maximum" : "its memory (static memory)"
                    throw VMMSError.invalidState(current: record.state.rawValue,
                        message: "\(record.name) runs with \(what) fixed at \(old.memoryMaximumBytes) bytes; turn it off to change it to \(change.maximumBytes) bytes")
                }
            }
            try await withConnection { connection, domain in
                try Self.redefine(connection, domain, edit: { editor in
                    editor.setMemory(startupBytes: change.startupBytes, maximumBytes: change.maximumBytes,
                                     dynamic: change.dynamic, minimumBytes: change.minimumBytes)
                }, live: {
                    if running && change.startupBytes != old.memoryStartupBytes {
                        try domain.setMemory(kib: change.startupBytes / 1024, flags: .live)
                    }
                })
            }
            return record
        }
        services.audit(await call.caller(), "SetMemory \(record.name) (\(uuid)): startup \(startup) bytes \(options.values)")
    }

    // MARK: SetSecureBoot

    func setSecureBoot(_ call: MethodCall) async throws {
        guard let enabled = call.arguments.first?.boolean else { throw VMMSError.invalidArgs("SetSecureBoot takes (b enabled)") }
        // Authorized first: the refusals below tell what kind of VM this is.
        try await authorize(call, .vmConfigure, verb: "SetSecureBoot")
        let services = self.services
        @Sendable func check(_ record: VMRecord) throws {
            if record.configuration.generation != 2 {
                throw VMMSError.notSupported("Secure Boot needs UEFI firmware: \(record.name) is a generation 1 (BIOS) VM")
            }
            if enabled, services.domainType != "test", !services.host.info.secureBootAvailable {
                throw VMMSError.notSupported("this host has no UEFI firmware with Secure Boot; install the Debian package ovmf")
            }
        }
        try check(try current())
        let record = try await operation("SetSecureBoot", allowed: [.off], hint: "turn it off first", full: true) { record in
            try check(record)
            guard record.configuration.secureBoot != enabled else { return record }
            try await withConnection { connection, domain in
                try Self.redefine(connection, domain, edit: { $0.setSecureBoot(enabled) }, live: {})
            }
            return record
        }
        services.audit(await call.caller(), "SetSecureBoot \(record.name) (\(uuid)): \(enabled)")
    }

    // MARK: Redefining

    /// Defines the edited persistent XML, then applies `live` to the running VM; when that
    /// fails the old definition is put back, so a refused change leaves both as they were.
    /// Defining first lets libvirt check the whole new definition before anything runs.
    static func redefine(_ connection: LibvirtConnection, _ domain: LibvirtDomain,
                         edit: (DomainEditor) throws -> Void, live: () throws -> Void) throws {
        let original = try domain.xml(flags: [.inactive, .secure])
        let editor = try DomainEditor(xml: original)
        try edit(editor)
        _ = try connection.defineDomain(xml: editor.xml)
        do {
            try live()
        } catch {
            _ = try? connection.defineDomain(xml: original)
            throw error
        }
    }
}
