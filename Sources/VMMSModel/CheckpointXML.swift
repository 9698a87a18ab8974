/// The domain XML edits checkpoints need: which disks a checkpoint covers, where the NVRAM
/// lives, re-pointing disks at new images, and the `<domainsnapshot>` of a live checkpoint.
public enum CheckpointXML {
    /// A hard disk of the domain (`device='disk'`).
    public struct Disk: Sendable, Equatable {
        public var target: String
        /// The file; nil for a disk that is no file (a block device, a network LUN).
        public var file: String?
        public var format: String

        public init(target: String, file: String?, format: String) {
            self.target = target
            self.file = file
            self.format = format
        }
    }

    /// Every hard disk (not CD-ROMs or floppies) in document order.
    public static func disks(in xml: String) throws(DomainXMLError) -> [Disk] {
        let domain = try DomainXML.document(xml, what: "domain XML")
        return (domain.element(named: "devices")?.elements(named: "disk") ?? []).compactMap { disk in
            guard (disk.attribute("device") ?? "disk") == "disk", let target = disk.element(named: "target")?.attribute("dev") else {
                return nil
            }
            let file = (disk.attribute("type") ?? "file") == "file" ? disk.element(named: "source")?.attribute("file") : nil
            return Disk(target: target, file: file, format: disk.element(named: "driver")?.attribute("type") ?? "raw")
        }
    }

    /// The targets of the CD-ROMs and floppies, which a snapshot must leave alone.
    public static func removableTargets(in xml: String) throws(DomainXMLError) -> [String] {
        let domain = try DomainXML.document(xml, what: "domain XML")
        return (domain.element(named: "devices")?.elements(named: "disk") ?? []).compactMap { disk in
            (disk.attribute("device") ?? "disk") == "disk" ? nil : disk.element(named: "target")?.attribute("dev")
        }
    }

    /// The domain's `<name>`.
    public static func name(in xml: String) throws(DomainXMLError) -> String? {
        try DomainXML.document(xml, what: "domain XML").element(named: "name")?.stringValue
    }

    /// The NVRAM file (`<os><nvram>`), nil when the definition names none.
    public static func nvram(in xml: String) throws(DomainXMLError) -> String? {
        let domain = try DomainXML.document(xml, what: "domain XML")
        let text = domain.element(named: "os")?.element(named: "nvram")?.stringValue.trimmingCharacters(in: .whitespacesAndNewlines)
        return text?.isEmpty == false ? text : nil
    }

    /// `xml` with the disks at the targets of `sources` on those qcow2 files, their
    /// `<backingStore>` dropped (libvirt then reads the chain from the qcow2 headers, which
    /// vmms keeps right; a stale `<backingStore>` would win over them), and with `name` as
    /// the domain's name when given.
    /// `formats`: the format of each file (default qcow2).
    public static func repointing(_ xml: String, sources: [String: String], formats: [String: String] = [:],
                                  name: String? = nil) throws(DomainXMLError) -> String {
        let domain = try DomainXML.document(xml, what: "domain XML")
        if let name, let element = domain.element(named: "name") { element.stringValue = name }
        for disk in domain.element(named: "devices")?.elements(named: "disk") ?? [] {
            guard let target = disk.element(named: "target")?.attribute("dev"), let file = sources[target] else { continue }
            disk.setAttribute("type", "file")
            (disk.element(named: "driver") ?? disk.add(XMLTreeElement(name: "driver", attributes: [("name", "qemu")]), atStart: true))
                .setAttribute("type", formats[file] ?? "qcow2")
            let source = disk.element(named: "source") ?? disk.add(XMLTreeElement(name: "source"))
            for attribute in ["dev", "index", "pool", "volume"] { source.removeAttribute(attribute) }
            source.setAttribute("file", file)
            for backing in disk.elements(named: "backingStore") { backing.detach() }
        }
        return domain.xmlString
    }

    /// `xml` as this module writes it, to compare with an edited copy.
    public static func normalized(_ xml: String) throws(DomainXMLError) -> String {
        try DomainXML.document(xml, what: "domain XML").xmlString
    }

    /// The `<domainsnapshot>` for a live checkpoint: memory to `memory`, each disk in
    /// `overlays` external to its new file, every other disk left out.
    public static func snapshot(name: String, memory: String, overlays: [String: String], excluded: [String]) -> String {
        let e = XMLText.escape
        var x = "<domainsnapshot><name>\(e(name))</name><memory snapshot='external' file='\(e(memory))'/><disks>"
        for (target, file) in overlays.sorted(by: { $0.key < $1.key }) {
            x += "<disk name='\(e(target))' snapshot='external' type='file'><driver type='qcow2'/><source file='\(e(file))'/></disk>"
        }
        for target in excluded { x += "<disk name='\(e(target))' snapshot='no'/>" }
        return x + "</disks></domainsnapshot>"
    }
}
