import Foundation
import VMMSModel

/// Keeps `HostSettings` in a JSON file under the state directory, replaced durably (temporary
/// file, fsync, rename) so a crash never leaves half a file behind; written off the
/// cooperative pool.
public struct SettingsStore: Sendable {
    public let path: String

    public init(stateDirectory: String) {
        path = stateDirectory + "/host-settings.json"
    }

    /// The stored settings, the defaults when there are none, and an error text when the file
    /// exists but cannot be read (the caller logs it and carries on with the defaults).
    public func load() -> (HostSettings, problem: String?) {
        guard let data = FileManager.default.contents(atPath: path) else {
            return (.defaults, FileManager.default.fileExists(atPath: path) ? "cannot read \(path); using the defaults" : nil)
        }
        do {
            return (try JSONDecoder().decode(HostSettings.self, from: data), nil)
        } catch {
            return (.defaults, "cannot read \(path): \(error); using the defaults")
        }
    }

    public func save(_ settings: HostSettings) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(settings)
        let path = self.path
        try await BlockingIO.run { try DurableFile.write(data, to: path, mode: 0o644) }
    }
}
