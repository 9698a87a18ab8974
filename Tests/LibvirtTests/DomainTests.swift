import Libvirt
import Testing

@Suite("LibvirtDomain")
struct DomainTests {
    let connection: LibvirtConnection
    let uuid = "6f1c8c1e-2b1a-4f8e-9d0c-000000000001"

    init() throws {
        connection = try openTestDriver()
    }

    /// Defines the minimal test domain "x" with a fixed UUID.
    func defineX() throws -> LibvirtDomain {
        try connection.defineDomain(xml: minimalDomainXML(name: "x", uuid: uuid))
    }

    @Test func definedDomainIsPersistentAndOff() throws {
        let domain = try defineX()
        #expect(try domain.uuid == uuid)
        #expect(try domain.name == "x")
        #expect(try domain.isPersistent)
        #expect(try !domain.isActive)
        #expect(try domain.state().state == .shutoff)
        #expect(domain.id == nil)
    }

    @Test func uuidIsLowercaseCanonical() throws {
        let domain = try connection.defineDomain(xml: minimalDomainXML(name: "x", uuid: uuid.uppercased()))
        #expect(try domain.uuid == uuid)
    }

    @Test func startRunsTheDomain() throws {
        let domain = try defineX()
        try domain.start()
        #expect(try domain.isActive)
        #expect(try domain.state().state == .running)
        #expect(domain.id != nil)
    }

    @Test func startPausesAndResumesOnTestDriver() throws {
        let domain = try defineX()
        try domain.start()
        try domain.suspend()
        #expect(try domain.state().state == .paused)
        try domain.resume()
        #expect(try domain.state().state == .running)
    }

    @Test func destroyStopsARunningDomain() throws {
        let domain = try defineX()
        try domain.start()
        try domain.destroy()
        #expect(try domain.state().state == .shutoff)
    }

    @Test func gracefulDestroyStopsARunningDomain() throws {
        let domain = try connection.domain(name: "test")
        try domain.destroy(graceful: true)
        #expect(try !domain.isActive)
    }

    @Test func shutdownStopsTheTestDriverDomain() throws {
        let domain = try connection.domain(name: "test")
        try domain.shutdown()
        #expect(try domain.state().state == .shutoff)
    }

    @Test func rebootAndResetKeepTheDomainRunning() throws {
        let domain = try connection.domain(name: "test")
        try domain.reboot()
        try domain.reset()
        #expect(try domain.state().state == .running)
    }

    @Test func destroyingAStoppedDomainIsOperationInvalid() throws {
        let domain = try defineX()
        let error = #expect(throws: LibvirtError.self) { try domain.destroy() }
        #expect(error?.isOperationInvalid == true)
        #expect(error?.function == "virDomainDestroy")
    }

    @Test func suspendingAStoppedDomainFailsNamingTheFunction() throws {
        let domain = try defineX()
        let error = #expect(throws: LibvirtError.self) { try domain.suspend() }
        // The test driver reports this one as an internal error, QEMU as operation invalid.
        #expect(error?.function == "virDomainSuspend")
    }

    @Test func managedSaveStopsDomainAndStartRestoresIt() throws {
        let domain = try defineX()
        try domain.start()
        try domain.managedSave()
        #expect(try domain.hasManagedSaveImage)
        #expect(try domain.state().state == .shutoff)
        try domain.start()
        #expect(try domain.state().state == .running)
        #expect(try !domain.hasManagedSaveImage)
    }

    @Test func managedSaveRemoveDiscardsTheImage() throws {
        let domain = try defineX()
        try domain.start()
        try domain.managedSave()
        try domain.managedSaveRemove()
        #expect(try !domain.hasManagedSaveImage)
    }

    @Test func renameWhileOffKeepsUUID() throws {
        let domain = try defineX()
        try domain.rename(to: "y")
        #expect(try domain.name == "y")
        #expect(try connection.domain(name: "y").uuid == uuid)
        #expect(throws: LibvirtError.self) { try connection.domain(name: "x") }
    }

    @Test func renameWhileRunningIsOperationInvalid() throws {
        let domain = try defineX()
        try domain.start()
        let error = #expect(throws: LibvirtError.self) { try domain.rename(to: "y") }
        #expect(error?.isOperationInvalid == true)
    }

    @Test func undefineRemovesTheDomain() throws {
        let domain = try defineX()
        try domain.undefine()
        let error = #expect(throws: LibvirtError.self) { try connection.domain(uuid: uuid) }
        #expect(error?.isNoDomain == true)
    }

    @Test func undefineWithManagedSaveFlagRemovesSavedDomain() throws {
        let domain = try defineX()
        try domain.start()
        try domain.managedSave()
        try domain.undefine(flags: [.managedSave])
        #expect(throws: LibvirtError.self) { try connection.domain(uuid: uuid) }
    }

    @Test func createDomainIsTransientAndRunning() throws {
        let domain = try connection.createDomain(xml: minimalDomainXML(name: "t"))
        #expect(try !domain.isPersistent)
        #expect(try domain.isActive)
        try domain.destroy()
        #expect(throws: LibvirtError.self) { try connection.domain(name: "t") }
    }

    @Test func redefiningTheSameNameWithAnotherUUIDFails() throws {
        _ = try defineX()
        #expect(throws: LibvirtError.self) {
            try connection.defineDomain(xml: minimalDomainXML(name: "x", uuid: "6f1c8c1e-2b1a-4f8e-9d0c-000000000002"))
        }
    }

    @Test func infoReportsMemoryAndVcpus() throws {
        let info = try defineX().info()
        #expect(info.state == .shutoff)
        #expect(info.maxMemKiB == 65536)
        #expect(info.memoryKiB == 65536)
        #expect(info.vcpus == 1)
    }

    @Test func inactiveXMLContainsNameAndUUID() throws {
        let xml = try defineX().xml(flags: .inactive)
        #expect(xml.contains("<name>x</name>"))
        #expect(xml.contains("<uuid>\(uuid)</uuid>"))
    }

    @Test func autostartRoundTrips() throws {
        let domain = try defineX()
        #expect(try !domain.autostart)
        try domain.setAutostart(true)
        #expect(try domain.autostart)
    }

    @Test func setVcpusInConfigChangesInactiveDefinition() throws {
        let domain = try defineX()
        try domain.setVcpus(count: 4, flags: [.config, .maximum])
        try domain.setVcpus(count: 2, flags: .config)
        #expect(try domain.info().vcpus == 2)
    }

    @Test func setMemoryChangesCurrentMemory() throws {
        let domain = try connection.domain(name: "test")
        let max = try domain.info().maxMemKiB
        try domain.setMemory(kib: max / 2, flags: .live)
        #expect(try domain.info().memoryKiB == max / 2)
    }

    @Test func setMaxMemoryChangesMaximum() throws {
        let domain = try defineX()
        try domain.setMaxMemory(kib: 131072)
        #expect(try domain.info().maxMemKiB == 131072)
    }

    @Test func missingDescriptionIsNil() throws {
        #expect(try defineX().metadata(type: .description, flags: .config) == nil)
    }

    @Test func descriptionMetadataRoundTrips() throws {
        let domain = try defineX()
        try domain.setMetadata(type: .description, value: "notes <&> here", flags: .config)
        #expect(try domain.metadata(type: .description, flags: .config) == "notes <&> here")
        try domain.setMetadata(type: .description, value: nil, flags: .config)
        #expect(try domain.metadata(type: .description, flags: .config) == nil)
    }

    @Test func elementMetadataRoundTripsInItsNamespace() throws {
        let domain = try defineX()
        let uri = "http://example.org/vmms/1"
        try domain.setMetadata(type: .element, value: "<vm generation='2'/>", key: "vmms", uri: uri, flags: .config)
        let element = try domain.metadata(type: .element, uri: uri, flags: .config)
        #expect(element?.contains("generation=\"2\"") == true)
        #expect(try domain.metadata(type: .element, uri: "http://example.org/other", flags: .config) == nil)
    }

    @Test func memoryStatsOfRunningDomainIncludeBalloon() throws {
        let stats = try connection.domain(name: "test").memoryStats()
        #expect(stats.raw.isEmpty == (stats.actualBalloonKiB == nil && stats.rssKiB == nil))
    }
}
