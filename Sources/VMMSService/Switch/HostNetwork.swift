import Foundation
import Logging
import Spawn
import VMMSModel

/// The host's network interfaces and routes as the kernel shows them (`/sys/class/net`,
/// `/proc/net/route`, `ip -o addr`), and the few changes vmms makes itself with `ip`: the
/// bridge of an External switch around its NIC, and putting orphaned VM taps back into a
/// switch's bridge. Everything blocking runs on `BlockingIO`, never on the cooperative pool.
enum HostNetwork {
    struct CommandFailure: Error, CustomStringConvertible {
        let command: String
        let output: String
        var description: String { "\(command) failed: \(output)" }
    }

    static let sysNet = "/sys/class/net"

    /// The interfaces and IPv4 routes of the main table.
    static func facts() async throws -> HostNetworkFacts {
        try await BlockingIO.run { try readFacts() }
    }

    static func readFacts() throws -> HostNetworkFacts {
        let files = FileManager.default
        let names = (try? files.contentsOfDirectory(atPath: sysNet)) ?? []
        let addresses = try ipv4Addresses()
        let links = names.map { name in
            HostNetworkFacts.Link(name: name, isBridge: files.fileExists(atPath: "\(sysNet)/\(name)/bridge"),
                                  isLoopback: name == "lo" || readTrimmed("\(sysNet)/\(name)/type") == "772",
                                  master: master(of: name), addresses: addresses[name] ?? [])
        }
        return HostNetworkFacts(links: links, routes: routes())
    }

    /// The bridge (or bond) `name` is enslaved to.
    static func master(of name: String) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(sysNet)/\(name)/master")).map { ($0 as NSString).lastPathComponent }
    }

    static func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: "\(sysNet)/\(name)") }

    static func isBridge(_ name: String) -> Bool { FileManager.default.fileExists(atPath: "\(sysNet)/\(name)/bridge") }

    /// `/proc/net/route`: interface, destination and mask as little-endian hex.
    static func routes() -> [HostNetworkFacts.Route] {
        guard let text = try? String(contentsOfFile: "/proc/net/route", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 8, let destination = UInt32(f[1], radix: 16), let mask = UInt32(f[7], radix: 16) else { return nil }
            // The kernel prints the network-order word as a native integer.
            return HostNetworkFacts.Route(destination: IPv4CIDR(address: UInt32(bigEndian: destination), prefix: mask.nonzeroBitCount),
                                          device: String(f[0]))
        }
    }

    /// IPv4 addresses per interface, from `ip -o -4 addr show`.
    static func ipv4Addresses() throws -> [String: [String]] {
        let output = try ip(["-o", "-4", "addr", "show"])
        var result: [String: [String]] = [:]
        for line in output.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 4, let inet = f.firstIndex(of: "inet"), inet + 1 < f.count else { continue }
            let name = f[1].hasSuffix(":") ? String(f[1].dropLast()) : String(f[1])
            result[name.split(separator: "@").first.map(String.init) ?? name, default: []].append(String(f[inet + 1]))
        }
        return result
    }

    // MARK: Changes

    /// Makes bridge `bridge` with `nic` in it, both up (External switches).
    static func createBridge(_ bridge: String, around nic: String) async throws {
        try await BlockingIO.run {
            try ip(["link", "add", "name", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
            do {
                try ip(["link", "set", "dev", nic, "master", bridge])
                try ip(["link", "set", "dev", nic, "up"])
                try ip(["link", "set", "dev", bridge, "up"])
            } catch {
                _ = try? ip(["link", "del", "dev", bridge])
                throw error
            }
        }
    }

    /// Deletes bridge `bridge` (its NIC is released); nothing when it is not there or no bridge.
    static func deleteBridge(_ bridge: String) throws {
        guard isBridge(bridge) else { return }
        try ip(["link", "del", "dev", bridge, "type", "bridge"])
    }

    /// Puts a VM's tap back into the switch's bridge, up.
    static func plug(tap: String, into bridge: String) throws {
        try ip(["link", "set", "dev", tap, "master", bridge])
        try ip(["link", "set", "dev", tap, "up"])
    }

    @discardableResult
    static func ip(_ arguments: [String]) throws -> String {
        let executable = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "ip"
        let result = try runToCompletion(executable, arguments)
        guard result.status == 0 else {
            throw CommandFailure(command: "ip " + arguments.joined(separator: " "),
                                 output: result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.stdout
    }

    private static func readTrimmed(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: Start-up check

    /// What libvirt's network driver needs and Debian only recommends: dnsmasq for switches
    /// with a host address (DHCP), iptables for NAT. Logged once at start, with the remedy.
    static func warnAboutMissingTools(_ logger: Logger) {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for problem in missingTools(in: path.split(separator: ":").map(String.init)) { logger.warning("\(problem)") }
    }

    /// One message per tool of the network driver found in none of `directories`.
    static func missingTools(in directories: [String]) -> [String] {
        let tools = [
            ("dnsmasq", "Internal and NAT switches cannot start (libvirt: \"Unable to find 'dnsmasq' binary\"); install the Debian package dnsmasq-base"),
            ("iptables", "NAT switches cannot start; install the Debian package iptables"),
        ]
        return tools.compactMap { tool, consequence in
            directories.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") } ? nil : "\(tool) is not installed: \(consequence)"
        }
    }
}
