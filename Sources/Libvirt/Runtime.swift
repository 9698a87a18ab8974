internal import CLibvirt
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Process-wide libvirt setup, run once before the first connection or event-loop start.
enum LibvirtRuntime {
    /// Swift runs a static initializer exactly once, thread-safely.
    private static let initialized: Bool = {
        _ = virInitialize()
        // The default handler prints every error to stderr; errors are reported as thrown
        // `LibvirtError`s instead, and the daemon decides what to log.
        virSetErrorFunc(nil, { _, _ in })
        return true
    }()

    /// Makes sure `virInitialize` and the silent error handler are in place.
    static func ensureInitialized() {
        _ = initialized
    }
}

/// Converts an imported C enumerator (an unsigned struct on Linux) to the `int` libvirt
/// uses for it in `virError` and event callbacks.
func cInt<E: RawRepresentable>(_ value: E) -> Int32 where E.RawValue: BinaryInteger {
    Int32(truncatingIfNeeded: value.rawValue)
}

/// Runs a C call that returns `-1` on failure and throws libvirt's error for it.
/// The closure is synchronous, so the error is read on the thread that made the call.
@discardableResult
func check(_ function: String, _ body: () -> Int32) throws(LibvirtError) -> Int32 {
    let rc = body()
    if rc < 0 { throw LibvirtError.last(function: function) }
    return rc
}

/// Runs a C call that returns `NULL` on failure and throws libvirt's error for it.
func checkNonNull<T>(_ function: String, _ body: () -> T?) throws(LibvirtError) -> T {
    guard let value = body() else { throw LibvirtError.last(function: function) }
    return value
}

/// Runs a C call returning a `malloc`ed string the caller must free; throws on `NULL`.
func takeString(_ function: String, _ body: () -> UnsafeMutablePointer<CChar>?) throws(LibvirtError) -> String {
    let raw = try checkNonNull(function, body)
    defer { free(raw) }
    return String(cString: raw)
}

/// Runs a C call returning a string owned by libvirt (not to be freed); throws on `NULL`.
func borrowString(_ function: String, _ body: () -> UnsafePointer<CChar>?) throws(LibvirtError) -> String {
    String(cString: try checkNonNull(function, body))
}

/// libvirt encodes versions as `major * 1_000_000 + minor * 1_000 + micro`.
func formatVersion(_ version: UInt) -> String {
    "\(version / 1_000_000).\((version / 1_000) % 1_000).\(version % 1_000)"
}

/// Reads a fixed-size, NUL-terminated C `char` array imported as a tuple, never past its end.
func stringFromCCharTuple<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Runs a `vir…GetUUIDString(handle, buffer)` call and returns the UUID in lowercase
/// canonical form.
func uuidString(_ function: String, _ body: (UnsafeMutablePointer<CChar>) -> Int32) throws(LibvirtError) -> String {
    // VIR_UUID_STRING_BUFLEN: 36 characters plus NUL.
    var buffer = [CChar](repeating: 0, count: 37)
    try buffer.withUnsafeMutableBufferPointer { (buffer) throws(LibvirtError) in
        guard let base = buffer.baseAddress else { return }
        try check(function) { body(base) }
    }
    return buffer.withUnsafeBufferPointer { buf in
        String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }.lowercased()
}

/// The canonical UUID of a domain handle, or nil when libvirt cannot produce it.
func domainUUIDString(_ domain: OpaquePointer) -> String? {
    try? uuidString("virDomainGetUUIDString") { virDomainGetUUIDString(domain, $0) }
}

/// Runs a `vir…ListAll…(…, &array, flags)` call, which returns a `malloc`ed array of handles
/// the caller owns, and wraps each handle in its owning object.
func list<T>(_ function: String, _ wrap: (OpaquePointer) -> T,
             _ body: (UnsafeMutablePointer<UnsafeMutablePointer<OpaquePointer?>?>) -> Int32) throws(LibvirtError) -> [T] {
    var array: UnsafeMutablePointer<OpaquePointer?>? = nil
    let count = try check(function) { body(&array) }
    guard let array else { return [] }
    defer { free(array) }
    return (0..<Int(count)).compactMap { index in array[index].map(wrap) }
}

/// A C string from libvirt, or "" when it passed NULL.
func stringOrEmpty(_ pointer: UnsafePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}
