/// What may be handed to a VM as a disk or as install media, for every caller (root too):
/// Hyper-V takes only VHD, VHDX and ISO files; vmms takes disk images and block devices, and
/// never a system file a guest could then read or write.
public enum DiskImageRule {
    public enum Kind: Sendable {
        /// A hard disk: a qcow2 image, a raw image with a disk-like name, a VHD/VHDX, or a
        /// block device.
        case disk
        /// A CD-ROM: an ISO image.
        case installMedia
    }

    public enum FileType: Sendable {
        case regular, blockDevice, other
    }

    /// Trees that hold the system, never VM storage (a block device under /dev is fine).
    public static let systemTrees = ["/etc", "/usr", "/boot", "/proc", "/sys", "/dev", "/run"]

    static let diskExtensions = [".qcow2", ".qcow", ".img", ".raw", ".vhd", ".vhdx"]
    static let mediaExtensions = [".iso"]

    /// What is accepted, for error messages.
    public static func accepted(_ kind: Kind) -> String {
        switch kind {
        case .disk: "a disk must be a qcow2 image (.qcow2), a raw image (.img, .raw), a VHD/VHDX (.vhd, .vhdx) or a block device"
        case .installMedia: "install media must be an ISO image (.iso)"
        }
    }

    /// Why `path` (symlinks already resolved) cannot be used, or nil. `header` is the file's
    /// first bytes (at least 4 for the qcow2 magic), empty when unreadable.
    public static func problem(resolvedPath path: String, type: FileType, header: [UInt8], kind: Kind) -> String? {
        let lower = path.lowercased()
        let inSystemTree = systemTrees.first { path == $0 || path.hasPrefix($0 + "/") }
        switch type {
        case .other:
            return "\(path) is neither a regular file nor a block device; \(accepted(kind))"
        case .blockDevice:
            guard kind == .disk else { return "\(path) is a block device; \(accepted(kind))" }
            if let tree = inSystemTree, tree != "/dev" { return "\(path) lies in \(tree), which holds the system; \(accepted(kind))" }
            return nil
        case .regular:
            if let tree = inSystemTree { return "\(path) lies in \(tree), which holds the system, not VM storage; \(accepted(kind))" }
            let extensions = kind == .disk ? diskExtensions : mediaExtensions
            guard let ext = extensions.first(where: { lower.hasSuffix($0) }) else {
                return "\(path) does not have the name of an image; \(accepted(kind))"
            }
            let isQcow2 = header.starts(with: [0x51, 0x46, 0x49, 0xFB])
            if ext == ".qcow2" || ext == ".qcow", !isQcow2 { return "\(path) is named like a qcow2 image but is not one" }
            return nil
        }
    }
}
