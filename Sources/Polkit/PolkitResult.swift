import DBus

/// The answer polkitd gave for one authorization check: the `(bba{ss})` that
/// `org.freedesktop.PolicyKit1.Authority.CheckAuthorization` returns.
public struct PolkitResult: Sendable, Hashable {
    /// Whether the subject is authorized for the action right now (`is_authorized`).
    public var isAuthorized: Bool

    /// Whether the subject could become authorized by authenticating (`is_challenge`; only
    /// meaningful when `isAuthorized` is false and user interaction was not allowed).
    public var isChallenge: Bool

    /// Extra information from polkitd, e.g. `polkit.dismissed`,
    /// `polkit.retains_authorization_after_challenge` or `polkit.temporary_authorization_id`.
    public var details: [String: String]

    /// A result made by hand, for callers that fake polkit in their own tests.
    public init(isAuthorized: Bool, isChallenge: Bool, details: [String: String] = [:]) {
        self.isAuthorized = isAuthorized
        self.isChallenge = isChallenge
        self.details = details
    }

    /// Reads the reply body of `CheckAuthorization`; nil when it is not `(bba{ss})`.
    init?(replyBody body: [DBusValue]) {
        guard body.count == 1, case .structure(let fields) = body[0], fields.count == 3,
              let isAuthorized = fields[0].boolean, let isChallenge = fields[1].boolean,
              case .dictionary(let key, let value, let entries) = fields[2], key == "s", value == "s" else { return nil }
        var details: [String: String] = [:]
        for entry in entries {
            guard let k = entry.key.string, let v = entry.value.string else { return nil }
            details[k] = v
        }
        self.init(isAuthorized: isAuthorized, isChallenge: isChallenge, details: details)
    }

    /// The result collapsed into one of three outcomes.
    public var decision: PolkitDecision {
        if isAuthorized { return .authorized }
        if isChallenge { return .challenge }
        return .notAuthorized
    }

    /// Whether the user dismissed the authentication dialog (the `polkit.dismissed` detail).
    public var isDismissed: Bool {
        details["polkit.dismissed"] != nil
    }
}

/// The outcome of an authorization check in one value.
public enum PolkitDecision: Sendable, Hashable {
    /// The subject may perform the action.
    case authorized
    /// The subject may perform the action after authenticating (retry with user interaction).
    case challenge
    /// The subject may not perform the action.
    case notAuthorized
}
