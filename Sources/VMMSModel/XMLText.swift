/// Escaping for text placed into XML, in element content and in attribute values quoted with
/// either `'` or `"`.
public enum XMLText {
    /// `s` with `&`, `<`, `>`, `'` and `"` replaced by their entity references.
    ///
    /// XML 1.0 cannot carry NUL or most other C0 control characters at all, escaped or not;
    /// callers reject them before building XML (see `VMSettings` and `VMNameRule`).
    public static func escape(_ s: String) -> String {
        guard s.contains(where: { $0 == "&" || $0 == "<" || $0 == ">" || $0 == "'" || $0 == "\"" }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
