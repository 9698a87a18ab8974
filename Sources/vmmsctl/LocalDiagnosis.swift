import Foundation
import Glibc
import Spawn

/// Why the service cannot be reached, found out on this machine: the Best Practices
/// Analyzer's first rule ("The service required to manage virtual machines is not running")
/// with the cause and the command that fixes it: the README's troubleshooting list, automated.
/// Every check reads files or runs a short, bounded command; none needs the service.
enum LocalDiagnosis {
    /// Where things are looked for; the defaults are the places dbus-daemon, systemd and
    /// `make install` / the Debian package use.
    struct Places: Sendable {
        var busSocket = "/run/dbus/system_bus_socket"
        var policyDirectories = ["/usr/share/dbus-1/system.d", "/etc/dbus-1/system.d"]
        var activationDirectories = ["/usr/local/share/dbus-1/system-services", "/usr/share/dbus-1/system-services",
                                     "/lib/dbus-1/system-services"]
        var unitDirectories = ["/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
                               "/lib/systemd/system"]
        var binaries = ["/usr/libexec/vmms/vmmsd", "/usr/libexec/vmmsd", "/usr/local/libexec/vmmsd",
                        "/usr/local/libexec/vmms/vmmsd"]
        var configFile = "/etc/vmms/vmmsd.conf"
        /// The process name looked for in /proc.
        var daemonName = "vmmsd"
        var systemdRunning: Bool { FileManager.default.fileExists(atPath: "/run/systemd/system") }
    }

    static let policyFile = "org.example.VMMS1.conf"
    static let activationFile = "org.example.VMMS1.service"
    static let unit = "vmms.service"

    static func serviceNotRunning(_ failure: Failure, places: Places = Places()) -> Finding {
        var causes: [String] = []
        let files = FileManager.default
        if !files.fileExists(atPath: places.busSocket) {
            causes.append("The system bus is not running (no \(places.busSocket)). Start it: systemctl start dbus.")
        }
        let unitFile = places.unitDirectories.map { "\($0)/\(unit)" }.first { files.fileExists(atPath: $0) }
        let activation = places.activationDirectories.map { "\($0)/\(activationFile)" }.first { files.fileExists(atPath: $0) }
        let declared = [unitFile.flatMap { executable(in: $0, key: "ExecStart") },
                        activation.flatMap { executable(in: $0, key: "Exec") }].compactMap { $0 }
        let binary = (declared + places.binaries).first { access($0, X_OK) == 0 }
        if unitFile == nil && activation == nil && binary == nil {
            causes.append("vmms is not installed: there is no \(unit) unit, no D-Bus activation file \(activationFile) and no vmmsd. Install it: apt install ./vmms_*.deb (make deb), or make install.")
        } else if binary == nil {
            causes.append("vmmsd is missing: \(declared.first ?? "the program the unit names") does not exist or is not executable. Reinstall vmms (apt install --reinstall vmms, or make install).")
        }
        if !places.policyDirectories.contains(where: { files.fileExists(atPath: "\($0)/\(policyFile)") }) {
            causes.append("The bus policy \(policyFile) is in neither \(places.policyDirectories.joined(separator: " nor ")), so the bus does not let vmmsd take its name. Reinstall vmms, then reload the bus: systemctl reload dbus.")
        }
        if let binary, files.fileExists(atPath: places.configFile),
           let check = run(binary, ["--check-config", "--config", places.configFile]), check.status != 0 {
            let problem = check.stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(check.status)"
            causes.append("Its configuration file is wrong: \(problem.trimmingCharacters(in: .whitespaces)). Correct that line in \(places.configFile), then: systemctl restart vmms.")
        }
        if places.systemdRunning, unitFile != nil,
           let show = run("/usr/bin/systemctl", ["show", "--property=ActiveState,Result", unit]) {
            let state = properties(show.stdout)
            if state["ActiveState"] == "failed" {
                var cause = "The unit \(unit) has failed (\(state["Result"] ?? "unknown result"))."
                if let log = run("/usr/bin/journalctl", ["-u", unit, "-n", "5", "--no-pager", "-o", "cat"]), !log.stdout.isEmpty {
                    cause += " Its last log lines: " + log.stdout.split(separator: "\n").joined(separator: " | ") + "."
                }
                causes.append(cause + " Restart it after fixing that: systemctl restart vmms (journalctl -u vmms -b has the whole log).")
            }
        }
        if let errorName = failure.errorName, errorName.hasPrefix("org.freedesktop.DBus.Error.Spawn.") {
            causes.append("D-Bus activation could not start it: \(failure.message).")
        }
        let running = runningDaemons(named: places.daemonName)
        if !running.isEmpty {
            causes.append("vmmsd runs (pid \(running.map(String.init).joined(separator: ", "))) but does not own org.example.VMMS1: it may still be starting, or serve another bus (--session, --address). Its log: journalctl -u vmms -b.")
        }
        if causes.isEmpty {
            causes.append(places.systemdRunning
                ? "vmmsd is installed but not running. Start it: systemctl start vmms (and systemctl enable vmms to start it at boot)."
                : "vmmsd is installed but not running, and systemd is not this machine's init. Start it: \(binary ?? "vmmsd") --system.")
        }
        return Finding(rule: "vmms.service-running", severity: "Error",
                       message: "The service required to manage virtual machines is not running. " + causes.joined(separator: " "))
    }

    /// The program a unit's `ExecStart=` or an activation file's `Exec=` runs.
    static func executable(in file: String, key: String) -> String? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + "=") {
            var command = line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
            // systemd's prefixes: "-" ignore failure, "@", "+", "!", ":".
            while let first = command.first, "-@+!:".contains(first) { command.removeFirst() }
            if let program = command.split(separator: " ").first { return String(program) }
        }
        return nil
    }

    static func properties(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { result[String(parts[0])] = String(parts[1]) }
        }
        return result
    }

    /// Processes called `name`, from /proc.
    static func runningDaemons(named name: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                  let comm = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8),
                  comm.trimmingCharacters(in: .whitespacesAndNewlines) == name else { return nil }
            return pid
        }.sorted()
    }

    /// Runs a short command, killed after `limit`; nil when it cannot be run.
    static func run(_ program: String, _ arguments: [String], limit: Duration = .seconds(5)) -> (status: Int32, stdout: String, stderr: String)? {
        guard access(program, X_OK) == 0 else { return nil }
        let base = NSTemporaryDirectory() + "vmmsctl-\(getpid())-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let started = ContinuousClock.now
        guard let child = try? ChildProcess(program, arguments, stdoutPath: base + ".out", stderrPath: base + ".err") else { return nil }
        var status = child.exitStatusIfExited()
        while status == nil {
            if started.duration(to: .now) > limit {
                child.signal(SIGKILL)
                _ = child.wait()
                return nil
            }
            usleep(20_000)
            status = child.exitStatusIfExited()
        }
        return (status ?? -1, (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
    }
}
