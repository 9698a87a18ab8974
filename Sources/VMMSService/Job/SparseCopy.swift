import Foundation
import Glibc

/// Sparse file copies for the jobs: only the data extents of the source are read and written
/// (`SEEK_DATA`/`SEEK_HOLE`, then `pread`/`pwrite` in chunks), holes stay holes, so a 10 GiB image holding 100 MiB copies as 100 MiB. Progress
/// is counted in bytes of data, a cancel is noticed between chunks of 8 MiB.
enum SparseCopy {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static let chunk = 8 << 20
    /// Linux's lseek whences (GNU extensions Glibc's Swift module does not show).
    private static let seekData: Int32 = 3, seekHole: Int32 = 4

    /// Test hook: `VMMSD_TEST_COPY_BYTES_PER_SECOND` limits every copy's speed, so a test can
    /// watch the progress of a copy of a small image and cancel it midway.
    static let testLimit: UInt64? = ProcessInfo.processInfo.environment["VMMSD_TEST_COPY_BYTES_PER_SECOND"].flatMap(UInt64.init)

    /// The bytes in the data extents of a file (what a sparse copy reads and writes).
    static func dataBytes(_ path: String) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var total: UInt64 = 0
        forEachExtent(fd) { start, end in total += UInt64(end - start) }
        return total
    }

    /// Calls `body` with each data extent [start, end) of `fd`; a file system without
    /// SEEK_DATA gives one extent, the whole file.
    private static func forEachExtent(_ fd: Int32, _ body: (off_t, off_t) throws -> Void) rethrows {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return }
        let size = info.st_size
        var offset: off_t = 0
        while offset < size {
            let data = lseek(fd, offset, seekData)
            if data < 0 {
                if errno == ENXIO { return }
                try body(offset, size)
                return
            }
            var hole = lseek(fd, data, seekHole)
            if hole < 0 { hole = size }
            try body(data, hole)
            offset = hole
        }
    }

    /// Copies `source` to the new file `destination` (mode 0600, refused if it exists),
    /// calling `progress` with the data bytes copied since the last call, and stopping with
    /// `cancelled` when it returns true. A failed or cancelled copy removes the destination.
    static func copy(_ source: String, to destination: String, progress: (UInt64) -> Void,
                     cancelled: () -> Bool) throws {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw Failure(description: "cannot open \(source): \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw Failure(description: "cannot create \(destination): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(output)
            if !ok { unlink(destination) }
        }
        var info = stat()
        guard fstat(input, &info) == 0, ftruncate(output, info.st_size) == 0 else {
            throw Failure(description: "cannot size \(destination): \(String(cString: strerror(errno)))")
        }
        let started = ContinuousClock.now
        var copied: UInt64 = 0
        var buffer: [UInt8] = []
        try forEachExtent(input) { start, end in
            var offset = start
            while offset < end {
                if cancelled() { throw VMMSError.cancelled("the copy of \(source) was cancelled") }
                let length = min(Int(end - offset), chunk)
                let moved = try copyRange(input, output, offset: offset, length: length, buffer: &buffer, source: source, destination: destination)
                offset += off_t(moved)
                copied += UInt64(moved)
                progress(UInt64(moved))
                if let limit = testLimit, limit > 0 {
                    let ahead = Double(copied) / Double(limit) - seconds(ContinuousClock.now - started)
                    if ahead > 0 { Thread.sleep(forTimeInterval: ahead) }
                }
            }
        }
        guard fsync(output) == 0 else { throw Failure(description: "cannot write \(destination): \(String(cString: strerror(errno)))") }
        ok = true
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Copies up to `length` bytes at `offset` in place; returns how many moved (at least 1).
    private static func copyRange(_ input: Int32, _ output: Int32, offset: off_t, length: Int, buffer: inout [UInt8],
                                  source: String, destination: String) throws -> Int {
        if buffer.count < length { buffer = [UInt8](repeating: 0, count: chunk) }
        let read = buffer.withUnsafeMutableBytes { pread(input, $0.baseAddress, length, offset) }
        guard read > 0 else { throw Failure(description: "cannot read \(source): \(String(cString: strerror(errno)))") }
        // A chunk of zeros stays a hole, as with `cp --sparse=always`.
        let zero = buffer.withUnsafeBytes { bytes in
            bytes[0] == 0 && (read == 1 || memcmp(bytes.baseAddress!, bytes.baseAddress! + 1, read - 1) == 0)
        }
        if zero { return read }
        var written = 0
        while written < read {
            let n = buffer.withUnsafeBytes { pwrite(output, $0.baseAddress! + written, read - written, offset + off_t(written)) }
            guard n > 0 else { throw Failure(description: "cannot write \(destination): \(String(cString: strerror(errno)))") }
            written += n
        }
        return read
    }

    /// Writes a file's data to disk (fsync).
    static func flush(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw Failure(description: "cannot write \(path) to disk: \(String(cString: strerror(errno)))") }
    }

    /// Removes a file or a folder tree; nothing when it is not there.
    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Free bytes for unprivileged-reserve-ignoring root writes in the file system of `directory`.
    static func freeBytes(_ directory: String) -> UInt64? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) * UInt64(info.f_frsize)
    }
}
