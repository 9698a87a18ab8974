import Foundation

/// Network adapters in domain XML: Hyper-V's network adapters are virtio NICs on a libvirt
/// network (the switch), with a MAC from vmms's range.
extension DomainXML {
    /// An `<interface>` on the network `network`, for new VMs, attaching and detaching.
    public static func interfaceXML(mac: String, network: String) -> String {
        let e = XMLText.escape
        return "<interface type='network'><mac address='\(e(mac))'/><source network='\(e(network))'/><model type='virtio'/></interface>"
    }

    /// A `<controller>` for one PCIe root port, where a hot-plugged device goes on q35.
    public static let rootPortXML = "<controller type='pci' model='pcie-root-port'/>"
}

extension DomainEditor {
    /// How many PCIe root ports generation-2 VMs keep free for hot-plugging adapters and disks.
    public static let spareRootPorts = 3

    /// Adds a virtio adapter on `network` to `<devices>`, after the last one.
    public func addInterface(mac: String, network: String) throws(DomainXMLError) {
        let element = try XMLTreeElement.parse(DomainXML.interfaceXML(mac: mac, network: network))
        let devices = domain.element(named: "devices") ?? domain.add(XMLTreeElement(name: "devices"))
        let after = devices.elements(named: "interface").last ?? devices.elements(named: "disk").last
        devices.add(element, after: after, atStart: true)
    }

    /// Removes the adapter with `mac` (any case); false when there is none.
    @discardableResult
    public func removeInterface(mac: String) -> Bool {
        guard let element = interface(mac: mac) else { return false }
        element.detach()
        return true
    }

    /// The device alias (`net1`) of the adapter with `mac` in a live definition.
    public func alias(ofInterfaceMAC mac: String) -> String? {
        interface(mac: mac)?.element(named: "alias")?.attribute("name")
    }

    /// The running VM's adapters: MAC, network and host tap device (`vnet3`).
    public var liveInterfaces: [(mac: String, network: String?, tap: String?)] {
        (domain.element(named: "devices")?.elements(named: "interface") ?? []).map { interface in
            ((interface.element(named: "mac")?.attribute("address") ?? "").lowercased(),
             interface.attribute("type") == "network" ? interface.element(named: "source")?.attribute("network") : nil,
             interface.element(named: "target")?.attribute("dev"))
        }
    }

    /// Whether the machine is q35 (generation 2), where hot-plugging needs a free root port.
    public var isQ35: Bool {
        domain.element(named: "os")?.element(named: "type")?.attribute("machine")?.contains("q35") ?? false
    }

    /// The PCIe root ports no device sits behind (by the `bus` of every PCI address).
    public var freeRootPorts: Int {
        let busesInUse = Set(Self.descendants(of: domain).compactMap { element -> Int? in
            guard element.name == "address", element.attribute("type") == "pci", let bus = element.attribute("bus") else { return nil }
            return Self.number(bus)
        })
        let ports = (domain.element(named: "devices")?.elements(named: "controller") ?? []).filter {
            $0.attribute("type") == "pci" && $0.attribute("model") == "pcie-root-port"
        }
        return ports.filter { port in port.attribute("index").flatMap(Self.number).map { !busesInUse.contains($0) } ?? true }.count
    }

    /// Adds `count` PCIe root ports (libvirt numbers and places them).
    public func addRootPorts(_ count: Int) throws(DomainXMLError) {
        guard count > 0 else { return }
        let devices = domain.element(named: "devices") ?? domain.add(XMLTreeElement(name: "devices"))
        for _ in 0..<count {
            let after = devices.elements(named: "controller").last
            devices.add(try XMLTreeElement.parse(DomainXML.rootPortXML), after: after, atStart: true)
        }
    }

    private func interface(mac: String) -> XMLTreeElement? {
        domain.element(named: "devices")?.elements(named: "interface").first {
            $0.element(named: "mac")?.attribute("address")?.lowercased() == mac.lowercased()
        }
    }

    private static func descendants(of element: XMLTreeElement) -> [XMLTreeElement] {
        element.elements.flatMap { [$0] + descendants(of: $0) }
    }

    /// `0x03` or `3`.
    private static func number(_ text: String) -> Int? {
        text.hasPrefix("0x") ? Int(text.dropFirst(2), radix: 16) : Int(text)
    }
}

/// MAC addresses for new adapters: vmms's range is the locally administered `02:56:4d`
/// (`VM`) block, like Hyper-V's own 00:15:5D, so they never clash with vendor-assigned NICs
/// or with QEMU's default 52:54:00 of VMs made elsewhere.
public enum MACAddressRule {
    public static let prefix = "02:56:4d"

    /// A MAC from the range not in `taken` (lowercase); `random` gives 24 bits.
    public static func allocate(avoiding taken: Set<String>, random: () -> UInt32) -> String? {
        for _ in 0..<64 {
            let bits = random() & 0xFF_FFFF
            let mac = prefix + String(format: ":%02x:%02x:%02x", Int(bits >> 16), Int(bits >> 8 & 0xFF), Int(bits & 0xFF))
            if !taken.contains(mac) { return mac }
        }
        return nil
    }

    /// Normalizes `aa:BB:...` to lowercase; nil unless six colon-separated hex octets.
    public static func normalize(_ text: String) -> String? {
        let octets = text.split(separator: ":", omittingEmptySubsequences: false)
        guard octets.count == 6, octets.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isHexDigit) }) else { return nil }
        return text.lowercased()
    }
}
