import DBus
import Foundation
import Glibc
import Spawn
import Synchronization
import TestSupport
import Testing

// The parts a browser test of the Cockpit page stands on, each undone when the test ends
// (also when it fails): a vmmsd on the system bus, passwords for the test users, the page
// installed where their cockpit-bridge finds it, a cockpit-ws on a free loopback port, and a
// headless Chromium driven through Tests/CockpitTests/cockpit_browser.py.

/// Debian's cockpit-ws / cockpit-bridge, chromium, chromium-driver and python3-selenium
/// (scripts/stack.sh installs them) on top of the real stack.
let cockpitStackAvailable: Bool = realStackAvailable && [
    CockpitWS.executable, "/usr/bin/cockpit-bridge", "/usr/bin/chromium", "/usr/bin/chromedriver",
    "/usr/lib/python3/dist-packages/selenium", Browser.python,
].allSatisfy { FileManager.default.fileExists(atPath: $0) }
let cockpitStackReason: Comment = "needs the real stack (root, VMMS_INTEGRATION=1) and scripts/stack.sh's cockpit-ws, chromium, chromium-driver, python3-selenium"

/// Whether systemd-logind owns its bus name: only then can cockpit-bridge register Cockpit's
/// polkit agent for a session (CI containers have no logind).
let logindRuns: Bool = {
    guard realStackAvailable, let result = try? runCommandSync("/usr/bin/busctl", ["--system", "call", "org.freedesktop.DBus",
        "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s", "org.freedesktop.login1"]) else { return false }
    return result.stdout.contains("true")
}()

/// Everything a test gets; `with` builds it and tears it down.
struct CockpitStack {
    let client: RootClient
    let passwords: [String: String]
    let web: CockpitWS
    /// Replaced when a test restarts vmmsd.
    let service: ServiceHolder

    /// The page on its own (not inside the shell's iframe), as the tests drive it.
    static let pagePath = "/cockpit/@localhost/vmms/index.html"

    /// `environment`: added to vmmsd's (test knobs such as VMMSD_TEST_COPY_BYTES_PER_SECOND).
    static func with<T: Sendable>(users: [String] = ["alice", "bob"], environment: [String: String] = [:],
                                  _ body: (CockpitStack) async throws -> T) async throws -> T {
        try await SystemBusNameLock.with {
            try await waitUntilTheBusNameIsFree()
            let service = ServiceHolder(try await SystemVMMSD(environment: environment))
            defer { service.stop() }
            let bus = try DBusConnection(bus: .system)
            defer { bus.close() }
            let client = RootClient(bus: bus)
            defer { client.deleteCreated() }
            let accounts = try await TestPasswords(users: users)
            defer { accounts.restore() }
            let package = try PackageInstall(users: users)
            defer { package.remove() }
            let web = try await CockpitWS()
            defer { web.stop() }
            return try await body(CockpitStack(client: client, passwords: accounts.passwords, web: web, service: service))
        }
    }

    /// A browser logged in as `user` with the page open and loaded; closed after `body`.
    func browser<T: Sendable>(as user: String, _ body: (Browser) async throws -> T) async throws -> T {
        let browser = try await Browser(base: web.base)
        defer { browser.close() }
        do {
            try await browser.login(user, passwords[user] ?? "")
            try await browser.get(Self.pagePath)
            // cockpit-ws sends a request for a package the session's bridge has not listed yet
            // to the shell's default page (/system); seen in full `make test` runs under load.
            // Then ask for the page once more, now that the bridge is up.
            if (try? await browser.wait("location.pathname.includes('/vmms/')", timeout: 10)) == nil {
                try await browser.get(Self.pagePath)
            }
            try await browser.waitForPage()
            return try await body(browser)
        } catch {
            // What the page and the service were doing, for a failure that only shows under load.
            let page = (try? await browser.eval("""
                JSON.stringify({status: document.documentElement.dataset.vmmsStatus, problem: window.vmms?.service.problem,
                                vms: window.vmms?.service.vms.size, list: document.documentElement.dataset.vmmsList,
                                owner: window.vmms?.service.owner, url: location.href, since: Math.round(performance.now())})
                """))?.string ?? "?"
            throw TestFailure("\(error)\npage: \(page)\n\(browser.diagnostics)\n\(web.log)\nvmmsd log (end):\n\(service.log.suffix(3000))")
        }
    }
}

/// Holding the system-bus lock should mean nobody owns org.example.VMMS1, but a vmmsd that a
/// test elsewhere left behind (a cancelled test, an activated one) may still be exiting: give it
/// a minute, then say who it is instead of failing with "name already owned".
func waitUntilTheBusNameIsFree() async throws {
    var owner = ""
    for _ in 0..<600 {
        let reply = try await runCommand("/usr/bin/busctl", ["--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                             "org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", "org.example.VMMS1"])
        guard reply.status == 0 else { return }   // NameHasNoOwner
        owner = reply.stdout.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "?"
        try await Task.sleep(for: .milliseconds(100))
    }
    let command = (try? String(contentsOfFile: "/proc/\(owner)/cmdline", encoding: .utf8))?.replacingOccurrences(of: "\0", with: " ") ?? "?"
    throw TestFailure("org.example.VMMS1 is owned by pid \(owner) (\(command)) although this test holds the system-bus lock")
}

/// The running vmmsd; tests that restart it swap it here so that teardown stops the last one.
final class ServiceHolder: Sendable {
    private let current: Mutex<SystemVMMSD?>
    init(_ service: SystemVMMSD) { current = Mutex(service) }
    func stop() { current.withLock { $0?.stop(); $0 = nil } }
    func restart() async throws {
        stop()
        let started = try await SystemVMMSD()
        current.withLock { $0 = started }
    }
    var log: String { current.withLock { $0?.log ?? "" } }
}

// MARK: - vmms as root

/// Creates and removes the tests' VMs through the service, as root.
final class RootClient: Sendable {
    let bus: DBusConnection
    private let created = Mutex<[String]>([])
    static let host: ObjectPath = "/org/example/VMMS1/Host"

    init(bus: DBusConnection) { self.bus = bus }

    func call(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue] = []) async throws -> [DBusValue] {
        try await bus.call(destination: "org.example.VMMS1", path: path, interface: interface, member: member, body, timeout: .seconds(120))
    }

    /// A small diskless generation-1 VM (TCG-friendly), deleted when the test ends.
    @discardableResult
    func createVM(_ name: String, _ extra: [String: DBusValue] = [:]) async throws -> ObjectPath {
        var settings: [String: DBusValue] = ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(64 << 20)]
        settings.merge(extra) { $1 }
        let reply = try await call(Self.host, "org.example.VMMS1.Host", "CreateVM", [.string(name), .vardict(settings)])
        guard let path = reply.first?.objectPath else { throw TestFailure("CreateVM \(name) returned \(reply)") }
        track(name)
        return path
    }

    func vm(_ path: ObjectPath, _ member: String, _ body: [DBusValue] = []) async throws {
        _ = try await call(path, "org.example.VMMS1.VM", member, body)
    }

    func property(_ path: ObjectPath, _ interface: String, _ name: String) async throws -> DBusValue? {
        try await call(path, "org.freedesktop.DBus.Properties", "Get", [.string(interface), .string(name)]).first?.variant
    }

    /// Also for VMs the page or virsh created: removed at the end if they still exist.
    func track(_ name: String) { created.withLock { $0.append(name) } }

    /// Runs at teardown, synchronously: virsh removes what is left, with saved state and disks.
    func deleteCreated() {
        for name in created.withLock({ $0 }) {
            _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "destroy", name])
            _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "undefine", name, "--managed-save", "--nvram",
                                                       "--remove-all-storage"])
        }
    }
}

enum Names {
    static func unique(_ prefix: String) -> String { "ck-\(prefix)-\(UUID().uuidString.prefix(4).lowercased())" }
}

/// `virsh -c qemu:///system`, to check libvirt agrees with the page.
func virsh(_ arguments: [String]) async throws -> CommandResult {
    try await runCommand("/usr/bin/virsh", ["-c", "qemu:///system"] + arguments)
}

/// Defines a minimal domain behind the service's back (the caller tracks it for removal).
func defineWithVirsh(_ name: String) async throws {
    let xml = NSTemporaryDirectory() + "vmms-\(name).xml"
    try "<domain type='qemu'><name>\(name)</name><memory unit='MiB'>32</memory><os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
        .write(toFile: xml, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: xml) }
    let defined = try await virsh(["define", xml])
    guard defined.status == 0 else { throw TestFailure("virsh define \(name): \(defined.stderr)") }
}

func domstate(_ name: String) async throws -> String {
    try await virsh(["domstate", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

// MARK: - users

/// Random passwords for the test users (scripts/stack.sh creates them locked); the previous
/// password field is put back afterwards.
struct TestPasswords {
    let passwords: [String: String]
    private let previous: [String: String]

    init(users: [String]) async throws {
        var passwords: [String: String] = [:]
        var previous: [String: String] = [:]
        for user in users {
            let entry = try await runCommand("/usr/bin/getent", ["shadow", user])
            let fields = entry.stdout.split(separator: ":", omittingEmptySubsequences: false)
            guard entry.status == 0, fields.count > 1 else { throw TestFailure("no shadow entry for \(user): \(entry.stderr)") }
            previous[user] = String(fields[1])
            passwords[user] = "ck-" + UUID().uuidString
        }
        let input = NSTemporaryDirectory() + "vmms-chpasswd-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: input, contents: Data(passwords.map { "\($0.key):\($0.value)\n" }.joined().utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw TestFailure("cannot write \(input)")
        }
        defer { try? FileManager.default.removeItem(atPath: input) }
        let result = try runToCompletion("/usr/sbin/chpasswd", [], stdinPath: input)
        guard result.status == 0 else { throw TestFailure("chpasswd failed: \(result.stderr)") }
        self.passwords = passwords
        self.previous = previous
    }

    func restore() {
        for (user, field) in previous {
            _ = try? runCommandSync("/usr/sbin/usermod", ["-p", field, user])
        }
    }
}

// MARK: - the package

/// Copies cockpit/ to ~USER/.local/share/cockpit/vmms, where that user's cockpit-bridge
/// finds packages, and removes it (and the directories it created) afterwards.
final class PackageInstall: Sendable {
    private let installed: [(directory: String, created: [String])]

    init(users: [String]) throws {
        let source = repositoryRoot + "/cockpit"
        var installed: [(String, [String])] = []
        do {
            for user in users {
                guard let entry = getpwnam(user) else { throw TestFailure("no user \(user)") }
                let home = String(cString: entry.pointee.pw_dir)
                let (uid, gid) = (entry.pointee.pw_uid, entry.pointee.pw_gid)
                let target = home + "/.local/share/cockpit/vmms"
                guard !FileManager.default.fileExists(atPath: target) else {
                    throw TestFailure("\(target) exists already (a developer's copy?); remove it to run the Cockpit tests")
                }
                var created: [String] = []
                for directory in [home + "/.local", home + "/.local/share", home + "/.local/share/cockpit"]
                where !FileManager.default.fileExists(atPath: directory) {
                    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
                    chown(directory, uid, gid)
                    created.append(directory)
                }
                try FileManager.default.copyItem(atPath: source, toPath: target)
                chown(target, uid, gid)
                for file in try FileManager.default.contentsOfDirectory(atPath: target) { chown(target + "/" + file, uid, gid) }
                installed.append((target, created))
            }
        } catch {
            Self.remove(installed)
            throw error
        }
        self.installed = installed
    }

    func remove() { Self.remove(installed) }

    private static func remove(_ installed: [(directory: String, created: [String])]) {
        for (directory, created) in installed {
            try? FileManager.default.removeItem(atPath: directory)
            for parent in created.reversed() { rmdir(parent) }   // only if empty
        }
    }
}

// MARK: - cockpit-ws

/// `cockpit-ws --no-tls` on 127.0.0.1 and a free port; logins go through PAM and
/// cockpit-session as for a real admin.
final class CockpitWS: Sendable {
    static let executable = "/usr/lib/cockpit/cockpit-ws"
    let port: UInt16
    let process: ChildProcess
    let logPath: String
    var base: String { "http://127.0.0.1:\(port)" }

    init() async throws {
        port = try freeLoopbackPort()
        logPath = NSTemporaryDirectory() + "vmms-cockpit-ws-\(UUID().uuidString).log"
        var environment = ProcessInfo.processInfo.environment
        environment["LANG"] = "C.UTF-8"   // en_US.UTF-8 may not be generated on CI images
        environment["LC_ALL"] = nil
        process = try ChildProcess(Self.executable, ["--no-tls", "--address", "127.0.0.1", "--port", String(port)],
                                   environment: environment, stdoutPath: logPath, stderrPath: logPath)
        for _ in 0..<200 {
            if canConnect(port: port) { return }
            if process.exitStatusIfExited() != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop()
        throw TestFailure("cockpit-ws did not listen on 127.0.0.1:\(port): \(log)")
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)).map { "cockpit-ws log:\n\($0)" } ?? "" }

    /// SIGTERM, SIGKILL after 10 s. Its cockpit-session children end with their connection.
    func stop() {
        stopChild(process, "cockpit-ws")
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// SIGTERM, then SIGKILL after 10 s, and reaps.
func stopChild(_ process: ChildProcess, _ name: String) {
    if process.exitStatusIfExited() != nil { return }
    process.signal(SIGTERM)
    for _ in 0..<400 {
        if process.exitStatusIfExited() != nil { return }
        usleep(25_000)
    }
    process.signal(SIGKILL)
    process.wait()
    Issue.record("\(name) (pid \(process.pid)) did not exit within 10 s of SIGTERM")
}

func canConnect(port: UInt16) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: port.bigEndian, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
