/// The host's persisted settings, Hyper-V's "Virtual Machines" and "Virtual Hard Disks"
/// folders. Stored by the service; validated here so every writer applies the same rules.
public struct HostSettings: Codable, Sendable, Equatable {
    /// Where VM files, exports and saved state go.
    public var virtualMachinePath: String
    /// Where new virtual hard disks are created.
    public var virtualHardDiskPath: String

    public init(virtualMachinePath: String, virtualHardDiskPath: String) {
        self.virtualMachinePath = virtualMachinePath
        self.virtualHardDiskPath = virtualHardDiskPath
    }

    /// The folders whose files callers other than root may hand to a VM.
    public var storageRoots: [String] { [virtualHardDiskPath, virtualMachinePath] }

    /// The defaults of a Debian libvirt host.
    public static let defaults = HostSettings(virtualMachinePath: "/var/lib/vmms/machines",
                                              virtualHardDiskPath: "/var/lib/libvirt/images")
}

/// Which accelerator new VMs use; `auto` picks KVM where libvirt offers it.
public enum Accelerator: String, Sendable, CaseIterable, Codable {
    case auto, kvm, tcg
}

/// Checks on a directory path given by a caller, before anything touches the filesystem.
public enum StoragePathRule {
    /// Absolute, normalised, at most 4096 bytes, no NUL or control characters, not `/`.
    public static func validate(_ path: String) -> String? {
        if path.isEmpty { return "the path is empty" }
        if path.utf8.count > 4096 { return "the path is longer than 4096 bytes" }
        if !path.hasPrefix("/") { return "the path must be absolute" }
        if path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "the path contains control characters"
        }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if components.contains(where: { $0 == "." || $0 == ".." }) { return "the path must not contain . or .. elements" }
        if path.contains("//") {
            return "the path must be normalised (no empty elements)"
        }
        if path == "/" { return "the root directory cannot be a storage path" }
        // Kernel file systems: /proc/self/root is / itself, and none of them holds images.
        if ["/proc", "/sys", "/dev"].contains(where: { path == $0 || path.hasPrefix($0 + "/") }) {
            return "\(path) is a kernel file system, not storage"
        }
        return nil
    }
}
