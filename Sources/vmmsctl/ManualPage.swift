import ArgumentParser
import Foundation

/// `vmmsctl --generate-manual`: the man page, in mdoc, from the same ArgumentParser
/// definitions `--help` and the completion scripts come from.
///
/// argument-parser's own `generate-manual` plugin works here too, but it can only build the
/// whole package and document every executable in it, which `make install` with a prebuilt
/// binary (VMMSCTL_BIN) and a `make install` inside `swift test` (SwiftPM's build lock) cannot
/// use. So the page is made from the binary itself: its `--experimental-dump-help` tree
/// (ArgumentParser's ToolInfo, version 0), read back in-process.
enum ManualPage {
    struct ToolInfo: Decodable {
        var serializationVersion: Int
        var command: CommandInfo
    }

    struct CommandInfo: Decodable {
        var commandName: String
        var aliases: [String]?
        var abstract: String?
        var discussion: String?
        var shouldDisplay: Bool?
        var subcommands: [CommandInfo]?
        var arguments: [ArgumentInfo]?
    }

    struct ArgumentInfo: Decodable {
        struct Name: Decodable {
            var kind: String
            var name: String
        }
        var kind: String
        var shouldDisplay: Bool?
        var isOptional: Bool?
        var isRepeating: Bool?
        var names: [Name]?
        var valueName: String?
        var defaultValue: String?
        var abstract: String?
        var discussion: String?
    }

    /// The command tree as ArgumentParser describes it.
    static func toolInfo() throws -> ToolInfo {
        var dump = ""
        do {
            _ = try VMMSCtl.parseAsRoot(["--experimental-dump-help"])
        } catch {
            dump = VMMSCtl.fullMessage(for: error)
        }
        return try JSONDecoder().decode(ToolInfo.self, from: Data(dump.utf8))
    }

    /// Options every verb takes: described once, under GLOBAL OPTIONS.
    static let globalNames: Set<String> = ["system", "session", "address", "host", "interactive", "no-ask-password", "help", "version"]

    static func render(_ info: ToolInfo, date: Date) -> String {
        let root = info.command
        var page = Page()
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "MMMM d, yyyy"
        page.macro("Dd", formatter.string(from: date))
        page.macro("Dt", root.commandName.uppercased(), "1")
        page.macro("Os")
        page.macro("Sh", "NAME")
        page.macro("Nm", root.commandName)
        page.macro("Nd", lowercasingFirst(root.abstract ?? ""))
        page.macro("Sh", "SYNOPSIS")
        page.macro("Nm")
        page.macro("Op", "Ar global-options")
        page.macro("Ar", "command")
        page.macro("Op", "Ar options")
        page.macro("Op", "Ar arguments")
        page.macro("Sh", "DESCRIPTION")
        page.text(root.discussion ?? "")

        page.macro("Sh", "GLOBAL OPTIONS")
        page.text("Every command takes these, before or after its name.")
        page.list(root.arguments?.filter { isShown($0) } ?? [])

        page.macro("Sh", "COMMANDS")
        for command in root.subcommands ?? [] where command.shouldDisplay != false {
            describe(command, path: [root.commandName], into: &page)
        }

        page.macro("Sh", "ENVIRONMENT")
        page.raw(".Bl -tag -width Ds")
        page.macro("It", "Ev NO_COLOR")
        page.text("When set and not empty, tables are never coloured (they are coloured only on a terminal anyway).")
        page.macro("It", "Ev VMMSCTL_SSH")
        page.text("The ssh program --host runs (default ssh, searched in PATH); it gets -xT -- HOST systemd-stdio-bridge.")
        page.raw(".El")
        page.macro("Sh", "EXIT STATUS")
        page.text(ExitStatus.summary)
        page.macro("Sh", "EXAMPLES")
        for example in examples {
            page.text(example.0)
            page.raw(".Dl " + escape(example.1))
        }
        page.macro("Sh", "SEE ALSO")
        page.raw(".Xr busctl 1 ,\n.Xr virsh 1 ,\n.Xr polkit 8")
        return page.text
    }

    static let examples = [
        ("Get-VM, and the same kept current:", "vmmsctl list; vmmsctl list --watch"),
        ("New-VM with 2 processors, 2 GiB and a 20 GiB disk, then Start-VM:",
         "vmmsctl create web01 --cpus 2 --memory 2G --new-disk 20G --start"),
        ("Stop-VM, giving the guest a minute, then pulling the plug:", "vmmsctl stop --timeout 60 --force web01"),
        ("Get-VM on another host (-ComputerName):", "vmmsctl --host admin@hv2 list --json"),
    ]

    private static func describe(_ command: CommandInfo, path: [String], into page: inout Page) {
        let fullName = (path + [command.commandName]).joined(separator: " ")
        page.macro("Ss", fullName)
        var summary = command.abstract ?? ""
        if let aliases = command.aliases, !aliases.isEmpty { summary += " (also: \(aliases.joined(separator: ", ")))" }
        page.text(summary)
        if let discussion = command.discussion, !discussion.isEmpty {
            page.raw(".Pp")
            page.text(discussion)
        }
        let arguments = (command.arguments ?? []).filter { isShown($0) && !isGlobal($0) }
        if !arguments.isEmpty { page.list(arguments) }
        for sub in command.subcommands ?? [] where sub.shouldDisplay != false {
            describe(sub, path: path + [command.commandName], into: &page)
        }
    }

    private static func isShown(_ argument: ArgumentInfo) -> Bool {
        argument.shouldDisplay != false && !(argument.names ?? []).contains { $0.name.hasPrefix("generate-") }
    }

    private static func isGlobal(_ argument: ArgumentInfo) -> Bool {
        (argument.names ?? []).contains { $0.kind == "long" && globalNames.contains($0.name) }
    }

    /// The `.It` line of one argument: `Fl H , Fl -host Ar [user@]host`, `Ar vm ...`.
    static func item(_ argument: ArgumentInfo) -> String {
        let value = escape(argument.valueName ?? "value")
        var parts: [String]
        if argument.kind == "positional" {
            parts = ["Ar " + value]
        } else {
            parts = [(argument.names ?? []).map { name in
                "Fl " + (name.kind == "short" ? "" : "-") + escape(name.name)
            }.joined(separator: " , ")]
            if argument.kind == "option" { parts.append("Ar " + value) }
        }
        if argument.isRepeating == true { parts.append("...") }
        return parts.joined(separator: " ")
    }

    private static func lowercasingFirst(_ text: String) -> String {
        guard let first = text.first else { return text }
        let rest = text.dropFirst()
        // "Manage …" → "manage …", but keep "VM…" and other capitalised words.
        if rest.first?.isUppercase == true { return text }
        return first.lowercased() + rest
    }

    /// Text lines must not start with `.` or `'` (roff requests); backslashes are doubled.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\e")
    }

    /// An mdoc document under construction.
    struct Page {
        var text = ""

        mutating func macro(_ name: String, _ arguments: String...) {
            text += "." + ([name] + arguments.map(ManualPage.escape)).joined(separator: " ") + "\n"
        }

        mutating func raw(_ line: String) { text += line + "\n" }

        /// Paragraphs separated by blank lines in the help text become `.Pp`.
        mutating func text(_ paragraphs: String) {
            let blocks = paragraphs.components(separatedBy: "\n\n").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
                .filter { !$0.isEmpty }
            for (index, block) in blocks.enumerated() {
                if index > 0 || text.hasSuffix(".El\n") { raw(".Pp") }
                for line in block.split(separator: "\n") {
                    var line = ManualPage.escape(String(line))
                    if line.hasPrefix(".") || line.hasPrefix("'") { line = "\\&" + line }
                    raw(line)
                }
            }
        }

        mutating func list(_ arguments: [ArgumentInfo]) {
            raw(".Bl -tag -width 6n")
            for argument in arguments {
                raw(".It " + ManualPage.item(argument))
                var help = argument.abstract ?? ""
                if let discussion = argument.discussion, !discussion.isEmpty { help += " " + discussion }
                if let defaultValue = argument.defaultValue, argument.kind == "option" { help += " (default: \(defaultValue))" }
                text(help)
            }
            raw(".El")
        }
    }
}
