@testable import DBus
import Foundation
import Testing
import TestSupport

/// Received file descriptors: a call of the wrong signature is refused before its body is
/// decoded, and every decoded descriptor is closed once its value is dropped. (Regression: each
/// `Introspect` carrying an `h` argument left one descriptor open in the server.)
@Suite(.serialized) struct FileDescriptorTests {
    static let object = BusFixture.root.appending(element: "One")

    /// A file of our own whose descriptors can be told apart from every other one in the
    /// process, so tests running in parallel do not disturb the count.
    final class Marker {
        let path = NSTemporaryDirectory() + "vmms-fd-marker-\(UUID().uuidString)"
        let descriptor: UnixFileDescriptor

        init() throws {
            guard FileManager.default.createFile(atPath: path, contents: Data("marker".utf8)) else {
                throw TestFailure("cannot create \(path)")
            }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TestFailure("cannot open \(path)") }
            descriptor = UnixFileDescriptor(adopting: fd)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        /// Descriptors of this process that lead to the marker file.
        var openCount: Int { openDescriptors(of: "self").filter { $0 == path }.count }

        /// Waits (bounded) for in-flight messages to be freed, then counts.
        func settledCount(expecting expected: Int) async throws -> Int {
            var count = openCount
            for _ in 0..<250 where count != expected {
                try await Task.sleep(for: .milliseconds(20))
                count = openCount
            }
            return count
        }
    }

    @Test func callsWithAnUnexpectedDescriptorGetInvalidArgsAndLeaveNoDescriptorOpen() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let marker = try Marker()
        let before = marker.openCount
        #expect(before == 1)
        let fd = DBusValue.unixFD(marker.descriptor)
        let calls: [(path: ObjectPath, interface: String, member: String)] = [
            (Self.object, "org.freedesktop.DBus.Introspectable", "Introspect"),
            (Self.object, "org.freedesktop.DBus.Properties", "Get"),
            (Self.object, "org.freedesktop.DBus.Properties", "GetAll"),
            (Self.object, "org.freedesktop.DBus.Properties", "Set"),
            (BusFixture.root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"),
            (Self.object, "org.example.Test", "Echo"),
            (Self.object, "org.example.Test", "Sleep"),
            (Self.object, "org.example.Test", "WhoAmI"),
        ]
        var errors: [String: Int] = [:]
        for round in 0..<125 {
            // Eight calls at once, one per method: 1,000 in all.
            let names = try await withThrowingTaskGroup(of: String.self) { group in
                for call in calls {
                    group.addTask {
                        do {
                            _ = try await f.call(call.path, call.interface, call.member, [fd])
                            return "succeeded"
                        } catch let error as DBusError {
                            return error.name
                        }
                    }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            for name in names { errors[name, default: 0] += 1 }
            if round == 0 { #expect(names.allSatisfy { $0 == DBusError.Name.invalidArgs }, "\(names)") }
        }
        #expect(errors == [DBusError.Name.invalidArgs: 1000])
        #expect(try await marker.settledCount(expecting: before) == before)
    }

    @Test func descriptorsThatAreAcceptedAreClosedOnceTheirValuesAreDropped() async throws {
        let f = try await BusFixture()
        defer { f.close() }
        let marker = try Marker()
        let before = marker.openCount
        for _ in 0..<100 {
            let reply = try await f.call("Echo", [.variant(.unixFD(marker.descriptor))])
            let echoed = try #require(reply.first?.variant?.unixFD?.rawValue)
            #expect(echoed != marker.descriptor.rawValue)
            #expect(readLink("/proc/self/fd/\(echoed)") == marker.path)
        }
        let after = try await marker.settledCount(expecting: before)
        #expect(after == before, "\(openDescriptors(of: "self").filter { $0 == marker.path })")
    }

    @Test func everyDecodingOwnsItsOwnDuplicate() throws {
        let marker = try Marker()
        let message = try DBusMessage.methodCall(destination: nil, path: "/", interface: "org.example.T", member: "M",
                                                 body: [.unixFD(marker.descriptor)])
        // The message holds its own duplicate.
        #expect(marker.openCount == 2)
        var first: UnixFileDescriptor? = try #require(message.body.first?.unixFD)
        var second: UnixFileDescriptor? = try #require(message.body.first?.unixFD)
        #expect(first != second)
        #expect(first?.rawValue != second?.rawValue)
        #expect(marker.openCount == 4)
        first = nil
        #expect(marker.openCount == 3)
        let taken = try #require(second?.take())
        second = nil
        #expect(marker.openCount == 3, "a taken descriptor belongs to the taker")
        close(taken)
        #expect(marker.openCount == 2)
    }

    @Test func aClosedDescriptorCannotBeSent() throws {
        let marker = try Marker()
        let copy = try UnixFileDescriptor.duplicating(try #require(marker.descriptor.rawValue))
        copy.close()
        #expect(copy.rawValue == nil)
        #expect(throws: DBusError.self) {
            try DBusMessage.methodCall(destination: nil, path: "/", interface: "org.example.T", member: "M", body: [.unixFD(copy)])
        }
    }
}

/// Where each open descriptor of process `pid` leads (`self` for this one).
func openDescriptors(of pid: String) -> [String] {
    let directory = "/proc/\(pid)/fd"
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    return entries.compactMap { readLink(directory + "/" + $0) }
}

func readLink(_ path: String) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: path)
}
