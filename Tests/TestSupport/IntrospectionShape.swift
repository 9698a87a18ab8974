import Foundation
import FoundationXML

/// The parts of introspection XML a client depends on — members, argument names, types and
/// directions, property access and change annotations — so that the XML in `dbus/` and what
/// the running service says can be compared while comments and formatting differ.
public struct InterfaceShape: Equatable, CustomStringConvertible {
    public var methods: [String: [String]] = [:]
    public var signals: [String: [String]] = [:]
    public var properties: [String: String] = [:]

    public var description: String { "methods \(methods) signals \(signals) properties \(properties)" }

    /// Every interface in an introspection document, by name.
    public static func parse(_ xml: String) throws -> [String: InterfaceShape] {
        let document = try XMLDocument(xmlString: xml, options: [])
        var result: [String: InterfaceShape] = [:]
        for interface in try document.nodes(forXPath: "/node/interface").compactMap({ $0 as? XMLElement }) {
            guard let name = interface.attribute(forName: "name")?.stringValue else { continue }
            var shape = InterfaceShape()
            for method in interface.elements(forName: "method") {
                shape.methods[method.attribute(forName: "name")?.stringValue ?? ""] = method.elements(forName: "arg").map {
                    "\($0.attribute(forName: "direction")?.stringValue ?? "in") \($0.attribute(forName: "name")?.stringValue ?? "") \($0.attribute(forName: "type")?.stringValue ?? "")"
                }
            }
            for signal in interface.elements(forName: "signal") {
                shape.signals[signal.attribute(forName: "name")?.stringValue ?? ""] = signal.elements(forName: "arg").map {
                    "\($0.attribute(forName: "name")?.stringValue ?? "") \($0.attribute(forName: "type")?.stringValue ?? "")"
                }
            }
            for property in interface.elements(forName: "property") {
                let emits = property.elements(forName: "annotation")
                    .first { $0.attribute(forName: "name")?.stringValue == "org.freedesktop.DBus.Property.EmitsChangedSignal" }?
                    .attribute(forName: "value")?.stringValue ?? "true"
                shape.properties[property.attribute(forName: "name")?.stringValue ?? ""] =
                    "\(property.attribute(forName: "type")?.stringValue ?? "") \(property.attribute(forName: "access")?.stringValue ?? "") emits=\(emits)"
            }
            result[name] = shape
        }
        return result
    }
}

/// The repository's root, found from this source file's location.
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()
