internal import CPolkit

/// An owned `PolkitDetails*` built from a Swift dictionary. Internal: no pointer leaves the
/// module except through `pointer`, which is only used while `self` is alive.
final class OwnedPolkitDetails {
    let pointer: OpaquePointer

    /// Wraps `polkit_details_new` and `polkit_details_insert`.
    init(_ dictionary: [String: String]) throws(PolkitError) {
        guard let pointer = polkit_details_new() else {
            throw PolkitError(consuming: nil, function: "polkit_details_new")
        }
        self.pointer = pointer
        for (key, value) in dictionary {
            polkit_details_insert(pointer, key, value)
        }
    }

    deinit {
        g_object_unref(UnsafeMutableRawPointer(pointer))
    }

    /// The contents read back through the C API.
    var dictionary: [String: String] {
        Self.dictionary(borrowing: pointer)
    }

    /// Copies a `PolkitDetails*` the caller keeps ownership of. Wraps `polkit_details_get_keys`
    /// and `polkit_details_lookup`.
    static func dictionary(borrowing details: OpaquePointer?) -> [String: String] {
        guard let details, let keys = polkit_details_get_keys(details) else { return [:] }
        defer { g_strfreev(keys) }
        var result: [String: String] = [:]
        var index = 0
        while let key = keys[index] {
            if let value = polkit_details_lookup(details, key) {
                result[String(cString: key)] = String(cString: value)
            }
            index += 1
        }
        return result
    }
}
