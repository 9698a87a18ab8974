import DBus

/// vmmsctl's exit codes, documented in `--help`, the man page and the README.
enum ExitStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    case failed = 1
    case usage = 2
    case notAuthorized = 3
    case notFound = 4
    /// EX_UNAVAILABLE from sysexits.h: the service is not on the bus, or the bus is unreachable.
    case unavailable = 69

    static let summary = """
        0 ok, 1 failed, 2 usage error, 3 not authorized (polkit said no or would need a \
        password), 4 not found (no such VM), 69 service unavailable (org.example.VMMS1 is not \
        on the bus, the bus cannot be reached, or libvirtd is down).
        """
}

/// What went wrong, said the way an administrator can act on: the service's message, the
/// D-Bus error name, and one line of what to do.
struct Failure: Error, Sendable, Equatable {
    var status: ExitStatus
    var message: String
    var hint: String?
    var errorName: String?

    init(_ status: ExitStatus, _ message: String, hint: String? = nil, errorName: String? = nil) {
        self.status = status
        self.message = message
        self.hint = hint
        self.errorName = errorName
    }

    /// The polkit action a verb needs, named in NotAuthorized hints.
    enum Action: String, Sendable {
        case read, vmPower = "vm.power", vmConfigure = "vm.configure", vmCreate = "vm.create"
        case vmDelete = "vm.delete", hostConfigure = "host.configure"
        case vmCheckpoint = "vm.checkpoint", vmExport = "vm.export", vmMove = "vm.move"

        var id: String { "org.example.vmms1." + rawValue }
    }

    static let servicePrefix = "org.example.VMMS1.Error."

    /// Translates a D-Bus error into exit code, message and hint. `remote` says whether the
    /// call went over `--host`, which changes what "not running" means.
    init(_ error: DBusError, action: Action, remote: Bool = false) {
        let name = error.name
        let message = error.message.isEmpty ? name : error.message
        switch name {
        case Self.servicePrefix + "NotAuthorized":
            self.init(.notAuthorized, message, hint: """
                Ask an administrator to add you to the vmms-admins group (usermod -aG vmms-admins USER), \
                or to allow \(action.id) in a polkit rule under /etc/polkit-1/rules.d.
                """, errorName: name)
        case DBusError.Name.interactiveAuthorizationRequired:
            self.init(.notAuthorized, message, hint: """
                This needs an administrator's password: run it on a terminal without --no-ask-password \
                (polkit asks for yours), pass --interactive where a polkit agent runs, or join vmms-admins.
                """, errorName: name)
        case Self.servicePrefix + "NotFound", DBusError.Name.unknownObject:
            self.init(.notFound, message, hint: "`vmmsctl list` shows the virtual machines you may see.", errorName: name)
        case DBusError.Name.serviceUnknown, DBusError.Name.nameHasNoOwner:
            self.init(.unavailable, Self.notRunning(message), hint: remote
                ? "On that host: systemctl start vmms (journalctl -u vmms -b says why it stopped)."
                : "Start it: systemctl start vmms (journalctl -u vmms -b says why it stopped).", errorName: name)
        case _ where name.hasPrefix("org.freedesktop.DBus.Error.Spawn."):
            self.init(.unavailable, Self.notRunning(message),
                      hint: "D-Bus could not start vmmsd: journalctl -u vmms -b, or check /etc/vmms/vmmsd.conf.", errorName: name)
        case DBusError.Name.accessDenied:
            self.init(.unavailable, message, hint: """
                The bus refused the call: its policy /etc/dbus-1/system.d/org.example.VMMS1.conf \
                is missing or old; reinstall vmms (make install).
                """, errorName: name)
        case DBusError.Name.disconnected:
            self.init(.unavailable, "lost the connection to the bus: \(message)",
                      hint: remote ? "Check that ssh to the host works and that it has systemd-stdio-bridge." : nil,
                      errorName: name)
        case Self.servicePrefix + "HypervisorUnavailable":
            self.init(.unavailable, message,
                      hint: "libvirtd cannot be reached: systemctl start libvirtd; vmms reconnects by itself.", errorName: name)
        case Self.servicePrefix + "InvalidState":
            self.init(.failed, message, hint: "`vmmsctl show VM` shows its state; changes such as rename need it Off (`vmmsctl stop VM`).",
                      errorName: name)
        case Self.servicePrefix + "AlreadyExists":
            self.init(.failed, message, hint: "Pick another name; `vmmsctl list` shows the names in use.", errorName: name)
        case Self.servicePrefix + "NotSupported":
            self.init(.failed, message, hint: """
                Secure Boot needs generation 2 and UEFI firmware with Secure Boot (Debian's ovmf); \
                `vmmsctl host get` shows SecureBootAvailable.
                """, errorName: name)
        case Self.servicePrefix + "Timeout":
            self.init(.failed, message, hint: "Give the guest longer (--timeout), or add --force to turn it off after the timeout, or use --turn-off.", errorName: name)
        case Self.servicePrefix + "InsufficientResources":
            self.init(.failed, message, hint: "Ask for less, or stop other VMs first.", errorName: name)
        case DBusError.Name.invalidArgs:
            self.init(.failed, message, hint: "Check the values given; `vmmsctl help VERB` lists what each option accepts.", errorName: name)
        case DBusError.Name.unknownMethod, DBusError.Name.unknownProperty, DBusError.Name.unknownInterface:
            self.init(.failed, message, hint: "This vmmsd does not offer that yet: it is older than vmmsctl; update vmms.", errorName: name)
        case DBusError.Name.noReply, DBusError.Name.timeout:
            self.init(.failed, message, hint: "The service did not answer in time: journalctl -u vmms -b.", errorName: name)
        case Self.servicePrefix + "Failed":
            self.init(.failed, message, hint: "libvirt refused it; its message above says why (journalctl -u vmms -b for more).", errorName: name)
        default:
            self.init(.failed, message, errorName: name)
        }
    }

    /// The message that cannot connect to the bus at all gives.
    static func busUnreachable(_ error: DBusError, what: String) -> Failure {
        Failure(.unavailable, "cannot connect to \(what): \(error.message)",
                hint: what == "the system bus" ? "Is dbus running? systemctl status dbus" : nil, errorName: error.name)
    }

    /// Hyper-V's Best Practices Analyzer wording, followed by the bus's own words.
    static func notRunning(_ detail: String) -> String {
        "The service required to manage virtual machines is not running (\(detail))"
    }

    /// Several failures, from a verb applied to several VMs: one code if they agree, else 1.
    static func combinedStatus(_ failures: [Failure]) -> ExitStatus {
        guard let first = failures.first else { return .ok }
        return failures.allSatisfy { $0.status == first.status } ? first.status : .failed
    }
}
