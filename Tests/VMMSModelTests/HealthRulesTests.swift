import Testing
import VMMSModel

@Suite struct HealthRulesTests {
    /// A host that complies with every rule.
    static var healthy: HealthFacts {
        var facts = HealthFacts()
        facts.connectionURI = "qemu:///system"
        facts.storagePaths = [.init(property: "VirtualMachinePath", path: "/var/lib/vmms", exists: true, isDirectory: true, writable: true)]
        facts.fileSystems = [.init(mountPoint: "/", freeBytes: 100 << 30, potentialGrowthBytes: 10 << 30)]
        facts.hostMemoryBytes = 16 << 30
        facts.runningMemoryBytes = 8 << 30
        facts.switches = [.init(name: "lab", network: "lab", bridge: "virbr7", interface: "", active: true,
                                bridgeExists: true, interfaceExists: true, usedBy: ["web01"])]
        return facts
    }

    static func rules(_ facts: HealthFacts) -> [String] { HealthRules.evaluate(facts).map(\.rule) }

    @Test func aHealthyHostHasNoFindings() {
        #expect(HealthRules.evaluate(Self.healthy).isEmpty)
    }

    @Test func eachRuleFiresOnItsFactAndNamesWhatToDo() {
        var facts = Self.healthy
        facts.libvirtConnected = false
        let libvirt = HealthRules.evaluate(facts)
        #expect(libvirt.map(\.rule) == ["vmms.libvirt-reachable"] && libvirt[0].severity == .error)
        #expect(libvirt[0].message.contains("qemu:///system") && libvirt[0].message.contains("systemctl start libvirtd"))

        facts = Self.healthy
        facts.hypervisor = "qemu"
        facts.kvmDevice = false
        #expect(HealthRules.evaluate(facts).first?.message.contains("/dev/kvm is missing") == true)
        facts.kvmDevice = true
        #expect(HealthRules.evaluate(facts).first?.message.contains("accelerator") == true)

        facts = Self.healthy
        facts.polkitdRunning = false
        #expect(Self.rules(facts) == ["vmms.polkitd-running"])
        facts.polkitdRunning = nil
        #expect(Self.rules(facts).isEmpty, "no polkit rule on a session bus")

        facts = Self.healthy
        facts.ovmfInstalled = false
        #expect(Self.rules(facts) == ["vmms.ovmf-installed"])
        facts.hypervisor = "test"
        #expect(Self.rules(facts).isEmpty, "the test driver needs no firmware")

        facts = Self.healthy
        facts.storagePaths = [.init(property: "VirtualHardDiskPath", path: "/gone", exists: false, isDirectory: false, writable: false),
                              .init(property: "VirtualMachinePath", path: "/etc/passwd", exists: true, isDirectory: false, writable: true),
                              .init(property: "VirtualMachinePath", path: "/ro", exists: true, isDirectory: true, writable: false)]
        let paths = HealthRules.evaluate(facts)
        #expect(paths.map(\.rule) == Array(repeating: "vmms.storage-path", count: 3))
        #expect(paths[0].message.contains("/gone") && paths[0].message.contains("mkdir -p /gone"))
        #expect(paths[1].message.contains("not a directory") && paths[2].message.contains("not writable"))

        facts = Self.healthy
        facts.fileSystems = [.init(mountPoint: "/srv", freeBytes: 5 << 30, potentialGrowthBytes: 20 << 30),
                             .init(mountPoint: "/var", freeBytes: 512 << 20, potentialGrowthBytes: 0)]
        let space = HealthRules.evaluate(facts)
        #expect(space.map(\.rule) == ["vmms.disk-space", "vmms.disk-space"])
        #expect(space[0].message.contains("20 GiB") && space[0].message.contains("5 GiB") && space[0].message.contains("/srv"))
        #expect(space[1].message.contains("512 MiB"))

        facts = Self.healthy
        facts.missingDisks = [("web01", "/srv/web01.qcow2")]
        facts.pausedVMs = ["db01"]
        facts.vmsWithCheckpoints = ["web01"]
        let vms = HealthRules.evaluate(facts)
        #expect(vms.map(\.rule) == ["vmms.missing-disks", "vmms.paused-vms", "vmms.checkpoints"], "errors first, then warnings, then information")
        #expect(vms[0].message.contains("web01: /srv/web01.qcow2") && vms[1].message.contains("db01") && vms[2].severity == .information)

        facts = Self.healthy
        facts.runningMemoryBytes = 17 << 30
        #expect(Self.rules(facts) == ["vmms.memory-overcommit"])

        facts = Self.healthy
        facts.switches = [.init(name: "lab", network: "lab", bridge: "virbr7", interface: "", active: true, bridgeExists: false,
                                interfaceExists: true, usedBy: []),
                          .init(name: "ext", network: "ext", bridge: "br-ext", interface: "eth9", active: true, bridgeExists: true,
                                interfaceExists: false, usedBy: []),
                          .init(name: "off", network: "off", bridge: "virbr9", interface: "", active: false, bridgeExists: false,
                                interfaceExists: true, usedBy: ["web01"]),
                          .init(name: "unused", network: "unused", bridge: "virbr8", interface: "", active: false, bridgeExists: false,
                                interfaceExists: true, usedBy: [])]
        let switches = HealthRules.evaluate(facts)
        #expect(switches.count == 3, "an inactive switch no VM uses is fine: \(switches)")
        #expect(switches.contains { $0.message.contains("virbr7") } && switches.contains { $0.message.contains("eth9") }
                && switches.contains { $0.message.contains("web01") && $0.message.contains("virsh net-start off") })

        facts = Self.healthy
        facts.sans = [.init(name: "san1", path: "/org/example/VMMS1/SAN/san1", detail: "127.0.0.1:3260 iqn.2026-12.test:t", active: false),
                      .init(name: "san2", path: "/org/example/VMMS1/SAN/san2", detail: "127.0.0.1:3260 iqn.2026-12.test:u", active: true)]
        let san = HealthRules.evaluate(facts)
        #expect(san.count == 1 && san[0].message.contains("iqn.2026-12.test:t") && san[0].message.contains("Refresh on /org/example/VMMS1/SAN/san1"))

        facts = Self.healthy
        facts.dnsmasqInstalled = false
        #expect(Self.rules(facts) == ["vmms.dnsmasq-installed"])
        facts.needsDnsmasq = false
        #expect(Self.rules(facts).isEmpty, "only Internal and NAT switches need dnsmasq")

        facts = Self.healthy
        facts.adminGroupExists = false
        facts.serviceEnabled = false
        #expect(Self.rules(facts) == ["vmms.admin-group", "vmms.service-enabled"])
        facts.adminGroupExists = nil
        facts.serviceEnabled = nil
        #expect(Self.rules(facts).isEmpty)
    }

    @Test func everyRuleIDIsInTheCatalogue() {
        var facts = Self.healthy
        facts.libvirtConnected = false
        facts.hypervisor = "qemu"
        facts.polkitdRunning = false
        facts.ovmfInstalled = false
        facts.storagePaths[0].exists = false
        facts.fileSystems[0].freeBytes = 1
        facts.missingDisks = [("a", "/a")]
        facts.pausedVMs = ["a"]
        facts.vmsWithCheckpoints = ["a"]
        facts.runningMemoryBytes = 32 << 30
        facts.switches[0].bridgeExists = false
        facts.sans = [.init(name: "s", path: "/s", detail: "", active: false)]
        facts.dnsmasqInstalled = false
        facts.adminGroupExists = false
        facts.serviceEnabled = false
        let fired = Set(Self.rules(facts))
        #expect(fired == Set(HealthRules.catalogue.map(\.id)))
    }

    @Test func bytesReadAsAdministratorsWriteThem() {
        #expect(Bytes.text(512) == "512 bytes")
        #expect(Bytes.text(1536) == "1.5 KiB")
        #expect(Bytes.text(10 << 30) == "10 GiB")
    }
}
