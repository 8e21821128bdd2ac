@testable import StrataEngine
import StrataTokenizer
import StrataTestSupport
import Testing

/// Prompts of the three kinds the speculative benchmark uses.
let speculationPrompts = [
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\ndef factorial(n):",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "<|im_start|>user\nList three primary colours.<|im_end|>\n<|im_start|>assistant\n",
]

@Suite("Self-speculative decoding", .serialized)
struct SpeculativeDecodingTests {
    func generate(_ transformer: Transformer, prompt: [TokenID], maxTokens: Int, sampling: SamplingParameters = .greedy,
                  speculation: SpeculationParameters?) throws -> (tokens: [TokenID], stats: SpeculationStats) {
        var generator = Generator(
            transformer: transformer, prompt: prompt,
            parameters: GenerationParameters(maxTokens: maxTokens, sampling: sampling, speculation: speculation))
        var tokens: [TokenID] = []
        while let event = try generator.next() { if case .token(let token, _) = event { tokens.append(token) } }
        return (tokens, generator.speculationStats)
    }

    @Test("greedy speculative output equals plain greedy output for every draft source",
          arguments: TestModel.mechanics(tiny: [.llama, .qwen2], real: ["smollm2-135m", "qwen2.5-coder-0.5b"]))
    func greedyIsLossless(testModel: TestModel) throws {
        let model = try testModel.load()
        let transformer = try testModel.transformer(numerics: .recommended(for: model.config))
        let modelName = testModel.description
        let layers = model.config.layerCount
        // Every third layer from the middle on; a model too shallow for that skips its middle layer.
        let skipped = Set(stride(from: layers / 2, to: layers - 2, by: 3))
        let skipPlan = try LayerPlan.full(layerCount: layers).skipping(layers: skipped.isEmpty ? [layers / 2] : skipped)
        let sources: [DraftSource] = [.ngram, .auto(fallback: nil), .auto(fallback: skipPlan), .earlyExit(layers: layers * 2 / 3), .plan(skipPlan),
                                      .layers(seed: nil), .layers(seed: skipPlan)]
        var searchedRuns = 0
        try expectLossless(transformer, tokenizer: model.tokenizer, sources: sources, maxTokens: 40, name: modelName) { source, tokens, stats in
            // The timings the cost model uses cover every verify pass and draft step.
            #expect(stats.timings.verifyPasses.values.reduce(0, +) == stats.verifyPasses)
            #expect(stats.timings.verifyPasses[1, default: 0] == stats.plainRounds)
            #expect((stats.timings.draftSteps > 0) == (stats.draftLayerForwards > 0))
            #expect(stats.timings.verifySeconds.values.allSatisfy { $0 > 0 })
            if case .layers = source, tokens.count == 40 {
                // 40 tokens leave room for the search to score candidates and draft with the best
                // (a reply that ends sooner, at the end-of-turn token, may not)
                #expect(stats.searchEvaluations > 0 && stats.timings.searchSeconds > 0 && stats.planRounds > 0)
                searchedRuns += 1
            }
        }
        #expect(searchedRuns > 0, "\(modelName): no prompt ran long enough to exercise the layer-skip search")
    }

    /// Gemma 3 270M in the default tier (its sliding-window layers roll back like the others):
    /// the bundled speculation prompts, greedy, with n-gram, early-exit, plan and searched
    /// layer-skip drafts.
    @Test("greedy speculative output equals plain output on Gemma 3 270M")
    func greedyIsLosslessOnGemma3() throws {
        let model = try LoadedModels.model("gemma3-270m")
        let transformer = try PreparedModels.transformer("gemma3-270m")
        let layers = model.config.layerCount
        let skipPlan = try LayerPlan.full(layerCount: layers).skipping(layers: [9, 12, 15])
        let sources: [DraftSource] = [.ngram, .earlyExit(layers: 12), .plan(skipPlan), .layers(seed: nil)]
        try expectLossless(transformer, tokenizer: model.tokenizer, sources: sources, maxTokens: 32, name: "gemma3-270m")
    }

    /// Runs every bundled speculation prompt plainly and with each draft source, expecting the
    /// same tokens; `inspect` sees each speculative run's tokens and statistics.
    func expectLossless(_ transformer: Transformer, tokenizer: Tokenizer, sources: [DraftSource], maxTokens: Int, name: String,
                        inspect: (DraftSource, [TokenID], SpeculationStats) -> Void = { _, _, _ in }) throws {
        for text in speculationPrompts {
            let prompt = tokenizer.encode(text, addSpecial: true)
            let plain = try generate(transformer, prompt: prompt, maxTokens: maxTokens, speculation: nil).tokens
            for source in sources {
                let (tokens, stats) = try generate(transformer, prompt: prompt, maxTokens: maxTokens,
                                                   speculation: SpeculationParameters(draft: source, maxDraft: 6, confidence: 0.3))
                #expect(tokens == plain, "\(name) \(source) on \(text.prefix(20).debugDescription)")
                #expect(stats.verifyPasses > 0 && stats.accepted <= stats.drafted)
                inspect(source, tokens, stats)
            }
        }
    }

    @Test("n-gram drafts are accepted on repetitive text, and each verify pass yields at least one token")
    func ngramPaysOnRepetition() throws {
        let model = try LoadedModels.model("smollm2-135m")
        let transformer = try PreparedModels.transformer("smollm2-135m")
        let text = String(repeating: "alpha beta gamma delta epsilon zeta eta theta. ", count: 6)
        let prompt = model.tokenizer.encode(text, addSpecial: false)
        let (tokens, stats) = try generate(transformer, prompt: prompt, maxTokens: 48, speculation: SpeculationParameters(draft: .ngram))
        #expect(try tokens == generate(transformer, prompt: prompt, maxTokens: 48, speculation: nil).tokens)
        #expect(stats.acceptanceRate > 0.5, "acceptance \(stats.acceptanceRate)")
        #expect(stats.verifyPasses < 48 && stats.verifyPasses + stats.accepted >= 47)
    }

    @Test func ngramDrafterProposesWhatFollowedTheLatestMatch() {
        #expect(NGramDrafter.propose(history: [1, 2, 3, 9, 1, 2, 3, 7, 1, 2, 3], maximum: 2) == [7, 1])
        #expect(NGramDrafter.propose(history: [5, 6, 5], maximum: 4) == [6, 5])
        #expect(NGramDrafter.propose(history: [1, 2, 3], maximum: 4) == [])
    }

    /// Pearson's chi-square statistic of observed counts against expected probabilities.
    static func chiSquare(_ counts: [TokenID: Int], _ distribution: TokenDistribution, draws: Int) -> Double {
        zip(distribution.tokens, distribution.probabilities).reduce(0) { sum, pair in
            let expected = Double(pair.1) * Double(draws)
            let observed = Double(counts[pair.0, default: 0])
            return sum + (observed - expected) * (observed - expected) / expected
        }
    }

    /// On a tiny model by default, and on SmolLM2 too in the full tier.
    @Test("speculative sampling draws the next token from the full model's distribution (chi-square)",
          arguments: TestModel.mechanics())
    func samplingPreservesTheDistribution(testModel: TestModel) throws {
        let model = try testModel.load()
        let layers = model.config.layerCount
        let prompt = model.tokenizer.encode("Once upon a time, there was a little", addSpecial: false)
        let sampling = SamplingParameters(temperature: 1.5, topK: 4, topP: 1, minP: 0)
        // A weak draft (a third of the layers) so that drafts are often rejected and the
        // residual distribution does real work.
        let draftPlan = LayerPlan(layerCount: layers, steps: (0..<max(1, layers / 3)).map { LayerStep(layer: $0) })
        var transformer = try testModel.transformer(numerics: .recommended(for: model.config))
        var cache = transformer.makeCache(capacity: prompt.count + 8)
        let context = Array(prompt.dropLast())
        let full = LayerPlan.full(layerCount: layers)
        _ = try transformer.forward(tokens: context, startPosition: 0, plan: full, cache: &cache, logits: .none)
        let target = Sampler(parameters: sampling).distribution(
            logits: try transformer.forward(tokens: [prompt.last!], startPosition: context.count, plan: full, cache: &cache).last,
            history: prompt)
        cache.truncate(to: context.count)
        let draftLogits = try transformer.forward(tokens: [prompt.last!], startPosition: context.count, plan: draftPlan, cache: &cache)
        let draft = Sampler(parameters: sampling).distribution(logits: draftLogits.last, history: prompt)

        let draws = 1500
        var counts: [TokenID: Int] = [:]
        var draftCounts: [TokenID: Int] = [:]
        var stats = SpeculationStats()
        for seed in 0..<draws {
            var parameters = sampling
            parameters.seed = UInt64(seed)
            var sampler = Sampler(parameters: parameters)
            var drawer = Sampler(parameters: parameters)
            var speculator = try Speculator(parameters: SpeculationParameters(draft: .plan(draftPlan), maxDraft: 1, confidence: 0, adaptive: false),
                                        config: model.config)
            cache.truncate(to: context.count)
            let decided = try speculator.round(transformer: &transformer, cache: &cache, tokens: prompt, plan: full,
                                               sampler: &sampler, limit: 1)
            counts[decided[0], default: 0] += 1
            draftCounts[drawer.draw(from: draft), default: 0] += 1
            stats.drafted += speculator.stats.drafted
            stats.accepted += speculator.stats.accepted
        }
        // df = 3; the 0.1% critical value is 16.27.
        let statistic = Self.chiSquare(counts, target, draws: draws)
        #expect(statistic < 16.27, "chi-square \(statistic); target \(target), counts \(counts)")
        #expect(stats.accepted < stats.drafted, "some drafts must be rejected for the test to mean anything")
        // Control: the draft's own distribution is distinguishable from the target with this many draws.
        #expect(Self.chiSquare(draftCounts, target, draws: draws) > 16.27, "draft \(draft) vs target \(target)")
    }

    @Test("sampled speculation keeps the full model's distribution with n-gram and early-exit drafts too (chi-square)",
          arguments: [DraftSource.ngram, .earlyExit(layers: 1)])
    func everySourceKeepsTheDistribution(source: DraftSource) throws {
        let model = try TinyModels.model(.llama)
        // The prompt is a text and the model's own greedy continuation of it, which repeats
        // itself: the n-gram drafter then proposes a token the model finds likely, so its
        // drafts are accepted at times and rejected at others.
        var transformer = try PreparedModels.transformer(.llama)
        let text = model.tokenizer.encode("the cat and the dog and the cat and the", addSpecial: false)
        var generator = Generator(transformer: transformer, prompt: text,
                                  parameters: GenerationParameters(maxTokens: 32, sampling: .greedy))
        var prompt = text
        while let event = try generator.next() { if case .token(let token, _) = event { prompt.append(token) } }
        #expect(!NGramDrafter.propose(history: prompt, maximum: 1).isEmpty)
        let sampling = SamplingParameters(temperature: 1.5, topK: 4, topP: 1, minP: 0)
        let (target, prefilled) = try fullModelDistribution(transformer: &transformer, prompt: prompt, sampling: sampling)
        var cache = prefilled
        let draws = 1500
        let (counts, drafted, accepted) = try speculativeRounds(
            drafter: source.makeDrafter(), transformer: &transformer, cache: &cache, prompt: prompt, sampling: sampling, draws: draws)
        // df = 3; the 0.1% critical value is 16.27.
        let statistic = Self.chiSquare(counts, target, draws: draws)
        #expect(statistic < 16.27, "\(source): chi-square \(statistic); target \(target), counts \(counts)")
        #expect(drafted == draws, "\(source) drafts one token every round")
        #expect(accepted > 0 && accepted < drafted,
                "\(source): drafts both accepted and rejected, so both branches of the rule are exercised")
    }
}

/// The full model's sampling distribution for the token after `prompt`, and a cache holding
/// every prompt token but the last (the pending one), as `speculativeRounds` expects.
func fullModelDistribution(
    transformer: inout Transformer, prompt: [TokenID], sampling: SamplingParameters
) throws -> (TokenDistribution, KVCache) {
    let full = LayerPlan.full(layerCount: transformer.config.layerCount)
    var cache = transformer.makeCache(capacity: prompt.count + 8)
    let context = Array(prompt.dropLast())
    _ = try transformer.forward(tokens: context, startPosition: 0, plan: full, cache: &cache, logits: .none)
    let logits = try transformer.forward(tokens: [prompt.last!], startPosition: context.count, plan: full, cache: &cache)
    return (Sampler(parameters: sampling).distribution(logits: logits.last, history: prompt), cache)
}

/// One single-token speculative round per seed `0..<draws` with `drafter`: `prompt`'s last token
/// is pending and the rest is in `cache`. Returns how often each token was decided, and the
/// drafts made and accepted over all rounds.
func speculativeRounds(
    drafter: any Drafter, transformer: inout Transformer, cache: inout KVCache, prompt: [TokenID],
    sampling: SamplingParameters, draws: Int
) throws -> (counts: [TokenID: Int], drafted: Int, accepted: Int) {
    let full = LayerPlan.full(layerCount: transformer.config.layerCount)
    var counts: [TokenID: Int] = [:]
    var drafted = 0, accepted = 0
    for seed in 0..<draws {
        var parameters = sampling
        parameters.seed = UInt64(seed)
        var sampler = Sampler(parameters: parameters)
        var speculator = try Speculator(
            parameters: SpeculationParameters(drafter: drafter, maxDraft: 1, confidence: 0, adaptive: false),
            config: transformer.config)
        cache.truncate(to: prompt.count - 1)
        let decided = try speculator.round(transformer: &transformer, cache: &cache, tokens: prompt, plan: full,
                                           sampler: &sampler, limit: 1)
        counts[decided[0], default: 0] += 1
        drafted += speculator.stats.drafted
        accepted += speculator.stats.accepted
    }
    return (counts, drafted, accepted)
}
