/// A new disk (a dynamically expanding qcow2) costs little when made, but a folder with
/// almost no space left cannot hold it for long: vmms refuses to make one where less than
/// `minimumFreeBytes` is free, with InsufficientResources, as Hyper-V does when the volume
/// is full. (How far the disks could grow is CheckHealth's storage rule.)
public enum DiskSpaceAdmission {
    public static let minimumFreeBytes: UInt64 = 64 << 20

    /// The refusal for a new disk of `sizeBytes` in `directory` with `freeBytes` free, or nil.
    public static func refusal(directory: String, freeBytes: UInt64, sizeBytes: UInt64) -> String? {
        guard freeBytes < minimumFreeBytes else { return nil }
        return "\(directory) has \(freeBytes >> 20) MiB free; a new disk needs at least \(minimumFreeBytes >> 20) MiB there "
            + "(it grows to \(sizeBytes >> 20) MiB as the guest writes): free some space or change VirtualHardDiskPath"
    }

    /// Whether libvirt's or qemu-img's message says the file system is full.
    public static func isNoSpace(_ message: String) -> Bool {
        message.contains("No space left on device") || message.contains("ENOSPC")
    }
}
