import DBus
import Foundation
import Testing
import TestSupport

/// Bounds that keep one caller from exhausting the server, and the client's own bound on
/// calls awaiting replies (the bus daemon refuses more than `max_replies_per_connection`).
@Suite(.serialized) struct LimitsTests {
    static let object = BusFixture.root.appending(element: "One")

    @Test func callsBeyondTheSendersLimitAndTheTotalAreRefusedAtOnce() async throws {
        let f = try await BusFixture(limits: .init(perSender: 3, total: 5))
        defer { f.close() }
        let other = try f.bus.connect()
        defer { other.close() }

        func send(_ count: Int, on connection: DBusConnection) async throws -> [Task<String?, any Error>] {
            var tasks: [Task<String?, any Error>] = []
            for _ in 0..<count {
                let message = try DBusMessage.methodCall(destination: BusFixture.busName, path: Self.object,
                                                         interface: "org.example.Test", member: "Hold")
                tasks.append(Task { try await connection.sendWithReply(message, timeout: .seconds(30)).errorName })
            }
            return tasks
        }
        /// Waits (bounded) until the server holds `count` calls.
        func waitForCallsInProgress(_ count: Int) async throws {
            for _ in 0..<250 where f.server.callsInProgress() != count { try await Task.sleep(for: .milliseconds(20)) }
            #expect(f.server.callsInProgress() == count)
        }

        // The first client fills its share: the fourth and fifth calls are refused at once,
        // while the first three are still waiting.
        let first = try await send(3, on: f.client)
        try await waitForCallsInProgress(3)
        let firstExcess = try await send(2, on: f.client)
        for task in firstExcess {
            #expect(try await task.value == DBusError.Name.limitsExceeded)
        }
        #expect(f.server.callsInProgress(from: f.client.uniqueName) == 3)

        // A second client gets the two places left in total, then is refused too.
        let second = try await send(2, on: other)
        try await waitForCallsInProgress(5)
        do {
            _ = try await other.call(destination: BusFixture.busName, path: Self.object, interface: "org.example.Test", member: "Hold")
            Issue.record("a sixth call was admitted")
        } catch let error as DBusError {
            #expect(error.name == DBusError.Name.limitsExceeded)
            #expect(error.message.contains("the most it takes at once"), "\(error.message)")
        }

        // Everything admitted completes normally, and the places are free again.
        f.object.gate.open()
        for task in first + second { #expect(try await task.value == nil) }
        try await waitForCallsInProgress(0)
        #expect(try await f.call("Echo", [.variant(.string("after"))]) == [.variant(.string("after"))])
    }

    @Test func callsBeyondTheClientsReplySlotsWaitTheirTurnAndAllComplete() async throws {
        let f = try await BusFixture(clientMaxPendingReplies: 2)
        defer { f.close() }
        let results = try await withThrowingTaskGroup(of: [DBusValue].self) { group in
            for i in 0..<10 {
                group.addTask { try await f.call("Echo", [.variant(.uint32(UInt32(i)))], timeout: .seconds(20)) }
            }
            return try await group.reduce(into: [[DBusValue]]()) { $0.append($1) }
        }
        #expect(Set(results.compactMap { $0.first?.variant?.uint32 }) == Set(0..<10))
    }

    @Test func aQueuedCallTimesOutWhenNoSlotFreesInTime() async throws {
        let f = try await BusFixture(clientMaxPendingReplies: 1)
        defer { f.close() }
        let holding = Task { try await f.call("Hold", timeout: .seconds(30)) }
        for _ in 0..<250 where f.object.gate.waiting == 0 { try await Task.sleep(for: .milliseconds(20)) }
        do {
            _ = try await f.call("Echo", [.variant(.byte(1))], timeout: .milliseconds(300))
            Issue.record("the queued call was sent although the only slot was taken")
        } catch let error as DBusError {
            #expect(error.name == DBusError.Name.noReply)
            #expect(error.message.contains("waited behind 1 others"), "\(error.message)")
        }
        f.object.gate.open()
        #expect(try await holding.value == [])
        // The slot is free again.
        #expect(try await f.call("Echo", [.variant(.byte(2))]) == [.variant(.byte(2))])
    }

    @Test func cancellingTheCallingTaskEndsTheWaitAtOnce() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let waiting = Task { try await f.call("Hold", timeout: .seconds(30)) }
        for _ in 0..<250 where f.object.gate.waiting == 0 { try await Task.sleep(for: .milliseconds(20)) }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        f.object.gate.open()
        // The late reply is dropped, and the connection keeps working.
        #expect(try await f.call("Echo", [.variant(.string("x"))]) == [.variant(.string("x"))])
    }

    @Test func connectingAsynchronouslyWorksAndFailsCleanly() async throws {
        let bus = try PrivateBus()
        let connection = try await DBusConnection.connect(.address(bus.address))
        #expect(connection.uniqueName.hasPrefix(":"))
        #expect(try await connection.busCallGetID().isEmpty == false)
        connection.close()
        await #expect(throws: DBusError.self) {
            _ = try await DBusConnection.connect(.address("unix:path=/nonexistent/vmms-test-bus"))
        }
    }
}

extension DBusConnection {
    func busCallGetID() async throws -> String {
        try await call(destination: "org.freedesktop.DBus", path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus",
                       member: "GetId").first?.string ?? ""
    }
}
