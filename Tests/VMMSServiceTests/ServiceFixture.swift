import DBus
import Foundation
import Logging
import TestSupport
import VMMSModel
@testable import VMMSService

/// A `VMMSService` on a private bus over libvirt's test driver, and a client.
struct ServiceFixture {
    let bus: PrivateBus
    let service: VMMSService
    let client: DBusConnection
    let stateDirectory: String

    init(stateDirectory: String? = nil) async throws {
        bus = try PrivateBus()
        let directory = stateDirectory ?? NSTemporaryDirectory() + "vmms-state-\(UUID().uuidString)"
        self.stateDirectory = directory
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        service = try await VMMSService.start(
            ServiceOptions(bus: .address(bus.address), libvirtURI: "test:///default", accelerator: .auto,
                           stateDirectory: directory, authorizer: SessionBusAuthorizer()),
            logger: logger)
        client = try bus.connect()
    }

    func call(_ path: ObjectPath, _ interface: String, _ member: String, _ body: [DBusValue] = []) async throws -> [DBusValue] {
        try await client.call(destination: Paths.busName, path: path, interface: interface, member: member, body)
    }

    func hostProperty(_ name: String) async throws -> DBusValue? {
        try await call(Paths.host, "org.freedesktop.DBus.Properties", "Get", [.string("org.example.VMMS1.Host"), .string(name)])
            .first?.variant
    }

    func close() {
        client.close()
        service.stop()
    }
}
