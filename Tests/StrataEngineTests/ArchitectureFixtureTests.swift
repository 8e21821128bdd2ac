import Foundation
import StrataEngine
import StrataKernels
import Testing

/// Qwen3, Llama 3 (scaled RoPE), Phi-3 (fused projections) and Gemma 3 (sliding windows of 8
/// positions, two RoPE bases, GeGLU, sublayer output norms), each a tiny random-weight
/// checkpoint that transformers made and llama.cpp's converter turned into GGUF: over 256
/// positions, Strata's exact path must give transformers' logits at the recorded ones, to 1e-4
/// (`Fixtures/architectures/make_architecture_fixtures.py`).
@Suite("New families against transformers")
struct ArchitectureFixtureTests {
    struct Reference: Decodable {
        let family: String
        let tokens: [Int32]
        /// The positions `logits` holds, in order.
        let rows: [Int]
        let logits: [[Double]]
    }

    static let families = ["qwen3", "llama3", "phi3", "gemma3"]

    @Test(arguments: families)
    func logitsMatchTransformers(family: String) throws {
        let reference = try JSONDecoder().decode(Reference.self, from: Fixture.data("architectures/\(family)-tiny.json"))
        let model = try LanguageModel(path: Fixture.url("architectures/\(family)-tiny.gguf").path)
        #expect(model.architecture.name == family.replacingOccurrences(of: "llama3", with: "llama"))
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        var cache = transformer.makeCache(capacity: reference.tokens.count)
        let logits = try transformer.forward(
            tokens: reference.tokens, startPosition: 0, plan: .full(layerCount: model.config.layerCount), cache: &cache,
            logits: .all)
        let vocabulary = model.config.vocabularySize
        #expect(logits.rows == reference.tokens.count && reference.logits.allSatisfy { $0.count == vocabulary })
        #expect(reference.rows.count == reference.logits.count && reference.rows.last == reference.tokens.count - 1)
        var largest = 0.0
        for (row, expected) in zip(reference.rows, reference.logits) {
            for (column, value) in expected.enumerated() {
                largest = max(largest, abs(Double(logits.values[row * vocabulary + column]) - value))
            }
        }
        // 1e-4 is the promise; float32 weights on both sides reach about 3e-7, and 1e-5 also
        // catches what 1e-4 would not: dropping Llama 3's frequency factors moves these
        // logits by only 2.7e-4
        #expect(largest <= 1e-5, "\(family): largest logit difference \(largest)")
        // a comparison of near-constant logits would prove nothing
        let spread = (reference.logits.flatMap { $0 }.max() ?? 0) - (reference.logits.flatMap { $0 }.min() ?? 0)
        #expect(spread > 1, "\(family): the reference logits span only \(spread)")
        if ProcessInfo.processInfo.environment["STRATA_PRINT_DIFFERENCES"] != nil {
            print("\(family): largest difference \(largest), logit spread \(spread)")
        }
    }

    /// The Llama 3 fixture's RoPE factors are what llama.cpp's converter derived from its
    /// "llama3" scaling (factor 8, low 1, high 4, original context 8,192): the fastest
    /// rotations untouched, the slowest slowed 8 times; without them the logits differ.
    @Test func llama3FrequencyFactorsMatter() throws {
        let model = try LanguageModel(path: Fixture.url("architectures/llama3-tiny.gguf").path)
        let factors = try #require(model.config.rotaryFrequencyFactors)
        #expect(factors.count == model.config.rotaryDimensions / 2)
        #expect(factors.first == 1 && factors.last == 8)
        var unscaledConfig = model.config
        unscaledConfig.rotaryFrequencyFactors = nil
        #expect(LlamaArchitecture().rotaryInverseFrequencies(config: unscaledConfig)
                != LlamaArchitecture().rotaryInverseFrequencies(config: model.config))
    }

    /// The Gemma 3 fixture's file has the window but no pattern: the family's default makes
    /// layers 0-4 slide (base 10,000) and layer 5 global (the file's base), as transformers'
    /// `layer_types` in the fixture's config say.
    @Test func gemma3SlidingWindowLayers() throws {
        let model = try LanguageModel(path: Fixture.url("architectures/gemma3-tiny.gguf").path)
        let config = model.config
        #expect(config.slidingWindow == 8)
        #expect(config.slidingWindowLayers == [true, true, true, true, true, false])
        #expect(config.slidingWindowRopeBase == 10_000 && config.ropeBase == 1_000_000)
        #expect((0..<6).map { config.attentionWindow(layer: $0) } == [8, 8, 8, 8, 8, nil])
        // the window matters to these logits: without it the test above could not fail for it
        var withoutWindow = Gemma3Architecture()
        withoutWindow.slidingWindowPeriod = nil
        let unwindowed = try LanguageModel(path: model.file.path, architectures: ArchitectureRegistry.standard.adding(withoutWindow))
        #expect(unwindowed.config.slidingWindow == nil)
        var windowed = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        var plain = Transformer(model: unwindowed, pool: WorkerPool(threadCount: 2), numerics: .exact)
        let tokens: [Int32] = (0..<24).map { Int32(3 + $0 * 7 % 500) }
        var first = windowed.makeCache(capacity: 24)
        var second = plain.makeCache(capacity: 24)
        let plan = LayerPlan.full(layerCount: 6)
        let a = try windowed.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &first)
        let b = try plain.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &second)
        #expect(zip(a.values, b.values).contains { abs($0 - $1) > 1e-3 })
    }
}
