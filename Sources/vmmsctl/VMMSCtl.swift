import ArgumentParser
import DBus
import Foundation

@main
struct VMMSCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmmsctl",
        abstract: "Manage virtual machines through the vmms service (org.example.VMMS1), as Hyper-V's cmdlets do.",
        discussion: """
            vmmsctl talks only to the D-Bus API of vmmsd, on the system bus unless told otherwise \
            (--session, --address, --host). Every call is checked by polkit: root and members of \
            vmms-admins may do everything; members of sudo/wheel confirm with their password (vmmsctl \
            asks on a terminal unless --no-ask-password).

            A VM is named by its name, its UUID or its object path. Sizes take binary suffixes \
            (512M, 2G, 1.5GiB; a plain number is bytes).

            EXIT CODES: \(ExitStatus.summary)

            JSON (--json on list, show, disk list, host get): \(Views.jsonSummary)
            """,
        version: "0.2.0",   // = ServiceVersion.current and debian/changelog: `make deb-version-check`
        groupedSubcommands: [
            CommandGroup(name: "Inventory", subcommands: [List.self, Show.self]),
            CommandGroup(name: "Power", subcommands: [Start.self, Stop.self, Save.self, Pause.self, Resume.self,
                                                      Reset.self, Restart.self]),
            CommandGroup(name: "Create and configure", subcommands: [Create.self, Rename.self, SetProcessor.self, SetMemory.self,
                                                                     SetFirmware.self, SetVM.self, Disk.self, Delete.self]),
            CommandGroup(name: "Networking and storage", subcommands: [SwitchCommand.self, Adapter.self, SANCommand.self]),
            CommandGroup(name: "Checkpoints, export, import and move",
                         subcommands: [CheckpointCommand.self, Export.self, Import.self, Move.self, JobCommand.self]),
            CommandGroup(name: "Host", subcommands: [HostCommand.self, Health.self]),
        ])

    @OptionGroup var global: GlobalOptions

    /// For `make install`, like `--generate-completion-script`.
    @Flag(help: .hidden)
    var generateManual = false

    func run() async throws {
        guard generateManual else { throw CleanExit.helpRequest(self) }
        // SOURCE_DATE_EPOCH makes the page reproducible (reproducible-builds.org).
        let epoch = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"].flatMap(TimeInterval.init)
        Terminal.out(ManualPage.render(try ManualPage.toolInfo(), date: epoch.map { Date(timeIntervalSince1970: $0) } ?? Date()))
    }

    /// ArgumentParser's own exit code for bad usage is 64 (EX_USAGE); vmmsctl documents 2, as
    /// systemctl and most tools use. Everything else keeps its code.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let failure as Failure {
            report(failure)
            Foundation.exit(failure.status.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                Terminal.err(fullMessage(for: error) + "\n")
                Foundation.exit(ExitStatus.usage.rawValue)
            }
            exit(withError: error)
        }
    }
}

/// A verb that talks to the service: connects, runs, and closes, whatever happens.
protocol ServiceCommand: AsyncParsableCommand {
    var global: GlobalOptions { get }
    func run(_ client: VMMSClient) async throws
}

extension ServiceCommand {
    func run() async throws {
        let client = try VMMSClient(global)
        do {
            try await run(client)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    /// Runs `body` for every VM named, one after the other, reporting each failure as it
    /// happens; the exit code is the failures' common code, or 1 when they differ.
    func forEachVM(_ names: [String], _ client: VMMSClient,
                   _ body: (ObjectPath, String) async throws(Failure) -> Void) async throws {
        var failures: [Failure] = []
        for name in names {
            do {
                let path = try await client.lookupVM(name)
                try await body(path, name)
            } catch {
                report(error, subject: name)
                failures.append(error)
                // Without a service there is no point in trying the next VM.
                if error.status == .unavailable { break }
            }
        }
        if !failures.isEmpty { throw ExitCode(Failure.combinedStatus(failures).rawValue) }
    }
}
