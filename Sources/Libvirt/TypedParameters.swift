internal import CLibvirt

/// The value of one libvirt typed parameter (`virTypedParameter`), as libvirt typed it.
/// Statistics and job records keep every parameter in a `raw` dictionary of these, so fields
/// this wrapper does not name are still readable.
public enum TypedParameterValue: Sendable, Equatable {
    /// `VIR_TYPED_PARAM_INT`.
    case int(Int32)
    /// `VIR_TYPED_PARAM_UINT`.
    case uint(UInt32)
    /// `VIR_TYPED_PARAM_LLONG`.
    case llong(Int64)
    /// `VIR_TYPED_PARAM_ULLONG`.
    case ullong(UInt64)
    /// `VIR_TYPED_PARAM_DOUBLE`.
    case double(Double)
    /// `VIR_TYPED_PARAM_BOOLEAN`.
    case boolean(Bool)
    /// `VIR_TYPED_PARAM_STRING`.
    case string(String)

    /// Any non-negative integer value as `UInt64` (libvirt is not consistent about which
    /// integer type a field has); nil for negative numbers, doubles, booleans and strings.
    public var unsigned: UInt64? {
        switch self {
        case .int(let value): UInt64(exactly: value)
        case .uint(let value): UInt64(value)
        case .llong(let value): UInt64(exactly: value)
        case .ullong(let value): value
        case .double, .boolean, .string: nil
        }
    }

    /// Any integer value as `Int64` (nil when it does not fit, or is not an integer).
    public var signed: Int64? {
        switch self {
        case .int(let value): Int64(value)
        case .uint(let value): Int64(value)
        case .llong(let value): value
        case .ullong(let value): Int64(exactly: value)
        case .double, .boolean, .string: nil
        }
    }

    /// The string value, or nil.
    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The boolean value, or nil.
    public var boolean: Bool? {
        if case .boolean(let value) = self { return value }
        return nil
    }
}

/// Typed parameters read from libvirt, by name: the last value wins for a repeated name.
typealias TypedParameters = [String: TypedParameterValue]

extension Dictionary where Key == String, Value == TypedParameterValue {
    /// The unsigned integer under `name`, or nil.
    func unsigned(_ name: String) -> UInt64? { self[name]?.unsigned }
    /// The signed integer under `name`, or nil.
    func signed(_ name: String) -> Int64? { self[name]?.signed }
    /// The string under `name`, or nil.
    func string(_ name: String) -> String? { self[name]?.string }
}

/// Copies a C array of typed parameters into Swift values (the array stays the caller's).
func readTypedParameters(_ params: UnsafePointer<virTypedParameter>?, count: Int32) -> TypedParameters {
    guard let params, count > 0 else { return [:] }
    var result: TypedParameters = [:]
    for param in UnsafeBufferPointer(start: params, count: Int(count)) {
        let name = stringFromCCharTuple(param.field)
        let value: TypedParameterValue?
        switch UInt32(bitPattern: param.type) {
        case VIR_TYPED_PARAM_INT.rawValue: value = .int(param.value.i)
        case VIR_TYPED_PARAM_UINT.rawValue: value = .uint(param.value.ui)
        case VIR_TYPED_PARAM_LLONG.rawValue: value = .llong(param.value.l)
        case VIR_TYPED_PARAM_ULLONG.rawValue: value = .ullong(param.value.ul)
        case VIR_TYPED_PARAM_DOUBLE.rawValue: value = .double(param.value.d)
        case VIR_TYPED_PARAM_BOOLEAN.rawValue: value = .boolean(param.value.b != 0)
        case VIR_TYPED_PARAM_STRING.rawValue: value = param.value.s.map { .string(String(cString: $0)) }
        default: value = nil
        }
        if let value { result[name] = value }
    }
    return result
}

/// A typed-parameter array being built for one call; freed when released.
/// Wraps `virTypedParamsAdd*` and `virTypedParamsFree`.
final class TypedParameterList {
    private var params: UnsafeMutablePointer<virTypedParameter>?
    private var count: Int32 = 0
    private var capacity: Int32 = 0

    deinit {
        virTypedParamsFree(params, count)
    }

    /// Whether nothing was added.
    var isEmpty: Bool { count == 0 }

    func add(_ name: String, _ value: UInt64?) throws(LibvirtError) {
        guard let value else { return }
        try check("virTypedParamsAddULLong") { virTypedParamsAddULLong(&params, &count, &capacity, name, value) }
    }

    func add(_ name: String, _ value: Int64?) throws(LibvirtError) {
        guard let value else { return }
        try check("virTypedParamsAddLLong") { virTypedParamsAddLLong(&params, &count, &capacity, name, value) }
    }

    func add(_ name: String, _ value: UInt32?) throws(LibvirtError) {
        guard let value else { return }
        try check("virTypedParamsAddUInt") { virTypedParamsAddUInt(&params, &count, &capacity, name, value) }
    }

    func add(_ name: String, _ value: Int32?) throws(LibvirtError) {
        guard let value else { return }
        try check("virTypedParamsAddInt") { virTypedParamsAddInt(&params, &count, &capacity, name, value) }
    }

    /// Adds a string; libvirt copies it.
    func add(_ name: String, _ value: String?) throws(LibvirtError) {
        guard let value else { return }
        try check("virTypedParamsAddString") { virTypedParamsAddString(&params, &count, &capacity, name, value) }
    }

    /// Adds the same name once per string (how libvirt takes lists, e.g. migrate_disks).
    func add(_ name: String, each values: [String]) throws(LibvirtError) {
        for value in values { try add(name, value) }
    }

    /// Calls `body` with the array and its length.
    @discardableResult
    func withParameters<R>(_ body: (UnsafeMutablePointer<virTypedParameter>?, Int32) throws -> R) rethrows -> R {
        try body(params, count)
    }
}
