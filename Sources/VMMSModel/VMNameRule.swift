/// The contract's VM name rule: 1–64 characters of letters, digits, space, `-`, `_` and `.`,
/// not starting with `-` or `.`.
///
/// "Letters" and "digits" are ASCII only, so every valid name is also a safe file name (disk
/// images are named after the VM), a safe XML text and a safe polkit detail.
public enum VMNameRule {
    /// The longest name, in characters (all ASCII, so also in bytes).
    public static let maximumLength = 64

    /// `nil` when `name` is valid, else a message for the caller saying what is wrong.
    public static func validate(_ name: String) -> String? {
        if name.isEmpty { return "the VM name is empty" }
        let scalars = name.unicodeScalars
        if let bad = scalars.first(where: { !isAllowed($0) }) {
            return "the VM name may only contain ASCII letters, digits, space, '-', '_' and '.', not \(describe(bad))"
        }
        if scalars.count > maximumLength {
            return "the VM name is longer than \(maximumLength) characters"
        }
        if let first = scalars.first, first == "-" || first == "." {
            return "the VM name must not start with '\(first)'"
        }
        return nil
    }

    static func isAllowed(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9", " ", "-", "_", ".": true
        default: false
        }
    }

    private static func describe(_ s: Unicode.Scalar) -> String {
        if s.value < 0x20 || s.value == 0x7F || s.properties.isWhitespace {
            return "U+" + String(s.value, radix: 16, uppercase: true).leftPadded(to: 4)
        }
        return "'\(s)'"
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
