import DBus
import Foundation
import Testing
@testable import vmmsctl

/// vmmsctl's pure parts: sizes, tables, JSON, the ssh address, error translation.
@Suite struct SizeParsingTests {
    @Test(arguments: [
        ("512M", 512 << 20), ("2G", 2 << 30), ("2g", 2 << 30), ("1.5G", 3 << 29), ("1.5GiB", 3 << 29), ("64MB", 64 << 20),
        ("10737418240", 10_737_418_240), ("1K", 1024), ("1KiB", 1024), ("0", 0), (".5K", 512), ("16T", 16 << 40),
        ("100B", 100), (" 8M ", 8 << 20),
    ] as [(String, UInt64)])
    func acceptsBinarySuffixesAndPlainBytes(text: String, bytes: UInt64) {
        #expect(ByteCount.parse(text) == bytes, "\(text)")
    }

    @Test(arguments: ["", "M", "12Q", "-1G", "1.2.3G", "0.3K", "1e9", "iB", "5iB", "1.G", "99999999999999999999", "16384P", "0x10"])
    func rejectsWhatIsNotAWholeNumberOfBytes(text: String) {
        #expect(ByteCount.parse(text) == nil, "\(text) parsed as \(String(describing: ByteCount.parse(text)))")
    }

    @Test func formatsWithBinaryUnitsAndOneDecimal() {
        #expect(ByteCount.format(0) == "0 B")
        #expect(ByteCount.format(1023) == "1023 B")
        #expect(ByteCount.format(64 << 20) == "64 MiB")
        #expect(ByteCount.format(3 << 29) == "1.5 GiB")
        #expect(ByteCount.format(UInt64.max) == "15.9 EiB")
        #expect(ByteCount.mebibytes(64 << 20 | 12345) == 64)
    }

    @Test func uptimeLooksLikeHyperVs() {
        #expect(Uptime.format(seconds: 0) == "00:00:00")
        #expect(Uptime.format(seconds: 3723) == "01:02:03")
        #expect(Uptime.format(seconds: 86_400 + 5) == "1.00:00:05")
        #expect(Uptime.seconds(since: 0, now: 100) == nil, "StartTime 0 means not running")
        #expect(Uptime.seconds(since: 200, now: 100) == nil)
        #expect(Uptime.seconds(since: 40, now: 100) == 60)
    }
}

@Suite struct TableLayoutTests {
    @Test func columnsAlignOnThePlainTextAndNumbersAlignRight() {
        var table = Table(columns: [.init("Name"), .init("Memory(M)", .right), .init("Status")])
        table.rows = [[Table.Cell("a", .green), Table.Cell("64"), Table.Cell("ok")],
                      [Table.Cell("longer-name"), Table.Cell("2048", .red), Table.Cell("Operating normally")]]
        let plain = table.render(colour: false)
        #expect(plain == """
            Name         Memory(M)  Status
            ----         ---------  ------
            a                   64  ok
            longer-name       2048  Operating normally

            """)
        // With colour the codes wrap the text, and stripping them gives the same table.
        let coloured = table.render(colour: true)
        #expect(coloured.contains("\u{1B}[32ma\u{1B}[0m"))
        #expect(coloured.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression) == plain)
    }

    @Test func formatListPadsNamesAndIndentsContinuationLines() {
        var list = PropertyList()
        list.add("Name", "web01")
        list.add("HardDisks", "/a.qcow2\n/b.qcow2")
        #expect(list.render(colour: false) == "Name      : web01\nHardDisks : /a.qcow2\n            /b.qcow2\n")
    }

    @Test func listShowsADashForPropertiesTheServiceDoesNotPublish() {
        let vm = VMView(path: "/org/example/VMMS1/VM/x", properties: [
            "Name": .string("web01"), "State": .string("Running"), "MemoryAssignedBytes": .uint64(64 << 20),
        ])
        let text = Views.listTable([vm], hostConnected: true, now: 1000).render(colour: false)
        let row = text.split(separator: "\n")[2].split(separator: " ", omittingEmptySubsequences: true)
        #expect(row == ["web01", "Running", "-", "64", "-", "Operating", "normally"])

        var later = vm
        later.properties["CPUUsage"] = .uint32(7)
        later.properties["StartTime"] = .uint64(10_000 - 3723)
        let withStats = Views.listTable([later], hostConnected: true, now: 10_000).render(colour: false)
        #expect(withStats.split(separator: "\n")[2].split(separator: " ").contains("01:02:03"))
        #expect(withStats.split(separator: "\n")[2].split(separator: " ").contains("7"))
    }
}

@Suite struct JSONEncodingTests {
    @Test func keysAreSortedAndValuesKeepTheirTypes() {
        let json = JSON.object(["b": .uint(UInt64.max), "a": .array([]), "c": .string("x\"y\\z\n\u{1}"), "d": .null, "e": .bool(true),
                                "f": .int(-3), "g": .object([:])])
        #expect(json.rendered(compact: true) == #"{"a":[],"b":18446744073709551615,"c":"x\"y\\z\n\u0001","d":null,"e":true,"f":-3,"g":{}}"#)
        #expect(json.rendered() == """
            {
              "a": [],
              "b": 18446744073709551615,
              "c": "x\\"y\\\\z\\n\\u0001",
              "d": null,
              "e": true,
              "f": -3,
              "g": {}
            }
            """)
    }

    @Test func theOutputParsesBackToTheSameValues() throws {
        let vm = VMView(path: "/org/example/VMMS1/VM/x", properties: [
            "Name": .string("w\u{e9}b"), "State": .string("Off"), "ProcessorCount": .uint32(2),
            "MemoryStartupBytes": .uint64(1 << 40), "Autostart": .boolean(false),
            "HardDisks": .array("(sst)", [.structure([.string("/d.qcow2"), .string("qcow2"), .uint64(16 << 20)])]),
            "NetworkAdapters": .array("(so)", [.structure([.string("52:54:00:00:00:01"), .objectPath(.root)])]),
            "Checkpoints": .objectPaths([]),
        ])
        let text = Views.vmJSON(vm, hostConnected: true, now: 0).rendered()
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(parsed["Name"] as? String == "w\u{e9}b")
        #expect(parsed["Path"] as? String == "/org/example/VMMS1/VM/x")
        #expect((parsed["MemoryStartupBytes"] as? NSNumber)?.uint64Value == 1 << 40)
        #expect(parsed["CPUUsage"] is NSNull && parsed["StartTime"] is NSNull && parsed["UptimeSeconds"] is NSNull)
        #expect(parsed["Status"] as? String == "Operating normally")
        let disk = try #require((parsed["HardDisks"] as? [[String: Any]])?.first)
        #expect(disk["Path"] as? String == "/d.qcow2" && disk["Format"] as? String == "qcow2")
        #expect((disk["CapacityBytes"] as? NSNumber)?.uint64Value == 16 << 20)
        #expect((parsed["NetworkAdapters"] as? [[String: String]]) == [["MAC": "52:54:00:00:00:01", "Switch": "/"]])
    }

    @Test func dbusValuesOfEveryShapeBecomeJSON() {
        #expect(JSON(.variant(.int32(-1))) == .int(-1))
        #expect(JSON(.objectPath("/a")) == .string("/a"))
        #expect(JSON(.structure([.byte(1), .double(0.5)])) == .array([.uint(1), .double(0.5)]))
        #expect(JSON(.vardict(["k": .boolean(true)])) == .object(["k": .bool(true)]))
        #expect(JSON(.dictionary(key: "u", value: "s", [.init(.uint32(1), .string("x"))])) == .array([.array([.uint(1), .string("x")])]))
    }
}

@Suite struct RemoteAddressTests {
    @Test func sshAddressIsBusctlsWithEscapedValues() {
        #expect(RemoteHost.address(host: "admin@hv2.example.org", ssh: "ssh")
                == "unixexec:path=ssh,argv1=-xT,argv2=--,argv3=admin%40hv2.example.org,argv4=systemd-stdio-bridge")
        #expect(RemoteHost.escape("/usr/bin/my ssh,x=y;é") == "/usr/bin/my%20ssh%2cx%3dy%3b%c3%a9")
    }

    @Test(arguments: ["", "-oProxyCommand=x", "a b", "a\nb"])
    func aHostThatSshWouldReadAsAnOptionIsRefused(host: String) {
        #expect(throws: (any Error).self) { try RemoteHost.validate(host) }
    }
}

@Suite struct ErrorTranslationTests {
    @Test(arguments: [
        ("org.example.VMMS1.Error.NotAuthorized", vmmsctl.ExitStatus.notAuthorized),
        ("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", .notAuthorized),
        ("org.example.VMMS1.Error.NotFound", .notFound),
        ("org.freedesktop.DBus.Error.UnknownObject", .notFound),
        ("org.freedesktop.DBus.Error.ServiceUnknown", .unavailable),
        ("org.freedesktop.DBus.Error.NameHasNoOwner", .unavailable),
        ("org.freedesktop.DBus.Error.Spawn.ChildExited", .unavailable),
        ("org.freedesktop.DBus.Error.AccessDenied", .unavailable),
        ("org.example.VMMS1.Error.HypervisorUnavailable", .unavailable),
        ("org.example.VMMS1.Error.InvalidState", .failed),
        ("org.example.VMMS1.Error.Timeout", .failed),
        ("org.freedesktop.DBus.Error.InvalidArgs", .failed),
        ("com.example.Something", .failed),
    ] as [(String, vmmsctl.ExitStatus)])
    func everyErrorGetsItsExitCodeAndAHint(name: String, status: vmmsctl.ExitStatus) {
        let failure = Failure(DBusError(name, "boom"), action: .vmPower)
        #expect(failure.status == status)
        #expect(failure.message.contains("boom"))
        if name != "com.example.Something" { #expect(failure.hint != nil, "\(name) has no hint") }
    }

    @Test func notAuthorizedNamesTheGroupAndThePolkitAction() {
        let failure = Failure(DBusError("org.example.VMMS1.Error.NotAuthorized", "no"), action: .vmConfigure)
        #expect(failure.hint?.contains("vmms-admins") == true)
        #expect(failure.hint?.contains("org.example.vmms1.vm.configure") == true)
    }

    @Test func aVerbOnSeveralVMsExitsWithTheirCommonCodeOrOne() {
        #expect(Failure.combinedStatus([]) == .ok)
        #expect(Failure.combinedStatus([Failure(.notFound, "a"), Failure(.notFound, "b")]) == .notFound)
        #expect(Failure.combinedStatus([Failure(.notFound, "a"), Failure(.notAuthorized, "b")]) == .failed)
    }
}

@Suite struct ManualPageTests {
    @Test func theManualDescribesEveryVerbAndOptionOnce() throws {
        let page = ManualPage.render(try ManualPage.toolInfo(), date: Date(timeIntervalSince1970: 0))
        #expect(page.hasPrefix(".Dd January 1, 1970\n.Dt VMMSCTL 1\n"))
        for verb in ["list", "show", "create", "start", "stop", "save", "pause", "resume", "reset", "restart", "rename",
                     "set-processor", "set-memory", "set-firmware", "set", "disk add", "disk remove", "disk list", "delete",
                     "host get", "host set"] {
            #expect(page.contains(".Ss vmmsctl \(verb)\n"), "no section for \(verb)")
        }
        // Global options once, under GLOBAL OPTIONS, not under every verb.
        #expect(page.components(separatedBy: ".It Fl H , Fl -host").count == 2)
        #expect(page.contains(".It Fl -timeout Ar timeout"))
        #expect(!page.contains("generate-manual"), "the hidden flag must not be documented")
        // No empty lines: mdoc warns about them.
        #expect(!page.contains("\n\n"))
    }
}

/// How `list --watch` reads the service's signals into its inventory.
@Suite struct WatchModelTests {
    static let vm: ObjectPath = "/org/example/VMMS1/VM/u1"

    static func inventory() throws -> Inventory {
        try Inventory(managedObjects: [.dictionary(key: "o", value: "a{sa{sv}}", [
            .init(.objectPath(vm), .dictionary(key: "s", value: "a{sv}", [
                .init(.string("org.example.VMMS1.VM"), .vardict(["Name": .string("web01"), "State": .string("Off")])),
            ])),
            .init(.objectPath("/org/example/VMMS1/Host"), .dictionary(key: "s", value: "a{sv}", [
                .init(.string("org.example.VMMS1.Host"), .vardict(["Connected": .boolean(true)])),
            ])),
        ])])
    }

    @Test func signalsBecomeEventsAndEventsChangeTheInventory() throws {
        var inventory = try Self.inventory()
        #expect(inventory.vms[Self.vm]?.state == "Off" && inventory.hostConnected)

        let changed = try DBusMessage.signal(path: Self.vm, interface: "org.freedesktop.DBus.Properties", member: "PropertiesChanged",
                                             body: [.string("org.example.VMMS1.VM"), .vardict(["State": .string("Running")]), .strings([])])
        guard case .propertiesChanged(let path, let interface, let values, let invalidated)? = Watch.event(changed) else {
            Issue.record("PropertiesChanged was not read")
            return
        }
        #expect(invalidated.isEmpty)
        inventory.apply(changed: path, interface: interface, values: values)
        #expect(inventory.vms[Self.vm]?.state == "Running" && inventory.vms[Self.vm]?.name == "web01")

        let other: ObjectPath = "/org/example/VMMS1/VM/u2"
        let added = try DBusMessage.signal(path: "/org/example/VMMS1", interface: "org.freedesktop.DBus.ObjectManager",
                                           member: "InterfacesAdded", body: [.objectPath(other), .dictionary(key: "s", value: "a{sv}", [
                                               .init(.string("org.example.VMMS1.VM"), .vardict(["Name": .string("db01")])),
                                           ])])
        guard case .added(let addedPath, let interfaces)? = Watch.event(added) else {
            Issue.record("InterfacesAdded was not read")
            return
        }
        inventory.apply(added: addedPath, interfaces: interfaces)
        #expect(inventory.sortedVMs.map(\.name) == ["db01", "web01"])

        let removed = try DBusMessage.signal(path: "/org/example/VMMS1", interface: "org.freedesktop.DBus.ObjectManager",
                                             member: "InterfacesRemoved", body: [.objectPath(Self.vm), .strings(["org.example.VMMS1.VM"])])
        guard case .removed(let removedPath, let names)? = Watch.event(removed) else {
            Issue.record("InterfacesRemoved was not read")
            return
        }
        inventory.apply(removed: removedPath, interfaces: names)
        #expect(inventory.sortedVMs.map(\.name) == ["db01"])

        // A late change for the removed VM does not bring it back.
        inventory.apply(changed: Self.vm, interface: "org.example.VMMS1.VM", values: ["State": .string("Off")])
        #expect(inventory.vms[Self.vm] == nil)
    }

    @Test func onlyTheServicesOwnerChangesCount() throws {
        func ownerChange(_ name: String, _ new: String) throws -> Watch.Event? {
            Watch.event(try DBusMessage.signal(path: "/org/freedesktop/DBus", interface: "org.freedesktop.DBus", member: "NameOwnerChanged",
                                               body: [.string(name), .string(":1.1"), .string(new)]))
        }
        guard case .ownerChanged(let back)? = try ownerChange("org.example.VMMS1", ":1.9"),
              case .ownerChanged(let gone)? = try ownerChange("org.example.VMMS1", "") else {
            Issue.record("NameOwnerChanged for org.example.VMMS1 was not read")
            return
        }
        #expect(back && !gone)
        #expect(try ownerChange("org.freedesktop.PolicyKit1", "") == nil)
    }

    @Test func aReplyOfTheWrongShapeIsAFailureNotACrash() {
        #expect(throws: Failure.self) { try Inventory(managedObjects: [.string("nope")]) }
        #expect(throws: Failure.self) { try Inventory(managedObjects: []) }
    }

    @Test func vmNameCompletionKeepsOnlyTheConnectionWords() {
        #expect(VMNameCompletion.connectionArguments(in: ["vmmsctl", "start", "--address", "unix:path=/b", "-H", "h", "--session", "--address=x", "we"])
                == ["--address", "unix:path=/b", "-H", "h", "--session", "--address=x"])
    }
}
