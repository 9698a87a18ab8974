/// Hyper-V refuses to start a VM whose startup memory the host cannot give it ("Not enough
/// memory in the system to start the virtual machine"). Linux would start it and overcommit,
/// then swap or let the OOM killer pick a process; vmms refuses such a Start instead when
/// QEMU runs on this machine: the VM's startup memory must fit in what the kernel calls
/// available (`MemAvailable`: free memory plus the cache it can reclaim).
public enum MemoryAdmission {
    /// `MemAvailable` of `/proc/meminfo`, in bytes; nil when the text has no such line.
    public static func availableBytes(meminfo: String) -> UInt64? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kib = UInt64(fields[1]) else { return nil }
            return kib * 1024
        }
        return nil
    }

    /// The refusal for a start of `name` needing `startupBytes` while `availableBytes` are
    /// available, or nil when it fits.
    public static func refusal(name: String, startupBytes: UInt64, availableBytes: UInt64) -> String? {
        guard startupBytes > availableBytes else { return nil }
        return "\(name) needs \(startupBytes >> 20) MiB of startup memory and the host has \(availableBytes >> 20) MiB available; "
            + "lower its startup memory (SetMemory), or stop or save another VM"
    }
}
