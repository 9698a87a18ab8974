import CLibvirt
import Libvirt
import Testing

/// `LibvirtError.Code` / `.Domain` carry libvirt's numbers, and the codes libvirt really
/// reports for the situations the service maps are pinned here.
@Suite("Error codes")
struct ErrorCodeTests {
    @Test(arguments: [
        (LibvirtError.Code.internalError, VIR_ERR_INTERNAL_ERROR), (.noSupport, VIR_ERR_NO_SUPPORT),
        (.noConnect, VIR_ERR_NO_CONNECT), (.invalidConn, VIR_ERR_INVALID_CONN), (.invalidArg, VIR_ERR_INVALID_ARG),
        (.operationFailed, VIR_ERR_OPERATION_FAILED), (.domainExists, VIR_ERR_DOM_EXIST),
        (.networkExists, VIR_ERR_NETWORK_EXIST), (.systemError, VIR_ERR_SYSTEM_ERROR), (.rpc, VIR_ERR_RPC),
        (.noDomain, VIR_ERR_NO_DOMAIN), (.noNetwork, VIR_ERR_NO_NETWORK), (.authFailed, VIR_ERR_AUTH_FAILED),
        (.noStoragePool, VIR_ERR_NO_STORAGE_POOL), (.noStorageVolume, VIR_ERR_NO_STORAGE_VOL),
        (.invalidNodeDevice, VIR_ERR_INVALID_NODE_DEVICE), (.noNodeDevice, VIR_ERR_NO_NODE_DEVICE),
        (.operationInvalid, VIR_ERR_OPERATION_INVALID), (.operationTimeout, VIR_ERR_OPERATION_TIMEOUT),
        (.noDomainSnapshot, VIR_ERR_NO_DOMAIN_SNAPSHOT), (.operationAborted, VIR_ERR_OPERATION_ABORTED),
        (.noDomainMetadata, VIR_ERR_NO_DOMAIN_METADATA), (.migrateUnsafe, VIR_ERR_MIGRATE_UNSAFE),
        (.agentUnresponsive, VIR_ERR_AGENT_UNRESPONSIVE), (.storageVolumeExists, VIR_ERR_STORAGE_VOL_EXIST),
        (.multipleDomains, VIR_ERR_MULTIPLE_DOMAINS),
    ])
    func codeMatchesVirErrorNumber(code: LibvirtError.Code, c: virErrorNumber) {
        #expect(UInt32(code.rawValue) == c.rawValue)
    }

    @Test func domainExistsIs28AndNot52() {
        // The service once took 52 (VIR_ERR_INVALID_NODE_DEVICE) for VIR_ERR_DOM_EXIST.
        #expect(LibvirtError.Code.domainExists.rawValue == 28)
        #expect(LibvirtError.Code(rawValue: 52) == .invalidNodeDevice)
    }

    @Test func descriptionNamesTheCode() {
        #expect(LibvirtError.Code.noDomain.description == "VIR_ERR_NO_DOMAIN (42)")
        #expect(LibvirtError.Code.domainExists.name == "VIR_ERR_DOM_EXIST")
        #expect(LibvirtError.Domain.qemu.description == "VIR_FROM_QEMU (10)")
        #expect(LibvirtError.Domain.unspecified.name == "VIR_FROM_NONE")
    }

    @Test func unknownNumbersStillDescribeThemselves() {
        let code = LibvirtError.Code(rawValue: 9999)
        #expect(code.name == nil)
        #expect(code.description == "VIR_ERR_? (9999)")
        #expect(LibvirtError.Domain(rawValue: 9999).description == "VIR_FROM_? (9999)")
    }

    @Test func errorDescriptionNamesFunctionMessageCodeAndDomain() throws {
        let connection = try openTestDriver()
        let error = #expect(throws: LibvirtError.self) { try connection.domain(name: "missing") }
        #expect(error?.code == .noDomain)
        #expect(error?.domain == .test)
        #expect(error?.description.hasPrefix("virDomainLookupByName: ") == true)
        #expect(error?.description.hasSuffix("(VIR_ERR_NO_DOMAIN (42), VIR_FROM_TEST (12))") == true)
    }

    @Test func definingATakenNameWithAnotherUUIDIsOperationFailed() throws {
        let connection = try openTestDriver()
        _ = try connection.defineDomain(xml: minimalDomainXML(name: "x", uuid: "6f1c8c1e-2b1a-4f8e-9d0c-000000000001"))
        let error = #expect(throws: LibvirtError.self) {
            try connection.defineDomain(xml: minimalDomainXML(name: "x", uuid: "6f1c8c1e-2b1a-4f8e-9d0c-000000000002"))
        }
        #expect(error?.code == .operationFailed, "\(String(describing: error))")
    }

    @Test func renamingOntoATakenNameIsOperationInvalid() throws {
        let connection = try openTestDriver()
        let x = try connection.defineDomain(xml: minimalDomainXML(name: "x"))
        _ = try connection.defineDomain(xml: minimalDomainXML(name: "y"))
        let error = #expect(throws: LibvirtError.self) { try x.rename(to: "y") }
        #expect(error?.code == .operationInvalid, "\(String(describing: error))")
    }

}
