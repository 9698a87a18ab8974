internal import CPolkit

/// A failure reported by polkit or GLib, copied out of a `GError` (which is freed at once).
///
/// Wraps `GError`.
public struct PolkitError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The `GError` domain as a string, e.g. `"g-io-error-quark"`, `"g-dbus-error-quark"`,
    /// `"polkit-error-quark"`, or one of this module's own domains (`timeoutDomain`,
    /// `cancelledDomain`, `invalidArgumentDomain`, `internalDomain`).
    ///
    /// Wraps `g_quark_to_string`.
    public var domain: String

    /// The `GError` code within `domain`.
    ///
    /// Wraps `GError.code`.
    public var code: Int32

    /// The human-readable message.
    ///
    /// Wraps `GError.message`.
    public var message: String

    /// The C function whose failure this describes, e.g. `"polkit_authority_get_sync"`.
    ///
    /// Wraps `GError`.
    public var function: String

    /// Creates an error by hand, for callers that want to fake polkit in their own tests.
    ///
    /// Wraps `g_error_new_literal`.
    public init(domain: String, code: Int32, message: String, function: String) {
        self.domain = domain
        self.code = code
        self.message = message
        self.function = function
    }

    /// Domain used when a check was abandoned because its timeout elapsed (polkitd did not
    /// answer in time). `code` is then the code of the underlying GLib cancellation error.
    ///
    /// Wraps `g_cancellable_cancel`.
    public static let timeoutDomain = "vmms-polkit-timeout"

    /// Domain used when a check was abandoned because the calling Swift task was cancelled.
    ///
    /// Wraps `g_cancellable_cancel`.
    public static let cancelledDomain = "vmms-polkit-cancelled"

    /// Domain used when an argument was rejected before calling polkit (e.g. a malformed bus
    /// name), since polkit itself would only log a critical warning.
    ///
    /// Wraps `g_dbus_is_unique_name`.
    public static let invalidArgumentDomain = "vmms-polkit-invalid-argument"

    /// Domain used when a C function failed without setting a `GError`.
    ///
    /// Wraps `GError`.
    public static let internalDomain = "vmms-polkit-internal"

    /// Whether the check failed because its timeout elapsed.
    ///
    /// Wraps `g_cancellable_cancel`.
    public var isTimeout: Bool { domain == Self.timeoutDomain }

    /// Whether the check failed because the calling Swift task was cancelled.
    ///
    /// Wraps `g_cancellable_cancel`.
    public var isCancelled: Bool { domain == Self.cancelledDomain }

    /// `"function: message (domain, code)"`.
    ///
    /// Wraps `GError.message`.
    public var description: String {
        "\(function): \(message) (\(domain), \(code))"
    }
}

extension PolkitError {
    /// Copies and frees `error` (which may be nil when the C function failed without saying
    /// why). Must be called in the same synchronous function as the failing call.
    init(consuming error: UnsafeMutablePointer<GError>?, function: String) {
        guard let error else {
            self.init(
                domain: Self.internalDomain, code: -1,
                message: "\(function) failed without reporting an error", function: function)
            return
        }
        defer { g_error_free(error) }
        let domain = g_quark_to_string(error.pointee.domain).map { String(cString: $0) } ?? "unknown"
        let message = error.pointee.message.map { String(cString: $0) } ?? "(no message)"
        self.init(domain: domain, code: error.pointee.code, message: message, function: function)
    }

    /// Whether `error` is GLib's "operation was cancelled" error. Does not free it.
    static func isGLibCancellation(_ error: UnsafeMutablePointer<GError>?) -> Bool {
        guard let error else { return false }
        return error.pointee.domain == g_io_error_quark()
            && error.pointee.code == Int32(G_IO_ERROR_CANCELLED.rawValue)
    }
}
