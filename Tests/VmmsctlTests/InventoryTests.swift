import DBus
import Foundation
import Glibc
import Spawn
import Testing
import TestSupport

/// `list`, `show`, `--json`, colour and `--watch` against the real service.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct InventoryTests {
    @Test func listPrintsGetVMsColumnsWithTheServicesValues() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let off = Names.unique("off"), running = Names.unique("run")
            try await cleaningUp([off, running]) {
                try await Ctl.ok(["create", off] + smallVM)
                try await Ctl.ok(["create", running, "--start"] + smallVM)

                let table = parseTable(try await Ctl.ok(["list"]))
                let vms = try await dbus.vms()
                // Other suites define VMs on the same libvirtd meanwhile: compare this test's own.
                for (_, properties) in vms where [off, running].contains(properties["Name"]?.string ?? "") {
                    let name = try #require(properties["Name"]?.string)
                    let row = try #require(table.first { $0["Name"] == name }, "no row for \(name) in \(table)")
                    #expect(row["State"] == properties["State"]?.string)
                    let assigned = try #require(properties["MemoryAssignedBytes"]?.uint64)
                    #expect(row["MemoryAssigned(M)"] == String(assigned >> 20))
                    // CPUUsage moves every 2 s: a number (or "-" where the service has none).
                    let usage = row["CPUUsage(%)"] ?? ""
                    #expect(properties["CPUUsage"] == nil ? usage == "-" : UInt32(usage) != nil, "\(usage)")
                    if properties["StartTime"] == nil { #expect(row["Uptime"] == "-") }
                    #expect(row["Status"] == "Operating normally")
                }
                #expect(Set(table.compactMap { $0["Name"] }).isSuperset(of: [off, running]))
                #expect(table.first { $0["Name"] == running }?["State"] == "Running")
                #expect(table.first { $0["Name"] == off }?["MemoryAssigned(M)"] == "0")
                // Sorted by name, as Get-VM is.
                let names = table.compactMap { $0["Name"] }
                #expect(names == names.sorted { $0.lowercased() < $1.lowercased() })

                // Get-VM -Name: exact names and wildcards; a name that matches nothing is exit 4.
                #expect(parseTable(try await Ctl.ok(["list", running])).compactMap { $0["Name"] } == [running])
                #expect(Set(parseTable(try await Ctl.ok(["list", "ctl-*"])).compactMap { $0["Name"] }).isSuperset(of: [off, running]))
                let missing = try await Ctl.run(["list", "no-such-vm-here"])
                Ctl.expect(missing, 4, "list of a missing name")
                #expect(missing.stderr.contains("no-such-vm-here"))
            }
        }
    }

    @Test func jsonCarriesEveryPropertyTheServicePublishes() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let dbus = try Service()
            defer { dbus.bus.close() }
            let name = Names.unique("json")
            try await cleaningUp([name]) {
                try await Ctl.ok(["create", name, "--notes", "line one\n\"quoted\" \\ ünïcode"] + smallVM)

                let list = try #require(try parseJSON(try await Ctl.ok(["list", "--json"])) as? [[String: Any]])
                let vms = try await dbus.vms()
                #expect(list.count == vms.count)
                for (path, properties) in vms {
                    let entry = try #require(list.first { $0["Path"] as? String == path.rawValue }, "no JSON entry for \(path)")
                    for (property, value) in properties {
                        #expect(jsonMatches(entry[property], value), "\(property): JSON \(String(describing: entry[property])) vs D-Bus \(value)")
                    }
                    // Computed keys, and the ones the service does not publish yet, are present.
                    #expect(entry["Status"] as? String == "Operating normally")
                    for key in ["CPUUsage", "StartTime"] where properties[key] == nil {
                        #expect(entry[key] is NSNull, "\(key) should be null, is \(String(describing: entry[key]))")
                    }
                    // UptimeSeconds follows StartTime: null without it, else now - StartTime.
                    if let started = properties["StartTime"]?.uint64, started > 0 {
                        let uptime = (entry["UptimeSeconds"] as? NSNumber)?.uint64Value ?? .max
                        let now = UInt64(Date().timeIntervalSince1970)
                        #expect(uptime <= now - started + 5 && uptime + 60 >= now - started, "UptimeSeconds \(uptime) for a start at \(started)")
                    } else if properties["StartTime"] == nil {
                        #expect(entry["UptimeSeconds"] is NSNull)
                    }
                }

                // show --json is the same object as list's entry.
                let shown = try #require(try parseJSON(try await Ctl.ok(["show", name, "--json"])) as? [String: Any])
                let listed = try #require(list.first { $0["Name"] as? String == name })
                let canonical = { (object: [String: Any]) in try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) }
                #expect(try canonical(shown) == canonical(listed), "show --json differs from list --json")
                #expect(shown["Notes"] as? String == "line one\n\"quoted\" \\ ünïcode")

                // By UUID and by object path, too.
                let uuid = try #require(shown["UUID"] as? String)
                let path = try #require(shown["Path"] as? String)
                for key in [uuid, uuid.uppercased(), path] {
                    let again = try #require(try parseJSON(try await Ctl.ok(["show", key, "--json"])) as? [String: Any])
                    #expect(again["Name"] as? String == name, "show \(key)")
                }

                // Format-List: every property on its own "Name : value" line.
                let text = try await Ctl.ok(["show", name])
                let lines = Dictionary(text.split(separator: "\n").compactMap { line -> (String, String)? in
                    let parts = line.components(separatedBy: " : ")
                    guard parts.count >= 2 else { return nil }
                    return (parts[0].trimmingCharacters(in: .whitespaces), parts.dropFirst().joined(separator: " : "))
                }, uniquingKeysWith: { first, _ in first })
                #expect(lines["Name"] == name)
                #expect(lines["UUID"] == uuid)
                #expect(lines["State"] == "Off")
                #expect(lines["MemoryStartupBytes"] == "64 MiB")
                #expect(lines["Generation"] == "1")
                for property in try await dbus.vm(named: name).keys {
                    #expect(lines[property] != nil, "show does not print \(property)")
                }
            }
        }
    }

    /// The completion scripts call `vmmsctl ---completion VERB -- positional@0 CWORD CURSOR WORDS…`
    /// for VM arguments; the names come from the service.
    @Test func vmNamesCompleteFromTheService() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let prefix = Names.unique("tab")
            let names = [prefix + "-a", prefix + "-b"]
            try await cleaningUp(names) {
                for name in names { try await Ctl.ok(["create", name] + smallVM) }
                for verb in ["start", "show", "delete"] {
                    let words = ["vmmsctl", verb, prefix]
                    let completed = try await Ctl.ok(["---completion", verb, "--", "positional@0", "2", "\(prefix.count)"] + words)
                    #expect(completed.split(separator: "\n").map(String.init) == names, "\(verb): \(completed)")
                }
                // Nobody who may not read gets names, and nothing breaks.
                let bob = try await Ctl.run(["---completion", "start", "--", "positional@0", "2", "0", "vmmsctl", "start", ""], as: "bob")
                #expect(bob.status == 0 && bob.stdout.isEmpty, "\(bob)")
            }
        }
    }

    @Test func tablesAreColouredOnATerminalOnly() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let name = Names.unique("colour")
            try await cleaningUp([name]) {
                try await Ctl.ok(["create", name] + smallVM)

                let terminal = try await Ctl.onTerminal(["list"])
                Ctl.expect(terminal, 0, "list on a terminal")
                #expect(terminal.stdout.contains("\u{1B}["), "no colour on a terminal: \(terminal.stdout.debugDescription)")
                #expect(terminal.stdout.contains(name))

                let noColour = try await Ctl.onTerminal(["list"], environment: ["NO_COLOR": "1"])
                Ctl.expect(noColour, 0, "list with NO_COLOR")
                #expect(!noColour.stdout.contains("\u{1B}["), "colour despite NO_COLOR: \(noColour.stdout.debugDescription)")
                #expect(noColour.stdout.contains(name))

                let piped = try await Ctl.run(["list"])
                #expect(!piped.stdout.contains("\u{1B}[") && piped.stdout.contains(name), "colour in a pipe: \(piped.stdout.debugDescription)")
            }
        }
    }

    @Test(.timeLimit(.minutes(15)))
    func watchRedrawsWhenVirshChangesAVM() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let name = Names.unique("watch")
            try await cleaningUp([name]) {
                try await Ctl.ok(["create", name] + smallVM)

                let directory = NSTemporaryDirectory() + "vmmsctl-watch-\(UUID().uuidString)"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let tableFile = directory + "/table", jsonFile = directory + "/json"
                let table = try ChildProcess(Ctl.binary, ["list", "--watch", name], environment: Ctl.environment,
                                             stdoutPath: tableFile, stderrPath: directory + "/table.err")
                let json = try ChildProcess(Ctl.binary, ["list", "--watch", "--json", name], environment: Ctl.environment,
                                            stdoutPath: jsonFile, stderrPath: directory + "/json.err")
                defer {
                    for watcher in [table, json] {
                        watcher.signal(SIGTERM)
                        watcher.wait()
                    }
                }
                func frameTexts() -> [String] {
                    ((try? String(contentsOfFile: tableFile, encoding: .utf8)) ?? "").components(separatedBy: "\n\n").filter { !$0.isEmpty }
                }
                func states() -> [String] { frameTexts().compactMap { parseTable($0).first { $0["Name"] == name }?["State"] } }
                func jsonStates() -> [String] {
                    let text = (try? String(contentsOfFile: jsonFile, encoding: .utf8)) ?? ""
                    return text.split(separator: "\n").compactMap { line in
                        ((try? parseJSON(String(line))) as? [[String: Any]])?.first?["State"] as? String
                    }
                }

                #expect(await eventually { states().last == "Off" && jsonStates().last == "Off" }, "first frame: \(states())")
                // Changes behind the service's back, with virsh: the frames follow the signals.
                #expect(try await virsh(["start", name]).status == 0)
                #expect(await eventually { states().last == "Running" && jsonStates().last == "Running" }, "after virsh start: \(states())")
                #expect(try await virsh(["suspend", name]).status == 0)
                #expect(await eventually { states().last == "Paused" && jsonStates().last == "Paused" }, "after virsh suspend: \(states())")
                #expect(try await virsh(["destroy", name]).status == 0)
                #expect(await eventually { states().last == "Off" }, "after virsh destroy: \(states())")
                // The VM goes away: InterfacesRemoved leaves an empty table (header only).
                #expect(try await virsh(["undefine", name]).status == 0)
                #expect(await eventually { frameTexts().last.map { parseTable($0).isEmpty && $0.hasPrefix("Name") } ?? false },
                        "after virsh undefine: \(frameTexts())")
                #expect(await eventually {
                    ((try? String(contentsOfFile: jsonFile, encoding: .utf8)) ?? "").split(separator: "\n").last == "[]"
                })
                // A frame is printed only when it differs from the one before.
                let texts = frameTexts()
                #expect(zip(texts, texts.dropFirst()).allSatisfy { $0 != $1 }, "\(texts)")
                #expect(table.exitStatusIfExited() == nil, "list --watch ended early")
            }
        }
    }

    /// The stale-view problem of other consoles: a watcher outlives a restart of the service.
    @Test(.timeLimit(.minutes(15)))
    func watchFollowsTheServiceThroughARestart() async throws {
        try await SystemBusNameLock.with {
            var service = try await SystemVMMSD()
            var running = true
            defer { if running { service.stop() } }
            let name = Names.unique("restart")
            // virsh removes the VM should the service not come back.
            try await cleaningUp([name]) {
                try await Ctl.ok(["create", name] + smallVM)
                let output = NSTemporaryDirectory() + "vmmsctl-restart-\(UUID().uuidString)"
                defer { try? FileManager.default.removeItem(atPath: output) }
                let watcher = try ChildProcess(Ctl.binary, ["list", "--watch", name], environment: Ctl.environment, stdoutPath: output)
                defer {
                    watcher.signal(SIGTERM)
                    watcher.wait()
                }
                let text = { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
                #expect(await eventually { text().contains(name) }, "first frame: \(text())")
                service.stop()
                running = false
                #expect(await eventually { text().hasSuffix("not running (org.example.VMMS1 is not on the bus); waiting for it.\n") },
                        "after the service stopped: \(text())")
                service = try await SystemVMMSD()
                running = true
                #expect(await eventually { text().components(separatedBy: "\n\n").last?.contains(name) == true },
                        "after the service came back: \(text())")
                // And it follows changes again, from the new service's signals.
                #expect(try await virsh(["start", name]).status == 0)
                #expect(await eventually { parseTable(text().components(separatedBy: "\n\n").last ?? "").first?["State"] == "Running" },
                        "after virsh start: \(text())")
            }
        }
    }
}
