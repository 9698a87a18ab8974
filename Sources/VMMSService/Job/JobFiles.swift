import Foundation
import Libvirt
import VMMSModel

/// Files the jobs make, replace and clean up, and the checks on the folders callers name.
enum JobFiles {
    /// Every host file some domain uses (disk and CD-ROM sources, NVRAM), in its persistent
    /// and its live definition, resolved. Throws when a definition cannot be read: then
    /// nothing may be deleted.
    static func pathsInUse(_ connection: LibvirtConnection) throws -> Set<String> {
        var used: Set<String> = []
        func insertPaths(of xmls: [String]) {
            for xml in xmls {
                guard let files = try? DomainFiles(xml: xml) else { continue }
                for path in files.allPaths { used.insert(StorageRoots.resolve(path) ?? path) }
            }
        }
        for domain in try connection.allDomains() {
            var xmls = [try domain.xml(flags: [.inactive])]
            if (try? domain.isActive) == true, let live = try? domain.xml() { xmls.append(live) }
            insertPaths(of: xmls)
        }
        // A Saved VM's memory image restores onto the files its own definition names: one
        // listing finds those VMs, so the others cost nothing more.
        for domain in try connection.allDomains(flags: [.managedSave]) {
            if let saved = try? domain.managedSaveXML() { insertPaths(of: [saved]) }
        }
        return used
    }

    /// Removes each of `paths` (files or folder trees) that no domain uses, nor any file
    /// below it. Blocking: libvirt calls and file removal.
    static func removeUnlessUsed(_ paths: [String], connection: LibvirtConnection) throws {
        // A block copy into one of them that outlived its job (vmmsd was killed mid-Move):
        // abort it, the VM keeps its old disk.
        let wanted = Set(paths)
        for domain in try connection.allDomains() where (try? domain.isActive) == true {
            guard let xml = try? domain.xml(), let files = try? DomainFiles(xml: xml) else { continue }
            for mirror in files.mirrors where wanted.contains(mirror.path) { try? domain.blockJobAbort(disk: mirror.target) }
        }
        let used = try pathsInUse(connection)
        for path in paths where FileManager.default.fileExists(atPath: path) {
            let resolved = StorageRoots.resolve(path) ?? path
            let prefix = resolved.hasSuffix("/") ? resolved : resolved + "/"
            if used.contains(resolved) || used.contains(where: { $0.hasPrefix(prefix) }) { continue }
            try FileManager.default.removeItem(atPath: path)
        }
    }

    /// The NVRAM file of a domain: as its persistent definition names it, else as the live
    /// one does, else libvirt's default for UEFI VMs (firmware auto-selection names it only
    /// in the live definition); nil when there is none on disk. Blocking.
    static func nvram(of domain: LibvirtDomain, inactive: DomainFiles, name: String) -> String? {
        var candidates = [inactive.nvram]
        if (try? domain.isActive) == true { candidates.append((try? domain.xml()).flatMap { try? DomainFiles(xml: $0) }?.nvram) }
        if inactive.usesUEFI { candidates.append("/var/lib/libvirt/qemu/nvram/\(name)_VARS.fd") }
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// libvirt's managed-save image of a domain on the system QEMU driver.
    static func managedSaveImage(name: String) -> String { "/var/lib/libvirt/qemu/save/\(name).save" }

    /// Checks a folder a caller names for Export, Import or Move: absolute and clean, an
    /// existing directory, and for callers other than root inside a storage root (resolved,
    /// symlinks followed). Returns the resolved path.
    static func checkFolder(_ path: String, what: String, roots: [String], callerIsRoot: Bool) throws -> String {
        var path = path
        if path.count > 1, path.hasSuffix("/") { path.removeLast() }
        if let problem = StoragePathRule.validate(path) { throw VMMSError.invalidArgs("\(what): \(problem)") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
              let resolved = StorageRoots.resolve(path) else {
            throw VMMSError.invalidArgs("\(what) \(path) is not an existing directory")
        }
        if let problem = StoragePathRule.validate(resolved) { throw VMMSError.invalidArgs("\(what) \(path) leads to \(resolved): \(problem)") }
        if !callerIsRoot, !roots.contains(where: { StorageRoots.contains($0, resolved) }) {
            throw VMMSError.invalidArgs("\(what) \(path) is outside the host's storage paths (\(roots.joined(separator: ", "))); only root may use other folders")
        }
        return resolved
    }

    /// A file name for `base` + `suffix` in `directory` that is neither on disk nor in
    /// `taken`: `base.suffix`, `base-2.suffix`, …
    static func freeName(_ base: String, _ suffix: String, in directory: String, taken: Set<String> = []) -> String {
        var n = 1
        while true {
            let name = n == 1 ? base + suffix : "\(base)-\(n)\(suffix)"
            if !taken.contains(name), !FileManager.default.fileExists(atPath: directory + "/" + name) { return name }
            n += 1
        }
    }

    /// The file name suffix of an image (`.qcow2`), or "" when it has none.
    static func suffix(of path: String) -> String {
        let ext = (path as NSString).pathExtension
        return ext.isEmpty ? "" : "." + ext
    }
}
