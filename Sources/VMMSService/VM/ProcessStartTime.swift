import Foundation
import Glibc

/// When a local QEMU process started, for `StartTime` of VMs that were running before vmmsd
/// (re)started: libvirt keeps `/run/libvirt/qemu/<name>.pid` for `qemu:///system`, and
/// `/proc/<pid>/stat` holds the start in clock ticks after boot (`btime` in `/proc/stat`).
enum ProcessStartTime {
    private static let bootTime: UInt64? = {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return stat.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { UInt64($0.dropFirst(6)) }
    }()

    /// Unix seconds when the QEMU process of domain `name` started, or nil.
    static func ofQEMU(domainName name: String) -> UInt64? {
        guard !name.contains("/"),
              let text = try? String(contentsOfFile: "/run/libvirt/qemu/\(name).pid", encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return of(pid: pid)
    }

    /// Unix seconds when process `pid` started, or nil.
    static func of(pid: Int32) -> UInt64? {
        guard let boot = bootTime, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name, which may contain spaces: state is field 3, starttime 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = UInt64(fields[19]) else { return nil }
        let hertz = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        return boot + ticks / hertz
    }
}
