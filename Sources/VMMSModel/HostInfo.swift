import Foundation

/// What the host object publishes about the hypervisor, read from libvirt when the service
/// connects and kept in memory so property reads never reach libvirt.
public struct HostInfo: Sendable, Equatable {
    public var hostname: String
    /// `kvm`, `qemu` (software emulation) or `test`.
    public var hypervisor: String
    public var connectionURI: String
    public var connected: Bool
    public var hypervisorVersion: String
    public var logicalProcessorCount: UInt32
    public var memoryCapacityBytes: UInt64
    public var secureBootAvailable: Bool

    public init(hostname: String = "", hypervisor: String = "", connectionURI: String, connected: Bool = false,
                hypervisorVersion: String = "", logicalProcessorCount: UInt32 = 0, memoryCapacityBytes: UInt64 = 0,
                secureBootAvailable: Bool = false) {
        self.hostname = hostname
        self.hypervisor = hypervisor
        self.connectionURI = connectionURI
        self.connected = connected
        self.hypervisorVersion = hypervisorVersion
        self.logicalProcessorCount = logicalProcessorCount
        self.memoryCapacityBytes = memoryCapacityBytes
        self.secureBootAvailable = secureBootAvailable
    }
}

/// Decisions about the hypervisor drawn from libvirt's answers, kept free of libvirt itself.
public enum HypervisorFacts {
    /// The `Hypervisor` property: libvirt's driver type and whether KVM will be used.
    public static func hypervisorName(driverType: String, usesKVM: Bool) -> String {
        switch driverType.lowercased() {
        case "test": "test"
        case "qemu": usesKVM ? "kvm" : "qemu"
        default: driverType.lowercased()
        }
    }

    /// Whether the domain capabilities XML offers KVM (`<domain type='kvm'>` in `virsh
    /// domcapabilities --virttype kvm` only succeeds where /dev/kvm works for libvirt).
    public static func offersKVM(domainCapabilitiesXML xml: String) -> Bool {
        xml.contains("<domain>kvm</domain>")
    }

    /// Whether UEFI firmware with Secure Boot can be chosen: the loader's `secure` enum offers
    /// `yes` in the domain capabilities (firmware descriptors with the secure-boot feature).
    public static func offersSecureBoot(domainCapabilitiesXML xml: String) -> Bool {
        guard let loaderStart = xml.range(of: "<loader supported='yes'>"),
              let loaderEnd = xml.range(of: "</loader>", range: loaderStart.upperBound..<xml.endIndex) else { return false }
        let loader = xml[loaderStart.upperBound..<loaderEnd.lowerBound]
        guard let secure = loader.range(of: "<enum name='secure'>"),
              let secureEnd = loader.range(of: "</enum>", range: secure.upperBound..<loader.endIndex) else { return false }
        return loader[secure.upperBound..<secureEnd.lowerBound].contains("<value>yes</value>")
    }
}
