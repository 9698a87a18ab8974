internal import CLibvirt

/// An error reported by libvirt, copied out of libvirt's per-thread error slot right after the
/// failing call.
///
/// `code` says what went wrong (`Code`, a `virErrorNumber` such as `VIR_ERR_NO_DOMAIN`),
/// `domain` which libvirt subsystem raised it (`Domain`, a `virErrorDomain` such as
/// `VIR_FROM_QEMU`), `message` is libvirt's own human-readable text and `function` the name of
/// the C function that failed. Wraps `virGetLastError`.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, e.g. `.noDomain` (`VIR_ERR_NO_DOMAIN`).
    public let code: Code
    /// The libvirt subsystem that raised the error, e.g. `.rpc` (`VIR_FROM_RPC`).
    public let domain: Domain
    /// libvirt's message, e.g. "Domain not found: no domain with matching uuid '…'".
    public let message: String
    /// The libvirt C function whose call failed, e.g. `virDomainLookupByUUIDString`.
    public let function: String

    /// Creates an error from its parts; the wrappers build these from libvirt's last error.
    public init(code: Code, domain: Domain, message: String, function: String) {
        self.code = code
        self.domain = domain
        self.message = message
        self.function = function
    }

    /// "`function`: `message` (VIR_ERR_… (N), VIR_FROM_… (M))".
    public var description: String {
        "\(function): \(message) (\(code), \(domain))"
    }

    /// The object (domain) does not exist. Matches `VIR_ERR_NO_DOMAIN`.
    public var isNoDomain: Bool { code == .noDomain }

    /// The operation is not valid in the object's current state (e.g. suspending a stopped
    /// domain). Matches `VIR_ERR_OPERATION_INVALID`.
    public var isOperationInvalid: Bool { code == .operationInvalid }

    /// The driver does not support the call. Matches `VIR_ERR_NO_SUPPORT`.
    public var isNotSupported: Bool { code == .noSupport }

    /// The requested metadata is absent. Matches `VIR_ERR_NO_DOMAIN_METADATA`.
    public var isNoMetadata: Bool { code == .noDomainMetadata }

    /// The storage pool does not exist. Matches `VIR_ERR_NO_STORAGE_POOL`.
    public var isNoStoragePool: Bool { code == .noStoragePool }

    /// The storage volume does not exist. Matches `VIR_ERR_NO_STORAGE_VOL`.
    public var isNoStorageVolume: Bool { code == .noStorageVolume }

    /// The network does not exist. Matches `VIR_ERR_NO_NETWORK`.
    public var isNoNetwork: Bool { code == .noNetwork }

    /// The connection to the hypervisor is unusable and must be reopened: no connection
    /// (`VIR_ERR_NO_CONNECT`, `VIR_ERR_INVALID_CONN`), an RPC failure (`VIR_ERR_RPC`), or a
    /// system/internal error raised by the RPC or remote layer (socket closed, EOF, reset).
    public var isConnectionBroken: Bool {
        switch code {
        case .noConnect, .invalidConn, .rpc:
            return true
        case .systemError, .internalError:
            // Only the transport layers mean "the connection died"; a system error from, say,
            // the storage driver is an ordinary failure.
            if domain == .rpc || domain == .remote { return true }
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
            return LibvirtError(code: .internalError, domain: .unspecified,
                                message: "libvirt reported failure without an error", function: function)
        }
        let message = err.pointee.message.map { String(cString: $0) } ?? "unknown libvirt error"
        let error = LibvirtError(code: Code(rawValue: err.pointee.code), domain: Domain(rawValue: err.pointee.domain),
                                 message: message, function: function)
        virResetLastError()
        return error
    }

    /// An error raised by this wrapper itself (not libvirt), e.g. a value libvirt returned that
    /// this version of the wrapper cannot represent.
    static func wrapper(_ message: String, function: String) -> LibvirtError {
        LibvirtError(code: .internalError, domain: .unspecified, message: message, function: function)
    }
}
