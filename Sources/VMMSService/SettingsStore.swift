import Foundation
import VMMSModel

/// Keeps `HostSettings` in a JSON file under the state directory, replaced atomically (write
/// to a temporary file, then rename) so a crash never leaves half a file behind.
public struct SettingsStore: Sendable {
    public let fileURL: URL

    public init(stateDirectory: String) {
        fileURL = URL(fileURLWithPath: stateDirectory).appendingPathComponent("host-settings.json")
    }

    /// The stored settings, the defaults when there are none, and an error text when the file
    /// exists but cannot be read (the caller logs it and carries on with the defaults).
    public func load() -> (HostSettings, problem: String?) {
        guard FileManager.default.fileExists(atPath: fileURL.path) else { return (.defaults, nil) }
        do {
            let data = try Data(contentsOf: fileURL)
            return (try JSONDecoder().decode(HostSettings.self, from: data), nil)
        } catch {
            return (.defaults, "cannot read \(fileURL.path): \(error); using the defaults")
        }
    }

    public func save(_ settings: HostSettings) throws {
        try FileManager.default.createDirectory(at: fileURL.deletingLastPathComponent(), withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(settings).write(to: fileURL, options: .atomic)
    }
}
