import ArgumentParser
import DBus

/// Tab completion of VM names: the shell scripts call back into vmmsctl, which asks the
/// service (one GetManagedObjects, never a password prompt) on the bus the command line names.
enum VMNameCompletion {
    static let kind = CompletionKind.custom { words, _, prefix in await names(words: words, prefix: prefix) }

    static func names(words: [String], prefix: String) async -> [String] {
        guard var options = try? GlobalOptions.parse(connectionArguments(in: words)) else { return [] }
        options.noAskPassword = true
        options.interactive = false
        guard let client = try? VMMSClient(options) else { return [] }
        let inventory = try? await client.inventory()
        await client.close()
        return (inventory?.sortedVMs ?? []).map(\.name).filter { $0.hasPrefix(prefix) }
    }

    /// The words that say where the service is (`--session`, `--address X`, `--host X`,
    /// `-H X`, also as `--address=X`), out of a whole command line.
    static func connectionArguments(in words: [String]) -> [String] {
        var result: [String] = []
        var index = words.startIndex
        while index < words.endIndex {
            let word = words[index]
            if ["--system", "--session"].contains(word) {
                result.append(word)
            } else if ["--address", "--host", "-H"].contains(word), index + 1 < words.endIndex {
                result += [word, words[index + 1]]
                index += 1
            } else if word.hasPrefix("--address=") || word.hasPrefix("--host=") {
                result.append(word)
            }
            index += 1
        }
        return result
    }
}
