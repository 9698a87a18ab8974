import Libvirt
import Testing

@Suite("Domain events")
struct EventTests {
    let connection: LibvirtConnection

    init() throws {
        // The event implementation must exist before the connection is opened.
        try LibvirtEventLoop.start()
        connection = try openTestDriver()
    }

    @Test func startIsIdempotent() throws {
        try LibvirtEventLoop.start()
        try LibvirtEventLoop.start()
        #expect(LibvirtEventLoop.isRunning)
    }

    @Test func suspendAndResumeDeliverLifecycleEventsWithUUID() async throws {
        let domain = try connection.domain(name: "test")
        let uuid = try domain.uuid
        let recorder = EventRecorder()
        let registration = try connection.registerDomainEvents { recorder.record($0) }
        defer { registration.deregister() }

        try domain.suspend()
        try domain.resume()

        let delivered = await recorder.wait { events in
            events.compactMap(\.lifecycleEvent) == [.suspended, .resumed]
        }
        #expect(delivered, "\(recorder.all)")
        #expect(recorder.all.allSatisfy { $0.uuid == uuid })
    }

    @Test func defineDeliversDefinedEvent() async throws {
        let recorder = EventRecorder()
        let registration = try connection.registerDomainEvents { recorder.record($0) }
        defer { registration.deregister() }

        let uuid = try connection.defineDomain(xml: minimalDomainXML(name: "x")).uuid

        let delivered = await recorder.wait { events in
            events.contains { $0.lifecycleEvent == .defined && $0.uuid == uuid }
        }
        #expect(delivered, "\(recorder.all)")
    }

    @Test func metadataChangeDeliversMetadataEvent() async throws {
        let domain = try connection.domain(name: "test")
        let uuid = try domain.uuid
        let recorder = EventRecorder()
        let registration = try connection.registerDomainEvents { recorder.record($0) }
        defer { registration.deregister() }

        try domain.setMetadata(type: .description, value: "hello", flags: .live)

        let delivered = await recorder.wait { $0.contains(.metadataChange(uuid: uuid)) }
        #expect(delivered, "\(recorder.all)")
    }

    @Test func everyRegisteredHandlerReceivesEachEvent() async throws {
        let domain = try connection.domain(name: "test")
        let first = EventRecorder()
        let second = EventRecorder()
        let registrations = [
            try connection.registerDomainEvents { first.record($0) },
            try connection.registerDomainEvents { second.record($0) },
        ]
        defer { registrations.forEach { $0.deregister() } }

        try domain.suspend()

        for recorder in [first, second] {
            #expect(await recorder.wait { $0.contains { $0.lifecycleEvent == .suspended } })
        }
    }

    @Test func registeringAgainAfterDeregisteringAllWorks() async throws {
        let domain = try connection.domain(name: "test")
        try connection.registerDomainEvents { _ in }.deregister()
        let recorder = EventRecorder()
        let registration = try connection.registerDomainEvents { recorder.record($0) }
        defer { registration.deregister() }

        try domain.suspend()

        #expect(await recorder.wait { $0.contains { $0.lifecycleEvent == .suspended } })
    }

    @Test func deregisteredHandlerReceivesNothing() async throws {
        let domain = try connection.domain(name: "test")
        let stopped = EventRecorder()
        let live = EventRecorder()
        let first = try connection.registerDomainEvents { stopped.record($0) }
        let second = try connection.registerDomainEvents { live.record($0) }
        defer { second.deregister() }
        first.deregister()
        first.deregister() // idempotent

        try domain.suspend()

        // libvirt hands each queued event to every callback in one pass, so once the live
        // handler has it the removed one would have had it too.
        #expect(await live.wait { $0.contains { $0.lifecycleEvent == .suspended } })
        #expect(stopped.all.isEmpty)
    }

    @Test func releasingTheRegistrationStopsDelivery() async throws {
        let domain = try connection.domain(name: "test")
        let released = EventRecorder()
        let live = EventRecorder()
        var first: EventRegistration? = try connection.registerDomainEvents { released.record($0) }
        let second = try connection.registerDomainEvents { live.record($0) }
        defer { second.deregister() }
        #expect(first != nil)
        first = nil

        try domain.suspend()

        #expect(await live.wait { $0.contains { $0.lifecycleEvent == .suspended } })
        #expect(released.all.isEmpty)
    }
}
