import Foundation
import Libvirt
import Testing

/// Snapshots, save images, statistics and sizes on the test driver (what it implements; the
/// rest runs on qemu:///system in RealDomainTests).
@Suite("Domain snapshots, save images and statistics")
struct DomainJobTests {
    let connection: LibvirtConnection

    init() throws {
        connection = try openTestDriver()
    }

    @Test func blockInfoReportsSizesOfANamedDisk() throws {
        let info = try connection.domain(name: "test").blockInfo(disk: "vda")
        #expect(info.capacityBytes > 0)
        #expect(info.physicalBytes >= info.capacityBytes / 2)
        let error = #expect(throws: LibvirtError.self) { try connection.domain(name: "test").blockInfo(disk: "sdz") }
        #expect(error?.function == "virDomainGetBlockInfo")
    }

    @Test func snapshotIsCreatedListedFoundAndDeleted() throws {
        let domain = try connection.domain(name: "test")
        let snapshot = try domain.createSnapshot(xml: "<domainsnapshot><name>before</name></domainsnapshot>")
        #expect(try snapshot.name == "before")
        #expect(try snapshot.xmlDesc().contains("<name>before</name>"))
        #expect(try domain.allSnapshots().map { try $0.name } == ["before"])
        #expect(try domain.snapshot(name: "before").name == "before")
        try snapshot.revert()
        try snapshot.delete()
        let error = #expect(throws: LibvirtError.self) { try domain.snapshot(name: "before") }
        #expect(error?.code == .noDomainSnapshot)
    }

    @Test func snapshotFlagsTheDriverLacksAreRefusedNamingTheFunction() throws {
        let error = #expect(throws: LibvirtError.self) {
            try connection.domain(name: "test").createSnapshot(xml: "<domainsnapshot/>", flags: [.diskOnly, .noMetadata])
        }
        #expect(error?.code == .invalidArg)
        #expect(error?.function == "virDomainSnapshotCreateXML")
    }

    @Test func saveStopsTheDomainAndRestoreBringsItBackWithEditedXML() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = directory.appendingPathComponent("test.save").path
        let domain = try connection.domain(name: "test")
        try domain.save(to: image)
        #expect(try domain.state().state == .shutoff)

        let stored = try connection.saveImageXML(path: image)
        #expect(stored.contains("<name>test</name>"))
        let edited = stored.replacingOccurrences(of: "</domain>", with: "<description>restored</description></domain>")
        try connection.defineSaveImageXML(path: image, xml: edited)
        #expect(try connection.saveImageXML(path: image).contains("restored"))

        try connection.restore(from: image)
        #expect(try domain.state().state == .running)
        #expect(try domain.xml().contains("<description>restored</description>"))
    }

    @Test func allDomainStatsGiveStateOfEveryDomain() throws {
        _ = try connection.defineDomain(xml: minimalDomainXML(name: "off"))
        let records = try connection.allDomainStats(groups: .state)
        #expect(Set(records.map(\.name)) == ["test", "off"])
        let test = try #require(records.first { $0.name == "test" })
        #expect(test.uuid == (try connection.domain(name: "test").uuid))
        #expect(test.state == .running)
        #expect(test.stateReason != nil)
        #expect(test.raw["state.state"] == .int(1))
        // Groups the test driver does not give stay nil.
        #expect(test.cpu == nil && test.balloon == nil && test.blocks == nil)
        #expect(try connection.allDomainStats(groups: .state, flags: .inactive).map(\.name) == ["off"])
    }

    @Test func domainStatsCoverOnlyTheGivenDomains() throws {
        let off = try connection.defineDomain(xml: minimalDomainXML(name: "off"))
        let records = try connection.domainStats([off], groups: .state)
        #expect(records.map(\.name) == ["off"])
        #expect(records.first?.state == .shutoff)
        #expect(try connection.domainStats([], groups: .state).isEmpty)
    }

    @Test func maxMemoryAndVcpuCountComeFromTheDefinition() throws {
        let domain = try connection.defineDomain(xml: minimalDomainXML(name: "x"))
        #expect(try domain.maxMemoryKiB() == 65536)
        try domain.setVcpus(count: 4, flags: [.config, .maximum])
        try domain.setVcpus(count: 2, flags: .config)
        #expect(try domain.vcpuCount(flags: .config) == 2)
        #expect(try domain.vcpuCount(flags: [.config, .maximum]) == 4)
    }

    @Test func jobCallsTheTestDriverLacksNameTheirFunction() throws {
        let domain = try connection.domain(name: "test")
        let stats = #expect(throws: LibvirtError.self) { try domain.jobStats() }
        #expect(stats?.function == "virDomainGetJobStats")
        let abort = #expect(throws: LibvirtError.self) { try domain.abortJob() }
        #expect(abort?.function == "virDomainAbortJob")
    }
}

@Suite("Host memory and CPU")
struct HostStatsTests {
    @Test func freeMemoryIsTheNUMACellsFreeMemory() throws {
        // test:///default's fake host has NUMA cells with free memory; the private one has
        // none, which libvirt reports as a failure.
        #expect(try LibvirtConnection(uri: "test:///default").freeMemoryBytes() > 0)
        let error = #expect(throws: LibvirtError.self) { try openTestDriver().freeMemoryBytes() }
        #expect(error?.function == "virNodeGetFreeMemory")
    }

    @Test func cpuStatsNameKernelUserIdleAndIowait() throws {
        let stats = try openTestDriver().cpuStats()
        #expect(stats.kernelNs != nil && stats.userNs != nil && stats.idleNs != nil && stats.iowaitNs != nil,
                "\(stats.counters)")
    }
}
