import CLibvirt
import Libvirt
import Testing

@Suite("LibvirtConnection")
struct ConnectionTests {
    @Test func openTestDriverReportsURIAndType() throws {
        let connection = try LibvirtConnection(uri: "test:///default")
        #expect(try connection.uri == "test:///default")
        #expect(try connection.type() == "TEST")
        #expect(connection.isAlive)
    }

    @Test func hostnameIsNotEmpty() throws {
        #expect(try !openTestDriver().hostname().isEmpty)
    }

    @Test func versionsAreMajorMinorMicro() throws {
        let connection = try openTestDriver()
        for version in [try connection.libraryVersion(), try connection.hypervisorVersion()] {
            let parts = version.split(separator: ".")
            #expect(parts.count == 3, "\(version)")
            #expect(parts.allSatisfy { UInt($0) != nil }, "\(version)")
        }
        #expect(try connection.libraryVersion().hasPrefix("9."))
    }

    @Test func nodeInfoReportsTestDriverHardware() throws {
        let info = try openTestDriver().nodeInfo()
        // The test driver's fixed fake host: 16 CPUs at 1400 MHz, 3 GiB, "i686".
        #expect(info.cpus == 16)
        #expect(info.mhz == 1400)
        #expect(info.memoryBytes == 3 * 1024 * 1024 * 1024)
        #expect(info.cpuModel == "i686")
        #expect(info.numaNodes * info.socketsPerNode * info.coresPerSocket * info.threadsPerCore == info.cpus)
    }

    @Test func capabilitiesXMLIsACapabilitiesDocument() throws {
        #expect(try openTestDriver().capabilitiesXML().contains("<capabilities>"))
    }

    @Test func domainCapabilitiesAnswerOrReportUnsupported() throws {
        let connection = try openTestDriver()
        do {
            #expect(try connection.domainCapabilitiesXML().contains("<domainCapabilities"))
        } catch let error as LibvirtError {
            #expect(error.isNotSupported, "\(error)")
            #expect(error.function == "virConnectGetDomainCapabilities")
        }
    }

    @Test func listsTheDefaultRunningDomain() throws {
        let domains = try openTestDriver().allDomains()
        #expect(try domains.map { try $0.name } == ["test"])
        #expect(try domains.first?.state().state == .running)
    }

    @Test func listFiltersByActivity() throws {
        let connection = try openTestDriver()
        _ = try connection.defineDomain(xml: minimalDomainXML(name: "off"))
        #expect(try connection.allDomains(flags: .inactive).map { try $0.name } == ["off"])
        #expect(try connection.allDomains(flags: .active).map { try $0.name } == ["test"])
        #expect(try connection.allDomains().count == 2)
    }

    @Test func lookupOfUnknownUUIDThrowsNoDomainNamingTheFunction() throws {
        let connection = try openTestDriver()
        let error = #expect(throws: LibvirtError.self) {
            try connection.domain(uuid: "00000000-0000-0000-0000-0000000000aa")
        }
        #expect(error?.code == .noDomain)
        #expect(error?.isNoDomain == true)
        #expect(error?.function == "virDomainLookupByUUIDString")
        #expect(error?.isConnectionBroken == false)
        #expect(error?.description.hasPrefix("virDomainLookupByUUIDString: ") == true)
    }

    @Test func lookupOfUnknownNameThrowsNoDomain() throws {
        let connection = try openTestDriver()
        let error = #expect(throws: LibvirtError.self) { try connection.domain(name: "missing") }
        #expect(error?.isNoDomain == true)
        #expect(error?.function == "virDomainLookupByName")
    }

    @Test func lookupByUUIDAcceptsUppercase() throws {
        let connection = try openTestDriver()
        let uuid = try connection.domain(name: "test").uuid
        #expect(try connection.domain(uuid: uuid.uppercased()).name == "test")
    }

    @Test func invalidURIThrows() {
        let error = #expect(throws: LibvirtError.self) { try LibvirtConnection(uri: "nosuchdriver:///x") }
        #expect(error?.function == "virConnectOpen")
    }

    @Test func onCloseCanBeRegisteredAndReplaced() throws {
        try LibvirtEventLoop.start()
        let connection = try openTestDriver()
        try connection.onClose { _ in }
        try connection.onClose { _ in }
    }

    @Test func keepAliveIsUnsupportedOnTheTestDriver() throws {
        try LibvirtEventLoop.start()
        let error = #expect(throws: LibvirtError.self) {
            try openTestDriver().setKeepAlive(interval: 5, count: 3)
        }
        #expect(error?.function == "virConnectSetKeepAlive")
    }
}
