@testable import DBus
import Testing

@Suite struct ValueTests {
    static let everyType: [DBusValue] = [
        .byte(0xFF), .boolean(true), .boolean(false), .int16(-32768), .uint16(65535), .int32(-1), .uint32(.max),
        .int64(.min), .uint64(.max), .double(-1.5), .string(""), .string("grüße, 世界"), .objectPath("/a/b_1"),
        .signature("a{sv}"), .array("s", []), .array("i", [.int32(1), .int32(2)]),
        .array("ay", [.array("y", [.byte(1)]), .array("y", [])]),
        .dictionary(key: "s", value: "v", [.init(.string("k"), .variant(.uint64(7)))]),
        .dictionary(key: "o", value: "a{sv}", []),
        .structure([.string("path"), .string("qcow2"), .uint64(1 << 40)]),
        .variant(.variant(.structure([.int32(1), .array("s", [.string("x")])]))),
        .array("(so)", [.structure([.string("52:54:00:00:00:01"), .objectPath("/")])]),
    ]

    @Test func everyTypeRoundTripsThroughAMessage() throws {
        let message = try DBusMessage.methodCall(destination: nil, path: "/", interface: "org.example.T", member: "M",
                                                 body: Self.everyType)
        #expect(message.body == Self.everyType)
        #expect(message.signature == DBusValue.signature(of: Self.everyType))
    }

    @Test func arrayWithElementOfWrongTypeIsRejectedBeforeLibdbusSeesIt() throws {
        let bad = DBusValue.array("s", [.string("ok"), .uint32(1)])
        #expect(!bad.isWellFormed)
        #expect(throws: DBusError.self) {
            try DBusMessage.methodCall(destination: nil, path: "/", interface: "org.example.T", member: "M", body: [bad])
        }
    }

    @Test func stringWithNULIsRejected() {
        #expect(throws: DBusError.self) {
            try DBusMessage.methodCall(destination: nil, path: "/", interface: "org.example.T", member: "M", body: [.string("a\0b")])
        }
    }

    @Test func dictionaryWithContainerKeyIsRejected() {
        #expect(!DBusValue.dictionary(key: "as", value: "s", []).isWellFormed)
    }

    @Test(arguments: [("", true), ("s", true), ("a{sv}", true), ("(sst)", true), ("a{vs}", false), ("(", false),
                      ("a", false), ("z", false), ("{ss}", false)])
    func signatureValidation(text: String, valid: Bool) {
        #expect((DBusSignature(text) != nil) == valid)
    }

    @Test func signatureSplitsIntoCompleteTypes() {
        #expect(DBusSignature("sa{sv}(ia(ss))u").completeTypes.map(\.rawValue) == ["s", "a{sv}", "(ia(ss))", "u"])
    }

    @Test(arguments: [("/", true), ("/a", true), ("/a/b_9", true), ("", false), ("a", false), ("/a/", false),
                      ("//", false), ("/a//b", false), ("/a-b", false), ("/ä", false)])
    func objectPathValidation(text: String, valid: Bool) {
        #expect((ObjectPath(text) != nil) == valid)
    }

    @Test(arguments: [("", "_"), ("web01", "web01"), ("my vm", "my_20vm"), ("a-b.c", "a_2db_2ec"), ("_", "_5f"),
                      ("ü", "_c3_bc")])
    func busLabelEscapingMatchesSystemd(label: String, escaped: String) {
        #expect(ObjectPath.escape(label) == escaped)
        #expect(ObjectPath.unescape(escaped) == label)
    }

    @Test func childNodesAreTheNextElementsOnly() {
        let paths: [ObjectPath] = ["/o/e/V/Host", "/o/e/V/VM/a", "/o/e/V/VM/b", "/other"]
        #expect(ObjectPath("/o/e/V").childNodes(among: paths) == ["Host", "VM"])
        #expect(ObjectPath.root.childNodes(among: paths) == ["o", "other"])
    }

    @Test(arguments: ["Ping", "a_1"]) func validMemberNames(name: String) { #expect(Names.isValidMember(name)) }
    @Test(arguments: ["", "1a", "a.b", "a-b"]) func invalidMemberNames(name: String) { #expect(!Names.isValidMember(name)) }

    @Test func vardictUnwrapsVariants() {
        let dict = DBusValue.vardict(["a": .uint32(1), "b": .string("x")])
        #expect(dict.stringKeyedDictionary == ["a": .uint32(1), "b": .string("x")])
        #expect(dict.signature == "a{sv}")
    }

    @Test func interactiveAuthorizationFlagIsCarried() throws {
        let message = try DBusMessage.methodCall(destination: nil, path: "/", interface: "org.example.T", member: "M")
        #expect(!message.allowsInteractiveAuthorization)
        message.allowsInteractiveAuthorization = true
        #expect(message.allowsInteractiveAuthorization)
    }
}
