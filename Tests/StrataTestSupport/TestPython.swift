import Foundation

/// Locates the virtual environments that `scripts/fetch-python.sh` makes (the `openai` client
/// the server tests drive `strata serve` with; torch, transformers and gguf for the export
/// tests), so those tests fail with instructions instead of passing silently when one is missing.
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
        try python(in: environment, holding: "the openai package", variable: "STRATA_VENV")
    }

    /// `$STRATA_REFERENCE_VENV`, or `~/.cache/strata/reference-venv`.
    public static var referenceEnvironment: String {
        if let configured = ProcessInfo.processInfo.environment["STRATA_REFERENCE_VENV"], !configured.isEmpty {
            return configured
        }
        return FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/strata/reference-venv"
    }

    /// The reference environment's Python (torch on the CPU, transformers, gguf); throws like
    /// `require()` when it is missing.
    public static func requireReference() throws -> String {
        try python(in: referenceEnvironment, holding: "torch, transformers and gguf", variable: "STRATA_REFERENCE_VENV")
    }

    private static func python(in environment: String, holding packages: String, variable: String) throws -> String {
        let python = environment + "/bin/python"
        let stamp = environment + "/.strata-requirements"
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: stamp) else {
            throw MissingPythonEnvironment(path: environment, packages: packages, variable: variable)
        }
        return python
    }
}

/// The Python environment a test needs is not installed.
public struct MissingPythonEnvironment: Error, CustomStringConvertible {
    public let path: String
    /// What the environment should hold.
    public var packages = "the openai package"
    /// The variable that points the tests at another environment.
    public var variable = "STRATA_VENV"

    public var description: String {
        "no Python environment with \(packages) at \(path); run `scripts/fetch-python.sh` "
            + "(or set \(variable) to the environment it made)"
    }
}
