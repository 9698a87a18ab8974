/// A declarative description of one D-Bus interface: the single source from which the server
/// checks call signatures, answers `Introspect`, and which tests compare with `dbus/*.xml`.
public struct InterfaceDescription: Sendable, Hashable {
    public var name: String
    public var methods: [Method]
    public var properties: [Property]
    public var signals: [Signal]

    public init(name: String, methods: [Method] = [], properties: [Property] = [], signals: [Signal] = []) {
        self.name = name
        self.methods = methods
        self.properties = properties
        self.signals = signals
    }

    public struct Argument: Sendable, Hashable {
        public var name: String
        public var signature: DBusSignature
        public init(_ name: String, _ signature: DBusSignature) { self.name = name; self.signature = signature }
    }

    public struct Method: Sendable, Hashable {
        public var name: String
        public var inputs: [Argument]
        public var outputs: [Argument]
        public init(_ name: String, in inputs: [Argument] = [], out outputs: [Argument] = []) {
            self.name = name
            self.inputs = inputs
            self.outputs = outputs
        }
        /// The signature a call must carry.
        public var inputSignature: DBusSignature {
            DBusSignature(unchecked: inputs.map(\.signature.rawValue).joined())
        }
    }

    public struct Property: Sendable, Hashable {
        public enum Access: String, Sendable { case read, readwrite }
        /// The value of `org.freedesktop.DBus.Property.EmitsChangedSignal`.
        public enum ChangeSignal: String, Sendable { case emits = "true", invalidates, const, none = "false" }
        public var name: String
        public var signature: DBusSignature
        public var access: Access
        public var changeSignal: ChangeSignal
        public init(_ name: String, _ signature: DBusSignature, access: Access = .read, changeSignal: ChangeSignal = .emits) {
            self.name = name
            self.signature = signature
            self.access = access
            self.changeSignal = changeSignal
        }
    }

    public struct Signal: Sendable, Hashable {
        public var name: String
        public var arguments: [Argument]
        public init(_ name: String, _ arguments: [Argument] = []) { self.name = name; self.arguments = arguments }
    }

    public func method(named name: String) -> Method? { methods.first { $0.name == name } }
    public func property(named name: String) -> Property? { properties.first { $0.name == name } }
}

// MARK: - The standard interfaces every object answers

extension InterfaceDescription {
    public static let peer = InterfaceDescription(name: "org.freedesktop.DBus.Peer", methods: [
        .init("Ping"),
        .init("GetMachineId", out: [.init("machine_uuid", "s")]),
    ])

    public static let introspectable = InterfaceDescription(name: "org.freedesktop.DBus.Introspectable", methods: [
        .init("Introspect", out: [.init("xml_data", "s")]),
    ])

    public static let properties = InterfaceDescription(name: "org.freedesktop.DBus.Properties", methods: [
        .init("Get", in: [.init("interface_name", "s"), .init("property_name", "s")], out: [.init("value", "v")]),
        .init("GetAll", in: [.init("interface_name", "s")], out: [.init("props", "a{sv}")]),
        .init("Set", in: [.init("interface_name", "s"), .init("property_name", "s"), .init("value", "v")]),
    ], signals: [
        .init("PropertiesChanged", [.init("interface_name", "s"), .init("changed_properties", "a{sv}"),
                                    .init("invalidated_properties", "as")]),
    ])

    public static let objectManager = InterfaceDescription(name: "org.freedesktop.DBus.ObjectManager", methods: [
        .init("GetManagedObjects", out: [.init("object_paths_interfaces_and_properties", "a{oa{sa{sv}}}")]),
    ], signals: [
        .init("InterfacesAdded", [.init("object_path", "o"), .init("interfaces_and_properties", "a{sa{sv}}")]),
        .init("InterfacesRemoved", [.init("object_path", "o"), .init("interfaces", "as")]),
    ])

    public static let standard: [InterfaceDescription] = [.peer, .introspectable, .properties]
}

// MARK: - Introspection XML

extension InterfaceDescription {
    /// The `<interface>` element, as `Introspect` returns it.
    public var introspectionXML: String {
        var xml = " <interface name=\"\(name)\">\n"
        for method in methods {
            xml += "  <method name=\"\(method.name)\">\n"
            for arg in method.inputs { xml += "   <arg name=\"\(arg.name)\" type=\"\(arg.signature)\" direction=\"in\"/>\n" }
            for arg in method.outputs { xml += "   <arg name=\"\(arg.name)\" type=\"\(arg.signature)\" direction=\"out\"/>\n" }
            xml += "  </method>\n"
        }
        for signal in signals {
            xml += "  <signal name=\"\(signal.name)\">\n"
            for arg in signal.arguments { xml += "   <arg name=\"\(arg.name)\" type=\"\(arg.signature)\"/>\n" }
            xml += "  </signal>\n"
        }
        for property in properties {
            if property.changeSignal == .emits {
                xml += "  <property name=\"\(property.name)\" type=\"\(property.signature)\" access=\"\(property.access.rawValue)\"/>\n"
            } else {
                xml += "  <property name=\"\(property.name)\" type=\"\(property.signature)\" access=\"\(property.access.rawValue)\">\n"
                xml += "   <annotation name=\"org.freedesktop.DBus.Property.EmitsChangedSignal\" value=\"\(property.changeSignal.rawValue)\"/>\n"
                xml += "  </property>\n"
            }
        }
        xml += " </interface>\n"
        return xml
    }

    /// A whole introspection document for one object.
    public static func introspectionDocument(interfaces: [InterfaceDescription], children: [String]) -> String {
        var xml = "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
        xml += " \"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n"
        for interface in interfaces { xml += interface.introspectionXML }
        for child in children { xml += " <node name=\"\(child)\"/>\n" }
        xml += "</node>\n"
        return xml
    }
}
