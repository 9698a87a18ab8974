import Foundation
import VMMSModel

/// Confinement of caller-supplied file paths to the host's storage roots, so an administrator
/// whom polkit lets create VMs cannot attach `/etc/shadow` as a disk. Paths are resolved with
/// symlinks followed before comparing, so a link inside a root pointing outside is caught.
enum StorageRoots {
    /// The canonical form of an existing path, or nil when it does not exist.
    static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// True when `path` lies inside `root` (both resolved; a missing root contains nothing).
    /// A path that no longer exists counts by its resolved directory.
    static func contains(_ root: String, _ path: String) -> Bool {
        guard let root = resolve(root), let path = resolve(path) ?? resolvedParent(path) else { return false }
        return path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    private static func resolvedParent(_ path: String) -> String? {
        let url = URL(fileURLWithPath: path)
        let name = url.lastPathComponent
        guard path.hasPrefix("/"), name != "..", name != ".", let parent = resolve(url.deletingLastPathComponent().path) else { return nil }
        return parent == "/" ? "/" + name : parent + "/" + name
    }

    /// Checks an image an operation will hand to a VM: it must exist and be an image of
    /// `kind` outside the system's trees (`DiskImageRule`, for every caller), and for callers
    /// other than root lie inside a storage root, below directories only root can change,
    /// without a backing file. Returns the resolved path.
    static func checkImage(_ path: String, roots: [String], callerIsRoot: Bool, what: String,
                           kind: DiskImageRule.Kind) throws -> String {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else { throw VMMSError.invalidArgs("\(what) must be an absolute path") }
        guard let resolved = resolve(path) else { throw VMMSError.invalidArgs("\(what) \(path) does not exist") }
        var info = stat()
        guard stat(resolved, &info) == 0 else { throw VMMSError.invalidArgs("\(what) \(path) cannot be examined") }
        let type = info.st_mode & S_IFMT
        let fileType: DiskImageRule.FileType = type == S_IFREG ? .regular : type == S_IFBLK ? .blockDevice : .other
        let header = fileType == .regular ? firstBytes(of: resolved, count: 16) : []
        if let problem = DiskImageRule.problem(resolvedPath: resolved, type: fileType, header: header, kind: kind) {
            throw VMMSError.invalidArgs("\(what): \(problem)")
        }
        if !callerIsRoot {
            guard roots.contains(where: { contains($0, resolved) }) else {
                throw VMMSError.invalidArgs("\(what) \(path) is outside the host's storage paths (\(roots.joined(separator: ", ")))")
            }
            // libvirt opens the path again at every start: whoever can write to a directory on
            // it could swap the file for a link to /etc/shadow after this check.
            if let directory = writableDirectory(above: resolved) {
                throw VMMSError.invalidArgs("\(what) \(path) lies below \(directory), which users other than root can change; only root may attach it")
            }
            // A qcow2 image can name any host file as its backing file, which QEMU would open.
            if type == S_IFREG, hasBackingFile(resolved) {
                throw VMMSError.invalidArgs("\(what) \(path) is a qcow2 image with a backing file; only root may attach it")
            }
        }
        return resolved
    }

    /// The first directory from `/` down to `path`'s parent that is not root's alone (owned by
    /// someone else, or writable by group or others), nil when there is none.
    static func writableDirectory(above path: String) -> String? {
        var directory = ""
        for component in path.split(separator: "/").dropLast() {
            directory += "/" + component
            var info = stat()
            guard stat(directory, &info) == 0 else { return directory }
            if info.st_uid != 0 || info.st_mode & (S_IWGRP | S_IWOTH) != 0 { return directory }
        }
        return nil
    }

    /// True for a qcow2 image whose header names a backing file (bytes 8…15, big-endian).
    static func hasBackingFile(_ path: String) -> Bool {
        let header = firstBytes(of: path, count: 16)
        guard header.count == 16, header.starts(with: [0x51, 0x46, 0x49, 0xFB]) else { return false }
        return header[8..<16].contains { $0 != 0 }
    }

    /// Up to `count` bytes from the start of a file; empty when it cannot be read.
    static func firstBytes(of path: String, count: Int) -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        return (try? handle.read(upToCount: count)).map { [UInt8]($0) } ?? []
    }
}
