import Foundation

/// The migration note's second host on this machine (../shared/notes/migration.md): a network
/// namespace reached over a veth, and in it a libvirtd with its own files (bind-mounted over
/// libvirt's directories in a private mount namespace, its own host_uuid) listening on TCP.
/// Used by LibvirtTests (libvirt's migration alone) and IntegrationTests (vmms's Move).
public enum SecondLibvirtd {
    /// Makes `namespace` and the veth `link` (peer `link`+"p" inside): `hostAddress/24` here,
    /// `address/24` there. Then checks that each of `routed` leaves through `link` and nowhere
    /// else, so no test traffic can take the default route.
    public static func makeLink(namespace: String, link: String, hostAddress: String, address: String,
                                routed: [String]) async throws {
        let ip = "/usr/sbin/ip"
        try await run(ip, ["netns", "add", namespace])
        try await run(ip, ["link", "add", link, "type", "veth", "peer", "name", link + "p"])
        try await run(ip, ["link", "set", link + "p", "netns", namespace])
        try await run(ip, ["addr", "add", "\(hostAddress)/24", "dev", link])
        try await run(ip, ["link", "set", link, "up"])
        try await run(ip, ["-n", namespace, "addr", "add", "\(address)/24", "dev", link + "p"])
        try await run(ip, ["-n", namespace, "link", "set", link + "p", "up"])
        try await run(ip, ["-n", namespace, "link", "set", "lo", "up"])
        for target in routed {
            let route = try await run(ip, ["route", "get", target])
            guard route.contains("dev \(link) ") else { throw TestFailure("\(target) is not routed via \(link): \(route)") }
        }
    }

    /// Fills `root` with libvirt's directories and a copy of /etc/libvirt/*.conf set to listen
    /// on `address` without TLS or authentication (plus `extraConfig` lines), then starts that
    /// libvirtd inside `namespace`. `extraMounts` (a directory under `root`, the path it covers)
    /// are bound there too, e.g. an empty folder over this host's disk folder.
    public static func start(namespace: String, root: String, address: String, extraConfig: String = "",
                             extraMounts: [(String, String)] = []) async throws {
        let mounts = [("run", "/run/libvirt"), ("lib", "/var/lib/libvirt"), ("etc", "/etc/libvirt"),
                      ("cache", "/var/cache/libvirt"), ("log", "/var/log/libvirt")] + extraMounts
        for (sub, _) in mounts {
            try FileManager.default.createDirectory(atPath: "\(root)/\(sub)", withIntermediateDirectories: true)
        }
        for file in try FileManager.default.contentsOfDirectory(atPath: "/etc/libvirt") where file.hasSuffix(".conf") {
            try FileManager.default.copyItem(atPath: "/etc/libvirt/\(file)", toPath: "\(root)/etc/\(file)")
        }
        try append("\(root)/etc/libvirtd.conf", """

            listen_tls = 0
            listen_tcp = 1
            listen_addr = "\(address)"
            auth_tcp = "none"
            host_uuid = "\(UUID().uuidString.lowercased())"
            \(extraConfig)

            """)
        try append("\(root)/etc/qemu.conf", "\nstdio_handler = \"file\"\ncgroup_controllers = [ ]\n")
        let binds = mounts.map { "mkdir -p '\($0.1)' && mount --bind \(root)/\($0.0) '\($0.1)'" }.joined(separator: " && ")
        try await run("/usr/sbin/ip", ["netns", "exec", namespace, "unshare", "-m", "--propagation", "private", "sh", "-c",
                                       "\(binds) && exec /usr/sbin/libvirtd -d --listen --pid-file \(root)/libvirtd.pid"])
    }

    @discardableResult
    private static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let result = try await runCommand(executable, arguments)
        guard result.status == 0 else { throw TestFailure("\(executable) \(arguments.joined(separator: " ")): \(result.stdout)\(result.stderr)") }
        return result.stdout
    }

    private static func append(_ path: String, _ text: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
    }
}
