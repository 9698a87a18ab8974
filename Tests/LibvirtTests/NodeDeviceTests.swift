import Libvirt
import Testing

/// On `test:///default`, whose fake host has a Fibre Channel HBA (scsi_host1) that can make
/// NPIV ports. That host is shared by all its connections in the process, so these run one
/// at a time and remove what they create.
@Suite("Node devices", .serialized)
struct NodeDeviceTests {
    let connection: LibvirtConnection

    init() throws {
        connection = try LibvirtConnection(uri: "test:///default")
    }

    @Test func listsEveryDeviceAndFiltersByCapability() throws {
        let all = try connection.allNodeDevices().map { try $0.name }
        #expect(all.contains("computer"))
        let fc = try connection.allNodeDevices(flags: .fcHost).map { try $0.name }
        #expect(fc.contains("scsi_host1"))
        #expect(Set(fc).isSubset(of: Set(all)))
        #expect(try connection.allNodeDevices(flags: .vports).map { try $0.name }.contains("scsi_host1"))
    }

    @Test func deviceHasNameParentCapabilitiesAndXML() throws {
        let hba = try connection.nodeDevice(name: "scsi_host1")
        #expect(hba.parent == "computer")
        #expect(try hba.capabilities().contains("scsi_host"))
        #expect(try hba.xmlDesc().contains("<wwpn>1000000012341234</wwpn>"))
        #expect(try connection.nodeDevice(name: "computer").parent == nil)
    }

    @Test func lookupByWWNIsUnsupportedOnTheTestDriver() throws {
        let error = #expect(throws: LibvirtError.self) {
            try connection.nodeDevice(wwnn: "2000000012341234", wwpn: "1000000012341234")
        }
        #expect(error?.code == .noSupport)
        #expect(error?.function == "virNodeDeviceLookupSCSIHostByWWN")
    }

    @Test func unknownDeviceIsNoNodeDevice() throws {
        let error = #expect(throws: LibvirtError.self) { try connection.nodeDevice(name: "scsi_host999") }
        #expect(error?.code == .noNodeDevice)
        #expect(error?.function == "virNodeDeviceLookupByName")
    }

    @Test func vHBAIsCreatedUnderTheHBAAndDestroyed() throws {
        let vhba = try connection.createNodeDevice(xml: """
            <device><parent>scsi_host1</parent><capability type='scsi_host'><capability type='fc_host'>\
            <wwnn>2001001b32a9da4e</wwnn><wwpn>2101001b32a9da4e</wwpn></capability></capability></device>
            """)
        let name = try vhba.name
        #expect(vhba.parent == "scsi_host1")
        try vhba.destroy()
        #expect(throws: LibvirtError.self) { try connection.nodeDevice(name: name) }
    }
}
