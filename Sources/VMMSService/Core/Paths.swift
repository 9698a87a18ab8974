import Foundation
import DBus

/// Every object path of the contract, built in one place.
public enum Paths {
    public static let busName = "org.example.VMMS1"
    public static let root: ObjectPath = "/org/example/VMMS1"
    public static let host: ObjectPath = "/org/example/VMMS1/Host"
    public static let vmRoot: ObjectPath = "/org/example/VMMS1/VM"

    /// `/org/example/VMMS1/VM/<UUID with '-' as '_'>`: stable across renames and restarts.
    public static func vm(uuid: String) -> ObjectPath {
        vmRoot.appending(element: swapping(uuid.lowercased(), "-", "_"))
    }

    /// The UUID a VM path names, or nil when `path` is no VM path.
    public static func vmUUID(of path: ObjectPath) -> String? {
        guard path.isDescendant(of: vmRoot), let last = path.lastElement,
              path == vmRoot.appending(element: last) else { return nil }
        return swapping(last, "_", "-")
    }

    /// A byte-wise replacement: Foundation's `replacingOccurrences` was a quarter of
    /// GetManagedObjects' time with 1000 VMs.
    static func swapping(_ text: String, _ from: Unicode.Scalar, _ to: Unicode.Scalar) -> String {
        String(decoding: text.utf8.map { $0 == UInt8(from.value) ? UInt8(to.value) : $0 }, as: UTF8.self)
    }
}
