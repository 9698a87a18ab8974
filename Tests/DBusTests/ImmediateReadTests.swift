import DBus
import Testing
import TestSupport

/// Property reads the tree can answer at once (a caller already allowed, values at hand) are
/// answered on the dispatch thread: no task and no call slot, so they cost what a Ping costs
/// and are answered even while the caller's slots are all taken. Everything else still takes
/// the ordinary path and its errors.
@Suite(.serialized) struct ImmediateReadTests {
    static let object = BusFixture.root.appending(element: "One")
    static let interface = TestObject.interface.name

    /// One Hold in progress fills a sender's only slot.
    static func fixtureWithTheOnlySlotTaken() async throws -> (BusFixture, Task<String?, any Error>) {
        let f = try await BusFixture(limits: .init(perSender: 1, total: 8))
        let message = try DBusMessage.methodCall(destination: BusFixture.busName, path: object, interface: interface, member: "Hold")
        let client = f.client
        let hold = Task { try await client.sendWithReply(message, timeout: .seconds(30)).errorName }
        for _ in 0..<250 where f.server.callsInProgress() != 1 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(f.server.callsInProgress() == 1)
        return (f, hold)
    }

    static func get(_ f: BusFixture, _ property: String) async throws -> [DBusValue] {
        try await f.call(object, "org.freedesktop.DBus.Properties", "Get", [.string(interface), .string(property)])
    }

    @Test func aReadTheTreeAnswersAtOnceNeedsNoCallSlot() async throws {
        let (f, hold) = try await Self.fixtureWithTheOnlySlotTaken()
        defer { f.close() }
        // Not answerable at once: the ordinary path, and its slot is taken.
        do {
            _ = try await Self.get(f, "Name")
            Issue.record("a second call of the sender was admitted")
        } catch let error as DBusError {
            #expect(error.name == DBusError.Name.limitsExceeded, "\(error)")
        }
        f.tree.immediate.withLock { $0 = [Self.object: ["Name": .string("at once"), "Counter": .uint32(7)]] }
        #expect(try await Self.get(f, "Name") == [.variant(.string("at once"))])
        let all = try await f.call(Self.object, "org.freedesktop.DBus.Properties", "GetAll", [.string(Self.interface)])
        #expect(all == [.vardict(["Name": .string("at once"), "Counter": .uint32(7)])])
        f.object.gate.open()
        #expect(try await hold.value == nil)
    }

    @Test func whatTheTreeCannotAnswerAtOnceGetsTheOrdinaryErrors() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        f.tree.immediate.withLock { $0 = [Self.object: ["Name": .string("at once")]] }
        func expectError(_ name: String, _ member: String, _ body: [DBusValue], path: ObjectPath = Self.object) async throws {
            do {
                let reply = try await f.call(path, "org.freedesktop.DBus.Properties", member, body)
                Issue.record("\(member)\(body) answered \(reply)")
            } catch let error as DBusError {
                #expect(error.name == name, "\(member)\(body): \(error)")
            }
        }
        // A property the values lack, a wrong signature, an object that is not there.
        try await expectError(DBusError.Name.unknownProperty, "Get", [.string(Self.interface), .string("Nope")])
        try await expectError(DBusError.Name.invalidArgs, "Get", [.string(Self.interface)])
        try await expectError(DBusError.Name.invalidArgs, "Get", [.string(Self.interface), .uint32(1)])
        try await expectError(DBusError.Name.unknownObject, "Get", [.string(Self.interface), .string("Name")],
                              path: BusFixture.root.appending(element: "Two"))
        // The ordinary path's authorization still decides what the tree does not answer.
        await f.tree.setReadsAllowed(false)
        try await expectError("org.example.Error.NotAuthorized", "Get", [.string(Self.interface), .string("Counter")])
        #expect(try await Self.get(f, "Name") == [.variant(.string("at once"))])
    }
}
