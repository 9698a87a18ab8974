import Foundation
import Glibc

/// Stops and starts the stack's libvirtd (scripts/stack.sh runs it as `libvirtd -d`), for tests
/// of what happens while it is away. Callers hold `SystemBusNameLock` and start it again also
/// when their test fails.
public enum Libvirtd {
    /// The running libvirtd's pid, from its pid file.
    public static func pid() -> Int32? {
        guard let text = try? String(contentsOfFile: "/run/libvirtd.pid", encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// SIGTERM, and waits up to 10 s until it has gone.
    public static func stop() async throws {
        guard let pid = pid() else { throw TestFailure("libvirtd is not running") }
        kill(pid, SIGTERM)
        for _ in 0..<400 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(25)) }
        guard kill(pid, 0) != 0 else { throw TestFailure("libvirtd (pid \(pid)) did not stop within 10 s") }
    }

    /// `libvirtd -d`, and waits up to 10 s until `virsh version` answers.
    public static func start() async throws {
        let started = try await runCommand("/usr/sbin/libvirtd", ["-d"])
        guard started.status == 0 else { throw TestFailure("libvirtd -d failed: \(started.stderr)") }
        for _ in 0..<200 {
            if try await runCommand("/usr/bin/virsh", ["-c", "qemu:///system", "version"]).status == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("libvirtd did not come back within 10 s")
    }
}
