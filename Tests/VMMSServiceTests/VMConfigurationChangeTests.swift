import DBus
import Foundation
import Libvirt
import TestSupport
import Testing
import VMMSModel
@testable import VMMSService

/// The VM setters over libvirt's test driver: the values reach the domain XML and the
/// properties (with PropertiesChanged), and every bad value is refused with the XML untouched.
@Suite(.serialized) struct VMConfigurationChangeTests {
    static let vm = "org.example.VMMS1.VM"
    static let props = "org.freedesktop.DBus.Properties"
    static let mib: UInt64 = 1 << 20

    func create(_ f: ServiceFixture, _ settings: [String: DBusValue] = [:]) async throws -> (ObjectPath, String) {
        let name = "cfg-\(UUID().uuidString.prefix(8))"
        let reply = try await f.call(Paths.host, "org.example.VMMS1.Host", "CreateVM", [.string(name), .vardict(settings)])
        return (try #require(reply.first?.objectPath), name)
    }

    func property(_ f: ServiceFixture, _ path: ObjectPath, _ name: String) async throws -> DBusValue? {
        try await f.call(path, Self.props, "Get", [.string(Self.vm), .string(name)]).first?.variant
    }

    /// The persistent XML as libvirt has it (the test driver is shared within the process).
    func xml(_ name: String) throws -> String {
        try LibvirtConnection(uri: "test:///default").domain(name: name).xml(flags: [.inactive])
    }

    func changes(_ f: ServiceFixture, _ path: ObjectPath) async throws -> AsyncStream<DBusMessage> {
        try await f.client.signals(matching: MatchRule(sender: Paths.busName, path: path, interface: Self.props, member: "PropertiesChanged"))
    }

    @Test func setProcessorReachesTheDomainAndIsAnnounced() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let (path, name) = try await create(f)
        let stream = try await changes(f, path)
        _ = try await f.call(path, Self.vm, "SetProcessor", [.uint32(2), .vardict(["Reserve": .uint32(10), "Maximum": .uint32(50), "RelativeWeight": .uint32(200)])])
        let signal = await firstMatch(stream) { $0.body.dropFirst().first?.stringKeyedDictionary?["ProcessorCount"] != nil }
        let changed = try #require(signal?.body.dropFirst().first?.stringKeyedDictionary)
        #expect(changed["ProcessorCount"] == .uint32(2))
        #expect(changed["ProcessorMaximum"] == .uint32(50))
        #expect(try await property(f, path, "ProcessorReserve") == .uint32(10))
        #expect(try await property(f, path, "ProcessorRelativeWeight") == .uint32(200))
        let x = try xml(name)
        #expect(x.contains(">2</vcpu>"), "\(x)")
        #expect(x.contains("<shares>2048</shares>") && x.contains("<period>100000</period>") && x.contains("<quota>50000</quota>"), "\(x)")

        // Left-out options keep their values; Maximum 100 drops the quota.
        _ = try await f.call(path, Self.vm, "SetProcessor", [.uint32(1), .vardict(["Maximum": .uint32(100)])])
        #expect(try await property(f, path, "ProcessorRelativeWeight") == .uint32(200))
        #expect(try await property(f, path, "ProcessorReserve") == .uint32(10))
        let y = try xml(name)
        #expect(y.contains(">1</vcpu>") && !y.contains("<quota>"), "\(y)")
        _ = try await f.call(path, Self.vm, "Delete", [.vardict([:])])
    }

    @Test func badProcessorAndMemoryValuesLeaveTheXMLAsItWas() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let (path, name) = try await create(f, ["MemoryStartupBytes": .uint64(256 * Self.mib)])
        let before = try xml(name)
        let invalid = DBusError.Name.invalidArgs
        let processor: [(UInt32, [String: DBusValue])] = [
            (0, [:]), (100_000, [:]), (1, ["Reserve": .uint32(101)]), (1, ["Maximum": .uint32(0)]),
            (1, ["Maximum": .uint32(101)]), (1, ["Reserve": .uint32(60), "Maximum": .uint32(50)]),
            (1, ["RelativeWeight": .uint32(10_001)]), (1, ["Bogus": .uint32(1)]), (1, ["Reserve": .uint64(1)]),
        ]
        for (count, options) in processor {
            await expectDBusError(invalid, "SetProcessor \(count) \(options)") {
                _ = try await f.call(path, Self.vm, "SetProcessor", [.uint32(count), .vardict(options)])
            }
        }
        let memory: [(UInt64, [String: DBusValue])] = [
            (0, [:]), (31 * Self.mib, [:]), (256 * Self.mib + 1, [:]), (1 << 60, [:]),
            (256 * Self.mib, ["MinimumBytes": .uint64(128 * Self.mib)]),
            (256 * Self.mib, ["DynamicMemory": .boolean(true), "MinimumBytes": .uint64(512 * Self.mib)]),
            (256 * Self.mib, ["DynamicMemory": .boolean(true), "MaximumBytes": .uint64(128 * Self.mib)]),
            (256 * Self.mib, ["DynamicMemory": .boolean(true), "MaximumBytes": .uint64(1 << 60)]),
            (256 * Self.mib, ["DynamicMemory": .string("yes")]), (256 * Self.mib, ["Startup": .uint64(1)]),
        ]
        for (startup, options) in memory {
            await expectDBusError(invalid, "SetMemory \(startup) \(options)") {
                _ = try await f.call(path, Self.vm, "SetMemory", [.uint64(startup), .vardict(options)])
            }
        }
        // Wrong signatures never reach the handler.
        await expectDBusError(invalid, "SetProcessor with t") { _ = try await f.call(path, Self.vm, "SetProcessor", [.uint64(1), .vardict([:])]) }
        await expectDBusError(invalid, "SetMemory without options") { _ = try await f.call(path, Self.vm, "SetMemory", [.uint64(256 * Self.mib)]) }
        await expectDBusError(invalid, "AddHardDisk with neither") { _ = try await f.call(path, Self.vm, "AddHardDisk", [.vardict([:])]) }
        await expectDBusError(invalid, "AddHardDisk with both") {
            _ = try await f.call(path, Self.vm, "AddHardDisk", [.vardict(["SizeBytes": .uint64(Self.mib), "Path": .string("/x")])])
        }
        await expectDBusError(invalid, "AddHardDisk of 0 bytes") { _ = try await f.call(path, Self.vm, "AddHardDisk", [.vardict(["SizeBytes": .uint64(0)])]) }
        await expectDBusError(invalid, "AddHardDisk of a missing file") {
            _ = try await f.call(path, Self.vm, "AddHardDisk", [.vardict(["Path": .string("/nonexistent/disk.qcow2")])])
        }
        await expectDBusError(invalid, "RemoveHardDisk of a disk it lacks") {
            _ = try await f.call(path, Self.vm, "RemoveHardDisk", [.string("/nope.qcow2"), .vardict([:])])
        }
        #expect(try xml(name) == before)
        _ = try await f.call(path, Self.vm, "Delete", [.vardict([:])])
    }

    @Test func setMemoryTurnsDynamicMemoryOnWithBounds() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let (path, name) = try await create(f, ["MemoryStartupBytes": .uint64(256 * Self.mib)])
        _ = try await f.call(path, Self.vm, "SetMemory", [.uint64(512 * Self.mib),
            .vardict(["DynamicMemory": .boolean(true), "MinimumBytes": .uint64(128 * Self.mib), "MaximumBytes": .uint64(1024 * Self.mib)])])
        #expect(try await property(f, path, "DynamicMemoryEnabled") == .boolean(true))
        #expect(try await property(f, path, "MemoryStartupBytes") == .uint64(512 * Self.mib))
        #expect(try await property(f, path, "MemoryMinimumBytes") == .uint64(128 * Self.mib))
        #expect(try await property(f, path, "MemoryMaximumBytes") == .uint64(1024 * Self.mib))
        let x = try xml(name)
        #expect(x.contains("<memory unit='KiB'>1048576</memory>") && x.contains("<currentMemory unit='KiB'>524288</currentMemory>"), "\(x)")

        // Back to static memory: minimum = startup = maximum.
        _ = try await f.call(path, Self.vm, "SetMemory", [.uint64(384 * Self.mib), .vardict(["DynamicMemory": .boolean(false)])])
        #expect(try await property(f, path, "DynamicMemoryEnabled") == .boolean(false))
        #expect(try await property(f, path, "MemoryMaximumBytes") == .uint64(384 * Self.mib))
        #expect(try await property(f, path, "MemoryMinimumBytes") == .uint64(384 * Self.mib))
        _ = try await f.call(path, Self.vm, "Delete", [.vardict([:])])
    }

    @Test func runningVMsRefuseWhatNeedsThemOff() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let (path, name) = try await create(f, ["MemoryStartupBytes": .uint64(256 * Self.mib), "Start": .boolean(true)])
        let before = try xml(name)
        let invalidState = VMMSError.prefix + "InvalidState"
        await expectDBusError(invalidState, "a larger maximum while running") {
            _ = try await f.call(path, Self.vm, "SetMemory", [.uint64(512 * Self.mib), .vardict([:])])
        }
        await expectDBusError(invalidState, "dynamic memory while running") {
            _ = try await f.call(path, Self.vm, "SetMemory", [.uint64(256 * Self.mib), .vardict(["DynamicMemory": .boolean(true)])])
        }
        await expectDBusError(invalidState, "more processors than slots while running") {
            _ = try await f.call(path, Self.vm, "SetProcessor", [.uint32(2), .vardict([:])])
        }
        await expectDBusError(invalidState, "Secure Boot while running") {
            _ = try await f.call(path, Self.vm, "SetSecureBoot", [.boolean(false)])
        }
        #expect(try xml(name) == before)
        _ = try await f.call(path, Self.vm, "Save")
        await expectDBusError(invalidState, "processors while Saved") {
            _ = try await f.call(path, Self.vm, "SetProcessor", [.uint32(1), .vardict(["RelativeWeight": .uint32(50)])])
        }
        _ = try await f.call(path, Self.vm, "Delete", [.vardict([:])])
    }

    @Test func secureBootIsGenerationTwoOnly() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let (gen1, _) = try await create(f, ["Generation": .uint32(1)])
        await expectDBusError(VMMSError.prefix + "NotSupported", "Secure Boot on generation 1") {
            _ = try await f.call(gen1, Self.vm, "SetSecureBoot", [.boolean(true)])
        }
        let (gen2, name) = try await create(f, ["Generation": .uint32(2)])
        #expect(try await property(f, gen2, "SecureBoot") == .boolean(true))
        _ = try await f.call(gen2, Self.vm, "SetSecureBoot", [.boolean(false)])
        #expect(try await property(f, gen2, "SecureBoot") == .boolean(false))
        let x = try xml(name)
        #expect(x.contains("<feature enabled='no' name='secure-boot'/>") && !x.contains("<smm"), "\(x)")
        #expect(x.contains("<vmms:resetNVRAM>true</vmms:resetNVRAM>"), "\(x)")
        _ = try await f.call(gen2, Self.vm, "SetSecureBoot", [.boolean(true)])
        #expect(try await property(f, gen2, "SecureBoot") == .boolean(true))
        #expect(try xml(name).contains("<smm state='on'/>"))
        // Start clears the NVRAM reset request once it has been honoured.
        _ = try await f.call(gen2, Self.vm, "Start")
        #expect(!(try xml(name).contains("resetNVRAM")))
        _ = try await f.call(gen2, Self.vm, "Delete", [.vardict(["Force": .boolean(true)])])
        _ = try await f.call(gen1, Self.vm, "Delete", [.vardict([:])])
    }

    @Test func hardDisksAreAddedAndRemoved() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let (path, name) = try await create(f)
        let added = try #require(try await f.call(path, Self.vm, "AddHardDisk", [.vardict(["SizeBytes": .uint64(16 * Self.mib)])]).first?.string)
        #expect(added.hasSuffix("/\(name)-2.qcow2"), "\(added)")
        let disks = try #require(try await property(f, path, "HardDisks"))
        #expect(disks == .array("(sst)", [.structure([.string(added), .string("qcow2"), .uint64(16 * Self.mib)])]), "\(disks)")
        #expect(try xml(name).contains("<target dev='vda' bus='virtio'/>"))
        _ = try await f.call(path, Self.vm, "RemoveHardDisk", [.string(added), .vardict(["DeleteFile": .boolean(true)])])
        #expect(try await property(f, path, "HardDisks") == .array("(sst)", []))
        #expect(!(try xml(name).contains(added)))
        _ = try await f.call(path, Self.vm, "Delete", [.vardict([:])])
    }

    @Test func theBalloonOfARunningVMMovesWithinItsMaximum() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let (path, _) = try await create(f, ["MemoryStartupBytes": .uint64(256 * Self.mib), "DynamicMemory": .boolean(true),
                                             "MemoryMinimumBytes": .uint64(128 * Self.mib), "MemoryMaximumBytes": .uint64(512 * Self.mib),
                                             "Start": .boolean(true)])
        #expect(try await property(f, path, "MemoryAssignedBytes") == .uint64(256 * Self.mib))
        let stream = try await changes(f, path)
        _ = try await f.call(path, Self.vm, "SetMemory", [.uint64(384 * Self.mib), .vardict([:])])
        let signal = await firstMatch(stream) { $0.body.dropFirst().first?.stringKeyedDictionary?["MemoryAssignedBytes"] != nil }
        #expect(signal?.body.dropFirst().first?.stringKeyedDictionary?["MemoryAssignedBytes"] == .uint64(384 * Self.mib))
        #expect(try await property(f, path, "MemoryStartupBytes") == .uint64(384 * Self.mib))
        _ = try await f.call(path, Self.vm, "TurnOff")
        #expect(try await property(f, path, "MemoryAssignedBytes") == .uint64(0))
        _ = try await f.call(path, Self.vm, "Delete", [.vardict([:])])
    }
}
