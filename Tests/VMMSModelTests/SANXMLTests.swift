import Testing
import VMMSModel

@Suite struct SANAddressTests {
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1", UInt16(3260)),
        ("127.0.0.1:3270", "127.0.0.1", UInt16(3270)),
        ("san.example.com", "san.example.com", UInt16(3260)),
        ("san-1.example.com:860", "san-1.example.com", UInt16(860)),
        ("[::1]", "::1", UInt16(3260)),
        ("[fd00::5]:3261", "fd00::5", UInt16(3261)),
    ])
    func goodPortalsParse(text: String, host: String, port: UInt16) throws {
        let portal = try SANAddress.portal(text)
        #expect(portal.host == host && portal.port == port)
        // Printed back as the SAN's Portal property shows it, always with the port.
        #expect(try SANAddress.portal(portal.description) == portal)
    }

    @Test(arguments: ["", ":3260", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:32a", "::1", "[::1", "[::1]3260",
                      "[]:3260", "300.1.1.1", "1.2.3", "host_name", "-bad.example.com", "a b", "127.0.0.1:3260/x", "iscsi://127.0.0.1"])
    func badPortalsAreRefused(text: String) {
        #expect(throws: SANAddressError.self) { try SANAddress.portal(text) }
    }

    @Test(arguments: ["iqn.2026-12.test.vmms:san1", "iqn.2001-04.com.example", "iqn.1992-01.com.example:storage.disk2.sys1.xyz",
                      "eui.02004567a425678d", "naa.52004567ba64678d", "naa.52004567ba64678d52004567ba64678d"])
    func goodISCSINamesPass(name: String) {
        #expect(SANAddress.validateISCSIName(name, what: "Target") == nil)
    }

    @Test(arguments: ["", "iqn", "iqn.2026-12", "iqn.2026-13.com.example", "iqn.26-12.com.example", "iqn.2026-12.", "iqn.2026-12.com.example:",
                      "IQN.2026-12.com.example", "iqn.2026-12.com.Example", "iqn.2026-12.com.example:a b", "eui.1234", "naa.xyz4567ba64678d",
                      "target1", "iqn.2026-12.-bad.com"])
    func badISCSINamesAreRefused(name: String) {
        let problem = SANAddress.validateISCSIName(name, what: "Target")
        #expect(problem != nil)
        #expect(problem?.hasPrefix("Target") == true, "the message names the option: \(problem ?? "")")
    }

    @Test func worldWideNamesNormalize() {
        #expect(SANAddress.wwn("5001A4A93526D0A1") == "5001a4a93526d0a1")
        #expect(SANAddress.wwn("50:01:a4:a9:35:26:d0:a1") == "5001a4a93526d0a1")
        #expect(SANAddress.wwn("5001a4a93526d0a") == nil)
        #expect(SANAddress.wwn("5001a4a93526d0ag") == nil)
        #expect(SANAddress.wwn("500:1a4:a9:35:26:d0:a1") == nil)
        #expect(SANAddress.isAdapterName("scsi_host5") && !SANAddress.isAdapterName("scsi_host") && !SANAddress.isAdapterName("eth0"))
    }

    @Test func sanNamesFollowTheVMNameRule() {
        #expect(SANAddress.validateName("san 1") == nil)
        #expect(SANAddress.validateName("a/b")?.contains("SAN name") == true)
        #expect(SANAddress.validateName("") != nil)
    }
}

@Suite struct SANXMLTests {
    static let portal = SANAddress.Portal(host: "127.0.0.1", port: 3270)

    @Test func iSCSIPoolRoundTrips() throws {
        let xml = SANXML.iSCSIPool(name: "san1", uuid: "4e356cf4-2e19-4edb-b1d2-88f4ce3ce846", portal: Self.portal,
                                   target: "iqn.2026-12.test.vmms:san1", initiator: "iqn.2026-01.org.example.vmms:host")
        #expect(xml.contains("<pool type='iscsi-direct'>") && xml.contains("<host name='127.0.0.1' port='3270'/>"))
        let description = try #require(SANXML.describe(poolXML: xml))
        #expect(description.type == .iSCSI && description.poolType == "iscsi-direct")
        #expect(description.portal == "127.0.0.1:3270" && description.targetName == "iqn.2026-12.test.vmms:san1")
        #expect(description.initiator == "iqn.2026-01.org.example.vmms:host")
    }

    /// The path a host with an NPIV-capable HBA takes: libvirt's managed vHBA, a scsi pool on an
    /// fc_host adapter (libvirt's formatstorage "vHBA" example).
    @Test func fibreChannelPoolIsAManagedVHBA() throws {
        let xml = SANXML.fibreChannelPool(name: "fc1", uuid: "11111111-2222-3333-4444-555555555555", parent: "scsi_host5",
                                          wwnn: "5001a4a93526d0a1", wwpn: "5001a4ace3ee047d")
        #expect(xml == """
        <pool type='scsi'><name>fc1</name><uuid>11111111-2222-3333-4444-555555555555</uuid><source>\
        <adapter type='fc_host' parent='scsi_host5' managed='yes' wwnn='5001a4a93526d0a1' wwpn='5001a4ace3ee047d'/></source>\
        <target><path>/dev/disk/by-path</path></target></pool>
        """)
        let description = try #require(SANXML.describe(poolXML: xml))
        #expect(description.type == .fibreChannel && description.portal == "scsi_host5")
        #expect(description.targetName == "5001a4a93526d0a1:5001a4ace3ee047d")
        let chosen = SANXML.fibreChannelPool(name: "fc2", uuid: "u", parent: nil, wwnn: "5001a4a93526d0a1", wwpn: "5001a4ace3ee047d")
        #expect(!chosen.contains("parent="))
    }

    @Test func onlySANPoolsAreSANs() {
        #expect(SANXML.describe(poolXML: "<pool type='dir'><name>vmms-disks</name><target><path>/var/lib/vmms</path></target></pool>") == nil)
        #expect(SANXML.describe(poolXML: "<pool type='scsi'><name>h</name><source><adapter type='scsi_host' name='scsi_host0'/></source></pool>") == nil)
        #expect(SANXML.describe(poolXML: "<pool type='iscsi'><name>k</name><source><host name='10.0.0.5'/><device path='iqn.2026-01.com.example:t'/></source></pool>")?.portal == "10.0.0.5:3260")
        #expect(SANXML.describe(poolXML: "not xml") == nil)
    }

    @Test func discoveredTargetsAreRead() {
        let xml = """
        <sources><source><host name='127.0.0.1' port='3270'/><device path='iqn.2026-12.test.vmms:a'/></source>\
        <source><device path='iqn.2026-12.test.vmms:b'/></source></sources>
        """
        #expect(SANXML.discoveredTargets(xml) == ["iqn.2026-12.test.vmms:a", "iqn.2026-12.test.vmms:b"])
        #expect(SANXML.discoverySpec(portal: Self.portal, initiator: "iqn.2026-01.x.y:z").contains("<iqn name='iqn.2026-01.x.y:z'/>"))
    }

    static let san = SANRecord(uuid: "u", name: "san1", type: .iSCSI, poolType: "iscsi-direct", active: true, portal: "127.0.0.1:3270",
                               target: "iqn.2026-12.test.vmms:san1", initiator: "iqn.2026-01.org.example.vmms:host",
                               luns: [SANLUN(name: "unit:0:0:1", source: "iscsi://127.0.0.1:3270/iqn.2026-12.test.vmms:san1/1", capacityBytes: 64 << 20)])

    static let domain = """
    <domain type='qemu'><name>v</name><uuid>0b7d1c2e-5f3a-4e8b-9c1d-2e3f4a5b6c7d</uuid><memory unit='KiB'>65536</memory>
    <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
    <disk type='file' device='cdrom'><source file='/srv/iso/d.iso'/><target dev='sda' bus='sata'/></disk>
    <controller type='scsi' index='0' model='lsilogic'/>
    </devices></domain>
    """

    /// A LUN goes onto a virtio-scsi controller (added next to the lsilogic one), at the first
    /// sdX no disk or CD-ROM uses, and reads back as the LUN's source, which HardDisks shows.
    @Test func lunDiskIsANetworkDiskOnVirtioSCSI() throws {
        let lun = Self.san.luns[0]
        let edited = try SANXML.addingLUNDisk(to: Self.domain, used: ["sdb"]) { SANXML.lunDiskXML(lun, of: Self.san, address: $0, shareable: false) }
        #expect(edited.address == SANXML.SCSIAddress(controller: 1, unit: 0, device: "sdc"))
        #expect(edited.addedController == 1)
        #expect(edited.xml.contains("<controller type=\"scsi\" index=\"1\" model=\"virtio-scsi\"") || edited.xml.contains("<controller type='scsi' index='1' model='virtio-scsi'"), "\(edited.xml)")
        #expect(SANXML.hasVirtioSCSIController(domainXML: edited.xml, index: 1))
        let configuration = try DomainXML.parse(edited.xml)
        #expect(configuration.hardDisks == [.init(path: lun.source, format: "raw", device: "sdc", bus: "scsi")])
        #expect(SANXML.shareableDiskPaths(domainXML: edited.xml).isEmpty)

        // A second LUN reuses the controller and takes the next unit.
        let again = try SANXML.addingLUNDisk(to: edited.xml, used: []) { SANXML.lunDiskXML(lun, of: Self.san, address: $0, shareable: true) }
        #expect(again.address == SANXML.SCSIAddress(controller: 1, unit: 1, device: "sdb"))
        #expect(again.addedController == nil)
        #expect(SANXML.shareableDiskPaths(domainXML: again.xml) == [lun.source])
    }

    @Test func lunDiskXMLCarriesPortalTargetAndInitiator() {
        let xml = SANXML.lunDiskXML(Self.san.luns[0], of: Self.san, address: .init(controller: 0, unit: 2, device: "sdb"), shareable: false)
        #expect(xml == """
        <disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='iscsi' name='iqn.2026-12.test.vmms:san1/1'>\
        <host name='127.0.0.1' port='3270'/><initiator><iqn name='iqn.2026-01.org.example.vmms:host'/></initiator></source>\
        <target dev='sdb' bus='scsi'/><address type='drive' controller='0' bus='0' target='0' unit='2'/></disk>
        """)
        var kernel = Self.san
        kernel.poolType = "iscsi"
        let block = SANXML.lunDiskXML(SANLUN(name: "unit:0:0:1", source: "/dev/disk/by-path/ip-10.0.0.5:3260-iscsi-iqn.x-lun-1", capacityBytes: 1),
                                      of: kernel, address: .init(controller: 0, unit: 0, device: "sda"), shareable: false)
        #expect(block.hasPrefix("<disk type='block' device='disk'>") && block.contains("<source dev='/dev/disk/by-path/ip-10.0.0.5:3260-iscsi-iqn.x-lun-1'/>"))
    }

    @Test func sanOwnsItsLUNsEvenWhileInactive() {
        var san = Self.san
        #expect(san.owns(diskPath: "iscsi://127.0.0.1:3270/iqn.2026-12.test.vmms:san1/1"))
        san.luns = []
        san.active = false
        #expect(san.owns(diskPath: "iscsi://127.0.0.1:3270/iqn.2026-12.test.vmms:san1/7"))
        #expect(!san.owns(diskPath: "iscsi://127.0.0.1:3270/iqn.2026-12.test.vmms:san10/1"))
        #expect(!san.owns(diskPath: "/var/lib/vmms/disk.qcow2"))
        #expect(SANAddress.lunNumber(ofVolume: "unit:0:0:12") == 12 && SANAddress.lunNumber(ofVolume: "disk.qcow2") == nil)
    }
}
