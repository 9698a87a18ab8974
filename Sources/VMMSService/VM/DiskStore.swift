import Foundation
import Libvirt
import Logging
import VMMSModel

/// New virtual hard disks: qcow2 volumes in libvirt directory pools. Every directory that
/// holds vmms's disks keeps a pool of its own (`vmms-disks` for the first, `vmms-disks-<hash>`
/// for others), so disks left in an old VirtualHardDiskPath still show their capacity and are
/// still deleted through libvirt after the setting moves.
final class DiskStore: Sendable {
    static let poolName = "vmms-disks"
    let link: HypervisorLink
    let logger: Logger

    init(link: HypervisorLink, logger: Logger) {
        self.link = link
        self.logger = logger
    }

    /// Creates `<base>.qcow2` (a VM's first disk; `additional`: start at `<base>-2.qcow2`) —
    /// or the next of `-2`, `-3`… when the pool already holds that name (another disk of the
    /// VM, or an orphan left by a deleted VM, which is never reused) — of `sizeBytes` in
    /// `directory`, recording the intent in `journal` first; returns its path.
    func create(base: String, additional: Bool = false, sizeBytes: UInt64, in directory: String,
                journal: JournalRecord) async throws -> String {
        let path = try await link.run { connection -> String in
            let pool = try Self.pool(at: directory, connection: connection)
            try pool.refresh()
            let taken = Set(try pool.volumes().compactMap { try? $0.name })
            let name = Self.freeName(base: base, from: additional ? 2 : 1, taken: taken, exists: { FileManager.default.fileExists(atPath: directory + "/" + $0) })
            return directory + "/" + name
        }
        let name = (path as NSString).lastPathComponent
        if let free = SparseCopy.freeBytes(directory),
           let refusal = DiskSpaceAdmission.refusal(directory: directory, freeBytes: free, sizeBytes: sizeBytes) {
            throw VMMSError.insufficientResources(refusal)
        }
        try await journal.intend(.createDisk(path: path))
        CrashPoint.reached("NewDisk.intended")
        return try await link.run { connection in
            let pool = try Self.pool(at: directory, connection: connection)
            let xml = """
            <volume><name>\(XMLText.escape(name))</name><capacity unit='bytes'>\(sizeBytes)</capacity>\
            <target><format type='qcow2'/><permissions><mode>0600</mode></permissions></target></volume>
            """
            do {
                return try pool.createVolume(xml: xml).path
            } catch let error as LibvirtError where DiskSpaceAdmission.isNoSpace(error.message) {
                throw VMMSError.insufficientResources("cannot create the disk \(path): \(directory) is full (\(error.message))")
            } catch let error as LibvirtError {
                throw VMMSError.failed("cannot create the disk \(path): \(error.message)")
            }
        }
    }

    /// The first of `<base>.qcow2` (n = 1), `<base>-2.qcow2`, … from `n` on, neither in the
    /// pool nor on disk.
    static func freeName(base: String, from first: Int, taken: Set<String>, exists: (String) -> Bool) -> String {
        var n = first
        var candidate = n == 1 ? base + ".qcow2" : "\(base)-\(n).qcow2"
        while taken.contains(candidate) || exists(candidate) {
            n += 1
            candidate = "\(base)-\(n).qcow2"
        }
        return candidate
    }

    /// Deletes disk images through the pool that holds them. Failures are logged (the VM is
    /// gone already and a leftover file must not turn that into an error); returns whether
    /// every image is gone.
    @discardableResult
    func delete(paths: [String]) async -> Bool {
        var all = true
        for path in paths {
            do {
                try await link.run { connection in
                    let directory = (path as NSString).deletingLastPathComponent
                    if (try? connection.volume(path: path)) == nil, FileManager.default.fileExists(atPath: path) {
                        // Its directory has no pool yet (a disk from before pools were kept per
                        // directory): make one, so libvirt deletes it like every other.
                        _ = try Self.pool(at: directory, connection: connection)
                    }
                    try connection.volume(path: path).delete()
                }
            } catch let error as LibvirtError where error.isNoStorageVolume {
                continue
            } catch {
                logger.warning("could not delete disk \(path): \(error)")
                all = false
            }
        }
        return all
    }

    /// Those of `paths` that DeleteDisks may delete: images in a directory vmms keeps a disk
    /// pool for (it made them, also before VirtualHardDiskPath moved), or inside `roots`.
    func deletable(_ paths: [String], roots: [String]) async throws -> [String] {
        guard !paths.isEmpty else { return [] }
        let managed = try await link.run { connection -> Set<String> in
            var directories: Set<String> = []
            for pool in try connection.allPools() where ((try? pool.name) ?? "").hasPrefix(Self.poolName) {
                if let xml = try? pool.xmlDesc(), let path = StoragePoolXML.targetPath(xml) { directories.insert(path) }
            }
            return directories
        }
        return paths.filter { path in
            managed.contains((path as NSString).deletingLastPathComponent) || roots.contains { StorageRoots.contains($0, path) }
        }
    }

    /// The pool for `directory`, defined, built and started when needed.
    static func pool(at directory: String, connection: LibvirtConnection) throws -> LibvirtStoragePool {
        for pool in try connection.allPools() {
            if let xml = try? pool.xmlDesc(), StoragePoolXML.targetPath(xml) == directory {
                if !(try pool.isActive) { try pool.create() }
                return pool
            }
        }
        let names = Set(try connection.allPools().compactMap { try? $0.name })
        let name = names.contains(poolName) ? poolName + "-" + shortHash(directory) : poolName
        let pool = try connection.definePool(xml: """
        <pool type='dir'><name>\(name)</name><target><path>\(XMLText.escape(directory))</path></target></pool>
        """)
        try pool.build()
        try pool.create()
        try? pool.setAutostart(true)
        return pool
    }

    /// Eight hex digits of FNV-1a: a stable, readable pool name suffix for a directory.
    static func shortHash(_ text: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
