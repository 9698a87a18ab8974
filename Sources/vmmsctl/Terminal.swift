import Foundation
import Glibc

/// What vmmsctl knows about where its output goes.
enum Terminal {
    static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Colour only on a terminal, never with NO_COLOR set (no-color.org) or TERM=dumb.
    static func colourEnabled(fd: Int32, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard isTerminal(fd) else { return false }
        if let noColour = environment["NO_COLOR"], !noColour.isEmpty { return false }
        return environment["TERM"] != "dumb"
    }

    /// Whether a person can answer: stdin and stderr are a terminal.
    static var isInteractive: Bool { isTerminal(0) && isTerminal(2) }

    static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }

    static func out(_ text: String) { write(text, to: 1) }
    static func err(_ text: String) { write(text, to: 2) }

    /// Asks a yes/no question on the terminal; anything but y/yes is no.
    static func confirm(_ question: String) -> Bool {
        err(question + " [y/N] ")
        guard let answer = readLine(strippingNewline: true) else { err("\n"); return false }
        return ["y", "yes"].contains(answer.trimmingCharacters(in: .whitespaces).lowercased())
    }
}

/// ANSI SGR styles for table cells and messages.
enum Style: Sendable, Equatable {
    case plain, bold, dim, green, yellow, red, cyan

    var code: String? {
        switch self {
        case .plain: nil
        case .bold: "1"
        case .dim: "2"
        case .green: "32"
        case .yellow: "33"
        case .red: "31"
        case .cyan: "36"
        }
    }

    func apply(_ text: String, colour: Bool) -> String {
        guard colour, let code, !text.isEmpty else { return text }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }
}

/// Prints a failure to stderr: "vmmsctl: SUBJECT: message (error name)" and the hint.
func report(_ failure: Failure, subject: String? = nil) {
    let colour = Terminal.colourEnabled(fd: 2)
    var line = Style.red.apply("vmmsctl:", colour: colour) + " "
    if let subject { line += subject + ": " }
    line += failure.message
    if let name = failure.errorName, !failure.message.contains(name) { line += " (\(name))" }
    Terminal.err(line + "\n")
    if let hint = failure.hint { Terminal.err(Style.dim.apply("hint:", colour: colour) + " " + hint + "\n") }
}
