import DBus
import Foundation
import Glibc
import Spawn
import Testing
import TestSupport

/// `--host`: vmmsctl → ssh → sshd in a network namespace → systemd-stdio-bridge → the system
/// bus (a network namespace keeps the mount namespace, so the bus socket is the same one).
@Suite(.usesLibvirtd, .serialized, .enabled(if: realStackAvailable, realStackReason))
struct RemoteTests {
    /// A network namespace with one veth pair (10.250.N.1 here, .2 inside) and an sshd
    /// listening only inside, on the veth address; key authentication with throwaway keys.
    final class SSHHost {
        let namespace: String
        let hostLink: String
        let address: String
        let directory: String
        private(set) var sshd: ChildProcess?

        init() async throws {
            let tag = UUID().uuidString.prefix(6).lowercased()
            namespace = "vmmsctl-\(tag)"
            hostLink = "vctl\(tag.prefix(4))"
            let octet = Int.random(in: 1...254)
            address = "10.250.\(octet).2"
            directory = NSTemporaryDirectory() + "vmmsctl-ssh-\(tag)"
            do {
                try await setUp(hostAddress: "10.250.\(octet).1")
            } catch {
                await tearDown()
                throw error
            }
        }

        private func setUp(hostAddress: String) async throws {
            // The subnet must be nobody's: no address of it on the host yet.
            let addresses = try await runCommand("/usr/sbin/ip", ["-o", "addr", "show"]).stdout
            guard !addresses.contains(address.dropLast(2) + ".") else { throw TestFailure("10.250.x already in use: \(addresses)") }
            let peer = hostLink + "p"
            for command in [["netns", "add", namespace],
                            ["link", "add", hostLink, "type", "veth", "peer", "name", peer],
                            ["link", "set", peer, "netns", namespace],
                            ["addr", "add", hostAddress + "/30", "dev", hostLink],
                            ["link", "set", hostLink, "up"],
                            ["netns", "exec", namespace, "ip", "addr", "add", address + "/30", "dev", peer],
                            ["netns", "exec", namespace, "ip", "link", "set", peer, "up"],
                            ["netns", "exec", namespace, "ip", "link", "set", "lo", "up"]] {
                let result = try await runCommand("/usr/sbin/ip", command)
                guard result.status == 0 else { throw TestFailure("ip \(command.joined(separator: " ")): \(result.stderr)") }
            }
            // Before anything is sent: the route to the sshd leads into our own veth.
            let route = try await runCommand("/usr/sbin/ip", ["route", "get", address]).stdout
            guard route.contains("dev \(hostLink) ") else { throw TestFailure("\(address) is not routed through \(hostLink): \(route)") }

            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o755)   // sshd reads authorized_keys as the user logging in
            for key in ["host_key", "client_key"] {
                let made = try await runCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", "\(directory)/\(key)"])
                guard made.status == 0 else { throw TestFailure("ssh-keygen: \(made.stderr)") }
            }
            try FileManager.default.copyItem(atPath: "\(directory)/client_key.pub", toPath: "\(directory)/authorized_keys")
            chmod("\(directory)/authorized_keys", 0o644)
            try """
                ListenAddress \(address):22
                HostKey \(directory)/host_key
                AuthorizedKeysFile \(directory)/authorized_keys
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM yes
                StrictModes no
                PidFile \(directory)/sshd.pid
                AllowUsers alice bob
                LogLevel VERBOSE

                """.write(toFile: "\(directory)/sshd_config", atomically: true, encoding: .utf8)
            // The ssh vmmsctl runs (VMMSCTL_SSH): our key, no known_hosts, never a prompt.
            try """
                #!/bin/sh
                exec /usr/bin/ssh -F /dev/null -i \(directory)/client_key -o IdentitiesOnly=yes -o BatchMode=yes \\
                    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10 "$@"

                """.write(toFile: "\(directory)/ssh", atomically: true, encoding: .utf8)
            chmod("\(directory)/ssh", 0o755)
            mkdir("/run/sshd", 0o755)   // sshd's privilege separation directory

            let sshd = try ChildProcess("/usr/sbin/ip", ["netns", "exec", namespace, "/usr/sbin/sshd", "-D", "-e", "-f", "\(directory)/sshd_config"],
                                        stderrPath: "\(directory)/sshd.log")
            self.sshd = sshd
            let listening = await eventually(timeout: .seconds(10)) {
                ((try? String(contentsOfFile: "\(directory)/sshd.log", encoding: .utf8)) ?? "").contains("Server listening")
            }
            guard listening, sshd.exitStatusIfExited() == nil else { throw TestFailure("sshd did not start: \(log)") }
        }

        var log: String { (try? String(contentsOfFile: "\(directory)/sshd.log", encoding: .utf8)) ?? "" }
        var sshProgram: String { "\(directory)/ssh" }

        /// Stops sshd and removes the namespace (which takes the veth pair with it), the
        /// host end if it is still there, and the keys.
        func tearDown() async {
            if let sshd {
                sshd.signal(SIGTERM)
                let stopped = await eventually(timeout: .seconds(5)) { sshd.exitStatusIfExited() != nil }
                if !stopped {
                    sshd.signal(SIGKILL)
                    _ = await eventually(timeout: .seconds(5)) { sshd.exitStatusIfExited() != nil }
                }
            }
            _ = try? await runCommand("/usr/sbin/ip", ["netns", "del", namespace])
            if (try? await runCommand("/usr/sbin/ip", ["link", "show", hostLink]))?.status == 0 {
                _ = try? await runCommand("/usr/sbin/ip", ["link", "del", hostLink])
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test(.timeLimit(.minutes(15)))
    func hostOverSSHManagesTheSameServiceAsTheCallerThere() async throws {
        let remote = try await SSHHost()
        do {
            try await SystemBusNameLock.with {
                let service = try await SystemVMMSD()
                defer { service.stop() }
                let dbus = try Service()
                defer { dbus.bus.close() }
                let name = Names.unique("remote")
                try await cleaningUp([name]) {
                    let ssh = ["VMMSCTL_SSH": remote.sshProgram]
                    let alice = ["--host", "alice@\(remote.address)"]

                    // A create and a start over ssh, as alice: polkit sees alice (vmms-admins).
                    let created = try await Ctl.run(alice + ["create", name] + smallVM, environment: ssh)
                    Ctl.expect(created, 0, "create over ssh")
                    Ctl.expect(try await Ctl.run(["start", name, "-H", "alice@\(remote.address)"], environment: ssh), 0, "start over ssh")
                    #expect(try await dbus.vm(named: name)["State"] == .string("Running"))

                    // The remote inventory is the local one.
                    let remoteList = try await Ctl.run(alice + ["list", "--json"], environment: ssh)
                    Ctl.expect(remoteList, 0, "list over ssh")
                    let local = try await Ctl.ok(["list", "--json"])
                    let names = { (text: String) in
                        ((try? parseJSON(text)) as? [[String: Any]] ?? []).compactMap { "\($0["Name"] ?? "")=\($0["State"] ?? "")" }.sorted()
                    }
                    #expect(names(remoteList.stdout) == names(local) && names(local).contains("\(name)=Running"),
                            "remote \(remoteList.stdout), local \(local)")
                    #expect(remote.log.contains("Accepted publickey for alice"), "\(remote.log)")

                    // bob there is bob here: NotAuthorized, exit 3.
                    let bob = try await Ctl.run(["--host", "bob@\(remote.address)", "list"], environment: ssh)
                    Ctl.expect(bob, 3, "bob over ssh")
                    #expect(bob.stderr.contains("NotAuthorized"), "\(bob.stderr)")
                    try await Ctl.ok(["stop", "--turn-off", name])
                }
            }
        } catch {
            await remote.tearDown()
            throw error
        }
        await remote.tearDown()
        #expect(try await runCommand("/usr/sbin/ip", ["netns", "list"]).stdout.contains(remote.namespace) == false)
    }

    @Test func aHostThatCannotBeReachedIsExitCodeSixtyNine() async throws {
        let remote = try await SSHHost()
        // sshd runs, but nobody may log in as carol.
        let refused = try await Ctl.run(["--host", "carol@\(remote.address)", "list"], environment: ["VMMSCTL_SSH": remote.sshProgram])
        await remote.tearDown()
        Ctl.expect(refused, 69, "a login ssh refuses")
        #expect(refused.stderr.contains("Permission denied") || refused.stderr.contains("cannot connect"), "\(refused.stderr)")
    }
}
