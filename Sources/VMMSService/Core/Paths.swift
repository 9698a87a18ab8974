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

    public static let switchRoot: ObjectPath = "/org/example/VMMS1/Switch"
    public static let sanRoot: ObjectPath = "/org/example/VMMS1/SAN"
    public static let jobRoot: ObjectPath = "/org/example/VMMS1/Job"

    /// `/org/example/VMMS1/Switch/<escaped name>`.
    public static func `switch`(name: String) -> ObjectPath { switchRoot.appending(escaping: name) }
    /// The switch name a path names, or nil.
    public static func switchName(of path: ObjectPath) -> String? { name(of: path, below: switchRoot) }

    /// `/org/example/VMMS1/SAN/<escaped name>`.
    public static func san(name: String) -> ObjectPath { sanRoot.appending(escaping: name) }
    /// The SAN name a path names, or nil.
    public static func sanName(of path: ObjectPath) -> String? { name(of: path, below: sanRoot) }

    /// `/org/example/VMMS1/Job/<n>`.
    public static func job(_ number: UInt64) -> ObjectPath { jobRoot.appending(element: String(number)) }
    /// The job number a path names, or nil.
    public static func jobNumber(of path: ObjectPath) -> UInt64? {
        guard path.isDescendant(of: jobRoot), let last = path.lastElement, path == jobRoot.appending(element: last) else { return nil }
        return UInt64(last)
    }

    /// `<vm path>/Checkpoint/<escaped name>`.
    public static func checkpoint(vm uuid: String, name: String) -> ObjectPath {
        vm(uuid: uuid).appending(element: "Checkpoint").appending(escaping: name)
    }
    /// The VM UUID and checkpoint name a path names, or nil.
    public static func checkpointID(of path: ObjectPath) -> (vm: String, name: String)? {
        let parts = path.rawValue.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // "", org, example, VMMS1, VM, <uuid>, Checkpoint, <name>
        guard parts.count == 8, path.isDescendant(of: vmRoot), parts[6] == "Checkpoint",
              let name = ObjectPath.unescape(parts[7]) else { return nil }
        return (swapping(parts[5], "_", "-"), name)
    }

    /// The unescaped last element of a direct child of `root`.
    private static func name(of path: ObjectPath, below root: ObjectPath) -> String? {
        guard path.isDescendant(of: root), let last = path.lastElement, path == root.appending(element: last) else { return nil }
        return ObjectPath.unescape(last)
    }

    /// A byte-wise replacement: Foundation's `replacingOccurrences` was a quarter of
    /// GetManagedObjects' time with 1000 VMs.
    static func swapping(_ text: String, _ from: Unicode.Scalar, _ to: Unicode.Scalar) -> String {
        String(decoding: text.utf8.map { $0 == UInt8(from.value) ? UInt8(to.value) : $0 }, as: UTF8.self)
    }
}
