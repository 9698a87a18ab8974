import Foundation
import Glibc

/// Replaces a file so that after a crash it holds either the old or the new content, never
/// a mix: write a temporary file beside it, fsync it, rename it over, fsync the directory.
enum DurableFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func write(_ data: Data, to path: String, mode: mode_t = 0o600) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var ok = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
                if written < 0 { if errno == EINTR { continue }; return false }
                offset += written
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        let error = errno
        close(fd)
        guard ok else {
            unlink(temporary)
            throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(error)))")
        }
        guard rename(temporary, path) == 0 else {
            let error = errno
            unlink(temporary)
            throw Failure(description: "cannot replace \(path): \(String(cString: strerror(error)))")
        }
        syncDirectory(directory)
    }

    /// Removes a file durably (a crash after this returns does not bring it back).
    static func remove(_ path: String) {
        if unlink(path) == 0 { syncDirectory((path as NSString).deletingLastPathComponent) }
    }

    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
