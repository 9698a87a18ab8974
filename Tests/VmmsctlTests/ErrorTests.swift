import DBus
import Foundation
import Testing
import TestSupport

/// What vmmsctl says when something is wrong, and its exit codes (0, 1, 2, 3, 4, 69).
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct ErrorTests {
    @Test func refusalsAndMissingVMsGetTheirExitCodesAndAHint() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let name = Names.unique("err")
            try await cleaningUp([name]) {
                try await Ctl.ok(["create", name] + smallVM)

                // bob has no rights: 3, and the hint names the group and the polkit action.
                let bobList = try await Ctl.run(["list"], as: "bob")
                Ctl.expect(bobList, 3, "bob's list")
                #expect(bobList.stderr.contains("org.example.VMMS1.Error.NotAuthorized"), "\(bobList.stderr)")
                #expect(bobList.stderr.contains("vmms-admins") && bobList.stderr.contains("org.example.vmms1.read"), "\(bobList.stderr)")
                let bobStart = try await Ctl.run(["start", name], as: "bob")
                Ctl.expect(bobStart, 3, "bob's start")
                #expect(bobStart.stderr.contains(name))

                // carol (sudo) must confirm: without a terminal or with --no-ask-password, 3 and why.
                for arguments in [["list"], ["list", "--no-ask-password"]] {
                    let carol = try await Ctl.run(arguments, as: "carol")
                    Ctl.expect(carol, 3, "carol's \(arguments)")
                    #expect(carol.stderr.contains("InteractiveAuthorizationRequired") && carol.stderr.contains("password"), "\(carol.stderr)")
                }
                let carolOnTerminal = try await Ctl.onTerminal(["list", "--no-ask-password"], as: "carol")
                Ctl.expect(carolOnTerminal, 3, "carol's list --no-ask-password on a terminal")
                #expect(!carolOnTerminal.stdout.contains("AUTHENTICATING"), "--no-ask-password still asked: \(carolOnTerminal.stdout)")

                // alice (vmms-admins) may.
                #expect(parseTable(try await Ctl.ok(["list"], as: "alice")).contains { $0["Name"] == name })

                // Not found: 4.
                for arguments in [["show", "no-such-vm"], ["start", "no-such-vm"], ["delete", "--yes", "no-such-vm"],
                                  ["show", "00000000-0000-0000-0000-000000000000"]] {
                    let missing = try await Ctl.run(arguments)
                    Ctl.expect(missing, 4, "\(arguments)")
                    #expect(missing.stderr.contains("NotFound") && missing.stderr.contains("vmmsctl list"), "\(missing.stderr)")
                }

                // The service refusing a value: 1 with its message.
                let taken = try await Ctl.run(["create", name] + smallVM)
                Ctl.expect(taken, 1, "create of a taken name")
                #expect(taken.stderr.contains("AlreadyExists"), "\(taken.stderr)")
                let badName = try await Ctl.run(["create", "../etc"])
                Ctl.expect(badName, 1, "create with a bad name")
                #expect(badName.stderr.contains("InvalidArgs"), "\(badName.stderr)")
            }
        }
    }

    @Test(arguments: [
        ["create", "x", "--memory", "12Q"], ["create", "x", "--generation", "3"], ["stop", "--timeout", "0", "x"],
        ["stop", "--turn-off", "--save", "x"], ["start"], ["no-such-verb"], ["list", "--session", "--address", "unix:path=/x"],
        ["list", "--interactive", "--no-ask-password"], ["set-processor", "x"], ["disk", "add", "x"], ["list", "--host", "-oProxyCommand=x"],
    ])
    func badUsageIsExitCodeTwoAndNeverReachesTheService(arguments: [String]) async throws {
        // No service is needed: usage errors are found before connecting.
        let result = try await Ctl.run(arguments)
        Ctl.expect(result, 2, "\(arguments)")
        #expect(result.stderr.contains("Error:") || result.stderr.contains("Usage"), "\(result.stderr)")
    }

    @Test func anUnreachableBusOrServiceIsExitCodeSixtyNine() async throws {
        let noBus = try await Ctl.run(["list", "--address", "unix:path=/nonexistent/bus"])
        Ctl.expect(noBus, 69, "an address where no bus listens")
        #expect(noBus.stderr.contains("cannot connect"), "\(noBus.stderr)")

        // With the lock held no vmmsd owns the name: Hyper-V's "not running" finding.
        try await SystemBusNameLock.with {
            let result = try await Ctl.run(["list"])
            Ctl.expect(result, 69, "list without a service")
            #expect(result.stderr.contains("The service required to manage virtual machines is not running"), "\(result.stderr)")
            #expect(result.stderr.contains("systemctl start vmms"), "\(result.stderr)")
            Ctl.expect(try await Ctl.run(["start", "a", "b"]), 69, "start without a service")
        }
    }

    /// A sudo-group administrator on a terminal: vmmsctl retries with interactive
    /// authorization and starts a polkit agent, which asks on that terminal. carol has no
    /// password here (her account is locked), so the answer fails and the result is exit 3.
    /// She is asked once, for the host: the inventory's check of each VM (for per-VM rules)
    /// never asks again, however many VMs there are.
    @Test(.timeLimit(.minutes(15)))
    func anAdministratorOnATerminalIsAskedByThePolkitAgent() async throws {
        try await SystemBusNameLock.with {
            let service = try await SystemVMMSD()
            defer { service.stop() }
            let names = [Names.unique("ask"), Names.unique("ask")]
            try await cleaningUp(names) {
                for name in names { try await Ctl.ok(["create", name] + smallVM) }
                // Every prompt gets a wrong answer (at most 4), so more prompts show as a count.
                let asked = try await Ctl.onTerminal(["list"], as: "carol", prompt: "Password:", reply: "wrong\n", answers: 4)
                Ctl.expect(asked, 3, "carol's list on a terminal, password not given")
                let prompts = asked.stdout.components(separatedBy: "AUTHENTICATING FOR org.example.vmms1.read").count - 1
                #expect(prompts == 1, "asked \(prompts) times: \(asked.stdout.debugDescription)")
                #expect(asked.stdout.contains("NotAuthorized") || asked.stdout.contains("InteractiveAuthorizationRequired"), "\(asked.stdout)")
            }
        }
    }
}
