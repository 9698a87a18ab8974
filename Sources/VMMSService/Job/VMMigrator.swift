import Foundation
import Libvirt
import Synchronization
import VMMSModel

/// The work of a Move to another host (Hyper-V's Move-VM): libvirt's own migration, driven
/// peer-to-peer by this host's libvirtd (so it uses root's SSH keys or TLS certificates),
/// the definition made persistent there and removed here.
///
/// Running or Paused: live (`VIR_MIGRATE_LIVE`), the VM keeps its state; with
/// `IncludeStorage` the disks are copied too (`VIR_MIGRATE_NON_SHARED_DISK`), else they must
/// be on storage the destination sees at the same path. Off: only the definition moves
/// (`VIR_MIGRATE_OFFLINE`). Everything that can be checked is checked before the job starts
/// (`plan`); Cancel aborts libvirt's migration job and the VM runs on here, unchanged.
struct VMMigrator {
    struct Plan: Sendable {
        var uuid: String
        var name: String
        var destination: String
        /// Where QEMU sends the memory (and the NBD disk copy): the destination's address.
        var migrateURI: String
        var state: VMState
        var includeStorage: Bool
        var disks: [String]
        var flags: MigrationFlags {
            var flags: MigrationFlags = [.peerToPeer, .persistDestination, .undefineSource]
            if state == .off { return flags.union(.offline) }
            flags.insert(.live)
            if state == .paused { flags.insert(.paused) }
            // Shared storage was checked by `plan` (same path, same file there), which
            // libvirt cannot prove for a plain directory.
            flags.insert(includeStorage ? .nonSharedDisk : .unsafe)
            return flags
        }
    }

    let services: Services
    let plan: Plan
    let caller: Caller

    /// The destination URIs a libvirt URI of another host may have.
    static let schemes: Set<String> = ["qemu+ssh", "qemu+tcp", "qemu+tls"]

    /// The host part of a destination URI (nil when it is not one this service migrates to).
    static func host(of uri: String) -> String? {
        guard let components = URLComponents(string: uri), let scheme = components.scheme, schemes.contains(scheme),
              let host = components.host, !host.isEmpty, components.path == "/system" else { return nil }
        return host
    }

    /// Whether `uri` is one of `allowed` (a trailing slash does not matter).
    static func isAllowed(_ uri: String, in allowed: [String]) -> Bool {
        func normal(_ text: String) -> String { text.hasSuffix("/") ? String(text.dropLast()) : text }
        return allowed.contains { normal($0) == normal(uri) }
    }

    /// How long opening the destination may take before it counts as unreachable.
    static let connectTimeout: Duration = .seconds(15)

    /// Checks the destination and the VM before anything starts, each refusal naming what is
    /// missing: reachable, another host, the same driver and no older QEMU, every switch the
    /// VM uses, no VM of that name or UUID there, free memory for a running VM, and the disks:
    /// with `includeStorage` a storage pool there for each disk's folder and no file in the
    /// way; without, the same file at the same path. Disks with backing files (checkpoint
    /// chains) are refused.
    static func plan(_ record: VMRecord, to destination: String, includeStorage: Bool, services: Services) async throws -> Plan {
        guard let host = host(of: destination) else {
            throw VMMSError.invalidArgs("\(destination) is not a libvirt URI of another host; use qemu+ssh://HOST/system, qemu+tcp://HOST/system or qemu+tls://HOST/system")
        }
        let name = record.name, uuid = record.uuid, state = record.state
        if state == .off, includeStorage {
            throw VMMSError.notSupported("IncludeStorage copies the disks of a running VM; start \(name) first, or move it Off without IncludeStorage with its disks on storage the destination sees")
        }
        let disks = record.configuration.hardDisks
        for disk in disks where StorageRoots.hasBackingFile(disk.path) {
            throw VMMSError.notSupported("the disk \(disk.path) of \(name) has a backing file (a checkpoint chain); migrating checkpoint chains is not supported yet: delete the checkpoints of \(name) first")
        }
        // Opening a remote connection can hang on an unreachable host: on a job thread, bounded.
        let remote: LibvirtConnection
        do {
            remote = try await services.jobs.pool.run(timeout: connectTimeout) { try LibvirtConnection(uri: destination) }
        } catch let error as LibvirtError {
            throw VMMSError.hypervisorUnavailable("the destination \(destination) cannot be reached: \(error.message)")
        } catch is LibvirtWorkerPoolError {
            throw VMMSError.hypervisorUnavailable("the destination \(destination) did not answer within \(connectTimeout)")
        }
        let (localType, localVersion, localHost) = try await services.link.run { connection in
            (try connection.type(), try connection.hypervisorVersion(), try Self.hostUUID(connection))
        }
        try await services.jobs.pool.run(timeout: .seconds(30)) {
            try Self.check(remote: remote, destination: destination, name: name, uuid: uuid, state: state,
                           configuration: record.configuration, includeStorage: includeStorage,
                           local: (localType, localVersion, localHost))
        }
        return Plan(uuid: uuid, name: name, destination: destination, migrateURI: "tcp://\(host)", state: state,
                    includeStorage: includeStorage, disks: disks.map(\.device))
    }

    private static func hostUUID(_ connection: LibvirtConnection) throws -> String? {
        let xml = try connection.capabilitiesXML()
        guard let start = xml.range(of: "<uuid>"), let end = xml.range(of: "</uuid>", range: start.upperBound..<xml.endIndex) else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }

    private static func versionNumbers(_ text: String) -> [Int] { text.split(separator: ".").map { Int($0) ?? 0 } }

    private static func check(remote: LibvirtConnection, destination: String, name: String, uuid: String, state: VMState,
                              configuration: VMConfiguration, includeStorage: Bool,
                              local: (type: String, version: String, host: String?)) throws {
        let type = try remote.type()
        guard type == local.type, type == "QEMU" else {
            throw VMMSError.notSupported("the destination \(destination) runs libvirt's \(type) driver, this host \(local.type); both must run QEMU")
        }
        let version = try remote.hypervisorVersion()
        if versionNumbers(version).lexicographicallyPrecedes(versionNumbers(local.version)) {
            throw VMMSError.notSupported("the destination \(destination) runs QEMU \(version), older than this host's \(local.version); a VM can only move to the same or a newer QEMU")
        }
        if let host = local.host, try hostUUID(remote) == host {
            throw VMMSError.invalidArgs("\(destination) is this host (the same host UUID \(host)); name another host")
        }
        if let existing = try? remote.domain(uuid: uuid) {
            throw VMMSError.alreadyExists("the destination \(destination) has a VM with the UUID of \(name) already (\((try? existing.name) ?? "?")); remove it there first")
        }
        if (try? remote.domain(name: name)) != nil {
            throw VMMSError.alreadyExists("the destination \(destination) has a VM named \(name) already; rename one of them first")
        }
        for adapter in configuration.networkAdapters {
            if let network = adapter.network {
                guard (try? remote.network(name: network)) != nil else {
                    throw VMMSError.notFound("the destination \(destination) has no switch named \(network) (used by \(name)'s adapter \(adapter.mac)); create it there first")
                }
            }
            if let bridge = adapter.bridge {
                throw VMMSError.notSupported("\(name)'s adapter \(adapter.mac) is bridged to \(bridge) directly, which cannot be checked at \(destination); connect it to a switch instead")
            }
        }
        if state != .off {
            let needed = max(configuration.memoryStartupBytes, configuration.memoryMaximumBytes)
            let free = try remote.freeMemoryBytes()
            if free < needed {
                throw VMMSError.insufficientResources("the destination \(destination) has \(free >> 20) MiB of memory free; \(name) needs \(needed >> 20) MiB")
            }
        }
        for disk in configuration.hardDisks {
            try checkDisk(disk.path, remote: remote, destination: destination, name: name, includeStorage: includeStorage)
        }
        for cdrom in configuration.cdroms {
            guard let path = cdrom.path else { continue }
            if (try? volume(path, on: remote)) == nil {
                throw VMMSError.notFound("the destination \(destination) does not see \(path), the medium in \(name)'s drive \(cdrom.device) (no storage pool there holds it); eject it or put it on storage both hosts see")
            }
        }
    }

    /// The volume at `path` on `remote`, its pool refreshed first so a new file shows.
    private static func volume(_ path: String, on remote: LibvirtConnection) throws -> LibvirtStorageVolume {
        let folder = (path as NSString).deletingLastPathComponent
        if let pool = try? remote.pool(targetPath: folder), (try? pool.isActive) == true { try? pool.refresh() }
        return try remote.volume(path: path)
    }

    private static func checkDisk(_ path: String, remote: LibvirtConnection, destination: String, name: String,
                                  includeStorage: Bool) throws {
        let folder = (path as NSString).deletingLastPathComponent
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw VMMSError.notSupported("the disk \(path) of \(name) is not an image file; only image files migrate")
        }
        if includeStorage {
            guard let pool = try? remote.pool(targetPath: folder), (try? pool.isActive) == true else {
                throw VMMSError.notFound("the destination \(destination) has no active storage pool for \(folder), where the copy of \(path) goes; define one there (virsh pool-define-as NAME dir --target \(folder); virsh pool-start NAME)")
            }
            try? pool.refresh()
            if (try? remote.volume(path: path)) != nil {
                throw VMMSError.alreadyExists("the destination \(destination) has a file \(path) already; remove it there, or move without IncludeStorage if it is the same file on shared storage")
            }
            return
        }
        guard let volume = try? volume(path, on: remote), let info = try? volume.info() else {
            throw VMMSError.notFound("the destination \(destination) does not see \(path), a disk of \(name) (no storage pool there holds it); put it on storage both hosts see and define a pool for \(folder) there, or pass IncludeStorage to copy it")
        }
        // The same file: what the destination reports of it matches what this host sees.
        let allocated = UInt64(status.st_blocks) * 512
        if info.allocationBytes != allocated {
            throw VMMSError.invalidState(current: "not shared",
                message: "\(path) at \(destination) is not the same file as here (\(info.allocationBytes) bytes allocated there, \(allocated) here); put the disk on storage both hosts see, or pass IncludeStorage")
        }
    }

    func run(_ job: JobContext) async throws {
        let plan = self.plan
        let domain = try await services.link.run { connection in try connection.domain(uuid: plan.uuid) }
        var parameters = MigrationParameters(migrateURI: plan.state == .off ? nil : plan.migrateURI,
                                             bandwidthMiBPerSecond: Self.testBandwidth)
        if plan.includeStorage {
            // The copies arrive sparse with discard='unmap' while they are written; the
            // persistent definition travels unchanged.
            let (live, persistent) = try await services.link.run { _ in
                (try domain.xml(flags: [.secure, .migratable]), try domain.xml(flags: [.secure, .inactive, .migratable]))
            }
            parameters.destinationXML = try MigrationXML.unmappingDisks(live, targets: Set(plan.disks))
            parameters.persistentXML = persistent
        }
        services.audit(caller, "Move \(plan.name) (\(plan.uuid)) to \(plan.destination) (\(plan.state.rawValue)\(plan.includeStorage ? ", with its storage" : ""))")
        let finished = Finished()
        let migration = parameters
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { finished.set() }
                try await job.blocking { try domain.migrate(toURI: plan.destination, parameters: migration, flags: plan.flags) }
            }
            group.addTask {
                // Progress from libvirt's statistics of the migration job (memory and disks);
                // Cancel aborts it from a job thread (virDomainAbortJob), the VM runs on here.
                var aborted = false
                while !finished.isSet {
                    let abort = job.isCancelled && !aborted
                    if abort { aborted = true }
                    if let stats = try? await job.blocking({ () throws -> DomainJobStats in
                        if abort { try? domain.abortJob() }
                        return try domain.jobStats()
                    }) {
                        let total = stats.dataTotal ?? ((stats.memoryTotal ?? 0) + (stats.diskTotal ?? 0))
                        let done = stats.dataProcessed ?? ((stats.memoryProcessed ?? 0) + (stats.diskProcessed ?? 0))
                        job.progress(done, of: total)
                    }
                    try? await Task.sleep(for: .milliseconds(250))
                }
            }
            try await group.waitForAll()
        }
        // libvirt sends no Undefined event for the undefined source: check, and drop it.
        let gone = try await services.link.run { connection -> Bool in
            do {
                _ = try connection.domain(uuid: plan.uuid)
                return false
            } catch let error as LibvirtError where error.isNoDomain {
                return true
            }
        }
        await services.monitor.refresh(uuid: plan.uuid, full: true)
        if !gone {
            services.logger.warning("\(plan.name) still has a definition here after its migration to \(plan.destination)")
        }
    }

    /// `VMMSD_TEST_MIGRATION_MIBPS` limits the migration's bandwidth, so a test can cancel it
    /// midway.
    static let testBandwidth: UInt64? = ProcessInfo.processInfo.environment["VMMSD_TEST_MIGRATION_MIBPS"].flatMap { UInt64($0) }
}

/// A flag one task sets and another polls.
private final class Finished: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}
