import Libvirt
import Testing

/// A network without `<ip>` and without `<forward>` (Hyper-V's Private switch).
func privateNetworkXML(name: String, bridge: String, uuid: String? = nil) -> String {
    let uuidElement = uuid.map { "<uuid>\($0)</uuid>" } ?? ""
    return "<network><name>\(name)</name>\(uuidElement)<bridge name='\(bridge)' stp='off' delay='0'/></network>"
}

@Suite("Networks")
struct NetworkTests {
    let connection: LibvirtConnection
    let uuid = "8d2b3c1e-2b1a-4f8e-9d0c-0000000000a1"

    init() throws {
        try LibvirtEventLoop.start()
        connection = try openTestDriver()
    }

    func defineLab() throws -> LibvirtNetwork {
        try connection.defineNetwork(xml: privateNetworkXML(name: "lab", bridge: "vmlt0", uuid: uuid))
    }

    @Test func definedNetworkIsPersistentInactiveAndFoundByNameAndUUID() throws {
        let network = try defineLab()
        #expect(try network.name == "lab")
        #expect(try network.uuid == uuid)
        #expect(try network.isPersistent)
        #expect(try !network.isActive)
        #expect(try connection.network(name: "lab").uuid == uuid)
        #expect(try connection.network(uuid: uuid.uppercased()).name == "lab")
    }

    @Test func createStartsAndDestroyStops() throws {
        let network = try defineLab()
        try network.create()
        #expect(try network.isActive)
        try network.destroy()
        #expect(try !network.isActive)
    }

    @Test func bridgeNameAndXMLComeFromTheDefinition() throws {
        let network = try defineLab()
        #expect(try network.bridgeName() == "vmlt0")
        // The inactive variant is checked on qemu:///system (the test driver refuses the flag).
        #expect(try network.xmlDesc().contains("<bridge name='vmlt0'"))
    }

    @Test func autostartRoundTrips() throws {
        let network = try defineLab()
        #expect(try !network.autostart)
        try network.setAutostart(true)
        #expect(try network.autostart)
    }

    @Test func listFiltersByActivityAndPersistence() throws {
        _ = try defineLab()
        let transient = try connection.createNetwork(xml: privateNetworkXML(name: "temp", bridge: "vmlt1"))
        #expect(try !transient.isPersistent)
        #expect(try Set(connection.allNetworks().map { try $0.name }) == ["lab", "temp"])
        #expect(try connection.allNetworks(flags: .inactive).map { try $0.name } == ["lab"])
        #expect(try connection.allNetworks(flags: .transient).map { try $0.name } == ["temp"])
        #expect(try connection.allNetworks(flags: .active).map { try $0.name } == ["temp"])
        #expect(try connection.allNetworks(flags: .persistent).map { try $0.name } == ["lab"])
    }

    @Test func undefinedNetworkIsGone() throws {
        try defineLab().undefine()
        let error = #expect(throws: LibvirtError.self) { try connection.network(name: "lab") }
        #expect(error?.code == .noNetwork)
        #expect(error?.isNoNetwork == true)
        #expect(error?.function == "virNetworkLookupByName")
    }

    @Test func destroyingATransientNetworkRemovesIt() throws {
        try connection.createNetwork(xml: privateNetworkXML(name: "temp", bridge: "vmlt1")).destroy()
        #expect(throws: LibvirtError.self) { try connection.network(name: "temp") }
    }

    @Test func invalidXMLIsRefused() throws {
        let error = #expect(throws: LibvirtError.self) { try connection.defineNetwork(xml: "<network>") }
        #expect(error?.function == "virNetworkDefineXMLFlags")
        #expect(error?.code == .xmlDetail)
    }

    @Test func leasesAreUnsupportedOnTheTestDriver() throws {
        let network = try defineLab()
        try network.create()
        let error = #expect(throws: LibvirtError.self) { try network.dhcpLeases() }
        #expect(error?.code == .noSupport)
        #expect(error?.function == "virNetworkGetDHCPLeases")
    }

    @Test func lifecycleEventsArriveWithUUIDNameAndTypedKind() async throws {
        let recorder = Recorder<NetworkEvent>()
        let registration = try connection.registerNetworkEvents { recorder.record($0) }
        defer { registration.deregister() }

        let network = try defineLab()
        try network.create()
        try network.destroy()
        try network.undefine()

        let kinds: [NetworkLifecycleEvent] = [.defined, .started, .stopped, .undefined]
        #expect(await recorder.wait { $0.compactMap(\.lifecycleEvent) == kinds }, "\(recorder.all)")
        #expect(recorder.all.allSatisfy { $0.uuid == uuid && $0.name == "lab" })
    }

    @Test func deregisteredNetworkHandlerReceivesNothing() async throws {
        let stopped = Recorder<NetworkEvent>()
        let live = Recorder<NetworkEvent>()
        try connection.registerNetworkEvents { stopped.record($0) }.deregister()
        let registration = try connection.registerNetworkEvents { live.record($0) }
        defer { registration.deregister() }

        _ = try defineLab()

        #expect(await live.wait { $0.contains { $0.lifecycleEvent == .defined } })
        #expect(stopped.all.isEmpty)
    }
}

@Suite("Network lookups by error")
struct NetworkErrorTests {
    @Test func lookupOfUnknownUUIDIsNoNetwork() throws {
        let error = #expect(throws: LibvirtError.self) {
            try openTestDriver().network(uuid: "00000000-0000-0000-0000-0000000000aa")
        }
        #expect(error?.code == .noNetwork)
        #expect(error?.function == "virNetworkLookupByUUIDString")
    }
}
