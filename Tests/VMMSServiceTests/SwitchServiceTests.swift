import DBus
import Foundation
import TestSupport
import Testing
@testable import VMMSService

/// Switch objects on libvirt's in-process test driver: its `default` network is a NAT switch,
/// CreateSwitch publishes before it replies and Delete removes before it replies.
@Suite(.serialized) struct SwitchServiceTests {
    static let switchInterface = "org.example.VMMS1.Switch"

    @Test func theTestDriversDefaultNetworkIsANATSwitchListedByTheHost() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let path = Paths.switch(name: "default")
        #expect(try await f.hostProperty("Switches")?.arrayElements?.contains(.objectPath(path)) == true)
        let all = try await f.call(path, "org.freedesktop.DBus.Properties", "GetAll", [.string(Self.switchInterface)])
        let props = try #require(all.first?.stringKeyedDictionary)
        #expect(props["Type"] == .string("NAT"))
        #expect(props["Bridge"] == .string("virbr0"))
        #expect(props["Address"] == .string("192.168.122.1/24"))
        #expect(props["Interface"] == .string(""))
    }

    @Test func createSwitchPublishesBeforeItRepliesAndDeleteRemovesBeforeItReplies() async throws {
        let f = try await ServiceFixture()
        defer { f.close() }
        let name = "unit-\(UUID().uuidString.prefix(6))"
        let reply = try await f.call(Paths.host, "org.example.VMMS1.Host", "CreateSwitch", [.string(name), .string("Private"), .vardict([:])])
        let path = try #require(reply.first?.objectPath)
        #expect(path == Paths.switch(name: name))
        let type = try await f.call(path, "org.freedesktop.DBus.Properties", "Get", [.string(Self.switchInterface), .string("Type")])
        #expect(type.first?.variant == .string("Private"))
        #expect(try await f.hostProperty("Switches")?.arrayElements?.contains(.objectPath(path)) == true)
        await expectDBusError("org.example.VMMS1.Error.AlreadyExists", "the same name again") {
            _ = try await f.call(Paths.host, "org.example.VMMS1.Host", "CreateSwitch", [.string(name), .string("Private"), .vardict([:])])
        }
        _ = try await f.call(path, Self.switchInterface, "Delete")
        #expect(try await f.hostProperty("Switches")?.arrayElements?.contains(.objectPath(path)) == false)
        await expectDBusError("org.example.VMMS1.Error.NotFound", "Delete again") { _ = try await f.call(path, Self.switchInterface, "Delete") }
    }

    @Test func theStartupCheckNamesEachMissingToolAndItsPackage() throws {
        let directory = NSTemporaryDirectory() + "vmms-tools-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(HostNetwork.missingTools(in: [directory]).count == 2)
        #expect(FileManager.default.createFile(atPath: directory + "/dnsmasq", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755]))
        let missing = HostNetwork.missingTools(in: [directory])
        #expect(missing.count == 1 && missing.first?.contains("the Debian package iptables") == true, "\(missing)")
    }
}
