import Foundation
import TestSupport
import Testing
import VMMSModel

/// Checks against the machine's libvirtd (`qemu:///system`) and QEMU: schema validation,
/// `define --validate`, and one real boot of a generation 2 Secure Boot VM under TCG. They
/// define and start real domains, so they run with the other real-stack tests (`make test` as
/// root; by hand: `VMMS_INTEGRATION=1 swift test --filter QemuSystemTests` after
/// `scripts/stack.sh up`).
/// Every domain is named `vmms-model-test-*` and removed again, NVRAM included.
@Suite(.usesLibvirtd, .enabled(if: realStackAvailable, realStackReason), .serialized)
struct QemuSystemTests {
    static let uri = "qemu:///system"
    static let validator = "/usr/bin/virt-xml-validate"

    static func system(_ command: String) throws -> Virsh.Result {
        try Virsh.run(["-q", "-c", uri, command])
    }

    static func remove(_ name: String) {
        if let state = try? system("domstate \(name)"), state.output.contains("running") || state.output.contains("paused") {
            _ = try? system("destroy \(name)")
        }
        _ = try? system("undefine --nvram \(name)")
    }

    static func xml(_ name: String, _ raw: [String: SettingValue], type: String = "qemu", disk: String? = nil, media: String? = nil) throws -> String {
        DomainXML.build(name: name, uuid: nil, settings: try makeSettings(raw), domainType: type,
                        diskPath: disk, diskFormat: nil, installMedia: media)
    }

    static let variants: [(String, [String: SettingValue], String)] = [
        ("vmms-model-test-g1", ["Generation": .uint32(1), "MemoryStartupBytes": .uint64(128 << 20)], "qemu"),
        ("vmms-model-test-g2", ["MemoryStartupBytes": .uint64(128 << 20), "Notes": .string("a & <b>")], "qemu"),
        ("vmms-model-test-g2-nosb", ["SecureBoot": .bool(false), "MemoryStartupBytes": .uint64(128 << 20)], "qemu"),
        ("vmms-model-test-g2-dyn", ["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(128 << 20),
                                    "MemoryMaximumBytes": .uint64(256 << 20), "ProcessorCount": .uint32(2)], "qemu"),
        ("vmms-model-test-g2-kvm", [:], "kvm"),
        ("vmms-model-test-g1-kvm", ["Generation": .uint32(1)], "kvm"),
    ]

    @Test(arguments: variants)
    func builtXMLPassesTheDomainSchema(name: String, raw: [String: SettingValue], type: String) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.validator))
        let xml = try Self.xml(name, raw, type: type, disk: "/var/lib/libvirt/images/\(name).qcow2", media: "/var/lib/libvirt/images/x.iso")
        let result = try Virsh.withTemporaryFile(xml) { file in
            try runCommandSync(Self.validator, [file, "domain"]).status
        }
        #expect(result == 0)
    }

    @Test(arguments: variants)
    func builtXMLDefinesWithValidationAndReadsBack(name: String, raw: [String: SettingValue], type: String) throws {
        Self.remove(name)
        defer { Self.remove(name) }
        let xml = try Self.xml(name, raw, type: type, disk: "/var/lib/libvirt/images/\(name).qcow2", media: "/var/lib/libvirt/images/x.iso")
        let result = try Virsh.withTemporaryFile(xml) { file in try Self.system("define --validate \(file)") }
        try #require(result.status == 0, "\(result.error)")
        let dumped = try Self.system("dumpxml --inactive \(name)")
        try #require(dumped.status == 0, "\(dumped.error)")
        var expected = try DomainXML.parse(xml)
        let read = try DomainXML.parse(dumped.output)
        expected.uuid = read.uuid
        #expect(read == expected)
    }

    @Test func aGeneration2SecureBootVMBootsWithAutoselectedMicrosoftKeyedOVMF() async throws {
        let name = "vmms-model-test-sb-boot"
        Self.remove(name)
        defer { Self.remove(name) }
        let xml = try Self.xml(name, ["MemoryStartupBytes": .uint64(128 << 20)])
        let defined = try Virsh.withTemporaryFile(xml) { file in try Self.system("define --validate \(file)") }
        try #require(defined.status == 0, "\(defined.error)")
        let started = try Self.system("start \(name)")
        try #require(started.status == 0, "\(started.error)")
        try await Task.sleep(for: .seconds(2))
        #expect(try Self.system("domstate \(name)").output.contains("running"))
        let live = try Self.system("dumpxml \(name)").output
        #expect(live.contains("secure='yes'"))
        #expect(live.contains("OVMF_CODE_4M.ms.fd"))
        #expect(live.contains("<smm state='on'/>"))
        let c = try DomainXML.parse(live)
        #expect(c.generation == 2 && c.secureBoot)
        #expect(try Self.system("destroy \(name)").status == 0)
    }
}
