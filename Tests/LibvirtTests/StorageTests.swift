import Foundation
import Libvirt
import Testing

@Suite("Storage pools and volumes")
struct StorageTests {
    let connection: LibvirtConnection
    let directory: URL

    init() throws {
        connection = try openTestDriver()
        directory = try makeTemporaryDirectory()
    }

    func poolXML(name: String = "vhd") -> String {
        "<pool type='dir'><name>\(name)</name><target><path>\(directory.path)</path></target></pool>"
    }

    func volumeXML(name: String, mib: Int) -> String {
        """
        <volume><name>\(name)</name><capacity unit='MiB'>\(mib)</capacity>\
        <target><format type='qcow2'/></target></volume>
        """
    }

    /// Defines, builds and starts the "vhd" pool.
    func activePool() throws -> LibvirtStoragePool {
        let pool = try connection.definePool(xml: poolXML())
        try pool.build()
        try pool.create()
        return pool
    }

    @Test func definedPoolIsPersistentAndInactive() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try connection.definePool(xml: poolXML())
        #expect(try pool.name == "vhd")
        #expect(try pool.isPersistent)
        #expect(try !pool.isActive)
        #expect(try pool.xmlDesc().contains(directory.path))
    }

    @Test func buildAndCreateActivateThePool() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        #expect(try pool.isActive)
        try pool.refresh()
        #expect(try connection.pool(name: "vhd").isActive)
    }

    @Test func autostartRoundTrips() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try connection.definePool(xml: poolXML())
        try pool.setAutostart(true)
        #expect(try pool.autostart)
    }

    @Test func createdVolumeIsFoundByNameAndPath() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        let volume = try pool.createVolume(xml: volumeXML(name: "disk.qcow2", mib: 10))
        let path = try volume.path
        #expect(path == directory.appendingPathComponent("disk.qcow2").path)
        #expect(try volume.name == "disk.qcow2")
        #expect(try pool.volume(name: "disk.qcow2").path == path)
        #expect(try connection.volume(path: path).name == "disk.qcow2")
        #expect(try pool.volumes().map { try $0.name } == ["disk.qcow2"])
    }

    @Test func volumeInfoReportsCapacity() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let volume = try activePool().createVolume(xml: volumeXML(name: "disk.qcow2", mib: 10))
        #expect(try volume.info().capacityBytes == 10 * 1024 * 1024)
    }

    @Test func deletedVolumeIsGone() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        try pool.createVolume(xml: volumeXML(name: "disk.qcow2", mib: 10)).delete()
        let error = #expect(throws: LibvirtError.self) { try pool.volume(name: "disk.qcow2") }
        #expect(error?.isNoStorageVolume == true)
        #expect(error?.function == "virStorageVolLookupByName")
    }

    @Test func destroyedAndUndefinedPoolIsGone() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        try pool.destroy()
        #expect(try !pool.isActive)
        try pool.undefine()
        let error = #expect(throws: LibvirtError.self) { try connection.pool(name: "vhd") }
        #expect(error?.isNoStoragePool == true)
    }

    @Test func allPoolsListsDefinedPool() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try connection.definePool(xml: poolXML(name: "extra"))
        #expect(try connection.allPools().map { try $0.name }.contains("extra"))
    }
    @Test func poolIsFoundByUUID() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        let uuid = try pool.uuid
        #expect(try connection.pool(uuid: uuid.uppercased()).name == "vhd")
        // By target path: the test driver lacks it; qemu:///system covers it.
        let error = #expect(throws: LibvirtError.self) { try connection.pool(uuid: "00000000-0000-0000-0000-0000000000aa") }
        #expect(error?.code == .noStoragePool)
        #expect(error?.function == "virStoragePoolLookupByUUIDString")
    }

    @Test func poolInfoReportsStateAndSpace() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        let info = try pool.info()
        #expect(info.state == .running)
        #expect(info.capacityBytes > 0)
        #expect(info.capacityBytes == info.allocationBytes + info.availableBytes)
        try pool.destroy()
        #expect(try pool.info().state == .inactive)
    }

    @Test func volumeSummariesListNamesPathsAndSizes() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        _ = try pool.createVolume(xml: volumeXML(name: "a.qcow2", mib: 10))
        _ = try pool.createVolume(xml: volumeXML(name: "b.qcow2", mib: 20))
        let summaries = try pool.volumeSummaries().sorted { $0.name < $1.name }
        #expect(summaries.map(\.name) == ["a.qcow2", "b.qcow2"])
        #expect(summaries.map(\.path) == ["a.qcow2", "b.qcow2"].map { directory.appendingPathComponent($0).path })
        #expect(summaries.map(\.info.capacityBytes) == [10 << 20, 20 << 20])
        #expect(summaries.allSatisfy { $0.info.volumeType == .file })
    }

    @Test func cloneCopiesIntoANewVolume() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        let source = try pool.createVolume(xml: volumeXML(name: "a.qcow2", mib: 10))
        let clone = try pool.createVolume(xml: volumeXML(name: "copy.qcow2", mib: 10), cloning: source)
        #expect(try clone.name == "copy.qcow2")
        #expect(try clone.info().capacityBytes == 10 << 20)
        #expect(try pool.volumes().count == 2)
    }

    @Test func volumeKnowsItsKeyAndPool() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try activePool()
        let volume = try pool.createVolume(xml: volumeXML(name: "a.qcow2", mib: 10))
        #expect(try !volume.key.isEmpty)
        #expect(try volume.pool().uuid == pool.uuid)
    }

    @Test func resizeGrowsAndShrinkingNeedsTheFlag() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let volume = try activePool().createVolume(xml: volumeXML(name: "a.qcow2", mib: 10))
        do {
            try volume.resize(to: 20 << 20)
            #expect(try volume.info().capacityBytes == 20 << 20)
        } catch let error as LibvirtError where error.isNotSupported {
            // The test driver lacks virStorageVolResize; qemu:///system covers it.
            #expect(error.function == "virStorageVolResize")
        }
    }

    @Test func listFiltersPoolsByStateAndType() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try activePool()
        _ = try connection.definePool(xml: """
            <pool type='dir'><name>off</name><target><path>\(directory.path)/off</path></target></pool>
            """)
        #expect(try connection.allPools(flags: .inactive).map { try $0.name } == ["off"])
        #expect(try connection.allPools(flags: [.active, .dir]).map { try $0.name }.contains("vhd"))
        #expect(try connection.allPools(flags: .iscsiDirect).isEmpty)
    }

    @Test func transientPoolIsRunningAndNotPersistent() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let pool = try connection.createPool(xml: poolXML(name: "tmp"))
        #expect(try pool.isActive)
        #expect(try !pool.isPersistent)
    }

    @Test func findPoolSourcesAnswersOrReportsUnsupported() throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        // The test driver answers for "logical" with fixed sources.
        let xml = try connection.findPoolSources(type: "logical")
        #expect(xml.contains("<sources>"), "\(xml)")
        let error = #expect(throws: LibvirtError.self) { try connection.findPoolSources(type: "nosuchtype") }
        #expect(error?.function == "virConnectFindStoragePoolSources")
    }
}


@Suite("Storage pool events")
struct StoragePoolEventTests {
    let connection: LibvirtConnection
    let directory: URL

    init() throws {
        try LibvirtEventLoop.start()
        connection = try openTestDriver()
        directory = try makeTemporaryDirectory()
    }

    @Test func lifecycleAndRefreshEventsArriveWithUUIDAndName() async throws {
        defer { try? FileManager.default.removeItem(at: directory) }
        let recorder = Recorder<StoragePoolEvent>()
        let registration = try connection.registerStoragePoolEvents { recorder.record($0) }
        defer { registration.deregister() }

        let pool = try connection.definePool(
            xml: "<pool type='dir'><name>ev</name><target><path>\(directory.path)</path></target></pool>")
        let uuid = try pool.uuid
        try pool.create()
        try pool.refresh()
        try pool.destroy()
        try pool.undefine()

        let delivered = await recorder.wait { events in
            events.contains(.refresh(uuid: uuid, name: "ev"))
                && events.compactMap(\.lifecycleEvent) == [.defined, .started, .stopped, .undefined]
        }
        #expect(delivered, "\(recorder.all)")
        #expect(recorder.all.allSatisfy { $0.uuid == uuid && $0.name == "ev" })
    }
}
