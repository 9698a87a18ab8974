internal import CPolkit

/// A connection to polkitd (`org.freedesktop.PolicyKit1` on the system bus) that answers
/// "may this subject perform this action?".
///
/// `@unchecked Sendable` because the only stored state is an immutable reference to a GObject
/// whose methods are thread-safe: every synchronous call runs its own private main context on
/// the calling thread, so checks may run concurrently from several threads.
///
/// Wraps `PolkitAuthority`.
public final class PolkitAuthority: @unchecked Sendable {
    private let authority: OpaquePointer

    /// Connects to the system bus and to polkit's authority object there. Fails (rather than
    /// crashing) when no system bus is reachable. Succeeds even if polkitd is not running;
    /// check `ownerName` to find out. Blocks while connecting; a frozen polkitd can delay it by
    /// up to GLib's default D-Bus timeout (25 s), so call it at start-up, not per request.
    ///
    /// Wraps `polkit_authority_get_sync`.
    public init() throws(PolkitError) {
        var error: UnsafeMutablePointer<GError>? = nil
        guard let authority = polkit_authority_get_sync(nil, &error) else {
            throw PolkitError(consuming: error, function: "polkit_authority_get_sync")
        }
        if let error { g_error_free(error) }
        self.authority = authority
    }

    deinit {
        g_object_unref(UnsafeMutableRawPointer(authority))
    }

    /// The unique bus name of polkitd, or nil when polkitd is not running (worth logging as
    /// "polkitd not running"). Reflects the state GLib knows about: it is read when the
    /// authority is created and only updated if the GLib default main context is iterated.
    ///
    /// Wraps `polkit_authority_get_owner`.
    public var ownerName: String? {
        guard let owner = polkit_authority_get_owner(authority) else { return nil }
        defer { g_free(owner) }
        return String(cString: owner)
    }

    /// The name of polkitd's backend (e.g. `"js"`), or nil when polkitd is not running.
    ///
    /// Wraps `polkit_authority_get_backend_name`.
    public var backendName: String? {
        polkit_authority_get_backend_name(authority).map { String(cString: $0) }
    }

    /// The version of polkitd's backend (e.g. `"122"`), or nil when polkitd is not running.
    ///
    /// Wraps `polkit_authority_get_backend_version`.
    public var backendVersion: String? {
        polkit_authority_get_backend_version(authority).map { String(cString: $0) }
    }

    /// The unique name (e.g. `":1.7"`) of the system-bus connection this process uses to talk to
    /// polkitd, which stays valid while this authority exists. Useful as a
    /// `.systemBusName` subject to check the calling process itself.
    ///
    /// Wraps `g_dbus_connection_get_unique_name`.
    public var connectionUniqueName: String? {
        var error: UnsafeMutablePointer<GError>? = nil
        // Returns GLib's shared system-bus connection, the one polkit's proxy holds a ref on.
        guard let connection = g_bus_get_sync(G_BUS_TYPE_SYSTEM, nil, &error) else {
            if let error { g_error_free(error) }
            return nil
        }
        defer { g_object_unref(UnsafeMutableRawPointer(connection)) }
        if let error { g_error_free(error) }
        return g_dbus_connection_get_unique_name(connection).map { String(cString: $0) }
    }

    /// Asks polkitd whether `subject` may perform `actionID`. Blocks the calling thread until
    /// polkitd answers, `timeout` elapses, or (with user interaction) the user has
    /// authenticated or dismissed the dialog, so call it from a thread that may block, or use
    /// `check(subject:actionID:details:allowUserInteraction:timeout:)` from async code.
    ///
    /// - Parameters:
    ///   - subject: who is asking, normally the D-Bus sender of the call being authorized.
    ///   - actionID: a polkit action such as `"org.libvirt.unix.manage"`.
    ///   - details: key/value pairs shown in the authentication dialog and passed to rules.
    ///   - allowUserInteraction: let polkit ask the user to authenticate
    ///     (`POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION`); without it a possible
    ///     authentication is reported as `isChallenge`.
    ///   - timeout: give up after this long with an error whose `isTimeout` is true; nil waits
    ///     forever (polkit's own D-Bus call has no timeout). Zero or negative fails at once.
    /// - Throws: `PolkitError` for bus or polkitd errors (e.g. an unknown bus name), timeouts
    ///   and invalid subjects.
    ///
    /// Wraps `polkit_authority_check_authorization_sync`.
    public func checkAuthorization(
        subject: PolkitSubject,
        actionID: String,
        details: [String: String] = [:],
        allowUserInteraction: Bool = false,
        timeout: Duration? = .seconds(25)
    ) throws(PolkitError) -> PolkitResult {
        try checkAuthorization(
            subject: subject, actionID: actionID, details: details,
            allowUserInteraction: allowUserInteraction, timeout: timeout,
            cancellable: OwnedCancellable())
    }

    /// Like `checkAuthorization(subject:actionID:details:allowUserInteraction:timeout:)`, but
    /// runs the blocking call on a dedicated worker thread (never on Swift's cooperative pool)
    /// and suspends until it finishes. Cancelling the calling task cancels the check; it then
    /// throws an error whose `isCancelled` is true.
    ///
    /// Wraps `polkit_authority_check_authorization_sync`.
    public func check(
        subject: PolkitSubject,
        actionID: String,
        details: [String: String] = [:],
        allowUserInteraction: Bool = false,
        timeout: Duration? = .seconds(25)
    ) async throws(PolkitError) -> PolkitResult {
        let cancellable = try OwnedCancellable()
        let result: Result<PolkitResult, PolkitError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                BlockingWorkerPool.shared.submit {
                    continuation.resume(returning: Result { () throws(PolkitError) -> PolkitResult in
                        try self.checkAuthorization(
                            subject: subject, actionID: actionID, details: details,
                            allowUserInteraction: allowUserInteraction, timeout: timeout,
                            cancellable: cancellable)
                    })
                }
            }
        } onCancel: {
            cancellable.cancel(.taskCancelled)
        }
        return try result.get()
    }

    /// The blocking check with an externally owned cancellable (so async callers can cancel).
    func checkAuthorization(
        subject: PolkitSubject,
        actionID: String,
        details: [String: String],
        allowUserInteraction: Bool,
        timeout: Duration?,
        cancellable: OwnedCancellable
    ) throws(PolkitError) -> PolkitResult {
        let function = "polkit_authority_check_authorization_sync"
        let subjectObject = try OwnedSubject(subject)
        let detailsObject = try OwnedPolkitDetails(details)

        var timer: CancellationTimer? = nil
        if let timeout {
            if timeout <= .zero {
                cancellable.cancel(.timeout(timeout))
            } else {
                timer = CancellationTimer(cancelling: cancellable, after: timeout)
            }
        }
        defer { timer?.invalidate() }

        let flags = allowUserInteraction
            ? POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION
            : POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE
        var error: UnsafeMutablePointer<GError>? = nil
        guard let result = polkit_authority_check_authorization_sync(
            authority, subjectObject.pointer, actionID, detailsObject.pointer, flags,
            cancellable.pointer, &error)
        else {
            let wasCancellation = PolkitError.isGLibCancellation(error)
            let underlying = PolkitError(consuming: error, function: function)
            switch (wasCancellation, cancellable.reason) {
            case (true, .timeout(let limit)?):
                throw PolkitError(
                    domain: PolkitError.timeoutDomain, code: underlying.code,
                    message: "polkitd did not answer within \(limit) (\(underlying.message))",
                    function: function)
            case (true, .taskCancelled?):
                throw PolkitError(
                    domain: PolkitError.cancelledDomain, code: underlying.code,
                    message: "the calling task was cancelled (\(underlying.message))",
                    function: function)
            default:
                throw underlying
            }
        }
        defer { g_object_unref(UnsafeMutableRawPointer(result)) }
        if let error { g_error_free(error) }

        return PolkitResult(
            isAuthorized: polkit_authorization_result_get_is_authorized(result) != 0,
            isChallenge: polkit_authorization_result_get_is_challenge(result) != 0,
            details: OwnedPolkitDetails.dictionary(
                borrowing: polkit_authorization_result_get_details(result)))
    }
}

/// An owned `PolkitSubject*`.
final class OwnedSubject {
    let pointer: OpaquePointer

    /// Wraps `polkit_system_bus_name_new` and `polkit_unix_process_new_for_owner`.
    init(_ subject: PolkitSubject) throws(PolkitError) {
        let made: OpaquePointer?
        let function: String
        switch subject {
        case .systemBusName(let name):
            function = "polkit_system_bus_name_new"
            // polkit only g_return_val_if_fail()s (logging a critical) on a bad name.
            guard g_dbus_is_unique_name(name) != 0 else {
                throw PolkitError(
                    domain: PolkitError.invalidArgumentDomain, code: -1,
                    message: "'\(name)' is not a unique D-Bus name", function: function)
            }
            made = polkit_system_bus_name_new(name)
        case .unixProcess(let pid, let startTime, let uid):
            function = "polkit_unix_process_new_for_owner"
            guard pid > 0 else {
                throw PolkitError(
                    domain: PolkitError.invalidArgumentDomain, code: -1,
                    message: "\(pid) is not a valid process ID", function: function)
            }
            made = polkit_unix_process_new_for_owner(pid, guint64(truncatingIfNeeded: startTime), uid)
        }
        guard let made else { throw PolkitError(consuming: nil, function: function) }
        pointer = made
    }

    deinit {
        g_object_unref(UnsafeMutableRawPointer(pointer))
    }
}
