import Testing
import VMMSModel

private let MiB: UInt64 = 1 << 20
private let GiB: UInt64 = 1 << 30

@Suite struct DomainXMLParseTests {
    /// What `virt-install` and `virsh dumpxml --inactive` write for a VM defined outside vmms
    /// (libvirt 9.0, an explicit OVMF loader, two NICs, several kinds of disks).
    static let foreignXML = """
    <domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
      <name>legacy-db</name>
      <uuid>7B3E0D2A-1C44-4F0B-9E8A-0C1D2E3F4A5B</uuid>
      <title>Database</title>
      <description>made by virt-install &amp; friends</description>
      <metadata>
        <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
          <libosinfo:os id="http://debian.org/debian/12"/>
        </libosinfo:libosinfo>
        <other:vm xmlns:other="https://example.com/not-vmms">
          <other:generation>1</other:generation>
        </other:vm>
      </metadata>
      <memory unit='GiB'>4</memory>
      <currentMemory unit='MiB'>2048</currentMemory>
      <vcpu placement='static' current='2'>8</vcpu>
      <cputune>
        <shares>512</shares>
      </cputune>
      <os>
        <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
        <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
        <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/legacy-db_VARS.fd</nvram>
        <boot dev='hd'/>
      </os>
      <features><acpi/><apic/><smm state='on'/></features>
      <devices>
        <emulator>/usr/bin/qemu-system-x86_64</emulator>
        <disk type='file' device='disk'>
          <driver name='qemu' type='qcow2' discard='unmap'/>
          <source file='/var/lib/libvirt/images/legacy-db.qcow2'/>
          <target dev='vda' bus='virtio'/>
          <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
        </disk>
        <disk type='block' device='disk'>
          <driver name='qemu' type='raw' cache='none' io='native'/>
          <source dev='/dev/vg0/legacy-data'/>
          <target dev='vdb' bus='virtio'/>
        </disk>
        <disk type='file' device='disk'>
          <source file='/srv/no-driver.img'/>
          <target dev='sdb' bus='scsi'/>
        </disk>
        <disk type='volume' device='disk'>
          <driver name='qemu' type='qcow2'/>
          <source pool='default' volume='pooled.qcow2'/>
          <target dev='vdc' bus='virtio'/>
        </disk>
        <disk type='network' device='disk'>
          <driver name='qemu' type='raw'/>
          <source protocol='rbd' name='pool/image'/>
          <target dev='vdd' bus='virtio'/>
        </disk>
        <disk type='file' device='cdrom'>
          <driver name='qemu' type='raw'/>
          <target dev='sda' bus='sata'/>
          <readonly/>
        </disk>
        <disk type='file' device='cdrom'>
          <driver name='qemu' type='raw'/>
          <source file='/srv/iso/debian-12.iso'/>
          <target dev='sdc' bus='sata'/>
          <readonly/>
        </disk>
        <disk type='file' device='floppy'>
          <source file='/srv/floppy.img'/>
          <target dev='fda' bus='fdc'/>
        </disk>
        <interface type='network'>
          <mac address='52:54:00:AB:CD:EF'/>
          <source network='default'/>
          <model type='virtio'/>
        </interface>
        <interface type='bridge'>
          <mac address='52:54:00:12:34:56'/>
          <source bridge='br0'/>
          <model type='e1000e'/>
        </interface>
        <interface type='user'>
          <mac address='52:54:00:00:00:01'/>
        </interface>
      </devices>
      <qemu:commandline><qemu:arg value='-no-user-config'/></qemu:commandline>
    </domain>
    """

    @Test func readsAForeignDomainWithoutVMMSMetadata() throws {
        let c = try DomainXML.parse(Self.foreignXML)
        #expect(c.name == "legacy-db")
        #expect(c.uuid == "7b3e0d2a-1c44-4f0b-9e8a-0c1d2e3f4a5b")
        #expect(c.notes == "made by virt-install & friends")
        #expect(c.generation == 2)           // a pflash loader, not the foreign metadata
        #expect(c.secureBoot)                // loader secure='yes'
        #expect(c.processorCount == 2)       // current, not the maximum
        #expect(c.processorReserve == 0 && c.processorMaximum == 100)
        #expect(c.processorRelativeWeight == 50)  // shares 512
        #expect(c.memoryStartupBytes == 2 * GiB)
        #expect(c.memoryMaximumBytes == 4 * GiB)
        #expect(!c.dynamicMemoryEnabled)
        #expect(c.memoryMinimumBytes == 2 * GiB)
        #expect(c.hardDisks == [
            .init(path: "/var/lib/libvirt/images/legacy-db.qcow2", format: "qcow2", device: "vda", bus: "virtio"),
            .init(path: "/dev/vg0/legacy-data", format: "raw", device: "vdb", bus: "virtio"),
            .init(path: "/srv/no-driver.img", format: "raw", device: "sdb", bus: "scsi"),
        ])
        #expect(c.cdroms == [.init(path: nil, device: "sda", bus: "sata"), .init(path: "/srv/iso/debian-12.iso", device: "sdc", bus: "sata")])
        #expect(c.networkAdapters == [
            .init(mac: "52:54:00:ab:cd:ef", network: "default", bridge: nil, model: "virtio"),
            .init(mac: "52:54:00:12:34:56", network: nil, bridge: "br0", model: "e1000e"),
            .init(mac: "52:54:00:00:00:01", network: nil, bridge: nil, model: nil),
        ])
    }

    @Test func aMinimalBIOSDomainGetsTheDefaults() throws {
        let c = try DomainXML.parse("""
        <domain type='qemu'><name>tiny</name><memory>65536</memory>
        <vcpu>1</vcpu><os><type>hvm</type></os></domain>
        """)
        #expect(c == VMConfiguration(name: "tiny", generation: 1, secureBoot: false, processorCount: 1,
                                     memoryStartupBytes: 64 * MiB, memoryMaximumBytes: 64 * MiB, memoryMinimumBytes: 64 * MiB))
    }

    @Test func efiFirmwareAutoselectionMeansGeneration2AndItsFeatureMeansSecureBoot() throws {
        func parse(_ os: String) throws -> VMConfiguration {
            try DomainXML.parse("<domain type='kvm'><name>e</name><memory unit='MiB'>64</memory>\(os)</domain>")
        }
        let secure = try parse("<os firmware='efi'><type>hvm</type><firmware><feature enabled='yes' name='secure-boot'/></firmware></os>")
        #expect(secure.generation == 2 && secure.secureBoot)
        let insecure = try parse("<os firmware='efi'><type>hvm</type><firmware><feature enabled='no' name='secure-boot'/><feature enabled='yes' name='enrolled-keys'/></firmware></os>")
        #expect(insecure.generation == 2 && !insecure.secureBoot)
        let plain = try parse("<os firmware='efi'><type>hvm</type></os>")
        #expect(plain.generation == 2 && !plain.secureBoot)
        let loader = try parse("<os><type>hvm</type><loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader></os>")
        #expect(loader.generation == 2 && !loader.secureBoot)
        let rom = try parse("<os><type>hvm</type><loader type='rom'>/usr/share/seabios/bios.bin</loader></os>")
        #expect(rom.generation == 1)
    }

    @Test func vmmsMetadataWinsOverInference() throws {
        let c = try DomainXML.parse("""
        <domain type='kvm'>
          <name>meta</name>
          <metadata>
            <x:vm xmlns:x="https://example.org/vmms/1">
              <x:generation>1</x:generation>
              <x:dynamicMemory>true</x:dynamicMemory>
              <x:memoryMinimumBytes>268435456</x:memoryMinimumBytes>
              <x:processorReserve>10</x:processorReserve>
              <x:processorMaximum>75</x:processorMaximum>
              <x:processorRelativeWeight>300</x:processorRelativeWeight>
            </x:vm>
          </metadata>
          <memory unit='KiB'>4194304</memory>
          <currentMemory unit='KiB'>1048576</currentMemory>
          <vcpu placement='static'>2</vcpu>
          <cputune><shares>1024</shares></cputune>
          <os firmware='efi'><type>hvm</type></os>
        </domain>
        """)
        #expect(c.generation == 1)  // the metadata, whatever the prefix
        #expect(c.dynamicMemoryEnabled)
        #expect(c.memoryMinimumBytes == 256 * MiB)
        #expect(c.memoryStartupBytes == GiB && c.memoryMaximumBytes == 4 * GiB)
        #expect(c.processorReserve == 10 && c.processorMaximum == 75 && c.processorRelativeWeight == 300)
    }

    @Test func metadataAsLibvirtWritesItForSetMetadataIsRead() throws {
        // virDomainSetMetadata(ELEMENT, "<vm><generation>2</generation></vm>", "vmms", uri)
        // stores the children unprefixed in the default namespace of the element.
        let c = try DomainXML.parse("""
        <domain type='kvm'><name>m</name><metadata>
        <vmms:vm xmlns:vmms="https://example.org/vmms/1"><generation>2</generation><dynamicMemory>1</dynamicMemory></vmms:vm>
        </metadata><memory>131072</memory><os><type>hvm</type></os></domain>
        """)
        #expect(c.generation == 2 && c.dynamicMemoryEnabled && c.memoryMinimumBytes == 128 * MiB)
    }

    @Test func nonsenseInTheMetadataFallsBackToInference() throws {
        let c = try DomainXML.parse("""
        <domain type='kvm'><name>m</name><metadata><vmms:vm xmlns:vmms="https://example.org/vmms/1">
        <vmms:generation>7</vmms:generation><vmms:dynamicMemory>maybe</vmms:dynamicMemory>
        <vmms:processorMaximum>-1</vmms:processorMaximum></vmms:vm></metadata>
        <memory>131072</memory><os firmware='efi'><type>hvm</type></os></domain>
        """)
        #expect(c.generation == 2 && !c.dynamicMemoryEnabled && c.processorMaximum == 100)
    }

    @Test(arguments: [
        ("b", UInt64(67_108_864), UInt64(64 * MiB)), ("bytes", 67_108_864, 64 * MiB),
        ("KiB", 65_536, 64 * MiB), ("k", 65_536, 64 * MiB), ("K", 65_536, 64 * MiB),
        ("MiB", 64, 64 * MiB), ("M", 64, 64 * MiB), ("GiB", 2, 2 * GiB), ("G", 2, 2 * GiB),
        ("TiB", 1, 1 << 40), ("KB", 1000, 1_000_000), ("MB", 100, 100_000_000), ("GB", 1, 1_000_000_000),
    ])
    func memoryUnitsFollowLibvirt(unit: String, value: UInt64, bytes: UInt64) throws {
        let c = try DomainXML.parse("<domain type='kvm'><name>u</name><memory unit='\(unit)'>\(value)</memory><currentMemory unit='\(unit)'>\(value)</currentMemory><os><type>hvm</type></os></domain>")
        #expect(c.memoryStartupBytes == bytes && c.memoryMaximumBytes == bytes)
    }

    @Test func memoryWithoutAUnitIsKiB() throws {
        let c = try DomainXML.parse("<domain><name>u</name><memory>1024</memory><currentMemory>512</currentMemory></domain>")
        #expect(c.memoryMaximumBytes == MiB && c.memoryStartupBytes == MiB / 2)
    }

    @Test(arguments: [
        "", " \n", "not xml", "<domain>", "<domain><name>x</name>", "<?xml version='1.0'?>",
        "<!DOCTYPE domain [<!ENTITY x SYSTEM 'file:///etc/hostname'>]><domain><name>&x;</name></domain>", "<network><name>x</name></network>", "<domain type='kvm'><memory>1</memory></domain>",
        "<domain><name>x</name></domain>", "<domain><name>x</name><memory>1024</memory>",
        "<domain><name>x</name><memory unit='parsecs'>1</memory></domain>",
        "<domain><name>x</name><memory>lots</memory></domain>",
        "<domain><name>x</name><memory unit='EiB'>100</memory></domain>",
    ])
    func unreadableXMLIsAnError(xml: String) {
        #expect(throws: DomainXMLError.self) { try DomainXML.parse(xml) }
    }

    @Test func builtXMLParsesBackToTheSettings() throws {
        let s = try makeSettings(["Generation": .uint32(2), "ProcessorCount": .uint32(3), "MemoryStartupBytes": .uint64(GiB),
                                  "DynamicMemory": .bool(true), "MemoryMinimumBytes": .uint64(512 * MiB),
                                  "MemoryMaximumBytes": .uint64(8 * GiB), "Notes": .string("<notes & 'quotes'>")])
        let xml = DomainXML.build(name: "round.trip", uuid: "11111111-2222-3333-4444-555555555555", settings: s, domainType: "kvm",
                                  diskPath: "/srv/a&b.qcow2", diskFormat: "qcow2", installMedia: "/srv/x.iso")
        let c = try DomainXML.parse(xml)
        #expect(c == VMConfiguration(
            name: "round.trip", uuid: "11111111-2222-3333-4444-555555555555", generation: 2, secureBoot: true,
            processorCount: 3, processorReserve: 0, processorMaximum: 100, processorRelativeWeight: 100,
            memoryStartupBytes: GiB, memoryMaximumBytes: 8 * GiB, dynamicMemoryEnabled: true, memoryMinimumBytes: 512 * MiB,
            hardDisks: [.init(path: "/srv/a&b.qcow2", format: "qcow2", device: "vda", bus: "virtio")],
            cdroms: [.init(path: "/srv/x.iso", device: "sda", bus: "sata")],
            networkAdapters: [], notes: "<notes & 'quotes'>"))
    }

    @Test func metadataFromGetMetadataIsReadWithOrWithoutPrefix() throws {
        let all = VMMetadata(generation: 1, dynamicMemory: true, memoryMinimumBytes: 64 * MiB, processorReserve: 5,
                             processorMaximum: 90, processorRelativeWeight: 150)
        #expect(try VMMetadata.parse(all.elementForSetMetadata) == all)
        #expect(try VMMetadata.parse(all.xml()) == all)
        #expect(try VMMetadata.parse("<vm>\n  <generation> 2 </generation>\n  <future>x</future>\n</vm>\n") == VMMetadata(generation: 2))
        #expect(throws: DomainXMLError.self) { try VMMetadata.parse("<other/>") }
        #expect(throws: DomainXMLError.self) { try VMMetadata.parse("") }
    }

    @Test func metadataElementForSetMetadataHasNoPrefix() {
        #expect(VMMetadata(generation: 2, processorReserve: 3).elementForSetMetadata == """
        <vm>
          <generation>2</generation>
          <processorReserve>3</processorReserve>
        </vm>
        """)
    }

    @Test func metadataElementRendersOnlyWhatIsSet() {
        #expect(VMMetadata(generation: 2).xml() == """
        <vmms:vm xmlns:vmms="https://example.org/vmms/1">
          <vmms:generation>2</vmms:generation>
        </vmms:vm>
        """)
        #expect(VMMetadata.prefix == "vmms")
    }

    static let scaled: [(UInt64, String?, UInt64?)] = [(5, "b", 5), (1, "EiB", 1 << 60), (16, "EiB", nil), (1, "furlong", nil), (3, nil, 3072)]

    @Test(arguments: scaled)
    func scaledIntegersConvertOrReportNil(value: UInt64, unit: String?, bytes: UInt64?) {
        #expect(DomainXML.bytes(value, unit: unit) == bytes)
    }
}
