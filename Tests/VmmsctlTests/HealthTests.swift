import DBus
import Foundation
import Testing
import TestSupport
@testable import vmmsctl

/// `vmmsctl health` and Host.CheckHealth on the real stack: findings for what is wrong, and,
/// with no service, vmmsctl's own diagnosis of why.
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct HealthTests {
    static func findings(_ json: String) throws -> [[String: String]] {
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8))
        return try #require(parsed as? [[String: String]], "not a list of findings: \(json)")
    }

    @Test func findingsNameThePausedVMAndTheMissingDiskForEveryClient() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let paused = Names.unique("hpaused"), diskless = Names.unique("hdisk")
            let image = "/var/lib/libvirt/images/\(diskless).qcow2"
            defer { try? FileManager.default.removeItem(atPath: image) }
            try await cleaningUp([paused, diskless]) {
                try await Ctl.ok(["create", paused] + smallVM + ["--start"])
                try await Ctl.ok(["pause", paused])
                let made = try await runCommand("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", image, "64M"])
                #expect(made.status == 0, "\(made.stderr)")
                try await Ctl.ok(["create", diskless] + smallVM + ["--disk", image])
                try FileManager.default.removeItem(atPath: image)

                let run = try await Ctl.run(["health", "--json"], as: "alice")
                Ctl.expect(run, 1, "health with a missing disk (an Error finding)")
                let findings = try Self.findings(run.stdout)
                let byRule = Dictionary(grouping: findings, by: { $0["rule"] ?? "" })
                #expect(byRule["vmms.paused-vms"]?.first?["message"]?.contains(paused) == true, "\(findings)")
                #expect(byRule["vmms.paused-vms"]?.first?["severity"] == "Warning")
                #expect(byRule["vmms.missing-disks"]?.first?["message"]?.contains(image) == true, "\(findings)")
                #expect(byRule["vmms.missing-disks"]?.first?["severity"] == "Error")
                // The tests run guests under TCG.
                #expect(byRule["vmms.kvm-available"] != nil, "\(findings)")

                // The text form, and busctl sees the same rules.
                let text = try await Ctl.run(["health"], as: "alice")
                #expect(text.stdout.contains("ERROR  vmms.missing-disks") && text.stdout.contains("WARNING  vmms.paused-vms"), "\(text.stdout)")
                #expect(text.stdout.contains("finding"), "\(text.stdout)")
                let busctl = try await runCommand("/usr/sbin/runuser", ["-u", "alice", "--", "busctl", "--system", "--json=short", "call",
                                                                        "org.example.VMMS1", "/org/example/VMMS1/Host",
                                                                        "org.example.VMMS1.Host", "CheckHealth"])
                #expect(busctl.status == 0, "\(busctl.stderr)")
                #expect(busctl.stdout.contains("\"type\":\"a(sss)\""), "\(busctl.stdout)")
                for rule in byRule.keys { #expect(busctl.stdout.contains(rule), "busctl lacks \(rule)") }

                // Resumed, the paused finding goes; bob may not ask.
                try await Ctl.ok(["resume", paused])
                let after = try Self.findings(try await Ctl.run(["health", "--json"]).stdout)
                #expect(!after.contains { $0["rule"] == "vmms.paused-vms" }, "\(after)")
                Ctl.expect(try await Ctl.run(["health"], as: "bob"), 3, "bob's health")
            }
        }
    }

    /// A switch destroyed behind the service's back while a VM has an adapter on it.
    @Test func anInactiveSwitchAVMUsesIsAWarningNamingTheVM() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let sw = Names.unique("hsw"), vm = Names.unique("hswvm")
            let result: Result<Void, any Error>
            do { result = .success(try await cleaningUp([vm]) {
                try await Ctl.ok(["switch", "create", sw, "--type", "Private"])
                try await Ctl.ok(["create", vm] + smallVM)
                try await Ctl.ok(["adapter", "add", vm, sw])
                #expect(!(try Self.findings(try await Ctl.run(["health", "--json"]).stdout)).contains { $0["rule"] == "vmms.switch-bridge" })
                #expect(try await virsh(["net-destroy", sw]).status == 0)
                var finding: [String: String]?
                for _ in 0..<50 where finding == nil {
                    finding = try Self.findings(try await Ctl.run(["health", "--json"]).stdout).first { $0["rule"] == "vmms.switch-bridge" }
                    if finding == nil { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(finding?["severity"] == "Warning" && finding?["message"]?.contains(vm) == true
                        && finding?["message"]?.contains("virsh net-start \(sw)") == true, "\(String(describing: finding))")
            }) } catch { result = .failure(error) }
            // The VM is gone (cleaningUp); the switch goes whatever happened.
            _ = try? await Ctl.run(["switch", "delete", sw])
            _ = try? await virsh(["net-undefine", sw])
            try result.get()
        }
    }

    @Test func withoutTheServiceVmmsctlSaysWhyItIsNotRunning() async throws {
        // With the lock held, no vmmsd owns the name.
        try await SystemBusNameLock.with {
            let run = try await Ctl.run(["health"])
            Ctl.expect(run, 69, "health without a service")
            #expect(run.stdout.contains("vmms.service-running")
                    && run.stdout.contains("The service required to manage virtual machines is not running"), "\(run.stdout)")

            // The bus policy taken away: the diagnosis names it and how to put it back.
            let policy = "/usr/share/dbus-1/system.d/org.example.VMMS1.conf", aside = policy + ".health-test"
            try FileManager.default.moveItem(atPath: policy, toPath: aside)
            defer { try? FileManager.default.moveItem(atPath: aside, toPath: policy) }
            let json = try await Ctl.run(["health", "--json"])
            Ctl.expect(json, 69, "health without a service or bus policy")
            let findings = try Self.findings(json.stdout)
            #expect(findings.count == 1 && findings[0]["rule"] == "vmms.service-running" && findings[0]["severity"] == "Error")
            #expect(findings.first?["message"]?.contains("bus policy org.example.VMMS1.conf") == true, "\(findings)")
            #expect(findings.first?["message"]?.contains("systemctl reload dbus") == true, "\(findings)")
        }
    }
}

/// With libvirtd stopped the service stays up and says so.
@Suite(.disturbsLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct HealthWithoutLibvirtdTests {
    @Test func aStoppedLibvirtdIsAnErrorFinding() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            try await Libvirtd.stop()
            do {
                let deadline = ContinuousClock.now + .seconds(30)
                var run = try await Ctl.run(["health", "--json"], as: "alice")
                while !run.stdout.contains("vmms.libvirt-reachable"), ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                    run = try await Ctl.run(["health", "--json"], as: "alice")
                }
                Ctl.expect(run, 1, "health with libvirtd stopped")
                let finding = try HealthTests.findings(run.stdout).first { $0["rule"] == "vmms.libvirt-reachable" }
                #expect(finding?["severity"] == "Error" && finding?["message"]?.contains("systemctl start libvirtd") == true, "\(run.stdout)")
            } catch {
                try await Libvirtd.start()
                throw error
            }
            try await Libvirtd.start()
        }
    }
}

/// The local diagnosis against made-up installations in a temporary directory (the real
/// one is the machine's, checked above).
@Suite struct LocalDiagnosisTests {
    static func places(_ root: String) -> LocalDiagnosis.Places {
        var places = LocalDiagnosis.Places()
        places.busSocket = root + "/bus"
        places.policyDirectories = [root + "/system.d"]
        places.activationDirectories = [root + "/system-services"]
        places.unitDirectories = [root + "/units"]
        places.binaries = [root + "/libexec/vmmsd"]
        places.configFile = root + "/vmmsd.conf"
        places.daemonName = "no-such-daemon-\(getpid())"
        return places
    }

    static func withRoot(_ body: (String) throws -> Void) throws {
        let root = NSTemporaryDirectory() + "vmmsctl-diagnosis-\(UUID().uuidString)"
        for sub in ["system.d", "system-services", "units", "libexec"] {
            try FileManager.default.createDirectory(atPath: root + "/" + sub, withIntermediateDirectories: true)
        }
        defer { try? FileManager.default.removeItem(atPath: root) }
        try body(root)
    }

    static let failure = Failure(.unavailable, "not running", errorName: "org.freedesktop.DBus.Error.ServiceUnknown")

    @Test func nothingInstalledSaysSoAndHowToInstall() throws {
        try Self.withRoot { root in
            let finding = LocalDiagnosis.serviceNotRunning(Self.failure, places: Self.places(root))
            #expect(finding.rule == "vmms.service-running" && finding.severity == "Error")
            #expect(finding.message.hasPrefix("The service required to manage virtual machines is not running."))
            #expect(finding.message.contains("system bus is not running"))
            #expect(finding.message.contains("vmms is not installed") && finding.message.contains("make install"), "\(finding.message)")
            #expect(finding.message.contains("bus policy"))
        }
    }

    @Test func aBadConfigurationLineIsQuotedFromVmmsdItself() throws {
        try Self.withRoot { root in
            let places = Self.places(root)
            #expect(FileManager.default.createFile(atPath: root + "/bus", contents: nil))
            #expect(FileManager.default.createFile(atPath: root + "/system.d/org.example.VMMS1.conf", contents: Data("<busconfig/>".utf8)))
            try "[Service]\nExecStart=-\(builtVMMSD) --system\n".write(toFile: root + "/units/vmms.service", atomically: true, encoding: .utf8)
            try "connect = qemu:///system\nacceleratr = kvm\n".write(toFile: places.configFile, atomically: true, encoding: .utf8)
            #expect(LocalDiagnosis.executable(in: root + "/units/vmms.service", key: "ExecStart") == builtVMMSD)
            let bad = LocalDiagnosis.serviceNotRunning(Self.failure, places: places)
            #expect(bad.message.contains("configuration file is wrong") && bad.message.contains("vmmsd.conf:2"), "\(bad.message)")
            #expect(!bad.message.contains("not installed") && !bad.message.contains("bus policy"), "\(bad.message)")

            try "connect = qemu:///system\n".write(toFile: places.configFile, atomically: true, encoding: .utf8)
            let fine = LocalDiagnosis.serviceNotRunning(Self.failure, places: places)
            #expect(fine.message.contains("installed but not running") && fine.message.contains("\(builtVMMSD) --system"), "\(fine.message)")
        }
    }

    @Test func findingsPrintAsSeverityRuleAndAWrappedMessage() {
        let text = Finding.render([Finding(rule: "vmms.paused-vms", severity: "Warning", message: String(repeating: "word ", count: 40)),
                                   Finding(rule: "vmms.checkpoints", severity: "Information", message: "x")], colour: false)
        let lines = text.split(separator: "\n")
        #expect(lines.first == "WARNING  vmms.paused-vms")
        #expect(lines.dropFirst().first?.hasPrefix("    word") == true && lines.allSatisfy { $0.count <= 88 })
        #expect(lines.last == "2 findings: 1 warning, 1 information")
        #expect(Finding.render([], colour: false).hasPrefix("No problems found"))
    }
}

@Suite struct ProgressBarTests {
    @Test func theBarFillsWithThePercentAndNeverOverflows() {
        #expect(ProgressBar.render(0, what: "Exporting web01", width: 10) == "[          ]   0% Exporting web01")
        #expect(ProgressBar.render(45, what: "x", width: 10) == "[####      ]  45% x")
        #expect(ProgressBar.render(100, what: "x", width: 10) == "[##########] 100% x")
        #expect(ProgressBar.render(250, what: "x", width: 10) == "[##########] 100% x")
    }

    @Test func jobsAreNamedByNumberOrPath() throws {
        #expect(try jobPath("7").rawValue == "/org/example/VMMS1/Job/7")
        #expect(try jobPath("/org/example/VMMS1/Job/7").rawValue == "/org/example/VMMS1/Job/7")
        #expect(throws: Failure.self) { try jobPath("seven") }
    }
}
