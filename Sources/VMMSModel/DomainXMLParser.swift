import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

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
        let document = try DomainXML.document(xml, what: "domain XML")
        // libxml2's recovery mode accepts truncated XML; libvirt's always ends with the root's
        // end tag, so anything else is refused rather than read half.
        guard xml.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("</domain>") else {
            throw DomainXMLError("the domain XML is not well-formed: it does not end with </domain>")
        }
        guard let domain = document.rootElement(), domain.name == "domain" else {
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
        let secureFeature = reader.elements("os/firmware/feature").first { $0.attribute(forName: "name")?.stringValue == "secure-boot" }
        let secureBoot = secureFeature?.attribute(forName: "enabled")?.stringValue == "yes"
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
            let device = disk.attribute(forName: "device")?.stringValue ?? "disk"
            let type = disk.attribute(forName: "type")?.stringValue ?? "file"
            let source = Reader.child(disk, "source")
            let path: String? = switch type {
            case "file": source?.attribute(forName: "file")?.stringValue
            case "block": source?.attribute(forName: "dev")?.stringValue
            default: nil
            }
            let target = Reader.child(disk, "target")
            let dev = target?.attribute(forName: "dev")?.stringValue ?? ""
            let bus = target?.attribute(forName: "bus")?.stringValue ?? ""
            switch device {
            case "disk":
                guard let path, !path.isEmpty else { continue }
                let format = Reader.child(disk, "driver")?.attribute(forName: "type")?.stringValue ?? "raw"
                hardDisks.append(.init(path: path, format: format, device: dev, bus: bus))
            case "cdrom":
                cdroms.append(.init(path: path.flatMap { $0.isEmpty ? nil : $0 }, device: dev, bus: bus))
            default:
                continue
            }
        }
        var adapters: [VMConfiguration.NetworkAdapter] = []
        for interface in reader.elements("devices/interface") {
            let type = interface.attribute(forName: "type")?.stringValue
            let source = Reader.child(interface, "source")
            adapters.append(.init(
                mac: (Reader.child(interface, "mac")?.attribute(forName: "address")?.stringValue ?? "").lowercased(),
                network: type == "network" ? source?.attribute(forName: "network")?.stringValue : nil,
                bridge: type == "bridge" ? source?.attribute(forName: "bridge")?.stringValue : nil,
                model: Reader.child(interface, "model")?.attribute(forName: "type")?.stringValue))
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

    /// Parses with FoundationXML, working around what it does with input libvirt never
    /// produces: an empty string crashes `XMLDocument` (libxml2 returns no document and
    /// FoundationXML dereferences it), and a DOCTYPE could declare entities, which FoundationXML
    /// substitutes by default (files included), so both are refused up front. FoundationXML
    /// parses in libxml2's recovery mode: malformed XML does not throw but yields what could be
    /// recovered (libxml2 prints the errors to stderr), so callers check what they find.
    static func document(_ xml: String, what: String) throws(DomainXMLError) -> XMLDocument {
        if xml.allSatisfy({ $0.isWhitespace }) { throw DomainXMLError("the \(what) is empty") }
        if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
            throw DomainXMLError("the \(what) has a DOCTYPE, which libvirt never writes")
        }
        do {
            return try XMLDocument(xmlString: xml, options: [.nodeLoadExternalEntitiesNever])
        } catch {
            throw DomainXMLError("the \(what) is not well-formed: \(error.localizedDescription)")
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

/// Child-element lookups by path below `<domain>`. Plain element walking rather than XPath:
/// libvirt's own XML has no namespaces outside `<metadata>`, and walking avoids depending on
/// how FoundationXML maps prefixes in XPath expressions.
private struct Reader {
    let root: XMLElement

    static func children(_ element: XMLElement, _ name: String) -> [XMLElement] {
        (element.children ?? []).compactMap { $0 as? XMLElement }.filter { ($0.localName ?? $0.name) == name && !($0.name ?? "").contains(":") }
    }

    static func child(_ element: XMLElement, _ name: String) -> XMLElement? {
        children(element, name).first
    }

    /// All elements at a `/`-separated path below the root.
    func elements(_ path: String) -> [XMLElement] {
        var current = [root]
        for step in path.split(separator: "/") {
            current = current.flatMap { Self.children($0, String(step)) }
        }
        return current
    }

    func text(_ path: String) -> String? {
        elements(path).first?.stringValue
    }

    func attribute(_ path: String, _ name: String) -> String? {
        elements(path).first?.attribute(forName: name)?.stringValue
    }

    func memory(_ path: String) throws(DomainXMLError) -> UInt64? {
        guard let element = elements(path).first else { return nil }
        let text = (element.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let unit = element.attribute(forName: "unit")?.stringValue
        guard let value = UInt64(text), let bytes = DomainXML.bytes(value, unit: unit) else {
            throw DomainXMLError("<\(path)> holds '\(text)' in unit '\(unit ?? "KiB")', which is not a size")
        }
        return bytes
    }

    /// Our element in `<metadata>`, matched by namespace URI whatever its prefix; its children
    /// by local name (libvirt re-prefixes them when the service sets the metadata).
    func metadata() -> VMMetadata {
        guard let vm = elements("metadata").flatMap({ ($0.children ?? []).compactMap { $0 as? XMLElement } })
            .first(where: { ($0.localName ?? "") == "vm" && $0.uri == VMMetadata.namespace }) else { return VMMetadata() }
        return VMMetadata(element: vm)
    }
}

extension VMMetadata {
    /// Reads what `virDomainGetMetadata(…, VIR_DOMAIN_METADATA_ELEMENT, VMMetadata.namespace,
    /// …)` returns: the element without prefix (`<vm><generation>2</generation>…</vm>`). A
    /// prefixed element is read too. Values that are missing or not numbers stay `nil`.
    public static func parse(_ xml: String) throws(DomainXMLError) -> VMMetadata {
        let document = try DomainXML.document(xml, what: "metadata element")
        guard let root = document.rootElement(), (root.localName ?? root.name) == "vm" else {
            throw DomainXMLError("the metadata element is not <vm>")
        }
        return VMMetadata(element: root)
    }

    init(element vm: XMLElement) {
        var values: [String: String] = [:]
        for child in (vm.children ?? []).compactMap({ $0 as? XMLElement }) {
            guard let key = child.localName ?? child.name else { continue }
            let local = key.split(separator: ":").last.map(String.init) ?? key
            if values[local] == nil {
                values[local] = (child.stringValue ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
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
