import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A small element tree for libvirt's XML, read with Foundation's streaming `XMLParser`.
///
/// Not `XMLDocument`: on Linux every FoundationXML document leaks its libxml2 tree (about
/// 19 KB per domain XML, measured), and vmmsd parses a domain's XML on every libvirt event,
/// so the service grew without bound. libvirt's XML needs little: elements, attributes, text,
/// and namespace prefixes in `<metadata>`, which are kept as written (`xmlns:…` attributes).
final class XMLTreeElement {
    enum Node {
        case element(XMLTreeElement)
        case text(String)
    }

    /// The qualified name, e.g. `disk` or `vmms:vm`.
    var name: String
    private(set) var attributes: [(name: String, value: String)]
    private(set) var children: [Node] = []
    private(set) weak var parent: XMLTreeElement?

    init(name: String, attributes: [(name: String, value: String)] = []) {
        self.name = name
        self.attributes = attributes
    }

    /// Parses one document and returns its root element.
    static func parse(_ xml: String) throws(DomainXMLError) -> XMLTreeElement {
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.shouldProcessNamespaces = false
        parser.shouldReportNamespacePrefixes = false
        parser.shouldResolveExternalEntities = false
        parser.delegate = builder
        // A document cut short can parse "successfully" up to where it stops; every element
        // must also have been closed.
        guard parser.parse(), builder.isComplete, let root = builder.root else {
            let reason = parser.parserError.map { " (\($0.localizedDescription), line \(parser.lineNumber))" } ?? ""
            throw DomainXMLError("the XML is not well-formed\(reason)")
        }
        return root
    }

    // MARK: Reading

    var prefix: String? {
        guard let colon = name.firstIndex(of: ":") else { return nil }
        return String(name[..<colon])
    }

    var localName: String {
        guard let colon = name.firstIndex(of: ":") else { return name }
        return String(name[name.index(after: colon)...])
    }

    /// The namespace URI of the element, from the `xmlns` declarations in scope.
    var uri: String? {
        let declaration = prefix.map { "xmlns:" + $0 } ?? "xmlns"
        var element: XMLTreeElement? = self
        while let current = element {
            if let value = current.attribute(declaration) { return value }
            element = current.parent
        }
        return nil
    }

    var elements: [XMLTreeElement] {
        children.compactMap { if case .element(let e) = $0 { e } else { nil } }
    }

    func elements(named name: String) -> [XMLTreeElement] { elements.filter { $0.name == name } }

    func element(named name: String) -> XMLTreeElement? { elements.first { $0.name == name } }

    func attribute(_ name: String) -> String? { attributes.first { $0.name == name }?.value }

    /// All text below the element; setting it replaces the children with that text.
    var stringValue: String {
        get {
            children.map { node in
                switch node {
                case .text(let text): text
                case .element(let element): element.stringValue
                }
            }.joined()
        }
        set {
            for case .element(let element) in children { element.parent = nil }
            children = [.text(newValue)]
        }
    }

    // MARK: Editing

    func setAttribute(_ name: String, _ value: String) {
        if let index = attributes.firstIndex(where: { $0.name == name }) {
            attributes[index].value = value
        } else {
            attributes.append((name, value))
        }
    }

    func removeAttribute(_ name: String) { attributes.removeAll { $0.name == name } }

    /// Inserts `element` as a child after the child element `after` (or at the end, or at the
    /// start with `atStart`).
    @discardableResult
    func add(_ element: XMLTreeElement, after sibling: XMLTreeElement? = nil, atStart: Bool = false) -> XMLTreeElement {
        element.detach()
        element.parent = self
        if let sibling, let index = children.firstIndex(where: { if case .element(let e) = $0 { e === sibling } else { false } }) {
            children.insert(.element(element), at: index + 1)
        } else if atStart {
            children.insert(.element(element), at: 0)
        } else {
            children.append(.element(element))
        }
        return element
    }

    func detach() {
        guard let parent else { return }
        parent.children.removeAll { if case .element(let e) = $0 { e === self } else { false } }
        self.parent = nil
    }

    // MARK: Writing

    var xmlString: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        out += "<" + name
        for attribute in attributes {
            out += " \(attribute.name)='\(XMLText.escape(attribute.value))'"
        }
        if children.isEmpty {
            out += "/>"
            return
        }
        out += ">"
        for child in children {
            switch child {
            case .text(let text): out += XMLText.escape(text)
            case .element(let element): element.write(to: &out)
            }
        }
        out += "</\(name)>"
    }
}

/// Builds the tree from XMLParser's callbacks.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var root: XMLTreeElement?
    private var stack: [XMLTreeElement] = []
    private var ended = false

    var isComplete: Bool { root != nil && stack.isEmpty && ended }

    func parserDidEndDocument(_ parser: XMLParser) { ended = true }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        // XMLParser hands attributes over as a dictionary; sorted, so output is stable.
        let element = XMLTreeElement(name: qualifiedName ?? elementName,
                                     attributes: attributes.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        if let parent = stack.last { parent.add(element) } else if root == nil { root = element }
        stack.append(element)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        _ = stack.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        stack.last?.appendText(string)
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        stack.last?.appendText(String(decoding: CDATABlock, as: UTF8.self))
    }
}

extension XMLTreeElement {
    fileprivate func appendText(_ text: String) {
        if case .text(let previous)? = children.last {
            children[children.count - 1] = .text(previous + text)
        } else {
            children.append(.text(text))
        }
    }
}
