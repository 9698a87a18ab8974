import Foundation
import TestSupport
import Testing

/// Calls through `gdbus` run as a real user on the real system bus; gdbus prints the D-Bus
/// error name, so the tests can tell NotAuthorized from InteractiveAuthorizationRequired.
struct GDBus {
    let user: String

    struct Outcome: CustomStringConvertible {
        var ok: Bool
        var output: String
        var errorName: String?
        var description: String { ok ? "ok: \(output)" : "error \(errorName ?? "?"): \(output)" }
    }

    func call(_ path: String, _ method: String, _ args: [String] = [], interactive: Bool = false) async throws -> Outcome {
        var arguments = ["call", "--system", "--timeout", "120", "--dest", "org.example.VMMS1", "--object-path", path, "--method", method]
        if interactive { arguments.insert("--interactive", at: 1) }
        arguments += args
        let result: CommandResult
        if user == "root" {
            result = try await runCommand("/usr/bin/gdbus", arguments)
        } else {
            result = try await runCommand("/usr/sbin/runuser", ["-u", user, "--", "/usr/bin/gdbus"] + arguments)
        }
        let text = result.stdout + result.stderr
        var name: String?
        if let range = text.range(of: "GDBus.Error:") {
            name = String(text[range.upperBound...].prefix { $0 != ":" })
        }
        return Outcome(ok: result.status == 0, output: text.trimmingCharacters(in: .whitespacesAndNewlines), errorName: name)
    }

    func get(_ path: String, _ interface: String, _ property: String) async throws -> Outcome {
        try await call(path, "org.freedesktop.DBus.Properties.Get", [interface, property])
    }

    /// Creates a small diskless generation-1 VM (TCG-friendly) and returns its path.
    func createVM(_ name: String, extra: String = "") async throws -> String {
        let outcome = try await call("/org/example/VMMS1/Host", "org.example.VMMS1.Host.CreateVM",
                                     [name, "{'Generation': <uint32 1>, 'MemoryStartupBytes': <uint64 67108864>\(extra)}"])
        guard outcome.ok, let start = outcome.output.range(of: "'/"), let end = outcome.output.range(of: "',", range: start.upperBound..<outcome.output.endIndex) else {
            throw TestFailure("CreateVM \(name) as \(user) failed: \(outcome)")
        }
        return String(outcome.output[outcome.output.index(after: start.lowerBound)..<end.lowerBound])
    }
}

enum Names {
    static func unique(_ prefix: String) -> String { "it-\(prefix)-\(UUID().uuidString.prefix(6).lowercased())" }
}

/// `virsh -c qemu:///system`, to check that libvirt agrees with what the service says.
func virsh(_ arguments: [String]) async throws -> CommandResult {
    try await runCommand("/usr/bin/virsh", ["-c", "qemu:///system"] + arguments)
}
