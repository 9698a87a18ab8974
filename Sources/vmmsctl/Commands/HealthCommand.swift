import ArgumentParser
import DBus

/// `vmmsctl health`: Hyper-V's Best Practices Analyzer. Asks the service (Host.CheckHealth);
/// when the service cannot be reached, finds out why on this machine (`LocalDiagnosis`).
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check the host against the Best Practices Analyzer's rules (Host.CheckHealth).",
        discussion: """
            Prints each finding (severity, rule id, what is wrong and how to fix it); nothing \
            but a summary when the host complies. When the service cannot be reached, vmmsctl \
            diagnoses that itself (rule vmms.service-running): the system bus, whether vmms is \
            installed, its bus policy, its configuration file, the unit's state and last log lines. \
            Exit code 1 when a finding of severity Error exists (69 when the service is not \
            running), else 0. --json prints [{"rule", "severity", "message"}].
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let findings: [Finding]
        var unreachable = false
        switch await ask() {
        case .success(let answer):
            findings = answer
        case .failure(let failure) where failure.status == .unavailable && failure.errorName != API.errorPrefix + "HypervisorUnavailable":
            unreachable = true
            findings = [global.isRemote || !global.onSystemBus ? Finding.unreachable(failure) : LocalDiagnosis.serviceNotRunning(failure)]
        case .failure(let failure):
            throw failure
        }
        if output.json {
            Terminal.out(JSON.array(findings.map(\.json)).rendered() + "\n")
        } else {
            Terminal.out(Finding.render(findings, colour: Terminal.colourEnabled(fd: 1)))
        }
        if unreachable { throw ExitCode(ExitStatus.unavailable.rawValue) }
        if findings.contains(where: { $0.severity == "Error" }) { throw ExitCode(ExitStatus.failed.rawValue) }
    }

    private func ask() async -> Result<[Finding], Failure> {
        let client: VMMSClient
        do { client = try VMMSClient(global) } catch { return .failure(error) }
        let result: Result<[Finding], Failure>
        do {
            let reply = try await client.call(API.hostPath, API.hostInterface, "CheckHealth", action: .read, timeout: .seconds(30))
            result = .success(try Finding.decode(reply.first))
        } catch {
            result = .failure(error)
        }
        await client.close()
        return result
    }
}

/// One Best Practices Analyzer finding, as CheckHealth returns it.
struct Finding: Sendable, Equatable {
    var rule: String
    var severity: String
    var message: String

    static func decode(_ value: DBusValue?) throws(Failure) -> [Finding] {
        guard let items = value?.arrayElements else { throw Failure(.failed, "CheckHealth's reply is not a list of findings") }
        return try items.map { item throws(Failure) in
            guard case .structure(let fields) = item, fields.count == 3, let rule = fields[0].string,
                  let severity = fields[1].string, let message = fields[2].string else {
                throw Failure(.failed, "CheckHealth's reply holds a finding that is not (sss)")
            }
            return Finding(rule: rule, severity: severity, message: message)
        }
    }

    /// The service is not reachable and this machine cannot be examined (--host, --address).
    static func unreachable(_ failure: Failure) -> Finding {
        Finding(rule: "vmms.service-running", severity: "Error",
                message: [failure.message, failure.hint].compactMap { $0 }.joined(separator: " "))
    }

    var json: JSON { .object(["rule": .string(rule), "severity": .string(severity), "message": .string(message)]) }

    /// "ERROR  vmms.rule" then the message indented and wrapped, then a summary line.
    static func render(_ findings: [Finding], colour: Bool, width: Int = 88) -> String {
        guard !findings.isEmpty else { return "No problems found: the host complies with every rule.\n" }
        var out = ""
        for finding in findings {
            let style: Style = switch finding.severity {
            case "Error": .red
            case "Warning": .yellow
            default: .cyan
            }
            out += style.apply(finding.severity.uppercased(), colour: colour) + "  " + Style.bold.apply(finding.rule, colour: colour) + "\n"
            out += wrap(finding.message, width: width, indent: "    ") + "\n"
        }
        let counts = ["Error", "Warning", "Information"].compactMap { severity -> String? in
            let n = findings.filter { $0.severity == severity }.count
            return n == 0 ? nil : "\(n) \(severity.lowercased())\(n == 1 || severity == "Information" ? "" : "s")"
        }
        out += "\(findings.count) finding\(findings.count == 1 ? "" : "s"): \(counts.joined(separator: ", "))\n"
        return out
    }

    static func wrap(_ text: String, width: Int, indent: String) -> String {
        var lines: [String] = [], line = indent
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            if line.count > indent.count, line.count + 1 + word.count > width {
                lines.append(line)
                line = indent
            }
            line += (line.count > indent.count ? " " : "") + word
        }
        if line.count > indent.count { lines.append(line) }
        return lines.joined(separator: "\n")
    }
}
