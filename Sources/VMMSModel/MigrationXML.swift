/// The definition a migration with copied disks starts at the destination.
public enum MigrationXML {
    /// `xml` (the domain's migratable live XML) with `discard='unmap'` on the driver of each
    /// disk in `targets` that does not say otherwise: the destination QEMU then turns the
    /// zero writes of libvirt's disk copy into holes, so a copy stays sparse (without it qcow2
    /// allocates every zero cluster the copy writes).
    public static func unmappingDisks(_ xml: String, targets: Set<String>) throws(DomainXMLError) -> String {
        let domain = try DomainXML.document(xml, what: "domain XML")
        for disk in domain.element(named: "devices")?.elements(named: "disk") ?? [] {
            guard let target = disk.element(named: "target")?.attribute("dev"), targets.contains(target),
                  let driver = disk.element(named: "driver"), driver.attribute("discard") == nil else { continue }
            driver.setAttribute("discard", "unmap")
        }
        return domain.xmlString
    }
}
