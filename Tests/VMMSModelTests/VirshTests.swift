import Foundation
import TestSupport
import Testing
import VMMSModel

/// Runs `virsh` with one connection for several `;`-separated commands (a `test:///default`
/// connection starts from scratch every time, so define and dumpxml must share one).
enum Virsh {
    static let path = "/usr/bin/virsh"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: path) }

    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    static func run(_ arguments: [String]) throws -> Result {
        // Not Foundation's Process: its waitUntilExit spins off the main thread on Linux.
        let result = try runCommandSync(path, arguments)
        return Result(status: result.status, output: result.stdout, error: result.stderr)
    }

    static func withTemporaryFile<T>(_ contents: String, _ body: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vmms-model-\(UUID().uuidString).xml")
        try contents.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url.path)
    }

    /// Defines `xml` on a fresh test driver and returns `virsh dumpxml --inactive` of it.
    /// (By UUID: virsh's command-line parser would split a name with spaces.)
    static func defineOnTestDriver(_ xml: String, uuid: String) throws -> String {
        try withTemporaryFile(xml) { file in
            let result = try run(["-q", "-c", "test:///default", "define \(file); dumpxml --inactive \(uuid)"])
            guard result.status == 0 else { throw VirshFailure(message: result.error) }
            // `-q` leaves out the "Domain … defined" line; the rest is the XML.
            return result.output
        }
    }
}

struct VirshFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

private let MiB: UInt64 = 1 << 20
private let GiB: UInt64 = 1 << 30

@Suite(.enabled(if: Virsh.available, "needs virsh (libvirt-clients)"))
struct TestDriverRoundTripTests {
    static let cases: [(String, [String: SettingValue], String?, String?)] = [
        ("vmms-model-test-g1", ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(128 * MiB)], "/var/lib/vmms/g1.img", "/srv/iso/a.iso"),
        ("vmms-model-test-g2", ["Notes": .string("a & b <c> 'd' \"e\"\nsecond line")], "/var/lib/vmms/g2.qcow2", "/srv/iso/b.iso"),
        ("vmms-model-test-g2-insecure", ["SecureBoot": .bool(false), "ProcessorCount": .uint32(4)], nil, nil),
        ("vmms-model-test-dynamic", ["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(2 * GiB),
                                     "MemoryMinimumBytes": .uint64(256 * MiB), "MemoryMaximumBytes": .uint64(8 * GiB)], "/dev/vg0/dyn", nil),
        ("vmms model test.with spaces_", [:], nil, "/srv/iso/it's & <odd>.iso"),
    ]

    @Test(arguments: cases)
    func builtXMLDefinesAndReadsBackUnchangedThroughLibvirt(name: String, raw: [String: SettingValue], disk: String?, media: String?) throws {
        let settings = try makeSettings(raw)
        let uuid = UUID().uuidString.lowercased()
        let xml = DomainXML.build(name: name, uuid: uuid, settings: settings, domainType: "test",
                                  diskPath: disk, diskFormat: nil, installMedia: media)
        let built = try DomainXML.parse(xml)
        let dumped = try Virsh.defineOnTestDriver(xml, uuid: uuid)
        let read = try DomainXML.parse(dumped)
        #expect(read == built)
        #expect(read.name == name && read.uuid == uuid)
        #expect(read.generation == settings.generation && read.secureBoot == settings.secureBoot)
        #expect(read.processorCount == settings.processorCount)
        #expect(read.memoryStartupBytes == settings.memoryStartupBytes)
        #expect(read.memoryMaximumBytes == settings.effectiveMemoryMaximumBytes)
        #expect(read.memoryMinimumBytes == settings.effectiveMemoryMinimumBytes)
        #expect(read.dynamicMemoryEnabled == settings.dynamicMemory)
        #expect(read.notes == settings.notes)
        #expect(read.hardDisks.map(\.path) == (disk.map { [$0] } ?? []))
        #expect(read.cdroms.map(\.path) == (media.map { [$0] } ?? []))
    }

    @Test func theTestDriversOwnDomainIsReadWithoutMetadata() throws {
        let result = try Virsh.run(["-q", "-c", "test:///default", "dumpxml test"])
        try #require(result.status == 0, "\(result.error)")
        let c = try DomainXML.parse(result.output)
        #expect(c.name == "test")
        #expect(c.uuid == "6695eb01-f6a4-8304-79aa-97f2502e193f")
        #expect(c.generation == 1 && !c.secureBoot)
        #expect(c.processorCount == 2)
        #expect(c.memoryStartupBytes == 2 * GiB && c.memoryMaximumBytes == 8 * GiB)
        #expect(c.hardDisks.map(\.path) == ["/guest/diskimage1"])
        #expect(c.networkAdapters.count == 1 && c.networkAdapters.first?.network == "default")
        #expect(c.networkAdapters.first?.mac == "aa:bb:cc:dd:ee:ff")
    }

    @Test func metadataSetThroughLibvirtIsReadFromTheDomainAndFromGetMetadata() throws {
        let xml = DomainXML.build(name: "vmms-model-test-meta", uuid: nil, settings: VMSettings(), domainType: "test",
                                  diskPath: nil, diskFormat: nil, installMedia: nil)
        let update = VMMetadata(generation: 2, dynamicMemory: false, memoryMinimumBytes: GiB, processorReserve: 10,
                                processorMaximum: 50, processorRelativeWeight: 200)
        let set = "metadata vmms-model-test-meta --config --uri \(VMMetadata.namespace) --key \(VMMetadata.prefix)"
        let result = try Virsh.withTemporaryFile(xml) { file in
            try Virsh.run(["-q", "-c", "test:///default",
                           "define \(file); \(set) --set '\(update.elementForSetMetadata)'; dumpxml --inactive vmms-model-test-meta"])
        }
        try #require(result.status == 0, "\(result.error)")
        let c = try DomainXML.parse(result.output)
        #expect(c.processorReserve == 10 && c.processorMaximum == 50 && c.processorRelativeWeight == 200)
        #expect(c.generation == 2)

        let get = try Virsh.withTemporaryFile(xml) { file in
            try Virsh.run(["-q", "-c", "test:///default",
                           "define \(file); \(set) --set '\(update.elementForSetMetadata)'; metadata vmms-model-test-meta --config --uri \(VMMetadata.namespace)"])
        }
        try #require(get.status == 0, "\(get.error)")
        #expect(try VMMetadata.parse(get.output) == update)
    }

    @Test func libvirtRefusesAPrefixedElementInSetMetadata() throws {
        // Why `elementForSetMetadata` has no prefix: libvirt 9.0 fails to add its namespace.
        let xml = DomainXML.build(name: "vmms-model-test-meta", uuid: nil, settings: VMSettings(), domainType: "test",
                                  diskPath: nil, diskFormat: nil, installMedia: nil)
        let result = try Virsh.withTemporaryFile(xml) { file in
            try Virsh.run(["-q", "-c", "test:///default",
                           "define \(file); metadata vmms-model-test-meta --config --uri \(VMMetadata.namespace) --key \(VMMetadata.prefix) --set '\(VMMetadata(generation: 1).xml())'"])
        }
        #expect(result.status != 0)
    }
}
