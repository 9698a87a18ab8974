import Foundation
import Libvirt
import TestSupport
import Testing

/// Storage calls the test driver lacks, on the real libvirtd with `lt-` dir pools in temporary
/// directories, each removed in a defer.
@Suite("Storage on qemu:///system", .usesLibvirtd, .enabled(if: realStackAvailable, realStackReason), .timeLimit(.minutes(15)))
struct RealStorageTests {
    let connection: LibvirtConnection

    init() throws {
        connection = try openSystem()
    }

    /// A started transient dir pool over a fresh directory; `remove()` undoes both.
    struct ScratchPool {
        let connection: LibvirtConnection
        let directory: ScratchDirectory
        let name = uniqueName("pool")
        let pool: LibvirtStoragePool

        init(_ connection: LibvirtConnection) throws {
            self.connection = connection
            directory = try ScratchDirectory()
            pool = try connection.createPool(
                xml: "<pool type='dir'><name>\(name)</name><target><path>\(directory.url.path)</path></target></pool>")
        }

        func remove() {
            removePool(named: name, on: connection)
            directory.remove()
        }
    }

    func volumeXML(_ name: String, mib: Int) -> String {
        "<volume><name>\(name)</name><capacity unit='MiB'>\(mib)</capacity><target><format type='qcow2'/></target></volume>"
    }

    @Test func poolIsFoundByItsTargetDirectory() async throws {
        let scratch = try ScratchPool(connection)
        defer { scratch.remove() }
        let pool = scratch.pool, directory = scratch.directory
        #expect(try connection.pool(targetPath: directory.url.path).uuid == pool.uuid)
        let error = #expect(throws: LibvirtError.self) { try connection.pool(targetPath: directory.path("none")) }
        #expect(error?.code == .noStoragePool)
    }

    @Test func filesCreatedBehindLibvirtsBackAppearAfterARefreshWithTheirSizes() async throws {
        let scratch = try ScratchPool(connection)
        defer { scratch.remove() }
        let pool = scratch.pool, directory = scratch.directory
        try await makeQcow2(directory.path("outside.qcow2"), size: "32M")
        #expect(try pool.volumeSummaries().isEmpty)
        try pool.refresh()
        let summary = try #require(try pool.volumeSummaries().first)
        #expect(summary.name == "outside.qcow2")
        #expect(summary.path == directory.path("outside.qcow2"))
        #expect(summary.info.capacityBytes == 32 << 20)
        #expect(summary.info.allocationBytes < summary.info.capacityBytes)
        #expect(try pool.info().availableBytes > 0)
    }

    @Test func cloneCopiesTheDataAndResizeGrowsTheClone() async throws {
        let scratch = try ScratchPool(connection)
        defer { scratch.remove() }
        let pool = scratch.pool, directory = scratch.directory
        let source = try pool.createVolume(xml: volumeXML("a.qcow2", mib: 16))
        try await writePattern(directory.path("a.qcow2"), length: "1M")
        try pool.refresh()
        let clone = try pool.createVolume(xml: volumeXML("b.qcow2", mib: 16), cloning: source)
        try await run("/usr/bin/qemu-img", ["compare", "-q", directory.path("a.qcow2"), directory.path("b.qcow2")])
        try clone.resize(to: 32 << 20)
        #expect(try clone.info().capacityBytes == 32 << 20)
        let error = #expect(throws: LibvirtError.self) { try clone.resize(to: 8 << 20) }
        #expect(error?.function == "virStorageVolResize")
    }

    @Test func refreshAndLifecycleEventsArrive() async throws {
        let recorder = Recorder<StoragePoolEvent>()
        let registration = try connection.registerStoragePoolEvents { recorder.record($0) }
        defer { registration.deregister() }
        let scratch = try ScratchPool(connection)
        defer { scratch.remove() }
        let pool = scratch.pool
        let uuid = try pool.uuid
        let name = try pool.name
        try pool.refresh()
        #expect(await recorder.wait { $0.contains(.refresh(uuid: uuid, name: name)) }, "\(recorder.all)")
        try pool.destroy()
        #expect(await recorder.wait { events in
            events.filter { $0.uuid == uuid }.compactMap(\.lifecycleEvent) == [.started, .stopped]
        }, "\(recorder.all)")
    }
}

/// The host's memory as the kernel counts it.
@Suite("Host memory on qemu:///system", .usesLibvirtd, .enabled(if: realStackAvailable, realStackReason))
struct RealHostMemoryTests {
    @Test func memoryStatisticsTotalIsWhatTheKernelCounts() throws {
        let connection = try LibvirtConnection(uri: "qemu:///system")
        let total = try #require(try connection.memoryStats()["total"])
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let kernel = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { UInt64($0.split(separator: " ").dropFirst().first ?? "") }
        #expect(total == kernel)
    }
}
