/// libvirt network XML for switches: building it for `Host.CreateSwitch` and reading any
/// network's XML as a switch.
///
/// | type | network |
/// |---|---|
/// | Private | `<bridge stp='off' delay='0'/>`, no `<ip>`, no `<forward>` |
/// | Internal | the same plus `<ip>` with `<dhcp>` (dnsmasq) |
/// | NAT | `<forward mode='nat'/>` + bridge + `<ip>`/`<dhcp>` |
/// | External | `<forward mode='bridge'/><bridge name='BR'/>` on a bridge vmms makes around the NIC, or macvtap: `<forward mode='bridge'><interface dev='NIC'/></forward>` |
public enum NetworkXML {
    /// The namespace of vmms's element in a network's `<metadata>`.
    public static let namespace = "https://example.org/vmms/switch/1"

    public static func build(_ spec: SwitchSpec, uuid: String? = nil) -> String {
        let e = XMLText.escape
        var x = ["<network>", "  <name>\(e(spec.name))</name>"]
        if let uuid { x.append("  <uuid>\(e(uuid))</uuid>") }
        if spec.type == .external {
            x.append("  <metadata>")
            x.append("    <vmms:switch xmlns:vmms='\(namespace)' interface='\(e(spec.interface ?? ""))' managed-bridge='\(spec.mode == .bridge ? "yes" : "no")'/>")
            x.append("  </metadata>")
        }
        switch spec.type {
        case .nat: x.append("  <forward mode='nat'/>")
        case .external where spec.mode == .macvtap:
            x.append("  <forward mode='bridge'>")
            x.append("    <interface dev='\(e(spec.interface ?? ""))'/>")
            x.append("  </forward>")
        case .external: x.append("  <forward mode='bridge'/>")
        default: break
        }
        if spec.type == .external {
            if spec.mode == .bridge { x.append("  <bridge name='\(e(spec.bridge ?? ""))'/>") }
        } else {
            let name = spec.bridge.map { "name='\(e($0))' " } ?? ""
            x.append("  <bridge \(name)stp='off' delay='0'/>")
        }
        if let address = spec.address, spec.type == .internal || spec.type == .nat {
            x.append("  <ip address='\(address.addressText)' netmask='\(address.netmask)'>")
            if let range = address.dhcpRange {
                x.append("    <dhcp>")
                x.append("      <range start='\(IPv4CIDR.dotted(range.start))' end='\(IPv4CIDR.dotted(range.end))'/>")
                x.append("    </dhcp>")
            }
            x.append("  </ip>")
        }
        x.append("</network>")
        return x.joined(separator: "\n") + "\n"
    }

    /// Any libvirt network as a switch (`active` is not in the XML: the caller sets it).
    public static func parse(_ xml: String) throws(DomainXMLError) -> SwitchRecord {
        let network = try DomainXML.document(xml, what: "network XML")
        guard network.name == "network" else { throw DomainXMLError("the XML is not a libvirt network: the root element is not <network>") }
        let name = network.element(named: "name")?.stringValue ?? ""
        let uuid = network.element(named: "uuid")?.stringValue.lowercased() ?? ""
        let forward = network.element(named: "forward")
        let mode = forward.map { $0.attribute("mode") ?? "nat" }
        var address = ""
        for ip in network.elements(named: "ip") where (ip.attribute("family") ?? "ipv4") == "ipv4" {
            guard let text = ip.attribute("address") else { continue }
            let cidr = ip.attribute("netmask").flatMap { IPv4CIDR(address: text, netmask: $0) }
                ?? ip.attribute("prefix").flatMap { Int($0) }.flatMap { IPv4CIDR("\(text)/\($0)") }
                ?? IPv4CIDR("\(text)/24")
            if let cidr { address = cidr.description; break }
        }
        let ours = network.element(named: "metadata")?.elements.first { $0.localName == "switch" && $0.uri == namespace }
        let type: SwitchType
        switch mode {
        case nil: type = address.isEmpty ? .private : .internal
        case "nat": type = .nat
        case "route", "open": type = .routed
        default: type = .external
        }
        var interface = ""
        if type == .external {
            interface = forward?.attribute("dev") ?? forward?.elements(named: "interface").first?.attribute("dev")
                ?? forward?.element(named: "pf")?.attribute("dev") ?? ours?.attribute("interface") ?? ""
        }
        return SwitchRecord(name: name, uuid: uuid, type: type, bridge: network.element(named: "bridge")?.attribute("name") ?? "",
                            address: address, interface: interface, managedBridge: ours?.attribute("managed-bridge") == "yes")
    }
}
