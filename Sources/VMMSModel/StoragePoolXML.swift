/// What vmms reads from a libvirt storage pool's XML.
public enum StoragePoolXML {
    /// `<pool><target><path>`, the directory of a `dir` pool; nil when there is none.
    public static func targetPath(_ xml: String) -> String? {
        guard let tree = try? XMLTreeElement.parse(xml) else { return nil }
        return tree.element(named: "target")?.element(named: "path")?.stringValue
    }
}
