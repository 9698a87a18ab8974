/// The answer polkitd gave for one authorization check.
///
/// Copied out of a `PolkitAuthorizationResult*` while it is alive, so it holds no C memory.
///
/// Wraps `PolkitAuthorizationResult`.
public struct PolkitResult: Sendable, Hashable {
    /// Whether the subject is authorized for the action right now.
    ///
    /// Wraps `polkit_authorization_result_get_is_authorized`.
    public var isAuthorized: Bool

    /// Whether the subject could become authorized by authenticating (only meaningful when
    /// `isAuthorized` is `false` and user interaction was not allowed).
    ///
    /// Wraps `polkit_authorization_result_get_is_challenge`.
    public var isChallenge: Bool

    /// Extra information from polkitd, e.g. `polkit.dismissed`,
    /// `polkit.retains_authorization_after_challenge` or `polkit.temporary_authorization_id`.
    ///
    /// Wraps `polkit_authorization_result_get_details`.
    public var details: [String: String]

    /// Creates a result by hand, for callers that want to fake polkit in their own tests.
    ///
    /// Wraps `polkit_authorization_result_new`.
    public init(isAuthorized: Bool, isChallenge: Bool, details: [String: String] = [:]) {
        self.isAuthorized = isAuthorized
        self.isChallenge = isChallenge
        self.details = details
    }

    /// The result collapsed into one of three outcomes.
    ///
    /// Wraps `polkit_authorization_result_get_is_authorized` and
    /// `polkit_authorization_result_get_is_challenge`.
    public var decision: PolkitDecision {
        if isAuthorized { return .authorized }
        if isChallenge { return .challenge }
        return .notAuthorized
    }

    /// Whether the user dismissed the authentication dialog (the `polkit.dismissed` detail).
    ///
    /// Wraps `polkit_authorization_result_get_dismissed`.
    public var isDismissed: Bool {
        details["polkit.dismissed"] != nil
    }
}

/// The outcome of an authorization check in one value.
///
/// Wraps `polkit_authorization_result_get_is_authorized` and
/// `polkit_authorization_result_get_is_challenge`.
public enum PolkitDecision: Sendable, Hashable {
    /// The subject may perform the action.
    ///
    /// Wraps `polkit_authorization_result_get_is_authorized`.
    case authorized
    /// The subject may perform the action after authenticating (retry with user interaction).
    ///
    /// Wraps `polkit_authorization_result_get_is_challenge`.
    case challenge
    /// The subject may not perform the action.
    ///
    /// Wraps `polkit_authorization_result_get_is_authorized`.
    case notAuthorized
}
