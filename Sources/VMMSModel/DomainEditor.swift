import Foundation

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

    let domain: XMLTreeElement

    public init(xml: String) throws(DomainXMLError) {
        domain = try DomainXML.document(xml, what: "domain XML")
        guard domain.name == "domain" else {
            throw DomainXMLError("the XML is not a libvirt domain: the root element is not <domain>")
        }
    }

    /// The edited XML.
    public var xml: String { domain.xmlString }

    /// The number of vCPU slots (`<vcpu>`), which bounds hot-plugging on a running VM.
    public var maximumProcessorCount: UInt32? {
        domain.element(named: "vcpu").flatMap { UInt32($0.stringValue.trimmingCharacters(in: .whitespaces)) }
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
        let vcpu = domain.element(named: "vcpu") ?? insert("vcpu", into: domain, after: ["currentMemory", "memory"])
        vcpu.stringValue = String(count)
        vcpu.removeAttribute("current")
        if vcpu.attribute("placement") == nil { vcpu.setAttribute("placement", "static") }
        domain.element(named: "vcpus")?.detach()
        if let cpu = domain.element(named: "cpu"), let topology = cpu.element(named: "topology") {
            for name in ["dies", "cores", "threads"] where topology.attribute(name) != nil {
                topology.setAttribute(name, "1")
            }
            topology.setAttribute("sockets", String(count))
        }

        let cputune = domain.element(named: "cputune") ?? insert("cputune", into: domain, after: ["vcpus", "vcpu"])
        set(cputune, "shares", String(DomainXML.cpuShares(forWeight: weight)))
        if maximum < 100 {
            set(cputune, "period", String(Self.cpuPeriodMicroseconds))
            set(cputune, "quota", String(Self.quota(forMaximum: maximum)))
        } else {
            cputune.element(named: "period")?.detach()
            cputune.element(named: "quota")?.detach()
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
        let memory = domain.element(named: "memory") ?? insert("memory", into: domain, after: ["metadata", "description", "title", "uuid", "name"])
        setKiB(memory, maximumBytes)
        let current = domain.element(named: "currentMemory") ?? insert("currentMemory", into: domain, after: ["maxMemory", "memory"])
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
        guard let os = domain.element(named: "os") else { return }
        if os.attribute("firmware") == nil { os.setAttribute("firmware", "efi") }
        os.element(named: "loader")?.detach()
        os.element(named: "nvram")?.removeAttribute("template")
        let firmware = os.element(named: "firmware") ?? insert("firmware", into: os, after: ["type"])
        for name in ["secure-boot", "enrolled-keys"] {
            let feature = firmware.elements(named: "feature").first { $0.attribute("name") == name }
                ?? firmware.add(XMLTreeElement(name: "feature", attributes: [("name", name)]))
            feature.setAttribute("enabled", enabled ? "yes" : "no")
        }
        let features = domain.element(named: "features") ?? insert("features", into: domain, after: ["os"])
        if enabled {
            (features.element(named: "smm") ?? features.add(XMLTreeElement(name: "smm"))).setAttribute("state", "on")
        } else {
            features.element(named: "smm")?.detach()
        }
        updateMetadata { $0.resetNVRAM = true }
    }

    // MARK: Disks

    /// Adds a virtual hard disk to `<devices>`.
    public func addDisk(path: String, format: String, target: String) throws(DomainXMLError) {
        let element = try XMLTreeElement.parse(DomainXML.diskXML(path: path, format: format, target: target))
        let devices = domain.element(named: "devices") ?? domain.add(XMLTreeElement(name: "devices"))
        // After the last disk, where libvirt itself keeps them.
        devices.add(element, after: devices.elements(named: "disk").last, atStart: true)
    }

    /// Removes the hard disk at `target` (`vdb`, …); false when there is none.
    @discardableResult
    public func removeDisk(target: String) -> Bool {
        guard let devices = domain.element(named: "devices") else { return false }
        for disk in devices.elements(named: "disk") where (disk.attribute("device") ?? "disk") == "disk" {
            if disk.element(named: "target")?.attribute("dev") == target {
                disk.detach()
                return true
            }
        }
        return false
    }

    /// The device alias (`virtio-disk1`) libvirt gave the disk at `target` in a live
    /// definition; nil when there is no such disk or it has no alias (inactive XML).
    public func alias(ofDiskTarget target: String) -> String? {
        guard let devices = domain.element(named: "devices") else { return nil }
        return devices.elements(named: "disk")
            .first { $0.element(named: "target")?.attribute("dev") == target }?
            .element(named: "alias")?.attribute("name")
    }

    /// The target names of every `<disk>` (files, volumes, network disks, CD-ROMs).
    public var diskTargets: Set<String> {
        guard let devices = domain.element(named: "devices") else { return [] }
        return Set(devices.elements(named: "disk").compactMap { $0.element(named: "target")?.attribute("dev") })
    }

    /// The first `vdX` target not in `used`.
    public static func freeDiskTarget(notIn used: Set<String>) -> String? {
        "abcdefghijklmnopqrstuvwxyz".map { "vd\($0)" }.first { !used.contains($0) }
    }

    // MARK: Helpers

    private func updateMetadata(_ change: (inout VMMetadata) -> Void) {
        let container = domain.element(named: "metadata") ?? insert("metadata", into: domain, after: ["description", "title", "uuid", "name"])
        let existing = VMMetadata.element(in: container)
        var metadata = existing.map(VMMetadata.init(element:)) ?? VMMetadata()
        change(&metadata)
        existing?.detach()
        if let element = try? XMLTreeElement.parse(metadata.xml()) { container.add(element) }
    }

    /// A new `name` element in `parent` after the first of `predecessors` present (libvirt
    /// does not care about order, people reading `virsh dumpxml` do), else first.
    private func insert(_ name: String, into parent: XMLTreeElement, after predecessors: [String]) -> XMLTreeElement {
        let sibling = predecessors.lazy.compactMap { parent.element(named: $0) }.first
        return parent.add(XMLTreeElement(name: name), after: sibling, atStart: true)
    }

    private func set(_ parent: XMLTreeElement, _ name: String, _ value: String) {
        (parent.element(named: name) ?? parent.add(XMLTreeElement(name: name))).stringValue = value
    }

    private func setKiB(_ element: XMLTreeElement, _ bytes: UInt64) {
        element.setAttribute("unit", "KiB")
        element.stringValue = String(bytes / 1024)
    }
}
