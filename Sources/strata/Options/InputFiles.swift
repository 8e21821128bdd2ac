#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Reading files a user names, and checking that an output can be written, with errors that
/// say why (not found, a folder, permission) rather than only that it failed.
enum InputFiles {
    /// The bytes of `path`, or a `CommandFailure` naming the file and the reason.
    static func read(_ path: String) throws -> Data {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw CommandFailure("cannot read \(path): no such file")
        }
        if isFolder.boolValue { throw CommandFailure("cannot read \(path): it is a folder, not a file") }
        let descriptor = open(path, O_RDONLY | O_NONBLOCK)
        guard descriptor >= 0 else { throw CommandFailure("cannot read \(path): \(String(cString: strerror(errno)))") }
        close(descriptor)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure("cannot read \(path): the read failed")
        }
        return data
    }

    /// Why `path` cannot be written, found by trying before any work (a file that exists is
    /// opened without truncating it; a new one is created and removed again); nil if it can.
    static func writeProblem(_ path: String) -> String? {
        if FileManager.default.fileExists(atPath: path) {
            let descriptor = open(path, O_WRONLY | O_NONBLOCK)
            guard descriptor >= 0 else { return String(cString: strerror(errno)) }
            close(descriptor)
            return nil
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        close(descriptor)
        unlink(path)
        return nil
    }
}
