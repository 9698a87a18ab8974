import Foundation
import Libvirt
import VMMSModel

/// The work of a storage Move job (Move-VMStorage): every disk, and for a VM that is off
/// its NVRAM, into one directory.
///
/// Off: sparse copies, then one redefine pointing at them, then the old files go. Running:
/// libvirt's block copy of each disk (`--transient-job`, so a persistent domain may copy;
/// the live and persistent definitions both follow the pivot), all disks mirrored until
/// ready, then pivoted; the old files go only once the VM uses the new ones. Whatever
/// happens, the cleanup removes exactly the files (old or new) that no domain uses, which
/// is also what the journal's recovery does after a crash.
struct VMMover {
    struct Plan: Sendable {
        var uuid: String
        var name: String
        var running: Bool
        var disks: [File]
        var nvram: File?
        struct File: Sendable {
            var target: String
            var from: String
            var to: String
            var format: String
        }
        var all: [File] { disks + (nvram.map { [$0] } ?? []) }
    }

    let services: Services
    let plan: Plan
    let caller: Caller

    /// What moves where; refused when a destination file exists, a disk has a backing chain,
    /// or the destination has not room for the data (InsufficientResources).
    static func plan(_ record: VMRecord, to folder: String, services: Services) async throws -> Plan {
        let uuid = record.uuid, name = record.name
        return try await services.link.run { connection -> Plan in
            let domain = try connection.domain(uuid: uuid)
            let files = try DomainFiles(xml: try domain.xml(flags: [.inactive]))
            let running = try domain.isActive
            var taken: Set<String> = []
            func destination(_ path: String) throws -> String? {
                guard (path as NSString).deletingLastPathComponent != folder,
                      StorageRoots.resolve((path as NSString).deletingLastPathComponent) != folder else { return nil }
                let fileName = (path as NSString).lastPathComponent
                guard !taken.contains(fileName) else {
                    throw VMMSError.invalidArgs("two files of \(name) are named \(fileName); they cannot move into one directory")
                }
                taken.insert(fileName)
                let target = folder + "/" + fileName
                if FileManager.default.fileExists(atPath: target) {
                    throw VMMSError.alreadyExists("\(target) exists already; move \(name) elsewhere or remove that file")
                }
                return target
            }
            var disks: [Plan.File] = []
            for disk in files.hardDisks {
                if StorageRoots.hasBackingFile(disk.path) {
                    throw VMMSError.notSupported("the disk \(disk.path) of \(name) has a backing file (a checkpoint chain); moving checkpoint chains is not supported yet")
                }
                if let to = try destination(disk.path) { disks.append(.init(target: disk.target, from: disk.path, to: to, format: disk.format)) }
            }
            // The NVRAM is open while the VM runs and libvirt cannot switch it live.
            var nvram: Plan.File?
            if !running, let path = JobFiles.nvram(of: domain, inactive: files, name: name), let to = try destination(path) {
                nvram = .init(target: "nvram", from: path, to: to, format: "raw")
            }
            let plan = Plan(uuid: uuid, name: name, running: running, disks: disks, nvram: nvram)
            let needed = try plan.all.reduce(UInt64(0)) { $0 + (try SparseCopy.dataBytes($1.from)) }
            let margin: UInt64 = 64 << 20
            if let free = SparseCopy.freeBytes(folder), free < needed + margin {
                throw VMMSError.insufficientResources("\(folder) has \(free >> 20) MiB free; moving \(name) needs \((needed + margin) >> 20) MiB")
            }
            return plan
        }
    }

    func run(_ job: JobContext) async throws {
        let journal = services.journal.begin("Move \(plan.name) storage", caller: caller.description)
        let paths = plan.all.flatMap { [$0.to, $0.from] }
        do {
            for path in paths { try await journal.intend(.removeUnlessUsed(path: path)) }
            CrashPoint.reached("Move.intended")
            if plan.running { try await moveLive(job) } else { try await moveOff(job) }
            CrashPoint.reached("Move.switched")
        } catch {
            do {
                try await services.link.runLong { connection in try JobFiles.removeUnlessUsed(paths, connection: connection) }
                await journal.finish()
            } catch {
                // libvirt is gone (restarting): the journal keeps the files for recovery,
                // which removes the unused ones on the next connection.
                services.logger.error("could not clean up after the failed move of \(plan.name) now (\(error)); recovery will")
                journal.abandon()
            }
            throw error
        }
        // Done: the old files are no longer used (and the new ones are, so they stay).
        do {
            try await services.link.runLong { connection in try JobFiles.removeUnlessUsed(paths, connection: connection) }
            await journal.finish()
        } catch {
            services.logger.error("\(plan.name) uses its new files; the old ones are removed by recovery (\(error))")
            journal.abandon()
        }
        services.audit(caller, "Move \(plan.name) (\(plan.uuid)) storage to \(plan.all.map(\.to).joined(separator: ", "))")
    }

    private func moveOff(_ job: JobContext) async throws {
        let files = plan.all
        try await job.blocking {
            let total = try files.reduce(UInt64(0)) { $0 + (try SparseCopy.dataBytes($1.from)) }
            var done: UInt64 = 0
            for file in files {
                try SparseCopy.copy(file.from, to: file.to, progress: { moved in
                    done += moved
                    job.progress(done, of: total)
                }, cancelled: { job.isCancelled })
            }
        }
        try job.checkCancelled()
        let plan = self.plan
        try await services.link.run { connection in
            let domain = try connection.domain(uuid: plan.uuid)
            guard !(try domain.isActive) else {
                throw VMMSError.invalidState(current: "Running", message: "\(plan.name) was started while its storage was copied; nothing was moved")
            }
            let definition = try DomainFiles(xml: try domain.xml(flags: [.inactive, .secure]))
            for disk in plan.disks { definition.setDiskSource(target: disk.target, path: disk.to) }
            if let nvram = plan.nvram { definition.setNVRAM(nvram.to) }
            _ = try connection.defineDomain(xml: definition.xml)
        }
    }

    private func moveLive(_ job: JobContext) async throws {
        let plan = self.plan
        let connection = try services.link.connection()
        try await job.blocking {
            let domain = try connection.domain(uuid: plan.uuid)
            var started: [String] = []
            do {
                for disk in plan.disks {
                    let e = XMLText.escape
                    try domain.blockCopy(disk: disk.target,
                                         destinationXML: "<disk type='file'><source file='\(e(disk.to))'/><driver type='\(e(disk.format))'/></disk>",
                                         bandwidthBytesPerSecond: SparseCopy.testLimit, flags: [.transientJob])
                    started.append(disk.target)
                }
                // Mirrored until every copy has caught up; the guest writes on meanwhile.
                while true {
                    try job.checkCancelled()
                    var cursor: UInt64 = 0, end: UInt64 = 0, ready = true
                    for disk in plan.disks {
                        guard let info = try domain.blockJobInfo(disk: disk.target) else {
                            throw VMMSError.failed("the copy of \(disk.from) stopped (the VM was turned off, or libvirt failed it); nothing was moved")
                        }
                        cursor += info.cursor
                        end += info.end
                        if info.end == 0 || info.cursor < info.end { ready = false }
                    }
                    job.progress(cursor, of: end)
                    if ready { break }
                    Thread.sleep(forTimeInterval: 0.5)
                }
                // Pivot; libvirt says "not ready" until QEMU has announced readiness.
                for disk in plan.disks {
                    var attempts = 0
                    while true {
                        do {
                            try domain.blockJobAbort(disk: disk.target, flags: .pivot)
                            started.removeAll { $0 == disk.target }
                            break
                        } catch let error as LibvirtError where attempts < 150 && (error.code == .blockCopyActive || error.code == .operationInvalid) {
                            attempts += 1
                            Thread.sleep(forTimeInterval: 0.2)
                        }
                    }
                }
            } catch {
                for target in started { try? domain.blockJobAbort(disk: target) }
                throw error
            }
        }
        // QEMU wrote the copies through the page cache: on disk before the old files go.
        try await job.blocking { for disk in plan.disks { try SparseCopy.flush(disk.to) } }
        await services.monitor.refresh(uuid: plan.uuid, full: true)
    }
}
