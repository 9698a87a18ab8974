import Foundation
import Testing
import VMMSModel

/// Switch validation, addressing and the network XML, without libvirt.
struct SwitchModelTests {
    static func spec(_ name: String = "lab", _ type: String, _ options: [String: SettingValue] = [:]) throws(SwitchSpecError) -> SwitchSpec {
        try SwitchSpec(validating: name, type: type, options: options)
    }

    /// The refusal `body` threw; nil when it threw none (any other error fails the test).
    static func refusal(_ body: () throws -> Void) -> SwitchSpecError? {
        do { try body() } catch let error as SwitchSpecError { return error } catch { Issue.record(error) }
        return nil
    }

    static let host = HostNetworkFacts(
        links: [.init(name: "lo", isLoopback: true, addresses: ["127.0.0.1/8"]),
                .init(name: "eth0", addresses: ["192.0.2.2/24"]),
                .init(name: "veth-lan"), .init(name: "veth-used", master: "br-other"),
                .init(name: "br-other", isBridge: true), .init(name: "virbr0", isBridge: true)],
        routes: [.init(destination: IPv4CIDR("0.0.0.0/0")!, device: "eth0"),
                 .init(destination: IPv4CIDR("192.0.2.0/24")!, device: "eth0")])
    static let others = [SwitchRecord(name: "default", uuid: "u1", type: .nat, bridge: "virbr0", active: true, address: "192.168.122.1/24"),
                         SwitchRecord(name: "ext", uuid: "u2", type: .external, bridge: "br-other", interface: "veth-used", managedBridge: true)]

    // MARK: CIDR

    @Test(arguments: [("10.0.5.1/24", true), ("10.0.5.1", false), ("10.0.5.1/33", false), ("256.1.1.1/24", false),
                      ("10.0.05.1/24", false), ("10.0.5.1/-1", false), ("a.b.c.d/8", false), ("10.0.5.1/", false)])
    func cidrParsesOnlyDottedQuadsWithPrefix(text: String, valid: Bool) {
        #expect((IPv4CIDR(text) != nil) == valid, "\(text)")
    }

    @Test func overlapIsDecidedByTheShorterPrefix() throws {
        let a = try #require(IPv4CIDR("10.0.0.1/16"))
        #expect(a.overlaps(try #require(IPv4CIDR("10.0.200.1/24"))))
        #expect(!a.overlaps(try #require(IPv4CIDR("10.1.0.1/24"))))
        #expect(try #require(IPv4CIDR("192.168.1.1/24")).overlaps(try #require(IPv4CIDR("192.168.1.200/30"))))
        #expect(!(try #require(IPv4CIDR("192.168.1.1/25"))).overlaps(try #require(IPv4CIDR("192.168.1.129/25"))))
    }

    @Test func dhcpRangeIsTheLargerSideOfTheHostAddress() throws {
        let first = try #require(IPv4CIDR("10.0.5.1/24")).dhcpRange
        #expect(first.map { IPv4CIDR.dotted($0.start) } == "10.0.5.2" && first.map { IPv4CIDR.dotted($0.end) } == "10.0.5.254")
        let last = try #require(IPv4CIDR("10.0.5.254/24")).dhcpRange
        #expect(last.map { IPv4CIDR.dotted($0.start) } == "10.0.5.1" && last.map { IPv4CIDR.dotted($0.end) } == "10.0.5.253")
        #expect(try #require(IPv4CIDR("10.0.5.1/31")).dhcpRange == nil)
        #expect(IPv4CIDR(address: "10.1.2.3", netmask: "255.255.0.0")?.description == "10.1.2.3/16")
        #expect(IPv4CIDR(address: "10.1.2.3", netmask: "255.0.255.0") == nil)
    }

    // MARK: Options on their own

    @Test(arguments: ["", "-lab", ".lab", "a/b", "lab\u{0}", String(repeating: "x", count: 65), "läb"])
    func badSwitchNamesAreRefused(name: String) {
        #expect(Self.refusal { _ = try Self.spec(name, "Private") } != nil, "\(name)")
    }

    @Test func typesAndTheirOptionsAreChecked() {
        #expect(Self.refusal { _ = try Self.spec("lab", "Bridge") }?.message.contains("Private, Internal, External, NAT") == true)
        #expect(Self.refusal { _ = try Self.spec("lab", "private") } != nil, "types are case-sensitive")
        #expect(Self.refusal { _ = try Self.spec("lab", "Routed") } != nil, "Routed is read-only")
        #expect(Self.refusal { _ = try Self.spec("lab", "Private", ["Address": .string("10.0.5.1/24")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "External") }?.message.contains("Interface") == true)
        #expect(Self.refusal { _ = try Self.spec("lab", "Internal", ["Interface": .string("eth0")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "Internal", ["Address": .string("10.0.5.0/24")]) }?.message.contains("network's own") == true)
        #expect(Self.refusal { _ = try Self.spec("lab", "Internal", ["Address": .string("10.0.5.255/24")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "NAT", ["Address": .string("127.0.0.2/24")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "NAT", ["Address": .string("10.0.0.1/30")]) } != nil, "too small for DHCP")
        #expect(Self.refusal { _ = try Self.spec("lab", "NAT", ["Address": .uint32(1)]) }?.message.contains("type s") == true)
        #expect(Self.refusal { _ = try Self.spec("lab", "NAT", ["Colour": .string("red")]) }?.message.contains("no option Colour") == true)
        #expect(Self.refusal { _ = try Self.spec("lab", "Private", ["Bridge": .string("this-name-is-too-long")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "Private", ["Bridge": .string("-br")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "External", ["Interface": .string("eth 0")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "External", ["Interface": .string("eth0"), "Mode": .string("Macvtap"), "Bridge": .string("b")]) } != nil)
        #expect(Self.refusal { _ = try Self.spec("lab", "External", ["Interface": .string("eth0"), "Mode": .string("VEPA")]) } != nil)
    }

    // MARK: Against the host and the other switches

    @Test func anAddressOverlappingASwitchOrAHostRouteIsRefusedNamingIt() throws {
        let clash = Self.refusal { _ = try Self.spec("lab", "Internal", ["Address": .string("192.168.122.50/24")]).resolve(switches: Self.others, host: Self.host) }
        #expect(clash == .invalid("Address 192.168.122.50/24 overlaps 192.168.122.0/24 (the switch default); choose an address in another range"))
        let route = Self.refusal { _ = try Self.spec("lab", "NAT", ["Address": .string("192.0.0.1/16")]).resolve(switches: Self.others, host: Self.host) }
        #expect(route?.message.contains("host route via eth0") == true, "\(String(describing: route))")
        // The default route overlaps everything and is no reason to refuse.
        let fine = try Self.spec("lab", "NAT", ["Address": .string("10.77.0.1/24")]).resolve(switches: Self.others, host: Self.host)
        #expect(fine.address?.description == "10.77.0.1/24")
        // An address on a link that is down (no route) counts too.
        let down = HostNetworkFacts(links: [.init(name: "veth9", addresses: ["10.88.0.1/30"])])
        let onLink = Self.refusal { _ = try Self.spec("lab", "NAT", ["Address": .string("10.88.0.2/24")]).resolve(switches: [], host: down) }
        #expect(onLink?.message.contains("the address 10.88.0.1/30 of veth9") == true, "\(String(describing: onLink))")
    }

    @Test func aMissingAddressIsTheFirstFreeRange() throws {
        let busy = Self.others + [SwitchRecord(name: "a", uuid: "u3", type: .internal, address: "192.168.100.1/24")]
        let spec = try Self.spec("lab", "Internal").resolve(switches: busy, host: Self.host)
        #expect(spec.address?.description == "192.168.101.1/24")
    }

    @Test func takenNamesAndBridgesAreAlreadyExists() {
        #expect(Self.refusal { _ = try Self.spec("default", "Private").resolve(switches: Self.others, host: Self.host) } == .taken("a switch named default already exists"))
        #expect(Self.refusal { _ = try Self.spec("lab", "Private", ["Bridge": .string("virbr0")]).resolve(switches: Self.others, host: Self.host) }?.message.contains("switch default") == true)
        #expect(Self.refusal { _ = try Self.spec("lab", "Private", ["Bridge": .string("eth0")]).resolve(switches: Self.others, host: Self.host) } == .taken("the host already has a network interface named eth0; choose another Bridge"))
    }

    @Test func anExternalNICMustExistBeFreeAndCarryNoAddress() throws {
        func external(_ nic: String, _ extra: [String: SettingValue] = [:]) -> SwitchSpecError? {
            Self.refusal { _ = try Self.spec("lab", "External", ["Interface": .string(nic)].merging(extra) { $1 }).resolve(switches: Self.others, host: Self.host) }
        }
        #expect(external("nope0")?.message.contains("no network interface nope0") == true)
        #expect(external("lo")?.message.contains("loopback") == true)
        #expect(external("br-other")?.message.contains("a bridge") == true)
        #expect(external("veth-used")?.message.contains("enslaved to br-other of the switch ext") == true)
        #expect(external("eth0")?.message.contains("has addresses (192.0.2.2/24)") == true)
        #expect(external("eth0", ["Mode": .string("Macvtap")]) == nil, "macvtap leaves the NIC's addresses alone")
        let spec = try Self.spec("lab", "External", ["Interface": .string("veth-lan")]).resolve(switches: Self.others, host: Self.host)
        #expect(spec.bridge == "vmbr0" && spec.mode == .bridge)
    }

    // MARK: Network XML

    @Test func everyCreatableTypeReadsBackAsItself() throws {
        let host = HostNetworkFacts(links: [.init(name: "veth-lan")])
        let cases: [(SwitchSpec, SwitchRecord)] = [
            (try Self.spec("p", "Private", ["Bridge": .string("vbr-p")]), SwitchRecord(name: "p", uuid: "", type: .private, bridge: "vbr-p")),
            (try Self.spec("i", "Internal", ["Address": .string("10.9.0.1/24")]), SwitchRecord(name: "i", uuid: "", type: .internal, address: "10.9.0.1/24")),
            (try Self.spec("n", "NAT", ["Address": .string("10.9.1.1/16")]), SwitchRecord(name: "n", uuid: "", type: .nat, address: "10.9.1.1/16")),
            (try Self.spec("e", "External", ["Interface": .string("veth-lan")]).resolve(switches: [], host: host),
             SwitchRecord(name: "e", uuid: "", type: .external, bridge: "vmbr0", interface: "veth-lan", managedBridge: true)),
            (try Self.spec("m", "External", ["Interface": .string("veth-lan"), "Mode": .string("Macvtap")]),
             SwitchRecord(name: "m", uuid: "", type: .external, interface: "veth-lan")),
        ]
        for (spec, expected) in cases {
            let xml = NetworkXML.build(spec)
            #expect(try NetworkXML.parse(xml) == expected, "\(xml)")
        }
        let internalXML = NetworkXML.build(try Self.spec("i", "Internal", ["Address": .string("10.9.0.1/24")]))
        #expect(internalXML.contains("<range start='10.9.0.2' end='10.9.0.254'/>") && !internalXML.contains("<forward"))
    }

    @Test func libvirtsDefaultNetworkIsANATSwitch() throws {
        let xml = """
        <network>
          <name>default</name>
          <uuid>0B8FBD1E-1111-2222-3333-444455556666</uuid>
          <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
          <bridge name='virbr0' stp='on' delay='0'/>
          <mac address='52:54:00:0a:0b:0c'/>
          <ip address='192.168.122.1' netmask='255.255.255.0'><dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip>
          <ip family='ipv6' address='fd00::1' prefix='64'/>
        </network>
        """
        #expect(try NetworkXML.parse(xml) == SwitchRecord(name: "default", uuid: "0b8fbd1e-1111-2222-3333-444455556666", type: .nat,
                                                           bridge: "virbr0", address: "192.168.122.1/24"))
        let routed = try NetworkXML.parse("<network><name>r</name><forward mode='route' dev='eth1'/><ip address='10.1.0.1' prefix='24'/></network>")
        #expect(routed.type == .routed && routed.address == "10.1.0.1/24")
        let hostdev = try NetworkXML.parse("<network><name>h</name><forward mode='hostdev'><pf dev='enp3s0'/></forward></network>")
        #expect(hostdev.type == .external && hostdev.interface == "enp3s0")
        #expect(throws: DomainXMLError.self) { try NetworkXML.parse("<domain/>") }
    }

    // MARK: Adapters in domain XML

    @Test func adaptersAreAddedAndRemovedByMACAndRootPortsCounted() throws {
        let xml = """
        <domain type='qemu'><name>g2</name><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os><devices>
          <controller type='pci' index='0' model='pcie-root'/>
          <controller type='pci' index='1' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/></controller>
          <controller type='pci' index='2' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x1'/></controller>
          <controller type='pci' index='3' model='pcie-root-port'><address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/></controller>
          <interface type='network'><mac address='02:56:4D:00:00:01'/><source network='lab' bridge='virbr5'/><target dev='vnet7'/><model type='virtio'/><alias name='net0'/>
            <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></interface>
          <memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x03' slot='0x00' function='0x0'/></memballoon>
        </devices></domain>
        """
        let editor = try DomainEditor(xml: xml)
        #expect(editor.isQ35)
        #expect(editor.freeRootPorts == 1)
        #expect(editor.alias(ofInterfaceMAC: "02:56:4d:00:00:01") == "net0")
        #expect(editor.liveInterfaces.first?.tap == "vnet7" && editor.liveInterfaces.first?.network == "lab")
        try editor.addRootPorts(2)
        #expect(editor.freeRootPorts == 3)
        try editor.addInterface(mac: "02:56:4d:00:00:02", network: "nat & co")
        var parsed = try DomainXML.parse(editor.xml)
        #expect(parsed.networkAdapters.map(\.mac) == ["02:56:4d:00:00:01", "02:56:4d:00:00:02"])
        #expect(parsed.networkAdapters.last?.network == "nat & co" && parsed.networkAdapters.last?.model == "virtio")
        #expect(editor.removeInterface(mac: "02:56:4D:00:00:01"))
        #expect(!editor.removeInterface(mac: "02:56:4d:00:00:09"))
        parsed = try DomainXML.parse(editor.xml)
        #expect(parsed.networkAdapters.map(\.mac) == ["02:56:4d:00:00:02"])
    }

    @Test func macsComeFromTheRangeAndAvoidTakenOnes() {
        var values: [UInt32] = [0x000001, 0x000001, 0xABCDEF]
        let mac = MACAddressRule.allocate(avoiding: ["02:56:4d:00:00:01"]) { values.removeFirst() }
        #expect(mac == "02:56:4d:ab:cd:ef")
        #expect(MACAddressRule.normalize("02:56:4D:AB:CD:EF") == "02:56:4d:ab:cd:ef")
        #expect(MACAddressRule.normalize("02:56:4d:ab:cd") == nil && MACAddressRule.normalize("02-56-4d-ab-cd-ef") == nil)
        #expect(MACAddressRule.allocate(avoiding: ["02:56:4d:00:00:00"]) { 0 } == nil, "gives up instead of looping")
    }

    @Test func theModelFollowsListingsAndSingleReadings() {
        let changes = ChangeLog()
        let model = SwitchModel { changes.append($0.count) }
        model.applyListing(Self.others)
        #expect(model.all.map(\.name) == ["default", "ext"])
        var stopped = Self.others[0]
        stopped.active = false
        model.apply(name: "default", stopped)
        #expect(model.record(named: "default")?.active == false)
        model.applyListing([stopped])
        #expect(model.all.map(\.name) == ["default"])
        model.apply(name: "default", nil)
        #expect(model.all.isEmpty)
        #expect(changes.count == 4)
    }
}

final class ChangeLog: @unchecked Sendable {
    private let lock = NSLock()
    private var batches = 0
    func append(_ n: Int) { lock.lock(); batches += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return batches }
}
