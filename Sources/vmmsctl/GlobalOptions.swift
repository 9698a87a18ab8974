import ArgumentParser
import DBus
import Foundation

/// Where the service is and how calls may authenticate; every verb takes these.
struct GlobalOptions: ParsableArguments {
    @Flag(help: "Talk to vmms on the system bus (the default).")
    var system = false

    @Flag(help: "Talk to vmms on the session bus (development: vmmsd --session).")
    var session = false

    @Option(help: ArgumentHelp("Talk to vmms on the bus at this D-Bus address, e.g. unix:path=$PWD/.run/bus for `make run`.",
                               valueName: "address"))
    var address: String?

    @Option(name: [.customShort("H"), .long],
            help: ArgumentHelp("Manage vmms on another host over SSH, as busctl -H and PowerShell's -ComputerName do: "
                + "ssh runs systemd-stdio-bridge there (VMMSCTL_SSH names another ssh program).",
                               valueName: "[user@]host"))
    var host: String?

    @Flag(help: "Let polkit ask for a password even off a terminal (for a graphical polkit agent).")
    var interactive = false

    @Flag(help: "Never let polkit ask for a password: calls that would need one fail with exit code 3.")
    var noAskPassword = false

    func validate() throws {
        let targets = [system, session, address != nil, host != nil].filter { $0 }.count
        guard targets <= 1 else { throw ValidationError("use only one of --system, --session, --address and --host") }
        if interactive && noAskPassword { throw ValidationError("--interactive and --no-ask-password contradict each other") }
        if let address, address.isEmpty { throw ValidationError("--address needs a D-Bus address") }
        if let host { try RemoteHost.validate(host) }
    }

    var isRemote: Bool { host != nil }
    /// Whether vmmsctl talks to this machine's system bus (where it can diagnose the service).
    var onSystemBus: Bool { !session && address == nil && host == nil }

    /// The bus to connect to, and how to call it a failure.
    var bus: (bus: DBusConnection.Bus, description: String) {
        if session { return (.session, "the session bus") }
        if let address { return (.address(address), "the bus at \(address)") }
        if let host {
            let ssh = ProcessInfo.processInfo.environment["VMMSCTL_SSH"].flatMap { $0.isEmpty ? nil : $0 } ?? "ssh"
            return (.address(RemoteHost.address(host: host, ssh: ssh)), "\(host)'s system bus over ssh")
        }
        return (.system, "the system bus")
    }

    /// Whether a call that needs a password is retried with interaction allowed.
    var interaction: Interaction {
        if noAskPassword { return .never }
        if interactive { return .always }
        // Over ssh the password prompt would have to come from the far side's agent.
        return isRemote ? .never : .onTerminal
    }

    /// Paths given on the command line mean files on the service's host: absolute for a
    /// local service, passed as written to a remote one.
    func servicePath(_ path: String) -> String {
        guard !isRemote, !path.hasPrefix("/") else { return path }
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            .standardizedFileURL.path
    }
}

enum Interaction: Sendable {
    /// Never set ALLOW_INTERACTIVE_AUTHORIZATION.
    case never
    /// Retry with it after InteractiveAuthorizationRequired when a person sits at the terminal.
    case onTerminal
    /// Set it on every call.
    case always
}

/// `--host`: the D-Bus address that runs ssh to the host's systemd-stdio-bridge, as
/// `busctl -H` does: `unixexec:path=ssh,argv1=-xT,argv2=--,argv3=HOST,argv4=systemd-stdio-bridge`.
/// libdbus execs `path` (searched in PATH) with `argv0` defaulting to it and `argv1…` as
/// given; values are escaped as D-Bus addresses require (dbus_address_escape_value).
enum RemoteHost {
    static func address(host: String, ssh: String) -> String {
        let arguments = ["-xT", "--", host, "systemd-stdio-bridge"]
        return "unixexec:path=\(escape(ssh))" + arguments.enumerated().map { ",argv\($0.offset + 1)=\(escape($0.element))" }.joined()
    }

    /// Bytes outside `[-0-9A-Za-z_/.\*]` become `%XX`.
    static func escape(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if byte < 0x80, c.isLetter || c.isNumber || "-_/.\\*".contains(c) {
                out.append(c)
            } else {
                out += "%" + String(byte, radix: 16, uppercase: false).leftPadded(to: 2)
            }
        }
        return out
    }

    /// `[user@]host`: something ssh reads as a destination, never as an option.
    static func validate(_ host: String) throws {
        guard !host.isEmpty, !host.hasPrefix("-"), !host.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw ValidationError("--host takes [user@]host, not \"\(host)\"")
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
