import Foundation
import StrataEngine

/// Resolves `--model` values: a path to a .gguf file, or a registered name installed by
/// `scripts/fetch-models.sh` into `$STRATA_MODELS` (default `~/.cache/strata/models`).
enum ModelRegistry {
    /// Models the fetch script knows, with what they are.
    static let models: [(name: String, summary: String)] = [
        ("smollm2-135m", "SmolLM2-135M-Instruct, Q4_1 (93 MB), llama architecture, 30 layers — the default"),
        ("qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct, Q4_K/Q5_0/Q6_K/Q8_0 (478 MB), qwen2, 24 layers"),
        ("qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct, Q4_K/Q6_K (1.09 GB), qwen2, 28 layers"),
        ("gemma3-270m", "Gemma 3 270M, Q4_K_M (253 MB), gemma3, 18 layers; Gemma Terms of Use"),
    ]

    static let defaultModel = "smollm2-135m"

    static var modelsDirectory: String { cacheDirectory("models", override: "STRATA_MODELS") }

    /// The fetch script of the source tree this binary was built from (or `$STRATA_FETCH_SCRIPT`).
    static var fetchScript: String { fetchScriptPath("fetch-models.sh", override: "STRATA_FETCH_SCRIPT") }

    /// The file for `model`, pulling a registered model first if it is not installed yet.
    static func resolve(_ model: String) throws -> String {
        let registered = models.contains { $0.name == model }
        // a path: a .gguf name, a folder in it, or any file that is there (not a registered name)
        if model.hasSuffix(".gguf") || model.contains("/") || (!registered && FileManager.default.fileExists(atPath: model)) {
            guard FileManager.default.fileExists(atPath: model) else {
                throw CommandFailure("model file not found: \(model)")
            }
            return model
        }
        guard registered else {
            throw CommandFailure(
                "unknown model '\(model)': give a path to a .gguf file or one of \(models.map(\.name).joined(separator: ", "))")
        }
        let path = modelsDirectory + "/\(model).gguf"
        if FileManager.default.fileExists(atPath: path) { return path }
        FileHandle.standardError.write(Data("strata: \(model) is not installed yet; pulling it (one time)...\n".utf8))
        try pull(model)
        return path
    }

    /// Runs the fetch script for `name`, its progress going to stderr.
    static func pull(_ name: String) throws {
        try runFetchScript(fetchScript, environmentVariable: "STRATA_FETCH_SCRIPT", arguments: [name], what: name)
    }
}

/// A folder of Strata's cache: `$override` if set, else `~/.cache/strata/<name>`.
func cacheDirectory(_ name: String, override: String) -> String {
    if let configured = ProcessInfo.processInfo.environment[override], !configured.isEmpty { return configured }
    return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/strata/\(name)").path
}

/// The fetch script named `name` in the `scripts` folder of the source tree this binary was
/// built from, or the path in the environment variable `override`.
func fetchScriptPath(_ name: String, override: String) -> String {
    if let configured = ProcessInfo.processInfo.environment[override], !configured.isEmpty { return configured }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/\(name)").path
}

/// Runs one of the repository's fetch scripts with its progress going to stderr.
func runFetchScript(_ script: String, environmentVariable: String, arguments: [String], what: String) throws {
    guard FileManager.default.fileExists(atPath: script) else {
        throw CommandFailure("cannot find the fetch script at \(script); set \(environmentVariable) to the repository's scripts/\(URL(fileURLWithPath: script).lastPathComponent)")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = [script] + arguments
    process.standardOutput = FileHandle.standardError
    try process.run()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw CommandFailure("fetching \(what) failed (exit \(process.terminationStatus)); see the messages above")
    }
}

/// A user-facing failure: printed as `strata: message` with exit code 1, never a crash.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
