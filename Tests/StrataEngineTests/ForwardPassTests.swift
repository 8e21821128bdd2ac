import StrataEngine
import StrataTestSupport
import StrataKernels
import StrataTokenizer
import Testing

@Suite("Forward pass mechanics on a real model")
struct ForwardPassTests {
    let model: LanguageModel
    let tokens: [TokenID]

    init() throws {
        model = try LoadedModels.model("smollm2-135m")
        tokens = model.tokenizer.encode("The quick brown fox jumps over the lazy dog, and then", addSpecial: false)
    }

    var full: LayerPlan { .full(layerCount: model.config.layerCount) }

    @Test("a token's logits are bitwise the same decoded alone, prefilled in a batch, or on another thread count",
          arguments: Numerics.allCases)
    func batchAndThreadInvariance(numerics: Numerics) throws {
        var batched = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: numerics)
        var batchedCache = batched.makeCache(capacity: 64)
        let all = try batched.forward(tokens: tokens, startPosition: 0, plan: full, cache: &batchedCache, logits: .all)

        var single = Transformer(model: model, pool: WorkerPool(threadCount: 1), numerics: numerics)
        var singleCache = single.makeCache(capacity: 64)
        for (position, token) in tokens.enumerated() {
            let logits = try single.forward(tokens: [token], startPosition: position, plan: full, cache: &singleCache)
            #expect(Array(logits.last) == Array(all.row(position)), "position \(position)")
        }
    }

    @Test("with 8-bit activations and repacked Q4_K/Q6_K matrices, a token's logits are bitwise the same alone or in a batch")
    func interleavedBatchInvariance() throws {
        let qwen = try LoadedModels.model("qwen2.5-coder-0.5b")
        // its ffn_down matrices (4,864 columns) are the ones `fast8` repacks
        #expect(qwen.weights.layers.contains { $0.down.preparedForEightBitProducts(releasingFilePages: false).isInterleaved })
        let prompt = qwen.tokenizer.encode("def quick_sort(items):\n    if len(items) <= 1:", addSpecial: false)
        let plan = LayerPlan.full(layerCount: qwen.config.layerCount)
        var batched = Transformer(model: qwen, pool: WorkerPool(threadCount: 2), numerics: .fast8)
        var batchedCache = batched.makeCache(capacity: 64)
        let all = try batched.forward(tokens: prompt, startPosition: 0, plan: plan, cache: &batchedCache, logits: .all)
        var single = Transformer(model: qwen, pool: WorkerPool(threadCount: 1), numerics: .fast8)
        var singleCache = single.makeCache(capacity: 64)
        for (position, token) in prompt.enumerated() {
            let logits = try single.forward(tokens: [token], startPosition: position, plan: plan, cache: &singleCache)
            #expect(Array(logits.last) == Array(all.row(position)), "position \(position)")
        }
    }

    @Test("a prompt longer than one slice gives bitwise the logits and cache of one whole pass",
          arguments: [Numerics.exact, .fast])
    func promptSlices(numerics: Numerics) throws {
        // about 2.5 slices, so the last one is partial
        let prompt = Array(repeating: tokens, count: 40).joined().prefix(330).map { $0 }
        #expect(prompt.count == 330)
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: numerics)
        // an observer keeps the pass whole (analysis sees every token's stream at once)
        var wholeCache = transformer.makeCache(capacity: 340)
        let whole = try transformer.forward(tokens: prompt, startPosition: 0, plan: full, cache: &wholeCache,
                                            observer: IgnoringObserver(), logits: .all)
        var slicedCache = transformer.makeCache(capacity: 340)
        let sliced = try transformer.forward(tokens: prompt, startPosition: 0, plan: full, cache: &slicedCache, logits: .all)
        #expect(sliced.rows == prompt.count)
        #expect(firstBitwiseDifference(sliced.values, whole.values) == nil)

        var lastCache = transformer.makeCache(capacity: 340)
        let last = try transformer.forward(tokens: prompt, startPosition: 0, plan: full, cache: &lastCache)
        #expect(last.rows == 1 && Array(last.last) == Array(whole.last))
        // the cache the slices wrote serves the next token exactly as the whole pass's does
        let next = try transformer.forward(tokens: [tokens[0]], startPosition: prompt.count, plan: full, cache: &lastCache)
        let nextWhole = try transformer.forward(tokens: [tokens[0]], startPosition: prompt.count, plan: full, cache: &wholeCache)
        #expect(Array(next.last) == Array(nextWhole.last))
    }

    @Test("truncating the cache and re-running positions reproduces the same logits")
    func truncateRollsBack() throws {
        var transformer = Transformer(model: model)
        var cache = transformer.makeCache(capacity: 64)
        let first = try transformer.forward(tokens: tokens, startPosition: 0, plan: full, cache: &cache, logits: .all)
        #expect(cache.count == tokens.count)
        cache.truncate(to: 4)
        #expect(cache.count == 4)
        // Other tokens at positions 4... overwrite the cache; then the originals again.
        _ = try transformer.forward(tokens: [1, 2, 3], startPosition: 4, plan: full, cache: &cache)
        cache.truncate(to: 4)
        let again = try transformer.forward(
            tokens: Array(tokens[4...]), startPosition: 4, plan: full, cache: &cache, logits: .all)
        for row in 0..<(tokens.count - 4) {
            #expect(Array(again.row(row)) == Array(first.row(row + 4)))
        }
    }

    @Test("invalid input is refused with a clear error, not a crash")
    func invalidInput() throws {
        var transformer = Transformer(model: model)
        var cache = transformer.makeCache(capacity: 4)
        #expect(throws: ForwardError.contextFull(needed: 5, capacity: 4)) {
            try transformer.forward(tokens: [1, 2, 3, 4, 5], startPosition: 0, plan: full, cache: &cache)
        }
        #expect(throws: ForwardError.tokenOutOfRange(token: 49152, vocabularySize: 49152)) {
            try transformer.forward(tokens: [49152], startPosition: 0, plan: full, cache: &cache)
        }
        #expect(throws: ForwardError.invalidStart(startPosition: 2, cached: 0)) {
            try transformer.forward(tokens: [1], startPosition: 2, plan: full, cache: &cache)
        }
        let badPlan = LayerPlan(layerCount: 30, steps: [LayerStep(layer: 30)])
        #expect(throws: ForwardError.invalidPlan("step 0 runs layer 30, outside 0..<30")) {
            try transformer.forward(tokens: [1], startPosition: 0, plan: badPlan, cache: &cache)
        }
        #expect(throws: ForwardError.self) {
            try transformer.forward(tokens: [1], startPosition: 0, plan: .full(layerCount: 12), cache: &cache)
        }
    }

    @Test("generation stops at the token limit and reports it")
    func generationStopsAtLimit() throws {
        var generator = Generator(
            transformer: Transformer(model: model), prompt: tokens,
            parameters: GenerationParameters(maxTokens: 5, sampling: .greedy))
        var count = 0
        var stats: GenerationStats?
        while let event = try generator.next() {
            if case .token = event { count += 1 }
            if case .finished(let final) = event { stats = final }
        }
        #expect(count == 5)
        #expect(stats?.stopReason == .length && stats?.generatedTokens == 5 && stats?.promptTokens == tokens.count)
        #expect(try generator.next() == nil)
    }

    @Test("the same seed reproduces the same sampled text; another seed differs")
    func seededSamplingIsReproducible() throws {
        func run(seed: UInt64) throws -> [TokenID] {
            var generator = Generator(
                transformer: Transformer(model: model), prompt: tokens,
                parameters: GenerationParameters(maxTokens: 24, sampling: SamplingParameters(temperature: 1.5, topK: 0, topP: 1, minP: 0, seed: seed)))
            var out: [TokenID] = []
            while let event = try generator.next() { if case .token(let token, _) = event { out.append(token) } }
            return out
        }
        #expect(try run(seed: 7) == run(seed: 7))
        #expect(try run(seed: 7) != run(seed: 8))
    }
}

/// An observer that looks at nothing: its presence alone makes a forward pass run whole.
private final class IgnoringObserver: HiddenStateObserver {
    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {}
}
