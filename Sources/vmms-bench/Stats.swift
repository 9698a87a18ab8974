import Foundation

extension Duration {
    var ms: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

/// Summary of latency samples, in milliseconds.
struct Summary: Codable, Sendable {
    var count: Int
    var median: Double
    var p99: Double
    var min: Double
    var max: Double
    var mean: Double

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        guard let first = sorted.first, let last = sorted.last else {
            median = .nan; p99 = .nan; min = .nan; max = .nan; mean = .nan
            return
        }
        let n = sorted.count
        median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        let rank = Int((0.99 * Double(n)).rounded(.up))
        p99 = sorted[Swift.max(0, Swift.min(n - 1, rank - 1))]
        min = first
        max = last
        mean = sorted.reduce(0, +) / Double(n)
    }
}

/// Times one async operation in milliseconds.
func timed(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return start.duration(to: .now).ms
}
