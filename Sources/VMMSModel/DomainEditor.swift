import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Edits a domain's persistent XML for the VM setters, so that each change is one
/// `virDomainDefineXML`: libvirt checks the whole result and either takes it or leaves the
/// old definition untouched.
///
/// Everything the editor does not know is kept as it was (devices, `<seclabel>`, other
/// applications' metadata). Settings vmms owns but libvirt has no element for are kept in
/// our `<metadata>` element, rewritten in full.
public struct DomainEditor {
    /// libvirt's default CFS period, used when a limit needs a quota.
    public static let cpuPeriodMicroseconds: UInt64 = 100_000

    private let document: XMLDocument
    private let domain: XMLElement

    public init(xml: String) throws(DomainXMLError) {
        document = try DomainXML.document(xml, what: "domain XML")
        guard let root = document.rootElement(), root.name == "domain" else {
            throw DomainXMLError("the XML is not a libvirt domain: the root element is not <domain>")
        }
        domain = root
    }

    /// The edited XML.
    public var xml: String { domain.xmlString }

    /// The number of vCPU slots (`<vcpu>`), which bounds hot-plugging on a running VM.
    public var maximumProcessorCount: UInt32? {
        child(domain, "vcpu").flatMap { UInt32(($0.stringValue ?? "").trimmingCharacters(in: .whitespaces)) }
    }

    // MARK: Processor

    /// Hyper-V's processor settings on libvirt:
    /// - count → `<vcpu placement='static'>count</vcpu>` (a `current` attribute, per-vCPU
    ///   `<vcpus>` and a CPU topology that no longer multiplies out are dropped);
    /// - relative weight → `<cputune><shares>` (`DomainXML.cpuShares(forWeight:)`);
    /// - maximum (percent of each virtual processor) → CFS bandwidth of each vCPU thread:
    ///   `<period>100000</period><quota>1000 × maximum</quota>`, none at 100 %;
    /// - reserve has no CFS counterpart (Linux guarantees no floor), so it lives in our
    ///   metadata and the service checks it against the host's capacity.
    public func setProcessor(count: UInt32, reserve: UInt32, maximum: UInt32, weight: UInt32) {
        let vcpu = child(domain, "vcpu") ?? insert(XMLElement(name: "vcpu"), into: domain, after: ["currentMemory", "memory"])
        vcpu.stringValue = String(count)
        vcpu.removeAttribute(forName: "current")
        if vcpu.attribute(forName: "placement") == nil { vcpu.addAttribute(attribute("placement", "static")) }
        if let vcpus = child(domain, "vcpus") { vcpus.detach() }
        if let cpu = child(domain, "cpu"), let topology = child(cpu, "topology") {
            for name in ["dies", "cores", "threads"] where topology.attribute(forName: name) != nil {
                topology.attribute(forName: name)?.stringValue = "1"
            }
            topology.attribute(forName: "sockets")?.stringValue = String(count)
            if topology.attribute(forName: "sockets") == nil { topology.addAttribute(attribute("sockets", String(count))) }
        }

        let cputune = child(domain, "cputune") ?? insert(XMLElement(name: "cputune"), into: domain, after: ["vcpus", "vcpu"])
        set(cputune, "shares", String(DomainXML.cpuShares(forWeight: weight)))
        if maximum < 100 {
            set(cputune, "period", String(Self.cpuPeriodMicroseconds))
            set(cputune, "quota", String(Self.quota(forMaximum: maximum)))
        } else {
            child(cputune, "period")?.detach()
            child(cputune, "quota")?.detach()
        }
        updateMetadata { $0.processorReserve = reserve; $0.processorMaximum = maximum; $0.processorRelativeWeight = weight }
    }

    /// The per-vCPU CFS quota for a maximum in percent (1…100).
    public static func quota(forMaximum maximum: UInt32) -> Int64 {
        Int64(cpuPeriodMicroseconds) * Int64(maximum) / 100
    }

    // MARK: Memory

    /// Hyper-V memory on libvirt's balloon: `<memory>` is the most the guest can have (the
    /// dynamic maximum, or the startup amount with static memory), `<currentMemory>` the
    /// balloon target at boot (the startup amount); the dynamic minimum is ours.
    public func setMemory(startupBytes: UInt64, maximumBytes: UInt64, dynamic: Bool, minimumBytes: UInt64) {
        let memory = child(domain, "memory") ?? insert(XMLElement(name: "memory"), into: domain, after: ["metadata", "description", "title", "uuid", "name"])
        setKiB(memory, maximumBytes)
        let current = child(domain, "currentMemory") ?? insert(XMLElement(name: "currentMemory"), into: domain, after: ["maxMemory", "memory"])
        setKiB(current, startupBytes)
        updateMetadata { $0.dynamicMemory = dynamic; $0.memoryMinimumBytes = minimumBytes }
    }

    // MARK: Firmware

    /// Secure Boot on OVMF through libvirt's firmware auto-selection: the `secure-boot` and
    /// `enrolled-keys` firmware features, and SMM, which the Secure Boot builds need. A
    /// concrete `<loader>` would pin the old choice, and the NVRAM template goes with it,
    /// so both are dropped. The NVRAM made from the old template (keys enrolled or not) no
    /// longer fits, and libvirt can only reset it when starting, so the metadata asks the
    /// next Start to do that (`VIR_DOMAIN_START_RESET_NVRAM`).
    public func setSecureBoot(_ enabled: Bool) {
        guard let os = child(domain, "os") else { return }
        if os.attribute(forName: "firmware") == nil { os.addAttribute(attribute("firmware", "efi")) }
        child(os, "loader")?.detach()
        if let nvram = child(os, "nvram") { nvram.removeAttribute(forName: "template") }
        let firmware = child(os, "firmware") ?? insert(XMLElement(name: "firmware"), into: os, after: ["type"])
        for name in ["secure-boot", "enrolled-keys"] {
            let feature = elements(firmware, "feature").first { $0.attribute(forName: "name")?.stringValue == name }
                ?? { let f = XMLElement(name: "feature"); f.addAttribute(attribute("name", name)); firmware.addChild(f); return f }()
            feature.removeAttribute(forName: "enabled")
            feature.addAttribute(attribute("enabled", enabled ? "yes" : "no"))
        }
        let features = child(domain, "features") ?? insert(XMLElement(name: "features"), into: domain, after: ["os"])
        if enabled {
            let smm = child(features, "smm") ?? { let e = XMLElement(name: "smm"); features.addChild(e); return e }()
            smm.removeAttribute(forName: "state")
            smm.addAttribute(attribute("state", "on"))
        } else {
            child(features, "smm")?.detach()
        }
        updateMetadata { $0.resetNVRAM = true }
    }

    // MARK: Disks

    /// The XML of a virtual hard disk on virtio, for attaching and for matching on detach.
    public static func diskXML(path: String, format: String, target: String) -> String {
        let e = XMLText.escape
        let block = path.hasPrefix("/dev/")
        return """
        <disk type='\(block ? "block" : "file")' device='disk'><driver name='qemu' type='\(e(format))'/>\
        <source \(block ? "dev" : "file")='\(e(path))'/><target dev='\(e(target))' bus='virtio'/></disk>
        """
    }

    /// Adds a virtual hard disk to `<devices>`.
    public func addDisk(path: String, format: String, target: String) throws(DomainXMLError) {
        let element: XMLElement
        do { element = try XMLElement(xmlString: Self.diskXML(path: path, format: format, target: target)) } catch {
            throw DomainXMLError("cannot build the disk element: \(error.localizedDescription)")
        }
        let devices = child(domain, "devices") ?? { let e = XMLElement(name: "devices"); domain.addChild(e); return e }()
        // After the last disk, where libvirt itself keeps them.
        if let last = (devices.children ?? []).lastIndex(where: { ($0 as? XMLElement)?.name == "disk" }) {
            devices.insertChild(element, at: last + 1)
        } else {
            devices.insertChild(element, at: 0)
        }
    }

    /// Removes the hard disk at `target` (`vdb`, …); false when there is none.
    @discardableResult
    public func removeDisk(target: String) -> Bool {
        guard let devices = child(domain, "devices") else { return false }
        for disk in elements(devices, "disk") where (disk.attribute(forName: "device")?.stringValue ?? "disk") == "disk" {
            if child(disk, "target")?.attribute(forName: "dev")?.stringValue == target {
                disk.detach()
                return true
            }
        }
        return false
    }

    /// The first `vdX` target no disk of `configuration` uses.
    public static func freeDiskTarget(in configuration: VMConfiguration) -> String? {
        let used = Set(configuration.hardDisks.map(\.device) + configuration.cdroms.map(\.device))
        let letters = "abcdefghijklmnopqrstuvwxyz"
        return letters.map { "vd\($0)" }.first { !used.contains($0) }
    }

    // MARK: Helpers

    private func updateMetadata(_ change: (inout VMMetadata) -> Void) {
        let container = child(domain, "metadata") ?? insert(XMLElement(name: "metadata"), into: domain, after: ["description", "title", "uuid", "name"])
        let existing = (container.children ?? []).compactMap { $0 as? XMLElement }
            .first { ($0.localName ?? "") == "vm" && $0.uri == VMMetadata.namespace }
        var metadata = existing.map(VMMetadata.init(element:)) ?? VMMetadata()
        change(&metadata)
        existing?.detach()
        if let element = try? XMLElement(xmlString: metadata.xml()) { container.addChild(element) }
    }

    private func child(_ element: XMLElement, _ name: String) -> XMLElement? {
        elements(element, name).first
    }

    private func elements(_ element: XMLElement, _ name: String) -> [XMLElement] {
        (element.children ?? []).compactMap { $0 as? XMLElement }.filter { $0.name == name }
    }

    private func attribute(_ name: String, _ value: String) -> XMLNode {
        let node = XMLNode(kind: .attribute)
        node.name = name
        node.stringValue = value
        return node
    }

    /// Inserts `element` after the first of `predecessors` present (libvirt does not care
    /// about order, people reading `virsh dumpxml` do), else first.
    @discardableResult
    private func insert(_ element: XMLElement, into parent: XMLElement, after predecessors: [String]) -> XMLElement {
        let children = parent.children ?? []
        for name in predecessors {
            if let index = children.firstIndex(where: { ($0 as? XMLElement)?.name == name }) {
                parent.insertChild(element, at: index + 1)
                return element
            }
        }
        parent.insertChild(element, at: 0)
        return element
    }

    private func set(_ parent: XMLElement, _ name: String, _ value: String) {
        let element = child(parent, name) ?? { let e = XMLElement(name: name); parent.addChild(e); return e }()
        element.stringValue = value
    }

    private func setKiB(_ element: XMLElement, _ bytes: UInt64) {
        element.removeAttribute(forName: "unit")
        element.addAttribute(attribute("unit", "KiB"))
        element.stringValue = String(bytes / 1024)
    }
}
