import Libvirt
import Logging
import VMMSModel

/// New virtual hard disks: qcow2 volumes in a libvirt directory pool at the host's
/// VirtualHardDiskPath. The pool follows the path: when the setting changes, the pool is
/// redefined there on next use.
final class DiskStore: Sendable {
    static let poolName = "vmms-disks"
    let link: HypervisorLink
    let logger: Logger

    init(link: HypervisorLink, logger: Logger) {
        self.link = link
        self.logger = logger
    }

    /// Creates `name` (a file name) of `sizeBytes` in `directory`; returns its path.
    func create(name: String, sizeBytes: UInt64, format: String = "qcow2", in directory: String) async throws -> String {
        try await link.run { connection in
            let pool = try Self.pool(at: directory, connection: connection)
            try pool.refresh()
            if (try? pool.volume(name: name)) != nil {
                throw VMMSError.alreadyExists("a disk named \(name) already exists in \(directory)")
            }
            let xml = """
            <volume><name>\(XMLText.escape(name))</name><capacity unit='bytes'>\(sizeBytes)</capacity>\
            <target><format type='\(format)'/><permissions><mode>0600</mode></permissions></target></volume>
            """
            return try pool.createVolume(xml: xml).path
        }
    }

    /// Deletes disk images, through libvirt where a pool knows them. Failures are logged: the
    /// VM is gone already and a leftover file must not turn that into an error.
    func delete(paths: [String]) async {
        for path in paths {
            do {
                try await link.run { connection in
                    if let volume = try? connection.volume(path: path) {
                        try volume.delete()
                    } else {
                        try FileManagerShim.removeFile(path)
                    }
                }
            } catch {
                logger.warning("could not delete disk \(path): \(error)")
            }
        }
    }

    /// The pool for `directory`, defined, built and started when needed.
    private static func pool(at directory: String, connection: LibvirtConnection) throws -> LibvirtStoragePool {
        for pool in try connection.allPools() {
            if let xml = try? pool.xmlDesc(), xml.contains("<path>\(XMLText.escape(directory))</path>") {
                if !(try pool.isActive) { try pool.create() }
                return pool
            }
        }
        if let stale = try? connection.pool(name: poolName) {
            if (try? stale.isActive) == true { try stale.destroy() }
            try stale.undefine()
        }
        let pool = try connection.definePool(xml: """
        <pool type='dir'><name>\(poolName)</name><target><path>\(XMLText.escape(directory))</path></target></pool>
        """)
        try pool.build()
        try pool.create()
        try? pool.setAutostart(true)
        return pool
    }
}
