/// A file that cannot be read as the container it claims to be.
///
/// The message names what was being read (a metadata key, a tensor, a header field) and what
/// was expected versus found, so a user can tell a truncated download from a wrong file.
public struct FormatError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file being read or written.
    public let path: String
    /// The byte offset in the file where the problem was found, when one applies.
    public let offset: Int?
    /// What went wrong, without the path.
    public let message: String

    /// Creates an error about `path`.
    public init(path: String, offset: Int? = nil, _ message: String) {
        self.path = path
        self.offset = offset
        self.message = message
    }

    public var description: String {
        if let offset { return "\(path): \(message) (at byte \(offset))" }
        return "\(path): \(message)"
    }
}
