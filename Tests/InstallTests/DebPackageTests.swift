import Foundation
import Glibc
import Testing
import TestSupport

/// `make deb` (debian/, mk/deb.mk): the packages are built once per test run (a release build
/// with the Swift runtime linked in statically: minutes), then checked with lintian and
/// `dpkg-deb`, and, as root on the real stack, installed into this machine with apt, activated
/// on the system bus, upgraded while a VM runs, and purged.
///
/// Why this machine and not a debootstrap chroot: a chroot needs a Debian mirror, a minbase
/// install and then libvirt, polkitd and dbus inside it (several minutes, depending on the
/// mirror), and would test neither the real system bus nor polkitd nor libvirtd. Here the
/// install takes seconds; the price is care with the files scripts/stack.sh put in
/// /usr/share for the other tests (saved and restored) and the bus-name lock held throughout.
@Suite("make deb", .serialized, .enabled(if: DebBuild.toolsAvailable, DebBuild.toolsReason))
struct DebPackageTests {

    @Test func theChangelogAndBothSwiftVersionsAgree() async throws {
        let result = try await InstallTests().make(["deb-version-check"])
        #expect(result.stdout.contains("deb: version \(DebBuild.changelogVersion())"), "\(result.stdout)")

        // And the check can fail: a ServiceVersion that differs from debian/changelog.
        let directory = NSTemporaryDirectory() + "vmms-version-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let wrong = directory + "/HostInterface.swift"
        try "public enum ServiceVersion {\n    public static let current = \"9.9.9\"\n}\n"
            .write(toFile: wrong, atomically: false, encoding: .utf8)
        let refused = try await runCommand("/usr/bin/make", ["--no-print-directory", "-C", repositoryRoot,
            "deb-version-check", "VMMS_SERVICE_VERSION_FILE=\(wrong)"])
        #expect(refused.status != 0, "deb-version-check accepted ServiceVersion 9.9.9: \(refused.stdout)")
        #expect(refused.stderr.contains("'9.9.9'"), "the refusal does not name the version: \(refused.stderr)")
    }

    @Test(.timeLimit(.minutes(45)))
    func lintianReportsNoErrorsAndNoWarnings() async throws {
        let packages = try await DebBuild.shared.packages()
        let result = try await runCommand("/usr/bin/lintian", ["--display-info", "--fail-on", "error", packages.changes])
        print("lintian \(packages.changes):\n\(result.stdout)\(result.stderr)")   // for the test log
        let lines = (result.stdout + result.stderr).split(separator: "\n")
        #expect(result.status == 0, "lintian failed (\(result.status))")
        #expect(!lines.contains { $0.hasPrefix("E:") }, "lintian errors")
        #expect(!lines.contains { $0.hasPrefix("W:") }, "lintian warnings without an override in debian/*.lintian-overrides")
    }

    @Test(.timeLimit(.minutes(45)))
    func thePackagesHoldExactlyTheInstallLayout() async throws {
        let packages = try await DebBuild.shared.packages()
        // dh_compress gzips the manual page.
        let layout = Dictionary(uniqueKeysWithValues: InstallTests().expectedLayout(prefix: "/usr")
            .map { ($0.key.hasPrefix("/usr/share/man/") ? $0.key + ".gz" : $0.key, $0.value) })
        let cockpit = Set(layout.keys.filter { $0.hasPrefix("/usr/share/cockpit/") })
        let docs = { (package: String) in ["/usr/share/doc/\(package)/changelog.gz", "/usr/share/doc/\(package)/copyright"] }
        let expected = [
            packages.vmms: Set(layout.keys).subtracting(cockpit).union(docs("vmms")).union(["/usr/share/lintian/overrides/vmms"]),
            packages.cockpit: cockpit.union(docs("cockpit-vmms")),
        ]
        for (deb, files) in expected {
            let entries = try await contents(of: deb)
            let listed = Set(entries.keys)
            #expect(listed == files, "\(deb): missing \(files.subtracting(listed).sorted()), unexpected \(listed.subtracting(files).sorted())")
            for (path, entry) in entries.sorted(by: { $0.key < $1.key }) {
                let executable = path == "/usr/libexec/vmms/vmmsd" || path == "/usr/bin/vmmsctl"
                #expect(entry.mode == (executable ? "-rwxr-xr-x" : "-rw-r--r--"), "\(path): \(entry.mode)")
                #expect(entry.owner == "root/root", "\(path) belongs to \(entry.owner)")
            }
        }

        let control = try await field(packages.vmms, ["Version", "Architecture", "Depends", "Recommends"])
        #expect(control["Version"] == DebBuild.changelogVersion() && control["Architecture"] == "amd64", "\(control)")
        let depends = control["Depends"] ?? ""
        for library in ["libc6", "libdbus-1-3", "libvirt0", "default-dbus-system-bus | dbus-system-bus"] {
            #expect(depends.contains(library), "Depends lacks \(library): \(depends)")
        }
        #expect(!depends.lowercased().contains("swift"), "Depends names Swift: \(depends)")
        let recommends = Set((control["Recommends"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(recommends == ["libvirt-daemon-system", "polkitd", "dnsmasq-base", "ovmf", "qemu-system-x86"], "\(recommends)")
        let cockpitControl = try await field(packages.cockpit, ["Architecture", "Depends"])
        #expect(cockpitControl["Architecture"] == "all", "\(cockpitControl)")
        #expect(cockpitControl["Depends"]?.contains("cockpit-bridge") == true
                && cockpitControl["Depends"]?.contains("vmms (>= \(DebBuild.changelogVersion()))") == true, "\(cockpitControl)")

        // The config is a conffile; the binaries need no Swift runtime from outside the package.
        let root = NSTemporaryDirectory() + "vmms-deb-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try await check("/usr/bin/dpkg-deb", ["-R", packages.vmms, root])
        let conffiles = try String(contentsOfFile: root + "/DEBIAN/conffiles", encoding: .utf8)
        #expect(conffiles.split(separator: "\n") == ["/etc/vmms/vmmsd.conf"], "conffiles: \(conffiles)")
        for binary in ["/usr/libexec/vmms/vmmsd", "/usr/bin/vmmsctl"] {
            let dynamic = try await check("/usr/bin/readelf", ["-d", root + binary]).stdout
            let needed = dynamic.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            #expect(!needed.isEmpty && !needed.contains { $0.contains("swift") || $0.contains("Foundation") || $0.contains("dispatch") },
                    "\(binary) needs \(needed)")
        }
        let unit = try String(contentsOfFile: root + "/lib/systemd/system/vmms.service", encoding: .utf8)
        #expect(unit.contains("\nExecStart=/usr/libexec/vmms/vmmsd --system\n"))
        let activation = try String(contentsOfFile: root + "/usr/share/dbus-1/system-services/org.example.VMMS1.service", encoding: .utf8)
        #expect(activation.contains("\nExec=/usr/libexec/vmms/vmmsd --system\n"))
        // debhelper's scripts: the group, the unit enabled (started only under systemd).
        let postinst = try String(contentsOfFile: root + "/DEBIAN/postinst", encoding: .utf8)
        #expect(postinst.contains("systemd-sysusers") && postinst.contains("deb-systemd-helper")
                && postinst.contains("[ -d /run/systemd/system ]"), "postinst lacks debhelper's sysusers/systemd snippets")
        let postrm = try String(contentsOfFile: root + "/DEBIAN/postrm", encoding: .utf8)
        #expect(postrm.contains("find /var/lib/vmms") && postrm.contains("rmdir /var/lib/vmms"), "postrm does not clean /var/lib/vmms on purge")
    }

    /// Installs both packages into this machine with apt, checks the service, upgrades to a
    /// higher version while a VM runs, purges, and finds nothing left.
    @Test(.enabled(if: realStackAvailable, realStackReason), .usesLibvirtd, .timeLimit(.minutes(45)))
    func aptInstallsActivatesUpgradesAndPurges() async throws {
        let packages = try await DebBuild.shared.packages()
        let version = DebBuild.changelogVersion()
        try await SystemBusNameLock.with {
            guard try await installedVersion("vmms") == nil, try await installedVersion("cockpit-vmms") == nil else {
                throw TestFailure("vmms is installed from a package already; `apt-get purge vmms cockpit-vmms` first")
            }
            guard !FileManager.default.fileExists(atPath: "/usr/local/libexec/vmms/vmmsd"),
                  !FileManager.default.fileExists(atPath: "/usr/local/libexec/vmmsd") else {
                throw TestFailure("vmms is installed under /usr/local by make install; `make uninstall` first")
            }
            // Other real-stack tests leave /var/lib/vmms/machines (VirtualMachinePath's
            // default) behind; anything else there would be somebody's state that purge removes.
            let state = "/var/lib/vmms", machines = "/var/lib/vmms/machines"
            let stateExisted = FileManager.default.fileExists(atPath: state)
            let stateBefore = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
            let machinesBefore = try? FileManager.default.contentsOfDirectory(atPath: machines)
            guard stateBefore.allSatisfy({ $0 == "machines" }), !FileManager.default.fileExists(atPath: "/etc/vmms") else {
                throw TestFailure("\(state) holds \(stateBefore) or /etc/vmms exists: purging the package would remove them")
            }
            try await InstallTests().waitUntilNameHasNoOwner(seconds: 60, why: "before installing the package")
            // scripts/stack.sh's copies of the policy and actions, which the package replaces
            // and its purge removes; restored afterwards for the other real-stack tests.
            let saved = ["/usr/share/dbus-1/system.d/org.example.VMMS1.conf", "/usr/share/polkit-1/actions/org.example.vmms1.policy"]
                .compactMap { path in FileManager.default.contents(atPath: path).map { (path, $0) } }
            let vm = "vmms-debtest-\(UUID().uuidString.prefix(8).lowercased())"
            let bumped = NSTemporaryDirectory() + "vmms-bumped-\(UUID().uuidString)"

            var failure: (any Error)?
            var installedFiles: [String] = []
            do {
                try await apt(["install", packages.vmms, packages.cockpit])
                #expect(try await installedVersion("vmms") == version)
                #expect(try await installedVersion("cockpit-vmms") == version)
                installedFiles = try await filesOf("vmms") + filesOf("cockpit-vmms")
                for path in installedFiles {
                    var info = stat()
                    #expect(lstat(path, &info) == 0 && info.st_uid == 0 && info.st_gid == 0, "\(path): missing or not root:root")
                }
                #expect(installedFiles.contains("/usr/libexec/vmms/vmmsd") && installedFiles.contains("/usr/share/cockpit/vmms/manifest.json"))
                #expect(getgrnam("vmms-admins") != nil, "postinst did not create vmms-admins (systemd-sysusers)")
                #expect(FileManager.default.fileExists(atPath: "/etc/systemd/system/multi-user.target.wants/vmms.service"),
                        "dh_installsystemd did not enable vmms.service")
                if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
                    let verify = try await runCommand("/usr/bin/systemd-analyze", ["verify", "/lib/systemd/system/vmms.service"])
                    print("systemd-analyze verify vmms.service: \(verify.status)\n\(verify.stdout)\(verify.stderr)")
                    #expect(!verify.stderr.contains("vmms.service:"), "systemd-analyze verify complains about the unit: \(verify.stderr)")
                }
                if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
                    // The unit keeps the exposure score the README states (1.9 OK) or better.
                    let security = try await runCommand("/usr/bin/systemd-analyze", ["security", "--offline=true",
                                                                                       "/lib/systemd/system/vmms.service"])
                    let summary = security.stdout.split(separator: "\n").last { $0.contains("Overall exposure level") } ?? ""
                    print("systemd-analyze security vmms.service: \(summary)")
                    let score = summary.split(separator: " ").compactMap { Double($0) }.first
                    #expect(score.map { $0 <= 1.9 } == true, "systemd-analyze security: \(summary)\(security.stderr)")
                }
                let action = try await runCommand("/usr/bin/pkaction", ["--action-id", "org.example.vmms1.read"])
                #expect(action.status == 0 && action.stdout.contains("org.example.vmms1.read"), "pkaction: \(action.stdout)\(action.stderr)")
                let ctl = try await check("/usr/bin/vmmsctl", ["--version"])
                #expect(ctl.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == version, "vmmsctl --version: \(ctl.stdout)")

                // postinst started the service (D-Bus activation here, no systemd): the bus
                // loaded the package's policy, or vmmsd could not own its name.
                let first = try await servicePID()
                #expect(try await activatable(), "the bus does not list org.example.VMMS1 as activatable after install")
                #expect(try await property("ServiceVersion") == "s \"\(version)\"")

                // A VM runs through the upgrade, untouched; the new vmmsd finds it.
                try await defineAndStart(vm)
                let domainID = try await virsh(["domid", vm]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                try await waitUntilServiceLists(vm)
                try FileManager.default.createDirectory(atPath: bumped, withIntermediateDirectories: true)
                try await check("/usr/bin/dpkg-deb", ["-R", packages.vmms, bumped + "/root"])
                let controlFile = bumped + "/root/DEBIAN/control"
                let control = try String(contentsOfFile: controlFile, encoding: .utf8)
                try control.replacingOccurrences(of: "\nVersion: \(version)\n", with: "\nVersion: \(version)+upgrade1\n")
                    .write(toFile: controlFile, atomically: false, encoding: .utf8)
                let newer = bumped + "/vmms_\(version)+upgrade1_amd64.deb"
                try await check("/usr/bin/dpkg-deb", ["--root-owner-group", "-b", bumped + "/root", newer])
                // An administrator's edit of the conffile survives the upgrade.
                let config = "/etc/vmms/vmmsd.conf"
                let edited = try String(contentsOfFile: config, encoding: .utf8) + "# edited by DebPackageTests\n"
                try edited.write(toFile: config, atomically: false, encoding: .utf8)
                try await apt(["install", newer])
                #expect(try String(contentsOfFile: config, encoding: .utf8) == edited, "the upgrade replaced the edited \(config)")
                #expect(try await installedVersion("vmms") == version + "+upgrade1")
                let second = try await servicePID()
                #expect(second != first, "vmmsd (pid \(first)) was not restarted by the upgrade")
                #expect(try await virsh(["domstate", vm]).stdout.contains("running"), "the VM did not survive the upgrade")
                #expect(try await virsh(["domid", vm]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == domainID,
                        "the VM was restarted by the upgrade")
                try await waitUntilServiceLists(vm)

                // State the service wrote (host settings) goes with purge; VM files stay.
                try FileManager.default.createDirectory(atPath: "\(machines)/\(vm)", withIntermediateDirectories: true)
                try "saved state\n".write(toFile: "\(machines)/\(vm)/\(vm).save", atomically: false, encoding: .utf8)
                let settings = try await runCommand("/usr/bin/busctl", ["--system", "call", "org.example.VMMS1", "/org/example/VMMS1/Host",
                    "org.freedesktop.DBus.Properties", "Set", "ssv", "org.example.VMMS1.Host", "VirtualHardDiskPath", "s", "\(machines)/\(vm)"])
                #expect(settings.status == 0, "setting VirtualHardDiskPath: \(settings.stderr)")
                let written = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
                #expect(written.contains { $0 != "machines" }, "vmmsd wrote no state to \(state): \(written)")

                // remove: the service stops, the programs go, configuration and state stay.
                try await apt(["remove", "vmms", "cockpit-vmms"])
                #expect(try await ownerPID() == nil, "org.example.VMMS1 still has an owner after remove")
                #expect(!FileManager.default.fileExists(atPath: "/usr/libexec/vmms/vmmsd") && !FileManager.default.fileExists(atPath: "/usr/bin/vmmsctl"))
                #expect(FileManager.default.fileExists(atPath: config), "remove deleted the conffile \(config)")
                #expect((try? FileManager.default.contentsOfDirectory(atPath: state)) == written, "remove changed \(state)")
            } catch {
                failure = error
            }

            // Purge, and check the purge; then put back what the other tests need.
            do {
                try await removeDomain(vm)
                try? FileManager.default.removeItem(atPath: bumped)
                try await apt(["purge", "vmms", "cockpit-vmms"])
                let status = try await dpkgStatus("vmms")
                #expect(status == nil, "dpkg still knows vmms after purge: \(status ?? "")")
                for path in installedFiles {
                    #expect(!FileManager.default.fileExists(atPath: path), "purge left \(path)")
                }
                let left = (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []
                #expect(left == ["machines"], "purge left \(left) in \(state) (only the VM files in machines/ may stay)")
                #expect(FileManager.default.fileExists(atPath: "\(machines)/\(vm)/\(vm).save"), "purge deleted a VM's files")
                try? FileManager.default.removeItem(atPath: "\(machines)/\(vm)")
                if machinesBefore == nil { rmdir(machines) }
                if !stateExisted { rmdir(state) }
                for path in ["/etc/vmms", "/usr/libexec/vmms", "/usr/share/cockpit/vmms",
                             "/etc/systemd/system/multi-user.target.wants/vmms.service"] {
                    #expect(!FileManager.default.fileExists(atPath: path), "purge left \(path)")
                }
                #expect(try await ownerPID() == nil, "org.example.VMMS1 still has an owner after purge")
                let stillActivatable = try await activatable()
                #expect(!stillActivatable, "org.example.VMMS1 is still activatable after purge")
            } catch {
                if failure == nil { failure = error }
            }
            for (path, data) in saved where !FileManager.default.fileExists(atPath: path) {
                if !FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o644]) {
                    Issue.record("could not restore scripts/stack.sh's \(path)")
                }
            }
            _ = try? await runCommand("/usr/bin/dbus-send", ["--system", "--print-reply", "--dest=org.freedesktop.DBus",
                                                             "/org/freedesktop/DBus", "org.freedesktop.DBus.ReloadConfig"])
            if let failure { throw failure }
        }
    }

    // MARK: helpers

    struct Entry { var mode: String; var owner: String }

    /// `dpkg-deb -c`: every non-directory, keyed by absolute path.
    func contents(of deb: String) async throws -> [String: Entry] {
        var entries: [String: Entry] = [:]
        for line in try await check("/usr/bin/dpkg-deb", ["-c", deb]).stdout.split(separator: "\n") {
            // "-rw-r--r-- root/root      1234 2026-12-02 06:30 ./usr/share/…"
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6, !fields[0].hasPrefix("d") else { continue }
            let path = String(fields[5].dropFirst())
            entries[path] = Entry(mode: String(fields[0]), owner: String(fields[1]))
        }
        return entries
    }

    func field(_ deb: String, _ names: [String]) async throws -> [String: String] {
        var result: [String: String] = [:]
        for name in names {
            result[name] = try await check("/usr/bin/dpkg-deb", ["-f", deb, name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return result
    }

    @discardableResult
    func check(_ executable: String, _ arguments: [String]) async throws -> CommandResult {
        let result = try await runCommand(executable, arguments)
        guard result.status == 0 else {
            throw TestFailure("\(executable) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stdout)\(result.stderr)")
        }
        return result
    }

    /// apt-get with the machine's other apt users in mind (waits for the dpkg lock).
    func apt(_ arguments: [String]) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["DEBIAN_FRONTEND"] = "noninteractive"
        let result = try await runCommand("/usr/bin/apt-get", ["-y", "-q", "-o", "DPkg::Lock::Timeout=300", "--no-install-recommends"]
                                          + arguments, environment: environment)
        print("apt-get \(arguments.joined(separator: " ")):\n\(result.stdout)\(result.stderr)")
        guard result.status == 0 else { throw TestFailure("apt-get \(arguments.joined(separator: " ")) failed (\(result.status))") }
    }

    func installedVersion(_ package: String) async throws -> String? {
        let result = try await runCommand("/usr/bin/dpkg-query", ["-W", "-f=${Status}|${Version}", package])
        let parts = result.stdout.split(separator: "|", omittingEmptySubsequences: false)
        guard result.status == 0, parts.count == 2, parts[0] == "install ok installed" else { return nil }
        return String(parts[1])
    }

    /// dpkg's status line for `package`, nil when dpkg has no record (purged).
    func dpkgStatus(_ package: String) async throws -> String? {
        let result = try await runCommand("/usr/bin/dpkg-query", ["-W", "-f=${Status}", package])
        return result.status == 0 && !result.stdout.contains("not-installed") ? result.stdout : nil
    }

    /// `dpkg -L`, files and symlinks only (directories are shared with other packages).
    func filesOf(_ package: String) async throws -> [String] {
        try await check("/usr/bin/dpkg", ["-L", package]).stdout.split(separator: "\n").map(String.init).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }

    func ownerPID() async throws -> pid_t? { try await InstallTests().ownerPID() }

    /// The pid of the packaged vmmsd that owns org.example.VMMS1.
    func servicePID() async throws -> pid_t {
        let pid = try #require(try await ownerPID(), "org.example.VMMS1 has no owner: postinst did not start the service")
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? "?"
        #expect(executable == "/usr/libexec/vmms/vmmsd", "the owner of org.example.VMMS1 (pid \(pid)) runs \(executable)")
        return pid
    }

    func activatable() async throws -> Bool {
        try await check("/usr/bin/busctl", ["--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus", "ListActivatableNames"]).stdout.contains("\"org.example.VMMS1\"")
    }

    func property(_ name: String) async throws -> String {
        try await check("/usr/bin/busctl", ["--system", "--timeout=60", "get-property", "org.example.VMMS1",
            "/org/example/VMMS1/Host", "org.example.VMMS1.Host", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits (bounded) until GetManagedObjects, as root, names the VM.
    func waitUntilServiceLists(_ vm: String) async throws {
        var last = ""
        for _ in 0..<100 {
            let objects = try await runCommand("/usr/bin/busctl", ["--system", "--timeout=30", "call", "org.example.VMMS1",
                "/org/example/VMMS1", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"])
            if objects.status == 0, objects.stdout.contains("\"\(vm)\"") { return }
            last = objects.stdout.prefix(300) + objects.stderr
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("the packaged vmmsd does not list \(vm) after 20 s: \(last)")
    }

    func virsh(_ arguments: [String]) async throws -> CommandResult {
        try await runCommand("/usr/bin/virsh", ["-c", "qemu:///system"] + arguments)
    }

    /// A diskless TCG domain: QEMU runs (SeaBIOS finds nothing to boot), which is all the
    /// upgrade needs.
    func defineAndStart(_ name: String) async throws {
        let xml = """
            <domain type='qemu'><name>\(name)</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
            <os><type arch='x86_64' machine='pc'>hvm</type></os><devices><graphics type='vnc' autoport='yes' listen='127.0.0.1'/></devices></domain>
            """
        let file = NSTemporaryDirectory() + "\(name).xml"
        try xml.write(toFile: file, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let defined = try await virsh(["define", file])
        guard defined.status == 0 else { throw TestFailure("virsh define: \(defined.stderr)") }
        let started = try await virsh(["start", name])
        guard started.status == 0 else { throw TestFailure("virsh start \(name): \(started.stderr)") }
    }

    func removeDomain(_ name: String) async throws {
        _ = try await virsh(["destroy", name])
        _ = try await virsh(["undefine", name])
    }
}

/// The packages, built by `make deb` once per test process into a temporary directory and
/// shared by every test of `DebPackageTests`.
actor DebBuild {
    static let shared = DebBuild()

    struct Packages: Sendable {
        var vmms: String
        var cockpit: String
        var changes: String
    }

    static let tools = ["/usr/bin/dpkg-buildpackage", "/usr/bin/dh", "/usr/bin/lintian", "/usr/bin/fakeroot", "/usr/bin/dpkg-parsechangelog"]
    static var toolsAvailable: Bool { tools.allSatisfy { FileManager.default.isExecutableFile(atPath: $0) } }
    static let toolsReason: Comment = "needs debhelper, dpkg-dev, lintian and fakeroot (make deb-deps installs them)"

    /// The top entry's version in debian/changelog, read directly.
    static func changelogVersion() -> String {
        let text = (try? String(contentsOfFile: repositoryRoot + "/debian/changelog", encoding: .utf8)) ?? ""
        guard let open = text.firstIndex(of: "("), let close = text.firstIndex(of: ")") else { return "?" }
        return String(text[text.index(after: open)..<close])
    }

    private var build: Task<Packages, any Error>?

    func packages() async throws -> Packages {
        if build == nil {
            build = Task {
                let dist = NSTemporaryDirectory() + "vmms-dist-\(UUID().uuidString)"
                let started = ContinuousClock.now
                let output = try await InstallTests().make(["deb", "DEB_DIST=\(dist)"], nice: true)
                print("make deb: \(ContinuousClock.now - started), end of its output:\n\(output.stdout.suffix(4000))\(output.stderr.suffix(2000))")
                let version = Self.changelogVersion()
                let packages = Packages(vmms: "\(dist)/vmms_\(version)_amd64.deb", cockpit: "\(dist)/cockpit-vmms_\(version)_all.deb",
                                        changes: "\(dist)/vmms_\(version)_amd64.changes")
                for file in [packages.vmms, packages.cockpit, packages.changes] where !FileManager.default.fileExists(atPath: file) {
                    throw TestFailure("make deb did not produce \(file)")
                }
                return packages
            }
        }
        return try await build!.value
    }
}
