#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes to standard output that fail (a full disk, a closed or broken pipe) end the command
/// with a message instead of a crash or a silent success.
enum StandardOutput {
    struct WriteFailure: Error, CustomStringConvertible {
        var reason: String
        var description: String { "cannot write to standard output: \(reason)" }
    }

    /// Writes `text` whole, unbuffered (after flushing what `print` buffered, to keep the order).
    static func write(_ text: String) throws(WriteFailure) {
        try flush()
        var bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                Glibc.write(STDOUT_FILENO, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw WriteFailure(reason: String(cString: strerror(errno)))
            }
            written += result
        }
        bytes.removeAll()
    }

    /// Flushes what `print` buffered (every C stream: naming `stdout` is not concurrency-safe
    /// in Swift 6); throws if that fails.
    static func flush() throws(WriteFailure) {
        errno = 0
        if fflush(nil) != 0 {
            throw WriteFailure(reason: errno != 0 ? String(cString: strerror(errno)) : "write error")
        }
    }
}
