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
}
