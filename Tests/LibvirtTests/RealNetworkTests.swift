import Foundation
import Libvirt
import TestSupport
import Testing

/// Networks on the real libvirtd: bridges really made, dnsmasq really leasing. Only `lt-`
/// networks on `vmlt…` bridges, without forwarding; each is destroyed and undefined in a defer.
@Suite("Networks on qemu:///system", .usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason),
       .timeLimit(.minutes(15)))
struct RealNetworkTests {
    let connection: LibvirtConnection

    init() throws {
        connection = try openSystem()
    }

    @Test func privateNetworkMakesItsBridgeAndRemovesItWhenStopped() async throws {
        let name = uniqueName("net")
        let bridge = uniqueBridgeName()
        defer { removeNetwork(named: name, on: connection) }
        let network = try connection.defineNetwork(xml: privateNetworkXML(name: name, bridge: bridge), validate: true)
        try network.create()
        #expect(try network.bridgeName() == bridge)
        #expect(FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"))
        #expect(try network.xmlDesc(inactive: true).contains("<name>\(name)</name>"))
        #expect(try connection.allNetworks(flags: [.active, .persistent]).contains { try $0.name == name })
        try network.destroy()
        #expect(!FileManager.default.fileExists(atPath: "/sys/class/net/\(bridge)"))
    }

    @Test func lifecycleEventsArriveForANetworkChangedElsewhere() async throws {
        let name = uniqueName("net")
        defer { removeNetwork(named: name, on: connection) }
        let recorder = Recorder<NetworkEvent>()
        let registration = try connection.registerNetworkEvents { event in
            if event.name == name { recorder.record(event) }
        }
        defer { registration.deregister() }

        // Another client (virsh) makes the changes; libvirtd announces them to us.
        let file = try ScratchDirectory()
        defer { file.remove() }
        try privateNetworkXML(name: name, bridge: uniqueBridgeName())
            .write(toFile: file.path("net.xml"), atomically: true, encoding: .utf8)
        for command in [["net-define", file.path("net.xml")], ["net-start", name], ["net-destroy", name], ["net-undefine", name]] {
            try await run("/usr/bin/virsh", ["-q", "-c", "qemu:///system"] + command)
        }

        let kinds: [NetworkLifecycleEvent] = [.defined, .started, .stopped, .undefined]
        #expect(await recorder.wait(timeout: .seconds(10)) { $0.compactMap(\.lifecycleEvent) == kinds },
                "\(recorder.all)")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/sbin/dnsmasq"), "needs dnsmasq-base"))
    func aGuestBootingFromTheNetworkGetsALeaseThatIsListed() async throws {
        let octet = try await unusedSubnet(in: 1...127)
        let name = uniqueName("net")
        let domainName = uniqueName("dom")
        let bridge = uniqueBridgeName()
        let directory = try ScratchDirectory()
        defer {
            removeDomain(named: domainName, on: connection)
            removeNetwork(named: name, on: connection)
            directory.remove()
        }
        // An Internal switch: host address and DHCP, no forwarding.
        let network = try connection.createNetwork(xml: """
            <network><name>\(name)</name><bridge name='\(bridge)' stp='off' delay='0'/>
            <ip address='10.251.\(octet).1' netmask='255.255.255.0'>
            <dhcp><range start='10.251.\(octet).100' end='10.251.\(octet).120'/></dhcp></ip></network>
            """)
        #expect(try network.dhcpLeases().isEmpty)

        try await makeQcow2(directory.path("disk.qcow2"))
        let domain = try connection.createDomain(xml: tinyDomainXML(
            name: domainName, disk: directory.path("disk.qcow2"), network: name, bootFromNetwork: true))
        let mac = try #require(try domain.xml().firstMatch(of: /<mac address='([0-9a-f:]+)'/)?.1).lowercased()

        // iPXE asks for an address a few seconds after boot, under TCG.
        #expect(try await poll(timeout: .seconds(90)) { try !network.dhcpLeases(mac: mac).isEmpty })
        let lease = try #require(try network.dhcpLeases().first { $0.mac == mac })
        #expect(lease.interface == bridge)
        #expect(lease.type == .ipv4)
        #expect(lease.prefix == 24)
        #expect(lease.ipAddress.hasPrefix("10.251.\(octet)."))
        #expect(lease.expiryTime > Int64(Date().timeIntervalSince1970))
        #expect(try network.dhcpLeases(mac: "52:54:00:00:00:01").isEmpty)
    }
}
