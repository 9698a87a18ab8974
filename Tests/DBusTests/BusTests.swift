import DBus
import Foundation
import Testing
import TestSupport

/// Export and dispatch through a real `dbus-daemon`, with our client and with busctl/gdbus.
@Suite(.serialized) struct BusTests {
    static let path = BusFixture.root.appending(element: "One")

    @Test func echoRoundTripsEveryTypeThroughTheDaemon() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        for value in ValueTests.everyType {
            #expect(try await f.call("Echo", [.variant(value)]) == [.variant(value)])
        }
    }

    @Test func wrongSignatureGetsInvalidArgs() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        await #expect(throws: DBusError(DBusError.Name.invalidArgs, "Echo takes arguments of type 'v', not 's'")) {
            try await f.call("Echo", [.string("not a variant")])
        }
        await #expect(throws: DBusError.self) { try await f.call("Sleep") }
    }

    @Test func unknownObjectInterfaceAndMethodGetTheirErrors() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        try await expectError(DBusError.Name.unknownObject) { try await f.call("/org/example/T/Nothing", "org.example.Test", "Echo", [.variant(.byte(1))]) }
        try await expectError(DBusError.Name.unknownInterface) { try await f.call(Self.path, "org.example.Nope", "Echo") }
        try await expectError(DBusError.Name.unknownMethod) { try await f.call(Self.path, "org.example.Test", "Nope") }
    }

    @Test func handlerErrorBecomesTheErrorReply() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        await #expect(throws: DBusError("org.example.Error.Custom", "it broke")) {
            try await f.call("Fail", [.string("org.example.Error.Custom"), .string("it broke")])
        }
        // An invalid error name from a handler must not crash libdbus; it is sent as Failed.
        try await expectError(DBusError.Name.failed) { try await f.call("Fail", [.string("not an error name"), .string("x")]) }
    }

    @Test func callerUIDAndInteractiveFlagReachTheHandler() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let plain = try await f.call("WhoAmI")
        #expect(plain == [.uint32(getuid()), .boolean(false), .string(f.client.uniqueName)])
        let interactive = try await f.client.call(destination: BusFixture.busName, path: Self.path, interface: "org.example.Test",
                                                  member: "WhoAmI", allowInteractiveAuthorization: true)
        #expect(interactive[1] == .boolean(true))
    }

    @Test func propertiesGetGetAllAndSet() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let props = "org.freedesktop.DBus.Properties"
        #expect(try await f.call(Self.path, props, "Get", [.string("org.example.Test"), .string("Name")]) == [.variant(.string("one"))])
        let all = try await f.call(Self.path, props, "GetAll", [.string("org.example.Test")])
        #expect(all.first?.stringKeyedDictionary == ["Name": .string("one"), "Counter": .uint32(0)])
        _ = try await f.call(Self.path, props, "Set", [.string("org.example.Test"), .string("Counter"), .variant(.uint32(5))])
        #expect(try await f.call(Self.path, props, "Get", [.string("org.example.Test"), .string("Counter")]) == [.variant(.uint32(5))])
    }

    @Test func badPropertyAccessGetsClearErrorsAndChangesNothing() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let props = "org.freedesktop.DBus.Properties"
        try await expectError(DBusError.Name.invalidArgs) {
            try await f.call(Self.path, props, "Set", [.string("org.example.Test"), .string("Counter"), .variant(.string("5"))])
        }
        try await expectError(DBusError.Name.invalidArgs) {
            try await f.call(Self.path, props, "Set", [.string("org.example.Test"), .string("Counter"), .variant(.uint32(5000))])
        }
        try await expectError(DBusError.Name.propertyReadOnly) {
            try await f.call(Self.path, props, "Set", [.string("org.example.Test"), .string("Name"), .variant(.string("x"))])
        }
        try await expectError(DBusError.Name.unknownProperty) {
            try await f.call(Self.path, props, "Get", [.string("org.example.Test"), .string("Nope")])
        }
        try await expectError(DBusError.Name.invalidArgs) { try await f.call(Self.path, props, "Get", [.string("org.example.Test")]) }
        #expect(try await f.call(Self.path, props, "Get", [.string("org.example.Test"), .string("Counter")]) == [.variant(.uint32(0))])
    }

    @Test func deniedReadsGetTheTreesError() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        await f.tree.setReadsAllowed(false)
        try await expectError("org.example.Error.NotAuthorized") {
            try await f.call(Self.path, "org.freedesktop.DBus.Properties", "Get", [.string("org.example.Test"), .string("Name")])
        }
        try await expectError("org.example.Error.NotAuthorized") {
            try await f.call(BusFixture.root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        }
    }

    @Test func setEmitsPropertiesChanged() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let signals = try await f.client.signals(matching: MatchRule(sender: BusFixture.busName, path: Self.path,
                                                                     interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged"))
        _ = try await f.call(Self.path, "org.freedesktop.DBus.Properties", "Set",
                             [.string("org.example.Test"), .string("Counter"), .variant(.uint32(9))])
        let signal = await firstMatch(signals) { _ in true }
        let body = try #require(signal?.body)
        #expect(body[0] == .string("org.example.Test"))
        #expect(body[1].stringKeyedDictionary == ["Counter": .uint32(9)])
        #expect(body[2] == .strings([]))
    }

    /// Repeated inventories are answered from a cached reply; any signalled change, and only
    /// that, makes the next one fresh. Two clients get their own, correctly addressed replies.
    @Test func getManagedObjectsFollowsEverySignalledChange() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let other = try f.bus.connect()
        defer { other.close() }
        func counter(_ connection: DBusConnection) async throws -> DBusValue? {
            let reply = try await connection.call(destination: BusFixture.busName, path: BusFixture.root,
                                                  interface: "org.freedesktop.DBus.ObjectManager", member: "GetManagedObjects")
            guard case .dictionary(_, _, let objects)? = reply.first,
                  case .dictionary(_, _, let interfaces)? = objects.first?.value else { return nil }
            return interfaces.first?.value.stringKeyedDictionary?["Counter"]
        }
        #expect(try await counter(f.client) == .uint32(0))
        #expect(try await counter(other) == .uint32(0))
        for value in [UInt32(3), 4, 5] {
            _ = try await f.call(Self.path, "org.freedesktop.DBus.Properties", "Set",
                                 [.string("org.example.Test"), .string("Counter"), .variant(.uint32(value))])
            #expect(try await counter(other) == .uint32(value))
            #expect(try await counter(f.client) == .uint32(value))
        }
    }

    @Test func objectManagerListsObjectsAndAnnouncesChanges() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let managed = try await f.call(BusFixture.root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        guard case .dictionary(_, _, let entries)? = managed.first else { Issue.record("not a dictionary"); return }
        #expect(entries.map(\.key) == [.objectPath(Self.path)])

        let signals = try await f.client.signals(matching: MatchRule(sender: BusFixture.busName, path: BusFixture.root,
                                                                     interface: "org.freedesktop.DBus.ObjectManager"))
        let newPath = BusFixture.root.appending(escaping: "two 2")
        let two = TestObject(name: "two") { _, _ in }
        await f.tree.add(newPath, two)
        await f.server.emitInterfacesAdded(path: newPath, interfaces: [two])
        let added = await firstMatch(signals) { $0.member == "InterfacesAdded" }
        #expect(added?.body.first == .objectPath(newPath))
        #expect(added?.signature == "oa{sa{sv}}")

        await f.tree.remove(newPath)
        f.server.emitInterfacesRemoved(path: newPath, interfaces: ["org.example.Test"])
        let removed = await firstMatch(signals) { $0.member == "InterfacesRemoved" }
        #expect(removed?.body == [.objectPath(newPath), .strings(["org.example.Test"])])
    }

    @Test func introspectionDescribesInterfacesAndChildren() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let intro = "org.freedesktop.DBus.Introspectable"
        let object = try await f.call(Self.path, intro, "Introspect").first?.string ?? ""
        #expect(object.contains("<interface name=\"org.example.Test\">"))
        #expect(object.contains("<property name=\"Counter\" type=\"u\" access=\"readwrite\"/>"))
        #expect(object.contains("org.freedesktop.DBus.Peer"))
        let root = try await f.call(BusFixture.root, intro, "Introspect").first?.string ?? ""
        #expect(root.contains("org.freedesktop.DBus.ObjectManager"))
        #expect(root.contains("<node name=\"One\"/>"))
        let top = try await f.call("/", intro, "Introspect").first?.string ?? ""
        #expect(top.contains("<node name=\"org\"/>"))
    }

    @Test func clientThatDisconnectsMidCallDoesNotHurtTheServer() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let leaver = try f.bus.connect()
        let message = try DBusMessage.methodCall(destination: BusFixture.busName, path: Self.path, interface: "org.example.Test",
                                                 member: "Sleep", body: [.uint32(300)])
        let pending = Task { try await leaver.sendWithReply(message) }
        try await Task.sleep(for: .milliseconds(50))
        leaver.close()
        await #expect(throws: DBusError.self) { try await pending.value }
        // The handler finishes and its reply goes nowhere; the server keeps serving.
        try await Task.sleep(for: .milliseconds(400))
        #expect(f.object.completedSleeps.withLock { $0 } == 1)
        #expect(try await f.call("Echo", [.variant(.string("still here"))]) == [.variant(.string("still here"))])
    }

    @Test func callTimesOutWithNoReply() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        try await expectError(DBusError.Name.noReply) { try await f.call("Sleep", [.uint32(2000)], timeout: .milliseconds(200)) }
    }

    @Test func manyConcurrentCallsAllGetTheirOwnReply() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let reply = try await f.call("Echo", [.variant(.uint32(UInt32(i)))])
                    #expect(reply == [.variant(.uint32(UInt32(i)))])
                }
            }
            try await group.waitForAll()
        }
    }

    // MARK: Command-line clients

    @Test func busctlCallsMethodsAndReadsProperties() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let address = "--address=\(f.bus.address)"
        let echo = try await runCommand("/usr/bin/busctl", [address, "call", BusFixture.busName, Self.path.rawValue,
                                                            "org.example.Test", "Echo", "v", "s", "hello"])
        #expect(echo.status == 0)
        #expect(echo.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "v s \"hello\"")
        let property = try await runCommand("/usr/bin/busctl", [address, "get-property", BusFixture.busName, Self.path.rawValue,
                                                                "org.example.Test", "Name"])
        #expect(property.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "s \"one\"")
        let wrong = try await runCommand("/usr/bin/busctl", [address, "call", BusFixture.busName, Self.path.rawValue,
                                                             "org.example.Test", "Echo", "s", "hello"])
        #expect(wrong.status != 0)
        #expect(wrong.stderr.contains("Echo takes arguments of type 'v'"))
        let tree = try await runCommand("/usr/bin/busctl", [address, "tree", BusFixture.busName])
        #expect(tree.stdout.contains("/org/example/T/One"))
    }

    @Test func gdbusIntrospectsAndCalls() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let intro = try await runCommand("/usr/bin/gdbus", ["introspect", "--address", f.bus.address, "--dest", BusFixture.busName,
                                                            "--object-path", Self.path.rawValue])
        #expect(intro.status == 0)
        #expect(intro.stdout.contains("Echo(in  v value,"))
        let call = try await runCommand("/usr/bin/gdbus", ["call", "--address", f.bus.address, "--dest", BusFixture.busName,
                                                           "--object-path", Self.path.rawValue, "--method", "org.example.Test.Echo",
                                                           "<uint32 42>"])
        #expect(call.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "(<uint32 42>,)")
        let managed = try await runCommand("/usr/bin/gdbus", ["call", "--address", f.bus.address, "--dest", BusFixture.busName,
                                                              "--object-path", BusFixture.root.rawValue,
                                                              "--method", "org.freedesktop.DBus.ObjectManager.GetManagedObjects"])
        #expect(managed.stdout.contains("'org.example.Test': {'Name': <'one'>, 'Counter': <uint32 0>}")
                || managed.stdout.contains("'org.example.Test': {'Counter': <uint32 0>, 'Name': <'one'>}"))
    }

    @Test func peerPingIsAnswered() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        #expect(try await f.call(Self.path, "org.freedesktop.DBus.Peer", "Ping") == [])
    }
}

func expectError(_ name: String, sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () async throws -> [DBusValue]) async throws {
    do {
        let result = try await body()
        Issue.record("expected \(name), got \(result)", sourceLocation: sourceLocation)
    } catch let error as DBusError {
        #expect(error.name == name, "\(error.message)", sourceLocation: sourceLocation)
    }
}
