import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine
import StrataKernels

extension Numerics: ExpressibleByArgument {}

/// `--model` and `--threads`, shared by every command that runs a model.
struct ModelOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "A registered model name (see `strata pull --list`) or a path to a .gguf file.")
    var model: String = ModelRegistry.defaultModel

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    /// The most threads `--threads` accepts: the most a worker pool runs.
    static let maximumThreads = WorkerPool.maximumThreadCount

    @Option(help: ArgumentHelp(
        "Matrix-product numerics: 'exact' (float32, matches transformers), 'fast' (16-bit activations with integer dot products) or 'fast8' (8-bit activations, as llama.cpp; batches cost about half as much).",
        discussion: "Default: fast8 for models with a hidden size of \(Numerics.eightBitMinimumHiddenSize) or more, fast below (8-bit activations flip next-token choices of smaller models such as SmolLM2-135M and Qwen2.5-Coder-0.5B)."))
    var numerics: Numerics?

    @Flag(help: "Shorthand for --numerics exact.")
    var exact = false

    func validate() throws {
        if exact, let numerics, numerics != .exact {
            throw ValidationError("--exact and --numerics \(numerics.rawValue) disagree; give one of them")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, found \(threads)") }
        // far more threads than cores only slows the pool down; tens of thousands never finish starting
        if let threads, threads > Self.maximumThreads {
            throw ValidationError("--threads must be at most \(Self.maximumThreads), found \(threads) (this machine has \(ProcessInfo.processInfo.activeProcessorCount) cores)")
        }
    }

    /// Loads the model, returning it with the seconds loading took.
    func load() throws -> (model: LanguageModel, seconds: Double) {
        try Self.load(path: ModelRegistry.resolve(model))
    }

    /// Loads the model file at `path`, returning it with the seconds loading took; a file that
    /// is not a model Strata runs is a `CommandFailure` naming it.
    static func load(path: String) throws -> (model: LanguageModel, seconds: Double) {
        let start = Date()
        do {
            let model = try LanguageModel(path: path)
            return (model, Date().timeIntervalSince(start))
        } catch {
            // most loader errors already start with the path; name it once
            let reason = "\(error)"
            throw CommandFailure("cannot load \(path): " + (reason.hasPrefix(path + ": ") ? String(reason.dropFirst(path.count + 2)) : reason))
        }
    }

    /// The model's name: a registered name as given, a .gguf path without folder or extension.
    static func modelName(_ model: String) -> String {
        // only a .gguf suffix is an extension: "qwen2.5-coder-1.5b" keeps its ".5b"
        let file = URL(fileURLWithPath: model).lastPathComponent
        return file.lowercased().hasSuffix(".gguf") ? String(file.dropLast(".gguf".count)) : file
    }

    /// A transformer over `model` with the chosen threads and numerics.
    func makeTransformer(_ model: LanguageModel) -> Transformer {
        Transformer(model: model, pool: WorkerPool(threadCount: threads), numerics: exact ? .exact : numerics)
    }
}

/// Prints `value` as pretty, key-sorted JSON on stdout.
func printJSON<Value: Encodable>(_ value: Value) throws {
    try StandardOutput.write(String(decoding: try JSONEncoder.forReports().encode(value), as: UTF8.self) + "\n")
}

/// Writes `message` to stderr (progress and diagnostics never mix with results on stdout).
func printError(_ message: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((message + terminator).utf8))
}

/// Checks before any work that `path` (given with `option`) can be written: its folder exists,
/// it is not a folder, and it does not exist unless `force` — so a user's file is never replaced
/// without asking, and a long measurement does not end in a write error.
func checkOutputPath(_ path: String, option: String, force: Bool) throws {
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) {
        if isFolder.boolValue { throw ValidationError("\(option) \(path) is a folder; give a file name") }
        if !force { throw ValidationError("\(path) exists; choose another \(option) or add --force to overwrite it") }
    }
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
        throw ValidationError("\(option) \(path): the folder \(folder) does not exist")
    }
    if let reason = InputFiles.writeProblem(path) { throw ValidationError("\(option) \(path) cannot be written: \(reason)") }
}
