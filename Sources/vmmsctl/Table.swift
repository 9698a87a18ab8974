/// A table in PowerShell's Format-Table shape: header, a dashed rule under each title, one
/// row per item, columns two spaces apart, numbers right-aligned. Widths are measured on the
/// plain text, so colour codes never shift a column.
struct Table: Sendable {
    enum Alignment: Sendable { case left, right }

    struct Column: Sendable {
        var title: String
        var alignment: Alignment
        init(_ title: String, _ alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    struct Cell: Sendable, Equatable, ExpressibleByStringLiteral {
        var text: String
        var style: Style
        init(_ text: String, _ style: Style = .plain) {
            self.text = text
            self.style = style
        }
        init(stringLiteral value: String) { self.init(value) }
    }

    var columns: [Column]
    var rows: [[Cell]] = []

    static let separator = "  "

    func render(colour: Bool) -> String {
        let widths = columns.indices.map { index in
            rows.reduce(Self.width(columns[index].title)) { max($0, Self.width($1[safe: index]?.text ?? "")) }
        }
        var lines: [String] = []
        lines.append(line(columns.map { Cell($0.title, .bold) }, widths, colour: colour))
        lines.append(line(columns.map { Cell(String(repeating: "-", count: Self.width($0.title))) }, widths, colour: false))
        for row in rows { lines.append(line(row, widths, colour: colour)) }
        return lines.map { $0 + "\n" }.joined()
    }

    private func line(_ cells: [Cell], _ widths: [Int], colour: Bool) -> String {
        var parts: [String] = []
        for (index, column) in columns.enumerated() {
            let cell = cells[safe: index] ?? Cell("")
            let padding = String(repeating: " ", count: max(0, widths[index] - Self.width(cell.text)))
            let styled = cell.style.apply(cell.text, colour: colour)
            let isLast = index == columns.count - 1
            switch column.alignment {
            case .left: parts.append(isLast ? styled : styled + padding)
            case .right: parts.append(padding + styled)
            }
        }
        return parts.joined(separator: Self.separator)
    }

    /// Terminal columns a string takes: one per character (grapheme cluster); VM names are
    /// limited to ASCII letters and digits by the service's naming rule anyway.
    static func width(_ text: String) -> Int { text.count }
}

/// Format-List: `Name : value` lines with the names padded to one width.
struct PropertyList: Sendable {
    var entries: [(name: String, value: String)] = []

    mutating func add(_ name: String, _ value: String) { entries.append((name, value)) }

    func render(colour: Bool) -> String {
        let width = entries.map { Table.width($0.name) }.max() ?? 0
        return entries.map { entry in
            let padding = String(repeating: " ", count: width - Table.width(entry.name))
            // Values with several lines (disks) continue under the first one.
            let indent = "\n" + String(repeating: " ", count: width + 3)
            let value = entry.value.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: indent)
            return Style.bold.apply(entry.name, colour: colour) + padding + " : " + value + "\n"
        }.joined()
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
