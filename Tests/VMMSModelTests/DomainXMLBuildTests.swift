import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
import VMMSModel

private let MiB: UInt64 = 1 << 20
private let GiB: UInt64 = 1 << 30

func makeSettings(_ raw: [String: SettingValue]) throws -> VMSettings {
    try VMSettings(validating: raw, hostMemoryBytes: 64 * GiB, hostProcessorCount: 16)
}

/// The values of every element or attribute an XPath expression selects.
func xpath(_ xml: String, _ path: String) throws -> [String] {
    let document = try XMLDocument(xmlString: xml, options: [])
    return try document.nodes(forXPath: path).map { $0.stringValue ?? "" }
}

@Suite struct DomainXMLBuildTests {
    @Test func generation2WithSecureBootUsesEFIAutoselectionWithSecureBootFeaturesAndSMM() throws {
        let xml = DomainXML.build(name: "web01", uuid: nil, settings: try makeSettings([:]), domainType: "kvm",
                                  diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(xml, "/domain/@type") == ["kvm"])
        #expect(try xpath(xml, "/domain/os/@firmware") == ["efi"])
        #expect(try xpath(xml, "/domain/os/type/@machine") == ["q35"])
        #expect(try xpath(xml, "/domain/os/type/@arch") == ["x86_64"])
        #expect(try xpath(xml, "/domain/os/type") == ["hvm"])
        #expect(try xpath(xml, "/domain/os/firmware/feature[@name='secure-boot']/@enabled") == ["yes"])
        #expect(try xpath(xml, "/domain/os/firmware/feature[@name='enrolled-keys']/@enabled") == ["yes"])
        #expect(try xpath(xml, "/domain/os/loader").isEmpty)
        #expect(try xpath(xml, "/domain/features/smm/@state") == ["on"])
        #expect(try xpath(xml, "/domain/features/acpi").count == 1)
        #expect(try xpath(xml, "/domain/features/apic").count == 1)
        #expect(try xpath(xml, "/domain/os/boot/@dev") == ["hd"])
    }

    @Test func generation2WithoutSecureBootDisablesTheFeaturesAndLeavesOutSMM() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: try makeSettings(["SecureBoot": .bool(false)]),
                                  domainType: "qemu", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(xml, "/domain/os/@firmware") == ["efi"])
        #expect(try xpath(xml, "/domain/os/firmware/feature/@enabled") == ["no", "no"])
        #expect(try xpath(xml, "/domain/features/smm").isEmpty)
        #expect(try xpath(xml, "/domain/features/acpi").count == 1)
    }

    @Test func generation1IsABIOSPCMachineWithoutFirmwareSelection() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: try makeSettings(["Generation": .uint32(1)]),
                                  domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: "/iso/a.iso")
        #expect(try xpath(xml, "/domain/os/@firmware").isEmpty)
        #expect(try xpath(xml, "/domain/os/firmware").isEmpty)
        #expect(try xpath(xml, "/domain/os/type/@machine") == ["pc"])
        #expect(try xpath(xml, "/domain/features/smm").isEmpty)
        #expect(try xpath(xml, "/domain/os/boot/@dev") == ["hd", "cdrom"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='cdrom']/target/@dev") == ["hdc"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='cdrom']/target/@bus") == ["ide"])
    }

    @Test func memoryIsStartupInKiBWithoutDynamicMemory() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: try makeSettings(["MemoryStartupBytes": .uint64(2 * GiB)]),
                                  domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(xml, "/domain/memory") == ["2097152"])
        #expect(try xpath(xml, "/domain/memory/@unit") == ["KiB"])
        #expect(try xpath(xml, "/domain/currentMemory") == ["2097152"])
        #expect(try xpath(xml, "/domain/currentMemory/@unit") == ["KiB"])
        #expect(try xpath(xml, "/domain/devices/memballoon/@model") == ["virtio"])
    }

    @Test func dynamicMemoryPutsTheMaximumInMemoryAndTheMinimumInMetadata() throws {
        let s = try makeSettings(["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(GiB),
                                  "MemoryMinimumBytes": .uint64(256 * MiB), "MemoryMaximumBytes": .uint64(4 * GiB)])
        let xml = DomainXML.build(name: "x", uuid: nil, settings: s, domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(xml, "/domain/memory") == ["4194304"])
        #expect(try xpath(xml, "/domain/currentMemory") == ["1048576"])
        #expect(try xpath(xml, "/domain/metadata/*[local-name()='vm']/*[local-name()='dynamicMemory']") == ["true"])
        #expect(try xpath(xml, "/domain/metadata/*[local-name()='vm']/*[local-name()='memoryMinimumBytes']") == ["\(256 * MiB)"])
    }

    @Test func metadataHoldsWhatLibvirtCannotInOurNamespace() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: try makeSettings(["Generation": .uint32(1)]),
                                  domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        let document = try XMLDocument(xmlString: xml, options: [])
        let vm = try #require(try document.nodes(forXPath: "/domain/metadata/*").first as? XMLElement)
        #expect(vm.localName == "vm")
        #expect(vm.uri == "https://example.org/vmms/1")
        #expect(vm.uri == VMMetadata.namespace)
        func value(_ name: String) throws -> [String] { try xpath(xml, "/domain/metadata/*/*[local-name()='\(name)']") }
        #expect(try value("generation") == ["1"])
        #expect(try value("dynamicMemory") == ["false"])
        #expect(try value("memoryMinimumBytes") == ["\(GiB)"])
        #expect(try value("processorReserve") == ["0"])
        #expect(try value("processorMaximum") == ["100"])
        #expect(try value("processorRelativeWeight") == ["100"])
    }

    @Test func processorsAreStaticVCPUsWithDefaultShares() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: try makeSettings(["ProcessorCount": .uint32(4)]),
                                  domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(xml, "/domain/vcpu") == ["4"])
        #expect(try xpath(xml, "/domain/vcpu/@placement") == ["static"])
        #expect(try xpath(xml, "/domain/cputune/shares") == ["1024"])
    }

    static let weightsToShares: [(UInt32, UInt64)] = [(100, 1024), (0, 2), (1, 10), (50, 512), (200, 2048), (10_000, 102_400), (UInt32.max, 262_144)]
    static let sharesToWeights: [(UInt64, UInt32)] = [(1024, 100), (512, 50), (2048, 200), (102_400, 10_000), (262_144, 10_000), (2, 0), (100, 10)]

    @Test(arguments: weightsToShares)
    func relativeWeightMapsToCPUSharesAsWeightTimes1024Over100(weight: UInt32, shares: UInt64) {
        #expect(DomainXML.cpuShares(forWeight: weight) == shares)
    }

    @Test(arguments: sharesToWeights)
    func cpuSharesMapBackToTheNearestWeight(shares: UInt64, weight: UInt32) {
        #expect(DomainXML.weight(forCPUShares: shares) == weight)
    }

    @Test func lifecycleActionsAreDestroyRestartDestroy() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: VMSettings(), domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(xml, "/domain/on_poweroff") == ["destroy"])
        #expect(try xpath(xml, "/domain/on_reboot") == ["restart"])
        #expect(try xpath(xml, "/domain/on_crash") == ["destroy"])
    }

    @Test func devicesAreAVirtioDiskASATACDROMASerialConsoleAndNoGraphics() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: VMSettings(), domainType: "kvm",
                                  diskPath: "/var/lib/libvirt/images/x.qcow2", diskFormat: "qcow2", installMedia: "/srv/iso/d.iso")
        #expect(try xpath(xml, "/domain/devices/disk[@device='disk']/@type") == ["file"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='disk']/driver/@name") == ["qemu"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='disk']/driver/@type") == ["qcow2"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='disk']/source/@file") == ["/var/lib/libvirt/images/x.qcow2"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='disk']/target/@dev") == ["vda"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='disk']/target/@bus") == ["virtio"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='cdrom']/source/@file") == ["/srv/iso/d.iso"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='cdrom']/target/@dev") == ["sda"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='cdrom']/target/@bus") == ["sata"])
        #expect(try xpath(xml, "/domain/devices/disk[@device='cdrom']/readonly").count == 1)
        #expect(try xpath(xml, "/domain/os/boot/@dev") == ["hd", "cdrom"])
        #expect(try xpath(xml, "/domain/devices/serial/@type") == ["pty"])
        #expect(try xpath(xml, "/domain/devices/console/@type") == ["pty"])
        #expect(try xpath(xml, "/domain/devices/graphics").isEmpty)
        #expect(try xpath(xml, "/domain/devices/interface").isEmpty)
    }

    @Test(arguments: [
        ("/srv/a.qcow2", String?.none, "qcow2"), ("/srv/A.QCOW2", nil, "qcow2"), ("/srv/a.img", nil, "raw"),
        ("/srv/a.raw", "raw", "raw"), ("/srv/a.img", "qcow2", "qcow2"),
    ])
    func diskFormatIsTheGivenOneElseQcow2OnlyForQcow2Names(path: String, format: String?, expected: String) throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: VMSettings(), domainType: "kvm", diskPath: path, diskFormat: format, installMedia: nil)
        #expect(try xpath(xml, "/domain/devices/disk/driver/@type") == [expected])
    }

    @Test func aDiskUnderDevIsAttachedAsABlockDevice() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: VMSettings(), domainType: "kvm", diskPath: "/dev/vg0/web01", diskFormat: "raw", installMedia: nil)
        #expect(try xpath(xml, "/domain/devices/disk/@type") == ["block"])
        #expect(try xpath(xml, "/domain/devices/disk/source/@dev") == ["/dev/vg0/web01"])
    }

    @Test func withoutDiskOrMediaThereAreNoDiskElements() throws {
        let xml = DomainXML.build(name: "x", uuid: nil, settings: VMSettings(), domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(xml, "/domain/devices/disk").isEmpty)
    }

    @Test func uuidAndNotesAreIncludedOnlyWhenGiven() throws {
        let bare = DomainXML.build(name: "x", uuid: nil, settings: VMSettings(), domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(bare, "/domain/uuid").isEmpty)
        #expect(try xpath(bare, "/domain/description").isEmpty)
        #expect(try xpath(bare, "/domain/title").isEmpty)
        let uuid = "6a1c1f3e-9f0e-4c55-8d8e-2f1b5b0c7a11"
        let full = DomainXML.build(name: "x", uuid: uuid, settings: try makeSettings(["Notes": .string("hello")]),
                                   domainType: "kvm", diskPath: nil, diskFormat: nil, installMedia: nil)
        #expect(try xpath(full, "/domain/uuid") == [uuid])
        #expect(try xpath(full, "/domain/description") == ["hello"])
    }

    @Test func everyTextIsEscapedSoHostileValuesStayText() throws {
        let hostile = "a'b\"c<d>e&f</description><devices/>"
        let s = try makeSettings(["Notes": .string(hostile)])
        let disk = "/srv/it's \"<disk>\" & more.qcow2"
        let iso = "/srv/x'/><disk device='disk'><source file='/etc/shadow'/>.iso"
        let xml = DomainXML.build(name: "x", uuid: nil, settings: s, domainType: "kvm", diskPath: disk, diskFormat: "qcow2", installMedia: iso)
        #expect(try xpath(xml, "/domain/description") == [hostile])
        #expect(try xpath(xml, "/domain/devices/disk[@device='disk']/source/@file") == [disk])
        #expect(try xpath(xml, "/domain/devices/disk[@device='cdrom']/source/@file") == [iso])
        #expect(try xpath(xml, "/domain/devices/disk").count == 2)
        #expect(try xpath(xml, "/domain/devices").count == 1)
    }

    @Test(arguments: ["kvm", "qemu", "test"])
    func theDomainTypeIsTheOnlyDifferenceBetweenDrivers(type: String) throws {
        let s = try makeSettings(["NewDiskSizeBytes": .uint64(GiB)])
        let xml = DomainXML.build(name: "x", uuid: nil, settings: s, domainType: type, diskPath: "/a.qcow2", diskFormat: "qcow2", installMedia: "/b.iso")
        let kvm = DomainXML.build(name: "x", uuid: nil, settings: s, domainType: "kvm", diskPath: "/a.qcow2", diskFormat: "qcow2", installMedia: "/b.iso")
        #expect(xml.replacingOccurrences(of: "<domain type='\(type)'>", with: "<domain type='kvm'>") == kvm)
    }
}
