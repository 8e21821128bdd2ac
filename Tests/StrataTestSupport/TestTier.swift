import Foundation
import StrataEngine
import StrataKernels

/// The one switch between the default test tier and the full one.
///
/// The default tier (what the README's test command and CI run) holds the unit tests, the
/// tiny-model mechanics tests and every reference check against transformers and llama.cpp
/// on the real models at reduced sizes (fewer windows, documents and positions).
/// `STRATA_TEST_TIER=full` runs the same checks at full size, plus the long measurements
/// (kernel timings, fast-path quality sweeps, whole-task accuracies).
public enum TestTier: String, Sendable {
    case `default`
    case full

    /// The tier this test process runs, from `STRATA_TEST_TIER` (`full`, or anything else for
    /// the default).
    public static let current: TestTier =
        ProcessInfo.processInfo.environment["STRATA_TEST_TIER"] == "full" ? .full : .default

    public static var isFull: Bool { current == .full }

    /// `reduced` in the default tier, `full` in the full one.
    public static func size<Value>(reduced: Value, full: Value) -> Value {
        isFull ? full : reduced
    }
}

/// One worker pool and one prepared `Transformer` per model and numerics for the whole test
/// process: preparing a model repacks its weights (seconds for the real ones) and a pool
/// starts threads, so tests share them instead of building their own. `Transformer` is a
/// value: each caller gets its own copy (its own scratch), sharing the prepared weights.
public enum PreparedModels {
    /// The pool every shared transformer uses (the pool serialises concurrent callers).
    public static let pool = WorkerPool()

    nonisolated(unsafe) private static var transformers: [Key: Transformer] = [:]
    private static let lock = NSLock()

    private struct Key: Hashable {
        let model: String
        let numerics: Numerics
    }

    /// The real model called `name`, prepared for `numerics` (default: the model's recommended
    /// numerics, as the CLI uses).
    public static func transformer(_ name: String, numerics: Numerics? = nil) throws -> Transformer {
        let model = try LoadedModels.model(name)
        return transformer(model: model, key: name, numerics: numerics ?? .recommended(for: model.config))
    }

    /// The tiny generated model for `spec`, prepared for `numerics`.
    public static func transformer(_ spec: TinyModelSpec, numerics: Numerics = .fast) throws -> Transformer {
        transformer(model: try TinyModels.model(spec), key: "tiny:" + spec.fileName, numerics: numerics)
    }

    private static func transformer(model: LanguageModel, key: String, numerics: Numerics) -> Transformer {
        lock.lock()
        defer { lock.unlock() }
        let key = Key(model: key, numerics: numerics)
        if let transformer = transformers[key] { return transformer }
        let transformer = Transformer(model: model, pool: pool, numerics: numerics)
        transformers[key] = transformer
        return transformer
    }
}

/// A model a mechanics test runs on: a generated tiny model (default tier) or an installed real
/// one (full tier). Mechanics hold for any weights, so the default tier checks them in
/// milliseconds on tiny models and the full tier repeats them on the real models.
public enum TestModel: Sendable, CustomStringConvertible {
    case tiny(TinyModelSpec)
    case real(String)

    /// The tiny models of `tiny`, plus the real models of `real` in the full tier.
    public static func mechanics(tiny: [TinyModelSpec] = [.llama], real: [String] = ["smollm2-135m"]) -> [TestModel] {
        tiny.map { .tiny($0) } + (TestTier.isFull ? real.map { .real($0) } : [])
    }

    public func load() throws -> LanguageModel {
        switch self {
        case .tiny(let spec): try TinyModels.model(spec)
        case .real(let name): try LoadedModels.model(name)
        }
    }

    /// The model's GGUF file: written on first use for a tiny model, installed for a real one.
    public func path() throws -> String {
        switch self {
        case .tiny(let spec): try TinyModels.path(spec)
        case .real(let name): try TestModels.require(name)
        }
    }

    /// The shared prepared transformer for this model and `numerics`.
    public func transformer(numerics: Numerics) throws -> Transformer {
        switch self {
        case .tiny(let spec): try PreparedModels.transformer(spec, numerics: numerics)
        case .real(let name): try PreparedModels.transformer(name, numerics: numerics)
        }
    }

    public var description: String {
        switch self {
        case .tiny(let spec): "tiny \(spec)"
        case .real(let name): name
        }
    }
}
