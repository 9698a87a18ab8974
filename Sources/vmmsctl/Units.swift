import ArgumentParser

/// A size given on the command line: `512M`, `2G`, `1.5GiB`, `10737418240`. Suffixes are
/// binary, as PowerShell's `512MB` is (K/KB/KiB = 1024, M = 1024², G, T, P); a plain number
/// is bytes, as in the D-Bus API.
struct ByteCount: Sendable, Hashable, ExpressibleByArgument, CustomStringConvertible {
    var bytes: UInt64

    init(bytes: UInt64) { self.bytes = bytes }

    init?(argument: String) {
        guard let bytes = Self.parse(argument) else { return nil }
        self.bytes = bytes
    }

    var description: String { Self.format(bytes) }

    static let suffixes: [(String, UInt64)] = [("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40), ("P", 1 << 50)]

    /// nil for anything that is not a whole number of bytes up to 2⁶⁴ − 1.
    static func parse(_ text: String) -> UInt64? {
        var s = Substring(text.trimmingCharacters(in: .whitespaces)).uppercased()[...]
        guard !s.isEmpty else { return nil }
        var multiplier: UInt64 = 1
        if s.hasSuffix("IB") { s = s.dropLast(2) } else if s.hasSuffix("B") { s = s.dropLast() }
        if let last = s.last, let unit = suffixes.first(where: { $0.0 == String(last) }) {
            multiplier = unit.1
            s = s.dropLast()
        } else if text.uppercased().hasSuffix("IB") {
            return nil   // "iB" with no unit letter
        }
        let parts = s.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let wholeText = parts.first, !wholeText.isEmpty || parts.count == 2,
              (wholeText + (parts.count == 2 ? parts[1] : "")).allSatisfy({ $0.isASCII && $0.isNumber }),
              !(parts.count == 2 && parts[1].isEmpty) else { return nil }
        let whole = wholeText.isEmpty ? 0 : UInt64(wholeText)
        guard let whole else { return nil }
        let (scaled, overflow) = whole.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        guard parts.count == 2 else { return scaled }
        // The fraction must come out as whole bytes: 1.5G yes, 0.3K no.
        let digits = parts[1]
        guard digits.count <= 18, let numerator = UInt64(digits) else { return nil }
        var denominator: UInt64 = 1
        for _ in 0..<digits.count { denominator *= 10 }
        let (product, overflow2) = numerator.multipliedReportingOverflow(by: multiplier)
        guard !overflow2, product % denominator == 0 else { return nil }
        let (total, overflow3) = scaled.addingReportingOverflow(product / denominator)
        return overflow3 ? nil : total
    }

    /// `64 MiB`, `1.5 GiB`, `512 B`: at most one decimal, binary units.
    static func format(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var index = 0
        var scale: UInt64 = 1
        while index + 1 < units.count, bytes / scale >= 1024 {
            scale <<= 10
            index += 1
        }
        if index == 0 { return "\(bytes) B" }
        let tenths = (bytes % scale) * 10 / scale
        return tenths == 0 ? "\(bytes / scale) \(units[index])" : "\(bytes / scale).\(tenths) \(units[index])"
    }

    /// Whole mebibytes, as Get-VM's MemoryAssigned(M) shows them.
    static func mebibytes(_ bytes: UInt64) -> UInt64 { bytes >> 20 }
}

/// Hyper-V's uptime format: `hh:mm:ss`, with `d.` in front once it runs for days.
enum Uptime {
    static func format(seconds: UInt64) -> String {
        let days = seconds / 86_400
        let rest = seconds % 86_400
        let clock = "\(pad(rest / 3600)):\(pad(rest % 3600 / 60)):\(pad(rest % 60))"
        return days > 0 ? "\(days).\(clock)" : clock
    }

    private static func pad(_ value: UInt64) -> String { value < 10 ? "0\(value)" : "\(value)" }

    /// Seconds since `startTime` (Unix seconds), nil when the VM is not running (0) or the
    /// clocks disagree.
    static func seconds(since startTime: UInt64, now: UInt64) -> UInt64? {
        guard startTime > 0, now >= startTime else { return nil }
        return now - startTime
    }
}

/// `on` / `off` for switches such as `--secure-boot on`.
enum OnOff: String, Sendable, CaseIterable, ExpressibleByArgument {
    case on, off

    init?(argument: String) {
        switch argument.lowercased() {
        case "on", "true", "yes", "1": self = .on
        case "off", "false", "no", "0": self = .off
        default: return nil
        }
    }

    var isOn: Bool { self == .on }
    static var allValueStrings: [String] { ["on", "off"] }
}
