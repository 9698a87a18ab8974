import Foundation
import Glibc
import Testing
import TestSupport

/// `make install` / `make uninstall` (mk/install.mk): the exact layout in a staging root, and a
/// real install under /usr/local that dbus-daemon activates on the first call.
@Suite("make install", .usesLibvirtd, .serialized)
struct InstallTests {

    // MARK: staging root

    @Test(arguments: ["/usr", "/usr/local"])
    func stagingInstallPlacesExactlyTheExpectedFiles(prefix: String) async throws {
        let root = try temporaryDirectory("vmms-stage")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let variables = ["DESTDIR=\(root)", "PREFIX=\(prefix)"]

        try await make(["install", "VMMSD_BIN=\(builtVMMSD)", "VMMSCTL_BIN=\(builtVMMSCTL)"] + variables)

        let expected = expectedLayout(prefix: prefix)
        let installed = try filesUnder(root)
        #expect(installed == Set(expected.keys),
                "missing: \(Set(expected.keys).subtracting(installed).sorted()), unexpected: \(installed.subtracting(expected.keys).sorted())")

        for (path, source) in expected.sorted(by: { $0.key < $1.key }) where installed.contains(path) {
            let full = root + path
            let binary: String? = if case .binary(let built) = source { built } else { nil }
            #expect(try mode(of: full) == (binary != nil ? 0o755 : 0o644), "mode of \(path)")
            let text = binary != nil ? "" : try String(contentsOfFile: full, encoding: .utf8)
            #expect(!text.contains("@PKGLIBEXECDIR@"), "\(path) still has the @PKGLIBEXECDIR@ placeholder")
            switch source {
            case .binary(let built):
                #expect(try await runCommand("/usr/bin/cmp", ["-s", built, full]).status == 0, "\(path) is not \(built)")
            case .generated(let argument):
                let printed = try await runCommand(builtVMMSCTL, [argument], environment: Self.makeEnvironment)
                #expect(printed.status == 0 && !printed.stdout.isEmpty, "vmmsctl \(argument): \(printed.stderr)")
                #expect(text == printed.stdout, "\(path) is not what vmmsctl \(argument) prints")
            case .copy(let file):
                #expect(text == (try String(contentsOfFile: repositoryRoot + "/" + file, encoding: .utf8)), "\(path) differs from \(file)")
            case .substituted(let file, let execLine):
                let original = try String(contentsOfFile: repositoryRoot + "/" + file, encoding: .utf8)
                #expect(text == original.replacingOccurrences(of: "@PKGLIBEXECDIR@", with: prefix + "/libexec/vmms"), "\(path)")
                #expect(text.split(separator: "\n").contains { $0 == execLine }, "\(path) has no line \(execLine)")
            }
        }

        try await make(["uninstall"] + variables)
        let left = try filesUnder(root)
        #expect(left.isEmpty, "make uninstall left \(left.sorted())")
    }

    @Test func theDefaultConfigurationIsFullyCommentedOut() throws {
        let text = try String(contentsOfFile: repositoryRoot + "/etc/vmmsd.conf", encoding: .utf8)
        for line in text.split(separator: "\n") {
            #expect(line.hasPrefix("#"), "active line in etc/vmmsd.conf: \(line)")
        }
        for key in ["connect", "accelerator", "state-dir"] {
            #expect(text.contains("\n#\(key) = "), "etc/vmmsd.conf does not show \(key)")
        }
    }

    @Test func installAndUninstallKeepAnAdministratorsConfiguration() async throws {
        let root = try temporaryDirectory("vmms-stage")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let variables = ["DESTDIR=\(root)", "PREFIX=/usr"]
        let config = root + "/etc/vmms/vmmsd.conf"
        let edited = "connect = test:///default\n"
        try FileManager.default.createDirectory(atPath: root + "/etc/vmms", withIntermediateDirectories: true)
        try edited.write(toFile: config, atomically: false, encoding: .utf8)

        try await make(["install", "VMMSD_BIN=\(builtVMMSD)", "VMMSCTL_BIN=\(builtVMMSCTL)"] + variables)
        #expect(try String(contentsOfFile: config, encoding: .utf8) == edited, "make install overwrote the config")

        try await make(["uninstall"] + variables)
        #expect(try filesUnder(root) == ["/etc/vmms/vmmsd.conf"], "uninstall must remove everything but the edited config")
        #expect(try String(contentsOfFile: config, encoding: .utf8) == edited)
    }

    // MARK: real install, D-Bus activation

    /// Installs under /usr/local for real and lets dbus-daemon start vmmsd from the activation
    /// file (no systemd here: dbus-daemon-launch-helper runs Exec= as User=root).
    @Test(.enabled(if: realStackAvailable, realStackReason), .timeLimit(.minutes(15)))
    func installedServiceIsStartedByDBusActivation() async throws {
        try await SystemBusNameLock.with {
            let installed = "/usr/local/libexec/vmms/vmmsd"
            // polkitd reads actions only from /usr/share/polkit-1/actions, and its rules from
            // /etc/polkit-1/rules.d: the very files scripts/stack.sh installed, which the other
            // real-stack tests rely on. Redirect those two so uninstall cannot remove them.
            let polkitStage = try temporaryDirectory("vmms-polkit")
            defer { try? FileManager.default.removeItem(atPath: polkitStage) }   // after the uninstall below
            let variables = ["PREFIX=/usr/local", "POLKIT_ACTIONDIR=\(polkitStage)/actions",
                             "POLKIT_RULESDIR=\(polkitStage)/rules.d"]
            let layout = expectedLayout(prefix: "/usr/local")
                .filter { !$0.key.hasPrefix("/usr/share/polkit-1/") && !$0.key.hasPrefix("/etc/polkit-1/") }
            let stackFiles = ["/usr/share/dbus-1/system.d/org.example.VMMS1.conf",
                              "/usr/share/polkit-1/actions/org.example.vmms1.policy",
                              "/etc/polkit-1/rules.d/50-org.example.vmms1.rules"]
            let stackFilesBefore = stackFiles.filter { FileManager.default.fileExists(atPath: $0) }
            let hadStateDirectory = FileManager.default.fileExists(atPath: "/var/lib/vmms")
            // Directories install -D creates (/usr/local/libexec, …): uninstall leaves them, as
            // it must for directories it cannot know it owns; the test removes the new, empty ones.
            let newDirectories = Set(layout.keys.flatMap(ancestors)).filter { !FileManager.default.fileExists(atPath: $0) }

            // Never uninstall somebody else's installation.
            let preexisting = layout.keys.filter { $0 != "/etc/vmms/vmmsd.conf" && FileManager.default.fileExists(atPath: $0) }
            guard preexisting.isEmpty else {
                throw TestFailure("vmms is already installed under /usr/local (\(preexisting.sorted())); run `make uninstall` first")
            }
            try await waitUntilNameHasNoOwner(seconds: 60, why: "before installing")

            var failure: (any Error)?
            var activated: pid_t?
            do {
                try await make(["install", "VMMSD_BIN=\(builtVMMSD)", "VMMSCTL_BIN=\(builtVMMSCTL)"] + variables)
                for path in layout.keys {
                    #expect(FileManager.default.fileExists(atPath: path), "make install did not create \(path)")
                }
                #expect(getgrnam("vmms-admins") != nil, "make install did not create the vmms-admins group")

                let activatable = try await runCommand("/usr/bin/busctl", ["--system", "call", "org.freedesktop.DBus",
                    "/org/freedesktop/DBus", "org.freedesktop.DBus", "ListActivatableNames"])
                #expect(activatable.stdout.contains("\"org.example.VMMS1\""),
                        "after ReloadConfig the bus does not list org.example.VMMS1 as activatable: \(activatable.stdout)\(activatable.stderr)")

                // The first call starts the service; nobody but dbus-daemon runs vmmsd.
                let reply = try await runCommand("/usr/bin/busctl", ["--system", "--timeout=60", "get-property", "org.example.VMMS1",
                    "/org/example/VMMS1/Host", "org.example.VMMS1.Host", "Hypervisor"])
                let value = reply.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(reply.status == 0 && (value == "s \"kvm\"" || value == "s \"qemu\""),
                        "Hypervisor via activation: status \(reply.status), \(reply.stdout)\(reply.stderr)")

                // Check that it is really the activated, installed binary that answered.
                let owner = try await ownerPID()
                activated = owner
                let pid = try #require(owner, "org.example.VMMS1 has no owner after the call")
                let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "?"
                #expect(executable == installed, "the owner of org.example.VMMS1 (pid \(pid)) runs \(executable), not \(installed)")
                // dbus-daemon marks the processes it activates with DBUS_STARTER_BUS_TYPE (its
                // babysitter exits early, so the parent pid proves nothing).
                let environment = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
                let variables = environment.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
                #expect(variables.contains("DBUS_STARTER_BUS_TYPE=system"),
                        "vmmsd (pid \(pid)) was not started by D-Bus activation: environment \(variables)")
            } catch {
                failure = error
            }

            // Clean up whatever happened above.
            do {
                var candidate = activated
                if candidate == nil { candidate = try? await ownerPID() }
                if let pid = candidate,
                   let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"),
                   executable.hasPrefix(installed) {   // "… (deleted)" once replaced
                    try await stop(pid)
                }
                try await make(["uninstall"] + variables)
                if !hadStateDirectory, (try? FileManager.default.contentsOfDirectory(atPath: "/var/lib/vmms"))?.isEmpty == true {
                    rmdir("/var/lib/vmms")
                }
                for directory in newDirectories.sorted(by: { $0.count > $1.count }) { rmdir(directory) }  // deepest first; only if empty
                for path in layout.keys where path != "/etc/vmms/vmmsd.conf" {
                    #expect(!FileManager.default.fileExists(atPath: path), "make uninstall left \(path)")
                }
                let stackFilesAfter = stackFiles.filter { FileManager.default.fileExists(atPath: $0) }
                #expect(stackFilesAfter == stackFilesBefore, "scripts/stack.sh's files changed: before \(stackFilesBefore), after \(stackFilesAfter)")
                let activatable = try await runCommand("/usr/bin/busctl", ["--system", "call", "org.freedesktop.DBus",
                    "/org/freedesktop/DBus", "org.freedesktop.DBus", "ListActivatableNames"])
                #expect(!activatable.stdout.contains("\"org.example.VMMS1\""), "org.example.VMMS1 is still activatable after uninstall")
            } catch {
                if failure == nil { failure = error }
            }
            if let failure { throw failure }
        }
    }

    // MARK: helpers

    /// Where each installed file comes from.
    enum Source {
        /// The binary at this path, unchanged.
        case binary(String)
        /// What `vmmsctl ARGUMENT` prints (completion scripts, the man page).
        case generated(String)
        case copy(String)
        /// Copied with @PKGLIBEXECDIR@ replaced; must contain this exact line.
        case substituted(String, String)
    }

    /// Every file `make install PREFIX=prefix` creates (SYSCONFDIR and the polkit action
    /// directory keep their defaults), keyed by absolute path without DESTDIR. PREFIX=/usr is
    /// the Debian packages' layout (debian/): bus policy and polkit rules under /usr/share.
    func expectedLayout(prefix: String) -> [String: Source] {
        let libexec = prefix + "/libexec/vmms"
        // dbus-daemon and polkitd read /usr/share/… and /etc/…, never /usr/local/share/….
        let policyDirectory = prefix == "/usr" ? "/usr/share/dbus-1/system.d" : "/etc/dbus-1/system.d"
        let rulesDirectory = prefix == "/usr" ? "/usr/share/polkit-1/rules.d" : "/etc/polkit-1/rules.d"
        let share = prefix + "/share"
        var layout: [String: Source] = [
            libexec + "/vmmsd": .binary(builtVMMSD),
            prefix + "/bin/vmmsctl": .binary(builtVMMSCTL),
            share + "/bash-completion/completions/vmmsctl": .generated("--generate-completion-script=bash"),
            // Debian's zsh searches vendor-completions under /usr, site-functions under /usr/local.
            share + (prefix == "/usr" ? "/zsh/vendor-completions/_vmmsctl" : "/zsh/site-functions/_vmmsctl"):
                .generated("--generate-completion-script=zsh"),
            share + "/fish/vendor_completions.d/vmmsctl.fish": .generated("--generate-completion-script=fish"),
            share + "/man/man1/vmmsctl.1": .generated("--generate-manual"),
            policyDirectory + "/org.example.VMMS1.conf": .copy("dbus/org.example.VMMS1.conf"),
            prefix + "/share/dbus-1/system-services/org.example.VMMS1.service":
                .substituted("dbus/org.example.VMMS1.service", "Exec=\(libexec)/vmmsd --system"),
            "/usr/share/polkit-1/actions/org.example.vmms1.policy": .copy("polkit/org.example.vmms1.policy"),
            rulesDirectory + "/50-org.example.vmms1.rules": .copy("polkit/50-org.example.vmms1.rules"),
            // Debian 12 (and its debhelper) keeps units in /lib/systemd/system.
            (prefix == "/usr" ? "" : prefix) + "/lib/systemd/system/vmms.service":
                .substituted("systemd/vmms.service", "ExecStart=\(libexec)/vmmsd --system"),
            prefix + "/lib/sysusers.d/vmms.conf": .copy("systemd/vmms-sysusers.conf"),
            "/etc/vmms/vmmsd.conf": .copy("etc/vmmsd.conf"),
        ]
        let interfaces = (try? FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/dbus")) ?? []
        for name in interfaces where name.hasPrefix("org.example.VMMS1.") && name.hasSuffix(".xml") {
            layout[prefix + "/share/dbus-1/interfaces/" + name] = .copy("dbus/" + name)
        }
        // The Cockpit page, where cockpit-bridge looks for packages.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/cockpit")) ?? [] {
            layout[prefix + "/share/cockpit/vmms/" + name] = .copy("cockpit/" + name)
        }
        return layout
    }

    /// Runs make in the repository with only the variables given (none inherited from a
    /// calling make or from the environment), and fails with its output if it fails.
    @discardableResult
    /// `make ARGUMENTS` in the repository; `nice`: at the lowest CPU priority, so a long build
    /// (make deb's release build) does not starve the tests running beside it (the browser).
    func make(_ arguments: [String], nice: Bool = false) async throws -> CommandResult {
        let inherited: Set<String> = ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES", "DESTDIR", "PREFIX", "LIBEXECDIR", "PKGLIBEXECDIR",
            "DATADIR", "SYSCONFDIR", "DBUS_INTERFACESDIR", "DBUS_SYSTEM_SERVICESDIR", "DBUS_POLICYDIR", "POLKIT_ACTIONDIR",
            "POLKIT_RULESDIR", "SYSTEMDUNITDIR", "SYSUSERSDIR", "VMMS_CONFDIR", "VMMSD_BIN", "SWIFT_BUILD_FLAGS",
            "BINDIR", "MANDIR", "BASH_COMPLETIONSDIR", "ZSH_COMPLETIONSDIR", "FISH_COMPLETIONSDIR", "VMMSCTL_BIN"]
        let environment = Self.makeEnvironment.filter { !inherited.contains($0.key) }
        let command = ["/usr/bin/make", "--no-print-directory", "-C", repositoryRoot] + arguments
        let result = nice ? try await runCommand("/usr/bin/nice", ["-n", "19"] + command, environment: environment)
                          : try await runCommand(command[0], Array(command.dropFirst()), environment: environment)
        guard result.status == 0 else {
            throw TestFailure("make \(arguments.joined(separator: " ")) failed (\(result.status)):\n\(result.stdout)\(result.stderr)")
        }
        return result
    }

    /// A fixed SOURCE_DATE_EPOCH, so the man page make installs and the one the test prints
    /// carry the same date.
    static let makeEnvironment = ProcessInfo.processInfo.environment.merging(["SOURCE_DATE_EPOCH": "1767225600"]) { $1 }

    /// "/a/b/c" → ["/a/b", "/a"].
    func ancestors(_ path: String) -> [String] {
        var result: [String] = []
        var url = URL(fileURLWithPath: path).deletingLastPathComponent()
        while url.path != "/" {
            result.append(url.path)
            url.deleteLastPathComponent()
        }
        return result
    }

    /// The built vmmsctl, next to vmmsd.
    var builtVMMSCTL: String { URL(fileURLWithPath: builtVMMSD).deletingLastPathComponent().appendingPathComponent("vmmsctl").path }

    func temporaryDirectory(_ prefix: String) throws -> String {
        let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Every non-directory entry under `root`, as absolute paths relative to it ("/usr/…").
    func filesUnder(_ root: String) throws -> Set<String> {
        var result: Set<String> = []
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw TestFailure("cannot list \(root)") }
        while let relative = walker.nextObject() as? String {
            var info = stat()
            guard lstat(root + "/" + relative, &info) == 0 else { throw TestFailure("lstat \(relative): errno \(errno)") }
            if info.st_mode & S_IFMT != S_IFDIR { result.insert("/" + relative) }
        }
        return result
    }

    func mode(of path: String) throws -> mode_t {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw TestFailure("lstat \(path): errno \(errno)") }
        return info.st_mode & 0o7777
    }

    /// The pid of org.example.VMMS1's owner on the system bus, nil when it has none.
    func ownerPID() async throws -> pid_t? {
        let result = try await runCommand("/usr/bin/busctl", ["--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", "org.example.VMMS1"])
        guard result.status == 0 else { return nil }   // NameHasNoOwner
        // "u 1234"
        return result.stdout.split(separator: " ").last.flatMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    func waitUntilNameHasNoOwner(seconds: Int, why: String) async throws {
        for _ in 0..<(seconds * 10) {
            guard try await ownerPID() != nil else { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let pid = try await ownerPID()
        let command = pid.map { (try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8))?
            .replacingOccurrences(of: "\0", with: " ") ?? "?" } ?? "?"
        throw TestFailure("\(why): org.example.VMMS1 is still owned after \(seconds) s by pid \(pid.map(String.init) ?? "?"): \(command)")
    }

    /// Stops the activated vmmsd (a child of dbus-daemon, which reaps it): SIGTERM, then
    /// SIGKILL after 10 s, and waits until the name is released.
    func stop(_ pid: pid_t) async throws {
        kill(pid, SIGTERM)
        for _ in 0..<100 where try await ownerPID() == pid {
            try await Task.sleep(for: .milliseconds(100))
        }
        if try await ownerPID() == pid {
            kill(pid, SIGKILL)
        }
        try await waitUntilNameHasNoOwner(seconds: 10, why: "after stopping the activated vmmsd (pid \(pid))")
    }
}
