internal import CLibvirt

/// An error reported by libvirt, copied out of libvirt's per-thread error slot right after the
/// failing call.
///
/// `code` is a `virErrorNumber` (for example `VIR_ERR_NO_DOMAIN`), `domain` a `virErrorDomain`
/// (the libvirt subsystem that raised it, for example `VIR_FROM_QEMU`), `message` libvirt's own
/// human-readable text and `function` the name of the C function that failed.
/// Wraps `virGetLastError`.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// A `virErrorNumber`, named.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        init<E: RawRepresentable>(_ value: E) where E.RawValue: BinaryInteger { rawValue = cInt(value) }
        public var description: String { String(rawValue) }

        /// `VIR_ERR_NO_SUPPORT`
        public static let noSupport = Code(VIR_ERR_NO_SUPPORT)
        /// `VIR_ERR_INVALID_ARG`
        public static let invalidArg = Code(VIR_ERR_INVALID_ARG)
        /// `VIR_ERR_OPERATION_FAILED`
        public static let operationFailed = Code(VIR_ERR_OPERATION_FAILED)
        /// `VIR_ERR_DOM_EXIST`
        public static let domainExists = Code(VIR_ERR_DOM_EXIST)
        /// `VIR_ERR_NO_DOMAIN`
        public static let noDomain = Code(VIR_ERR_NO_DOMAIN)
        /// `VIR_ERR_OPERATION_INVALID`
        public static let operationInvalid = Code(VIR_ERR_OPERATION_INVALID)
    }

    /// The `virErrorNumber` of the failure, e.g. `VIR_ERR_NO_DOMAIN` (42).
    public let code: Code
    /// The `virErrorDomain` (libvirt subsystem) that raised the error, e.g. `VIR_FROM_RPC`.
    public let domain: Int32
    /// libvirt's message, e.g. "Domain not found: no domain with matching uuid '…'".
    public let message: String
    /// The libvirt C function whose call failed, e.g. `virDomainLookupByUUIDString`.
    public let function: String

    /// Creates an error from its parts; the wrappers build these from libvirt's last error.
    public init(code: Int32, domain: Int32, message: String, function: String) {
        self.code = Code(rawValue: code)
        self.domain = domain
        self.message = message
        self.function = function
    }

    /// "`function`: `message` (code N, domain M)".
    public var description: String {
        "\(function): \(message) (code \(code), domain \(domain))"
    }

    /// The object (domain) does not exist. Matches `VIR_ERR_NO_DOMAIN`.
    public var isNoDomain: Bool { code.rawValue == cInt(VIR_ERR_NO_DOMAIN) }

    /// The operation is not valid in the object's current state (e.g. suspending a stopped
    /// domain). Matches `VIR_ERR_OPERATION_INVALID`.
    public var isOperationInvalid: Bool { code.rawValue == cInt(VIR_ERR_OPERATION_INVALID) }

    /// The driver does not support the call. Matches `VIR_ERR_NO_SUPPORT`.
    public var isNotSupported: Bool { code.rawValue == cInt(VIR_ERR_NO_SUPPORT) }

    /// The requested metadata is absent. Matches `VIR_ERR_NO_DOMAIN_METADATA`.
    public var isNoMetadata: Bool { code.rawValue == cInt(VIR_ERR_NO_DOMAIN_METADATA) }

    /// The storage pool does not exist. Matches `VIR_ERR_NO_STORAGE_POOL`.
    public var isNoStoragePool: Bool { code.rawValue == cInt(VIR_ERR_NO_STORAGE_POOL) }

    /// The storage volume does not exist. Matches `VIR_ERR_NO_STORAGE_VOL`.
    public var isNoStorageVolume: Bool { code.rawValue == cInt(VIR_ERR_NO_STORAGE_VOL) }

    /// The connection to the hypervisor is unusable and must be reopened: no connection
    /// (`VIR_ERR_NO_CONNECT`, `VIR_ERR_INVALID_CONN`), an RPC failure (`VIR_ERR_RPC`), or a
    /// system/internal error raised by the RPC or remote layer (socket closed, EOF, reset).
    public var isConnectionBroken: Bool {
        switch code.rawValue {
        case cInt(VIR_ERR_NO_CONNECT), cInt(VIR_ERR_INVALID_CONN), cInt(VIR_ERR_RPC):
            return true
        case cInt(VIR_ERR_SYSTEM_ERROR), cInt(VIR_ERR_INTERNAL_ERROR):
            // Only the transport layers mean "the connection died"; a system error from, say,
            // the storage driver is an ordinary failure.
            if domain == cInt(VIR_FROM_RPC) || domain == cInt(VIR_FROM_REMOTE) { return true }
            return message.contains("client socket is closed")
                || message.contains("connection is closed")
        default:
            return false
        }
    }

    /// Copies and clears the calling thread's last libvirt error. Must run in the same
    /// synchronous function as the failing C call: libvirt keeps the error per thread.
    static func last(function: String) -> LibvirtError {
        guard let err = virGetLastError() else {
            return LibvirtError(code: cInt(VIR_ERR_INTERNAL_ERROR), domain: 0,
                                message: "libvirt reported failure without an error", function: function)
        }
        let message = err.pointee.message.map { String(cString: $0) } ?? "unknown libvirt error"
        let error = LibvirtError(code: err.pointee.code, domain: err.pointee.domain,
                                 message: message, function: function)
        virResetLastError()
        return error
    }

    /// An error raised by this wrapper itself (not libvirt), e.g. a value libvirt returned that
    /// this version of the wrapper cannot represent.
    static func wrapper(_ message: String, function: String) -> LibvirtError {
        LibvirtError(code: cInt(VIR_ERR_INTERNAL_ERROR), domain: 0, message: message, function: function)
    }
}
