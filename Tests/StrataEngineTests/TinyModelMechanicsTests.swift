import StrataEngine
import StrataKernels
import StrataTestSupport
import StrataTokenizer
import Testing

/// Forward-pass and plan mechanics: what must hold for any weights (batch and thread
/// invariance, cache rollback, plan semantics). The default tier checks them in milliseconds on
/// generated tiny models, one per architecture and weight format; the full tier repeats them on
/// the real models.
@Suite("Forward-pass mechanics")
struct TinyModelMechanicsTests {
    static let text = "The quick brown fox jumps over the lazy dog, and then def fibonacci(n): return 42"
    /// Every tiny model, and in the full tier the two small real models.
    static let everyModel = TestModel.mechanics(tiny: TinyModelSpec.all, real: ["smollm2-135m", "qwen2.5-coder-0.5b"])
    /// One tiny model per architecture, and in the full tier SmolLM2.
    static let perArchitecture = TestModel.mechanics(tiny: [.llama, .qwen2])

    static func prompt(_ model: LanguageModel) -> [TokenID] {
        model.tokenizer.encode(text, addSpecial: false)
    }

    @Test("every generated model loads with its architecture, sizes and a working BPE tokenizer",
          arguments: TinyModelSpec.all)
    func loads(spec: TinyModelSpec) throws {
        let model = try TinyModels.model(spec)
        #expect(model.config.architecture == spec.architecture)
        #expect(model.config.layerCount == spec.layers && model.config.hiddenSize == spec.hidden)
        #expect(model.config.tiedOutput == (spec.architecture == "llama"))
        let tokens = Self.prompt(model)
        // merges learned from the corpus make whole words single tokens
        #expect(tokens.count < Self.text.utf8.count / 2, "\(tokens.count) tokens for \(Self.text.utf8.count) bytes")
        #expect(model.tokenizer.decode(tokens) == Self.text)
    }

    @Test("a token's logits are bitwise the same decoded alone on one thread or prefilled in a batch on two",
          arguments: everyModel, Numerics.allCases)
    func batchAndThreadInvariance(testModel: TestModel, numerics: Numerics) throws {
        let model = try testModel.load()
        let tokens = Self.prompt(model)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        var batched = try testModel.transformer(numerics: numerics)
        var batchedCache = batched.makeCache(capacity: 64)
        let all = try batched.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &batchedCache, logits: .all)
        #expect(all.values.allSatisfy { $0.isFinite })
        var single = Transformer(model: model, pool: WorkerPool(threadCount: 1), numerics: numerics)
        var singleCache = single.makeCache(capacity: 64)
        for (position, token) in tokens.enumerated() {
            let logits = try single.forward(tokens: [token], startPosition: position, plan: plan, cache: &singleCache)
            #expect(Array(logits.last) == Array(all.row(position)), "\(testModel) \(numerics) position \(position)")
        }
    }

    @Test("the fast paths stay within their error bound of the exact path, and choose its token except at near-ties",
          arguments: TinyModelSpec.all)
    func fastAgreesWithExact(spec: TinyModelSpec) throws {
        let model = try TinyModels.model(spec)
        let tokens = Self.prompt(model)
        let plan = LayerPlan.full(layerCount: spec.layers)
        func logits(_ numerics: Numerics) throws -> Logits {
            var transformer = try PreparedModels.transformer(spec, numerics: numerics)
            var cache = transformer.makeCache(capacity: 64)
            return try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
        }
        let exact = try logits(.exact)
        // 16-bit activations round at 2^-15 of a block's largest value, 8-bit at 2^-7, 256 times
        // coarser: measured on these models, the largest logit errors are below 0.01 and 1.7
        // (random weights with 6-bit block scales have outliers real models lack). A wiring
        // fault (a wrong row, scale or offset) errs by the logits' own size, 5 and more. Q2_K's
        // random minimums shift whole runs of 16 weights far from zero, so the same activation
        // rounding moves its sums more: 0.017 measured with 16 bits (its products match the
        // Double reference of the kernel tests, and real Q2_K files score the float path's
        // perplexity to four digits).
        let sixteenBitBound: Float = spec.format == .q2_K ? 0.03 : 0.01
        for (numerics, bound) in [(Numerics.fast, sixteenBitBound), (.fast8, 2.5)] {
            let fast = try logits(numerics)
            for row in 0..<tokens.count {
                let reference = Array(exact.row(row))
                let candidate = Array(fast.row(row))
                let error = zip(reference, candidate).map { abs($0 - $1) }.max() ?? 0
                #expect(error < bound, "\(spec) \(numerics) row \(row): largest logit error \(error)")
                let choice = Int(Sampler.argmax(fast.row(row)))
                let best = Int(Sampler.argmax(exact.row(row)))
                // a flip is allowed only where the exact top two are closer than the error
                #expect(choice == best || reference[best] - reference[choice] <= 2 * error,
                        "\(spec) \(numerics) row \(row): margin \(reference[best] - reference[choice]), error \(error)")
            }
        }
    }

    @Test("a prompt longer than one slice gives bitwise the logits and cache of one whole pass",
          arguments: perArchitecture, [Numerics.exact, .fast])
    func promptSlices(testModel: TestModel, numerics: Numerics) throws {
        let model = try testModel.load()
        let prompt = Array(Array(repeating: Self.prompt(model), count: 40).joined().prefix(330))
        #expect(prompt.count == 330)
        var transformer = try testModel.transformer(numerics: numerics)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        // an observer keeps the pass whole
        var wholeCache = transformer.makeCache(capacity: 340)
        let whole = try transformer.forward(tokens: prompt, startPosition: 0, plan: plan, cache: &wholeCache,
                                            observer: IgnoringObserver(), logits: .all)
        var slicedCache = transformer.makeCache(capacity: 340)
        let sliced = try transformer.forward(tokens: prompt, startPosition: 0, plan: plan, cache: &slicedCache, logits: .all)
        #expect(sliced.rows == prompt.count)
        #expect(firstBitwiseDifference(sliced.values, whole.values) == nil)
        let next = try transformer.forward(tokens: [prompt[0]], startPosition: prompt.count, plan: plan, cache: &slicedCache)
        let nextWhole = try transformer.forward(tokens: [prompt[0]], startPosition: prompt.count, plan: plan, cache: &wholeCache)
        #expect(Array(next.last) == Array(nextWhole.last))
    }

    @Test("truncating the cache and re-running positions reproduces the same logits", arguments: perArchitecture)
    func truncateRollsBack(testModel: TestModel) throws {
        let model = try testModel.load()
        let tokens = Self.prompt(model)
        var transformer = try testModel.transformer(numerics: .fast)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        var cache = transformer.makeCache(capacity: 64)
        let first = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
        cache.truncate(to: 4)
        #expect(cache.count == 4)
        _ = try transformer.forward(tokens: [1, 2, 3], startPosition: 4, plan: plan, cache: &cache)
        cache.truncate(to: 4)
        let again = try transformer.forward(tokens: Array(tokens[4...]), startPosition: 4, plan: plan, cache: &cache, logits: .all)
        for row in 0..<(tokens.count - 4) {
            #expect(Array(again.row(row)) == Array(first.row(row + 4)), "\(testModel) row \(row)")
        }
    }

    @Test("invalid input is refused with a clear error, not a crash")
    func invalidInput() throws {
        let spec = TinyModelSpec.llama
        let vocabularySize = try TinyModels.model(spec).config.vocabularySize
        var transformer = try PreparedModels.transformer(spec)
        let plan = LayerPlan.full(layerCount: spec.layers)
        var cache = transformer.makeCache(capacity: 4)
        #expect(throws: ForwardError.contextFull(needed: 5, capacity: 4)) {
            try transformer.forward(tokens: [1, 2, 3, 4, 5], startPosition: 0, plan: plan, cache: &cache)
        }
        #expect(throws: ForwardError.tokenOutOfRange(token: TokenID(vocabularySize), vocabularySize: vocabularySize)) {
            try transformer.forward(tokens: [TokenID(vocabularySize)], startPosition: 0, plan: plan, cache: &cache)
        }
        #expect(throws: ForwardError.invalidStart(startPosition: 2, cached: 0)) {
            try transformer.forward(tokens: [1], startPosition: 2, plan: plan, cache: &cache)
        }
        let badPlan = LayerPlan(layerCount: spec.layers, steps: [LayerStep(layer: spec.layers)])
        #expect(throws: ForwardError.invalidPlan("step 0 runs layer \(spec.layers), outside 0..<\(spec.layers)")) {
            try transformer.forward(tokens: [1], startPosition: 0, plan: badPlan, cache: &cache)
        }
    }
}

/// Plan mechanics on a tiny model (and SmolLM2 in the full tier): repeats, skips, reorders,
/// seeded passes and the token loop.
@Suite("Plan mechanics")
struct TinyModelPlanTests {
    static let models = TestModel.mechanics()

    struct Subject {
        let testModel: TestModel
        let model: LanguageModel
        let tokens: [TokenID]
        var layers: Int { model.config.layerCount }

        init(_ testModel: TestModel) throws {
            self.testModel = testModel
            model = try testModel.load()
            tokens = TinyModelMechanicsTests.prompt(model)
        }

        func logits(_ plan: LayerPlan, numerics: Numerics = .exact) throws -> [Float] {
            var transformer = try testModel.transformer(numerics: numerics)
            var cache = transformer.makeCache(capacity: 64)
            return try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all).values
        }
    }

    @Test("repeated layers get their own cache slots: a looping plan decodes token by token as it prefills",
          arguments: models, Numerics.allCases)
    func loopingPlanIsBatchInvariant(testModel: TestModel, numerics: Numerics) throws {
        let subject = try Subject(testModel)
        let tokens = subject.tokens
        let plan = LayerPlan(layerCount: subject.layers, steps: ([0, 1, 2, 1, 2] + Array(3..<subject.layers)).map { LayerStep(layer: $0) })
        var transformer = try testModel.transformer(numerics: numerics)
        var cache = transformer.makeCache(capacity: 64)
        let batch = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
        cache.truncate(to: 0)
        for (position, token) in tokens.enumerated() {
            let single = try transformer.forward(tokens: [token], startPosition: position, plan: plan, cache: &cache)
            #expect(Array(single.last) == Array(batch.row(position)), "\(testModel) position \(position)")
        }
        #expect(try batch.values != subject.logits(.full(layerCount: subject.layers), numerics: numerics))
    }

    @Test("skipping layers and sublayers equals the explicit plan, and changes the output", arguments: models)
    func skipsMatchAnExplicitPlan(testModel: TestModel) throws {
        let subject = try Subject(testModel)
        let last = subject.layers - 1
        let skipped = try LayerPlan.full(layerCount: subject.layers).skipping(layers: [1], attention: [2], ffn: [last])
        let explicit = LayerPlan(layerCount: subject.layers, steps: (0..<subject.layers).filter { $0 != 1 }.map {
            LayerStep(layer: $0, runsAttention: $0 != 2, runsFFN: $0 != last)
        })
        #expect(try subject.logits(skipped) == subject.logits(explicit))
        #expect(try subject.logits(skipped) != subject.logits(.full(layerCount: subject.layers)))
    }

    @Test("reordering layers changes the output; the same order twice gives the same logits", arguments: models)
    func reorderedPlans(testModel: TestModel) throws {
        let subject = try Subject(testModel)
        let reordered = LayerPlan(layerCount: subject.layers, steps: ([0, 2, 1] + Array(3..<subject.layers)).map { LayerStep(layer: $0) })
        #expect(try subject.logits(reordered) == subject.logits(reordered))
        #expect(try subject.logits(reordered) != subject.logits(.full(layerCount: subject.layers)))
    }

    @Test("a pass seeded with the stream entering step k equals the whole pass, for full and ablated plans",
          arguments: models, Numerics.allCases)
    func seededForward(testModel: TestModel, numerics: Numerics) throws {
        let subject = try Subject(testModel)
        let tokens = subject.tokens
        let layers = subject.layers
        var transformer = try testModel.transformer(numerics: numerics)
        let full = LayerPlan.full(layerCount: layers)
        var cache = transformer.makeCache(capacity: 64)
        let capture = StreamCapture()
        let reference = try transformer.forward(tokens: tokens, startPosition: 0, plan: full, cache: &cache,
                                                observer: capture, logits: .all)
        // every step of a tiny model; the first, two middle and the last of a real one
        for step in Set([0, 1, layers / 2, layers - 1]).union(layers <= 8 ? Set(0..<layers) : []).sorted() {
            cache.truncate(to: 0)
            let seeded = try transformer.forward(hidden: capture.inputs[step], firstStep: step, startPosition: 0,
                                                 plan: full, cache: &cache, logits: .all)
            #expect(seeded.values == reference.values, "step \(step)")
            for plan in try [full.skipping(layers: [step]), full.skipping(attention: [step]), full.skipping(ffn: [step])] {
                cache.truncate(to: 0)
                let direct = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
                cache.truncate(to: 0)
                let fromSeed = try transformer.forward(hidden: capture.inputs[step], firstStep: step, startPosition: 0,
                                                       plan: plan, cache: &cache, logits: .all)
                #expect(fromSeed.values == direct.values, "ablated step \(step)")
            }
        }
        let lens = try transformer.forward(hidden: capture.lastOutput, firstStep: layers, startPosition: 0,
                                           plan: full, cache: &cache, logits: .all)
        #expect(lens.values == reference.values)
    }

    @Test("bad seeds are refused with clear errors")
    func invalidSeeds() throws {
        let model = try TinyModels.model(.llama)
        var transformer = try PreparedModels.transformer(.llama)
        let layers = model.config.layerCount
        let full = LayerPlan.full(layerCount: layers)
        var cache = transformer.makeCache(capacity: 8)
        let width = model.config.hiddenSize
        #expect(throws: ForwardError.invalidHidden("\(width + 1) values are not whole rows of \(width)")) {
            try transformer.forward(hidden: [Float](repeating: 0, count: width + 1), firstStep: 0, startPosition: 0,
                                    plan: full, cache: &cache)
        }
        #expect(throws: ForwardError.invalidHidden("first step \(layers + 1) is outside 0...\(layers)")) {
            try transformer.forward(hidden: [Float](repeating: 0, count: width), firstStep: layers + 1, startPosition: 0,
                                    plan: full, cache: &cache)
        }
    }

    @Test("generation stops at the token limit; the same seed reproduces sampled text and another differs",
          arguments: models)
    func generation(testModel: TestModel) throws {
        let tokens = try Subject(testModel).tokens
        func run(seed: UInt64, maxTokens: Int = 24) throws -> (tokens: [TokenID], stats: GenerationStats?) {
            var generator = Generator(
                transformer: try testModel.transformer(numerics: .fast), prompt: tokens,
                parameters: GenerationParameters(
                    maxTokens: maxTokens, sampling: SamplingParameters(temperature: 1.5, topK: 0, topP: 1, minP: 0, seed: seed)))
            var out: [TokenID] = []
            var stats: GenerationStats?
            while let event = try generator.next() {
                if case .token(let token, _) = event { out.append(token) }
                if case .finished(let final) = event { stats = final }
            }
            return (out, stats)
        }
        let limited = try run(seed: 1, maxTokens: 5)
        #expect(limited.tokens.count <= 5)
        if limited.tokens.count == 5 { #expect(limited.stats?.stopReason == .length) }
        #expect(try run(seed: 7).tokens == run(seed: 7).tokens)
        #expect(try run(seed: 7).tokens != run(seed: 8).tokens)
    }
}

/// Keeps the residual stream entering every step of one forward pass, and the last step's output.
private final class StreamCapture: HiddenStateObserver {
    var inputs: [[Float]] = []
    var lastOutput: [Float] = []
    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        if boundary == .layerInput { inputs.append(Array(hidden[0..<(tokens * hiddenSize)])) }
        if boundary == .layerOutput { lastOutput = Array(hidden[0..<(tokens * hiddenSize)]) }
    }
}

/// An observer that looks at nothing: its presence alone makes a forward pass run whole.
private final class IgnoringObserver: HiddenStateObserver {
    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {}
}
