import Testing
import VMMSModel

@Suite struct HostFactsTests {
    @Test(arguments: [("QEMU", true, "kvm"), ("QEMU", false, "qemu"), ("TEST", false, "test"), ("Xen", false, "xen")])
    func hypervisorNameFollowsDriverAndAccelerator(driver: String, kvm: Bool, expected: String) {
        #expect(HypervisorFacts.hypervisorName(driverType: driver, usesKVM: kvm) == expected)
    }

    @Test func secureBootIsOfferedOnlyWhenTheLoaderHasASecureVariant() {
        let withSecure = """
        <os supported='yes'><loader supported='yes'><enum name='type'><value>pflash</value></enum>
        <enum name='secure'><value>yes</value><value>no</value></enum></loader></os>
        """
        let withoutSecure = """
        <os supported='yes'><loader supported='yes'><enum name='secure'><value>no</value></enum></loader></os>
        """
        #expect(HypervisorFacts.offersSecureBoot(domainCapabilitiesXML: withSecure))
        #expect(!HypervisorFacts.offersSecureBoot(domainCapabilitiesXML: withoutSecure))
        #expect(!HypervisorFacts.offersSecureBoot(domainCapabilitiesXML: "<domainCapabilities/>"))
    }

    @Test(arguments: [("", false), ("relative", false), ("/", false), ("/a/../b", false), ("/a/./b", false),
                      ("/a\nb", false), ("//", false), ("//srv", false), ("/srv//vms", false), ("/srv/vms/", true),
                      ("/proc/self/root", false), ("/dev/shm", false), ("/sysadmin", true),
                      ("/var/lib/vmms", true), ("/srv/vm disks", true)])
    func storagePathRule(path: String, valid: Bool) {
        #expect((StoragePathRule.validate(path) == nil) == valid)
    }
}
