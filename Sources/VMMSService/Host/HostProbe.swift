import Libvirt
import VMMSModel

/// Reads the host facts from libvirt. Blocking: runs on the libvirt worker.
enum HostProbe {
    static func read(_ connection: LibvirtConnection, accelerator: Accelerator) throws -> HostInfo {
        let node = try connection.nodeInfo()
        let driver = try connection.type()
        // Secure Boot firmware needs SMM, which libvirt only offers on q35; ask about that machine.
        let kvmCapabilities = try? connection.domainCapabilitiesXML(machine: "q35", virttype: "kvm")
        let offersKVM = kvmCapabilities.map(HypervisorFacts.offersKVM) ?? false
        let usesKVM = switch accelerator {
        case .kvm: true
        case .tcg: false
        case .auto: offersKVM
        }
        let capabilities = (usesKVM ? kvmCapabilities : nil) ?? (try? connection.domainCapabilitiesXML(machine: "q35", virttype: "qemu"))
        return HostInfo(
            hostname: try connection.hostname(),
            hypervisor: HypervisorFacts.hypervisorName(driverType: driver, usesKVM: usesKVM),
            connectionURI: try connection.uri,
            connected: true,
            hypervisorVersion: (try? connection.hypervisorVersion()) ?? "",
            logicalProcessorCount: node.cpus,
            // virNodeGetInfo's memory comes from the NUMA topology and is wrong on some
            // virtual hosts (half of the memory, changing); the memory statistics' total is
            // what /proc/meminfo says. The test driver has no statistics.
            memoryCapacityBytes: (try? connection.memoryStats())?["total"].map { $0 * 1024 } ?? node.memoryBytes,
            secureBootAvailable: capabilities.map(HypervisorFacts.offersSecureBoot) ?? false)
    }
}
