import Foundation

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

    /// Checks a file an operation will use: it must exist, be a regular file (or a block
    /// device when `allowBlockDevice`), and for callers other than root lie inside a root.
    static func checkFile(_ path: String, roots: [String], callerIsRoot: Bool, what: String,
                          allowBlockDevice: Bool = false) throws -> String {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else { throw VMMSError.invalidArgs("\(what) must be an absolute path") }
        guard let resolved = resolve(path) else { throw VMMSError.invalidArgs("\(what) \(path) does not exist") }
        var info = stat()
        guard stat(resolved, &info) == 0 else { throw VMMSError.invalidArgs("\(what) \(path) cannot be examined") }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG || (allowBlockDevice && type == S_IFBLK) else {
            throw VMMSError.invalidArgs("\(what) \(path) is not a regular file")
        }
        if !callerIsRoot && !roots.contains(where: { contains($0, resolved) }) {
            throw VMMSError.invalidArgs("\(what) \(path) is outside the host's storage paths (\(roots.joined(separator: ", ")))")
        }
        return resolved
    }
}
