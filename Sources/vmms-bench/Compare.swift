import ArgumentParser
import Foundation

/// `vmms-bench compare SMALL.json LARGE.json`: how each figure of two runs at different N
/// grew, next to how N grew: a ratio at or below N's ratio is linear or better.
struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print how each figure grows between two runs' JSON files (e.g. 1000 and 10000 VMs).")

    @Argument(help: "The run with fewer VMs.") var small: String
    @Argument(help: "The run with more VMs.") var large: String
    @Option(help: "Also write the comparison as JSON here.") var json: String?

    struct Growth: Codable {
        var figure: String
        var small: Double
        var large: Double
        var ratio: Double
        /// The ratio of N: what linear growth would give.
        var linear: Double
        /// Whether the figure grows in proportion to N (inventory, memory, start-up) or
        /// should not grow at all (one VM's read, power op or event).
        var scalesWithN: Bool
        var verdict: String
    }

    func run() async throws {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let a = try decoder.decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: small)))
        let b = try decoder.decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: large)))
        let rows = Self.growth(a, b)
        var out = "vmms-bench compare: N = \(a.vms) (\(a.machine.date)) -> N = \(b.vms) (\(b.machine.date)), N grew \(Self.format(Double(b.vms) / Double(a.vms)))x\n\n"
        let header = ["figure", "N = \(a.vms)", "N = \(b.vms)", "grew", "verdict"]
        var cells = [header]
        for g in rows {
            let unit = g.figure.contains("MiB") ? "" : " ms"
            cells.append([g.figure, Self.format(g.small) + unit, Self.format(g.large) + unit, Self.format(g.ratio) + "x", g.verdict])
        }
        var widths = [Int](repeating: 0, count: header.count)
        for row in cells { for (k, c) in row.enumerated() { widths[k] = max(widths[k], c.count) } }
        for (index, row) in cells.enumerated() {
            out += "| " + row.enumerated().map { k, c in
                k == 0 || k == 4 ? c.padding(toLength: widths[k], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[k] - c.count) + c
            }.joined(separator: " | ") + " |\n"
            if index == 0 {
                out += "|" + widths.enumerated().map { k, w in
                    k == 0 || k == 4 ? String(repeating: "-", count: w + 2) : String(repeating: "-", count: w + 1) + ":"
                }.joined(separator: "|") + "|\n"
            }
        }
        print(out, terminator: "")
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try encoder.encode(rows).write(to: URL(fileURLWithPath: json))
        }
    }

    static func growth(_ a: Report, _ b: Report) -> [Growth] {
        let linear = Double(b.vms) / Double(a.vms)
        func g(_ figure: String, _ x: Double, _ y: Double, scales: Bool) -> Growth {
            let ratio = x > 0 ? y / x : .nan
            let verdict: String
            if !ratio.isFinite {
                verdict = "-"
            } else if scales {
                verdict = ratio <= linear * 1.1 ? "linear or better (N \(format(linear))x)" : "worse than linear (N \(format(linear))x)"
            } else {
                verdict = ratio <= 1.5 ? "flat: does not depend on N" : "grows with N"
            }
            return Growth(figure: figure, small: x, large: y, ratio: ratio, linear: linear, scalesWithN: scales, verdict: verdict)
        }
        var floor: [Growth] = []
        if let x = a.inventory.busFloor, let y = b.inventory.busFloor {
            floor = [g("the same reply through dbus-daemon alone (median)", x.median, y.median, scales: true)]
        }
        return [
            g("GetManagedObjects, vmms (median)", a.inventory.vmms.median, b.inventory.vmms.median, scales: true),
        ] + floor + [
            g("inventory, libvirt-dbus sequential (median)", a.inventory.libvirtSequential.median, b.inventory.libvirtSequential.median, scales: true),
            g("vmmsd start to full GetManagedObjects (worst)", a.footprint.vmmsdReady.max, b.footprint.vmmsdReady.max, scales: true),
            g("vmmsd RSS, MiB", Double(a.footprint.vmmsdRSSKiB) / 1024, Double(b.footprint.vmmsdRSSKiB) / 1024, scales: true),
            g("state read as \(b.stateRead.user) (median)", a.stateRead.userGet.median, b.stateRead.userGet.median, scales: false),
            g("Pause+Resume as \(b.power.vmmsCaller) (median)", a.power.vmmsPair.median, b.power.vmmsPair.median, scales: false),
            g("Pause+Resume as root (median)", a.power.rootPair.median, b.power.rootPair.median, scales: false),
            g("libvirt's event to vmms's signal (p99)", a.events.vmmsFromLibvirtEvent.p99, b.events.vmmsFromLibvirtEvent.p99, scales: false),
            g("32 clients, ms per operation (1000 / ops/s)", 1000 / a.concurrency.vmms.opsPerSecond, 1000 / b.concurrency.vmms.opsPerSecond, scales: false),
        ]
    }

    static func format(_ x: Double) -> String {
        guard x.isFinite else { return "-" }
        if x >= 100 { return String(format: "%.0f", x) }
        if x >= 10 { return String(format: "%.1f", x) }
        return String(format: "%.2f", x)
    }
}
