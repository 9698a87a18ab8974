import DBus

/// Why an authorization check has no answer: polkitd could not be asked, did not answer, or
/// answered with an error. (A "no" from polkit is a `PolkitResult`, not an error.)
public struct PolkitError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// No system bus, or polkitd is not running and cannot be started.
        case unreachable
        /// polkitd did not answer within the check's timeout (or has left too many checks
        /// unanswered for the bus to take more).
        case noAnswer
        /// Too many interactive checks are waiting for a user to authenticate, for this user or
        /// in all; the check was not sent.
        case tooManyPending
        /// The calling task was cancelled; the check was withdrawn.
        case cancelled
        /// polkitd answered with an error (`dbusName`), or with a reply of the wrong type.
        case failed
        /// Refused before polkitd was asked, e.g. a subject that is not a unique bus name.
        case invalidArgument
    }

    public var code: Code
    public var message: String
    /// The D-Bus error behind it, when there is one (from polkitd or the bus daemon).
    public var dbusName: String?
    /// The polkitd method concerned, e.g. `CheckAuthorization`.
    public var method: String

    public init(_ code: Code, _ message: String, dbusName: String? = nil, method: String = "CheckAuthorization") {
        self.code = code
        self.message = message
        self.dbusName = dbusName
        self.method = method
    }

    /// `method: message (D-Bus name)`.
    public var description: String {
        "\(method): \(message)" + (dbusName.map { " (\($0))" } ?? "")
    }
}

extension PolkitError {
    /// Sorts a failed exchange with polkitd by what it means for the caller. An error polkitd
    /// itself answered with is about the check (e.g. `NameHasNoOwner` when the subject has
    /// left the bus), never about polkitd being away.
    init(_ error: DBusError, method: String, fromPolkitd: Bool = false) {
        let name = error.name
        let code: Code
        switch name {
        case "org.freedesktop.PolicyKit1.Error.Cancelled":
            code = .cancelled
        case _ where fromPolkitd:
            code = .failed
        case DBusError.Name.serviceUnknown, DBusError.Name.nameHasNoOwner, DBusError.Name.disconnected,
             "org.freedesktop.DBus.Error.NoServer", "org.freedesktop.DBus.Error.FileNotFound",
             "org.freedesktop.DBus.Error.AccessDenied":
            code = .unreachable
        case _ where name.hasPrefix("org.freedesktop.DBus.Error.Spawn."):
            code = .unreachable
        case DBusError.Name.noReply, DBusError.Name.timeout, "org.freedesktop.DBus.Error.TimedOut",
             DBusError.Name.limitsExceeded:
            code = .noAnswer
        default:
            code = .failed
        }
        self.init(code, error.message, dbusName: name, method: method)
    }
}
