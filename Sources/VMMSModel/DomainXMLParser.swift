import Foundation

/// Domain XML that could not be read.
public struct DomainXMLError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension DomainXML {
    /// Reads the XML of any domain — one vmms created, or one defined with `virsh` — into the
    /// contract's terms.
    ///
    /// Without vmms metadata: generation 2 when `<os firmware='efi'>` or a pflash `<loader>`
    /// is present, else 1; Secure Boot from the `secure-boot` firmware feature or
    /// `<loader secure='yes'>`; processor reserve/maximum 0/100, relative weight from
    /// `<cputune><shares>` (else 100); dynamic memory off, minimum = startup memory.
    /// Memory units follow libvirt (`b`/`bytes`, `KB`/`MB`/… powers of 1000, `k`/`KiB`/`M`/
    /// `MiB`/… powers of 1024, default KiB).
    public static func parse(_ xml: String) throws(DomainXMLError) -> VMConfiguration {
        let domain = try DomainXML.document(xml, what: "domain XML")
        guard domain.name == "domain" else {
            throw DomainXMLError("the XML is not a libvirt domain: the root element is not <domain>")
        }
        let reader = Reader(root: domain)
        guard let name = reader.text("name"), !name.isEmpty else {
            throw DomainXMLError("the domain XML has no <name>")
        }

        let metadata = reader.metadata()

        // Firmware.
        let firmwareAttribute = reader.attribute("os", "firmware")
        let loaderType = reader.attribute("os/loader", "type")
        let inferredGeneration: UInt32 = firmwareAttribute == "efi" || loaderType == "pflash" ? 2 : 1
        let generation = metadata.generation.flatMap { $0 == 1 || $0 == 2 ? $0 : nil } ?? inferredGeneration
        let secureFeature = reader.elements("os/firmware/feature").first { $0.attribute("name") == "secure-boot" }
        let secureBoot = secureFeature?.attribute("enabled") == "yes"
            || reader.attribute("os/loader", "secure") == "yes"

        // Processors.
        let vcpuCurrent = reader.attribute("vcpu", "current").flatMap { UInt32($0) }
        let vcpuText = reader.text("vcpu").flatMap { UInt32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let processorCount = vcpuCurrent ?? vcpuText ?? 1
        let shares = reader.text("cputune/shares").flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let weight = metadata.processorRelativeWeight ?? shares.map(weight(forCPUShares:)) ?? 100

        // Memory.
        guard let maximum = try reader.memory("memory") else {
            throw DomainXMLError("the domain XML has no <memory>")
        }
        let current = try reader.memory("currentMemory")
        let startup = current ?? maximum
        let dynamic = metadata.dynamicMemory ?? false

        // Devices.
        var hardDisks: [VMConfiguration.HardDisk] = []
        var cdroms: [VMConfiguration.OpticalDrive] = []
        for disk in reader.elements("devices/disk") {
            let device = disk.attribute("device") ?? "disk"
            let type = disk.attribute("type") ?? "file"
            let source = disk.element(named: "source")
            let path: String? = switch type {
            case "file": source?.attribute("file")
            case "block": source?.attribute("dev")
            case "network": SANXML.networkDiskPath(source)
            default: nil
            }
            let target = disk.element(named: "target")
            let dev = target?.attribute("dev") ?? ""
            let bus = target?.attribute("bus") ?? ""
            switch device {
            case "disk":
                guard let path, !path.isEmpty else { continue }
                let format = disk.element(named: "driver")?.attribute("type") ?? "raw"
                hardDisks.append(.init(path: path, format: format, device: dev, bus: bus))
            case "cdrom":
                cdroms.append(.init(path: path.flatMap { $0.isEmpty ? nil : $0 }, device: dev, bus: bus))
            default:
                continue
            }
        }
        var adapters: [VMConfiguration.NetworkAdapter] = []
        for interface in reader.elements("devices/interface") {
            let type = interface.attribute("type")
            let source = interface.element(named: "source")
            adapters.append(.init(
                mac: (interface.element(named: "mac")?.attribute("address") ?? "").lowercased(),
                network: type == "network" ? source?.attribute("network") : nil,
                bridge: type == "bridge" ? source?.attribute("bridge") : nil,
                model: interface.element(named: "model")?.attribute("type")))
        }

        return VMConfiguration(
            name: name,
            uuid: (reader.text("uuid") ?? "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased(),
            generation: generation,
            secureBoot: secureBoot,
            processorCount: processorCount,
            processorReserve: metadata.processorReserve ?? 0,
            processorMaximum: metadata.processorMaximum ?? 100,
            processorRelativeWeight: weight,
            memoryStartupBytes: startup,
            memoryMaximumBytes: maximum,
            dynamicMemoryEnabled: dynamic,
            memoryMinimumBytes: dynamic ? (metadata.memoryMinimumBytes ?? startup) : startup,
            hardDisks: hardDisks,
            cdroms: cdroms,
            networkAdapters: adapters,
            notes: reader.text("description") ?? "")
    }

    /// Parses into an `XMLTreeElement` (the root). A DOCTYPE could declare entities, which
    /// libvirt never writes, so it is refused up front rather than trusted to the parser.
    static func document(_ xml: String, what: String) throws(DomainXMLError) -> XMLTreeElement {
        if xml.allSatisfy({ $0.isWhitespace }) { throw DomainXMLError("the \(what) is empty") }
        if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
            throw DomainXMLError("the \(what) has a DOCTYPE, which libvirt never writes")
        }
        do {
            return try XMLTreeElement.parse(xml)
        } catch {
            throw DomainXMLError("the \(what) is not well-formed: \(error.message)")
        }
    }

    /// Bytes for a libvirt scaled integer (`<memory unit='…'>`), `nil` for an unknown unit or
    /// a value that overflows.
    public static func bytes(_ value: UInt64, unit: String?) -> UInt64? {
        let multiplier: UInt64
        switch unit ?? "KiB" {
        case "b", "byte", "bytes": multiplier = 1
        case "KB": multiplier = 1000
        case "k", "K", "KiB": multiplier = 1 << 10
        case "MB": multiplier = 1_000_000
        case "m", "M", "MiB": multiplier = 1 << 20
        case "GB": multiplier = 1_000_000_000
        case "g", "G", "GiB": multiplier = 1 << 30
        case "TB": multiplier = 1_000_000_000_000
        case "t", "T", "TiB": multiplier = 1 << 40
        case "PB": multiplier = 1_000_000_000_000_000
        case "p", "P", "PiB": multiplier = 1 << 50
        case "EB": multiplier = 1_000_000_000_000_000_000
        case "e", "E", "EiB": multiplier = 1 << 60
        default: return nil
        }
        let (result, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : result
    }
}

/// Element lookups by `/`-separated path below `<domain>`. Names match the qualified name,
/// so a prefixed element (some application's metadata) never stands in for libvirt's own.
private struct Reader {
    let root: XMLTreeElement

    /// All elements at a `/`-separated path below the root.
    func elements(_ path: String) -> [XMLTreeElement] {
        var current = [root]
        for step in path.split(separator: "/") {
            current = current.flatMap { $0.elements(named: String(step)) }
        }
        return current
    }

    func text(_ path: String) -> String? {
        elements(path).first?.stringValue
    }

    func attribute(_ path: String, _ name: String) -> String? {
        elements(path).first?.attribute(name)
    }

    func memory(_ path: String) throws(DomainXMLError) -> UInt64? {
        guard let element = elements(path).first else { return nil }
        let text = element.stringValue.trimmingCharacters(in: .whitespacesAndNewlines)
        let unit = element.attribute("unit")
        guard let value = UInt64(text), let bytes = DomainXML.bytes(value, unit: unit) else {
            throw DomainXMLError("<\(path)> holds '\(text)' in unit '\(unit ?? "KiB")', which is not a size")
        }
        return bytes
    }

    /// Our element in `<metadata>`, matched by namespace URI whatever its prefix; its children
    /// by local name (libvirt re-prefixes them when the service sets the metadata).
    func metadata() -> VMMetadata {
        elements("metadata").lazy.compactMap(VMMetadata.element(in:)).first.map(VMMetadata.init(element:)) ?? VMMetadata()
    }
}

extension VMMetadata {
    /// Reads what `virDomainGetMetadata(…, VIR_DOMAIN_METADATA_ELEMENT, VMMetadata.namespace,
    /// …)` returns: the element without prefix (`<vm><generation>2</generation>…</vm>`). A
    /// prefixed element is read too. Values that are missing or not numbers stay `nil`.
    public static func parse(_ xml: String) throws(DomainXMLError) -> VMMetadata {
        let root = try DomainXML.document(xml, what: "metadata element")
        guard root.localName == "vm" else {
            throw DomainXMLError("the metadata element is not <vm>")
        }
        return VMMetadata(element: root)
    }

    /// Our element among the children of `<metadata>`, matched by namespace URI whatever its
    /// prefix.
    static func element(in metadata: XMLTreeElement) -> XMLTreeElement? {
        metadata.elements.first { $0.localName == "vm" && $0.uri == namespace }
    }

    init(element vm: XMLTreeElement) {
        var values: [String: String] = [:]
        for child in vm.elements {
            let local = child.localName
            if values[local] == nil {
                values[local] = child.stringValue.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        self.init(
            generation: values["generation"].flatMap { UInt32($0) },
            dynamicMemory: values["dynamicMemory"].flatMap { $0 == "true" || $0 == "1" ? true : $0 == "false" || $0 == "0" ? false : nil },
            memoryMinimumBytes: values["memoryMinimumBytes"].flatMap { UInt64($0) },
            processorReserve: values["processorReserve"].flatMap { UInt32($0) },
            processorMaximum: values["processorMaximum"].flatMap { UInt32($0) },
            processorRelativeWeight: values["processorRelativeWeight"].flatMap { UInt32($0) },
            resetNVRAM: values["resetNVRAM"].map { $0 == "true" || $0 == "1" })
    }
}
