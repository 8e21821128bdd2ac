import Foundation
import StrataEngine

/// Locates the real models that `scripts/fetch-models.sh` installs, so tests that need them
/// fail with instructions instead of passing silently when they are missing.
public enum TestModels {
    /// `$STRATA_MODELS`, or `~/.cache/strata/models`.
    public static var directory: String {
        if let configured = ProcessInfo.processInfo.environment["STRATA_MODELS"], !configured.isEmpty {
            return configured
        }
        return FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/strata/models"
    }

    /// Where the model called `name` (e.g. `smollm2-135m`) lives when installed.
    public static func path(for name: String) -> String {
        directory + "/" + name + ".gguf"
    }

    /// Whether the model called `name` is installed.
    public static func isAvailable(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: path(for: name))
    }

    /// The path of the installed model called `name`; throws (failing the calling test) with
    /// the command that installs it when it is missing.
    public static func require(_ name: String) throws -> String {
        guard isAvailable(name) else { throw MissingModel(name: name, path: path(for: name)) }
        return path(for: name)
    }
}

/// A real model a test needs is not installed.
public struct MissingModel: Error, CustomStringConvertible {
    public let name: String
    public let path: String

    public var description: String {
        "model '\(name)' not found at \(path); run `scripts/fetch-models.sh \(name)` "
            + "(or set STRATA_MODELS to the directory holding \(name).gguf)"
    }
}

/// Real models, loaded once per test process (loading maps the file; it copies no weights).
public enum LoadedModels {
    nonisolated(unsafe) private static var cache: [String: LanguageModel] = [:]
    private static let lock = NSLock()

    /// The installed model called `name`, loaded on first use.
    public static func model(_ name: String) throws -> LanguageModel {
        lock.lock()
        defer { lock.unlock() }
        if let model = cache[name] { return model }
        let model = try LanguageModel(path: TestModels.require(name))
        cache[name] = model
        return model
    }
}
