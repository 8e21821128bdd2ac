import Foundation

/// Locates the virtual environment that `scripts/fetch-python.sh` makes (the `openai` client
/// the server tests drive `strata serve` with), so those tests fail with instructions instead
/// of passing silently when it is missing.
public enum TestPython {
    /// `$STRATA_VENV`, or `~/.cache/strata/venv`.
    public static var environment: String {
        if let configured = ProcessInfo.processInfo.environment["STRATA_VENV"], !configured.isEmpty {
            return configured
        }
        return FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/strata/venv"
    }

    /// The environment's Python; throws (failing the calling test) with the command that makes
    /// the environment when it is missing.
    public static func require() throws -> String {
        let python = environment + "/bin/python"
        let stamp = environment + "/.strata-requirements"
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: stamp) else {
            throw MissingPythonEnvironment(path: environment)
        }
        return python
    }
}

/// The Python environment a test needs is not installed.
public struct MissingPythonEnvironment: Error, CustomStringConvertible {
    public let path: String

    public var description: String {
        "no Python environment with the openai package at \(path); run `scripts/fetch-python.sh` "
            + "(or set STRATA_VENV to the environment it made)"
    }
}
