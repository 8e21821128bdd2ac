import StrataEngine
import StrataTestSupport
import Testing

/// Several sequences in one pass: each sequence's logits must be bitwise what it gets alone,
/// whatever shares the pass (the server's batched decoding relies on it).
@Suite("Batched forward over several sequences")
struct BatchedForwardTests {
    static let texts = [
        "The quick brown fox jumps over the lazy dog",
        "def fibonacci(n): return 42 if n else 0",
        "and then the dog",
    ]

    @Test("each segment's logits equal its own pass, for prompts, decode steps and mixed batches",
          arguments: TestModel.mechanics(tiny: [.llama, .qwen2, TinyModelSpec(format: .q4_K)], real: ["smollm2-135m"]), Numerics.allCases)
    func segmentsMatchSinglePasses(testModel: TestModel, numerics: Numerics) throws {
        let model = try testModel.load()
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        let prompts = Self.texts.map { model.tokenizer.encode($0) }
        var alone = try testModel.transformer(numerics: numerics)
        var batched = try testModel.transformer(numerics: numerics)

        // reference: each prompt alone, all rows, then one decode step of token 7 each
        var referencePrompt: [Logits] = []
        var referenceStep: [Logits] = []
        for prompt in prompts {
            var cache = alone.makeCache(capacity: 64)
            referencePrompt.append(try alone.forward(tokens: prompt, startPosition: 0, plan: plan, cache: &cache, logits: .all))
            referenceStep.append(try alone.forward(tokens: [7], startPosition: prompt.count, plan: plan, cache: &cache))
        }

        // batched: the three prompts together (all rows), then the three decode steps together
        var caches = prompts.map { _ in batched.makeCache(capacity: 64) }
        let promptLogits = try batched.forward(
            batch: prompts.map { BatchSegment(tokens: $0, startPosition: 0, logits: .all) }, plan: plan, caches: &caches)
        let stepLogits = try batched.forward(
            batch: prompts.map { BatchSegment(tokens: [7], startPosition: $0.count, logits: .last) }, plan: plan, caches: &caches)
        for index in prompts.indices {
            #expect(promptLogits[index].values == referencePrompt[index].values, "\(testModel) \(numerics) prompt \(index)")
            #expect(stepLogits[index].values == referenceStep[index].values, "\(testModel) \(numerics) step \(index)")
            #expect(caches[index].count == prompts[index].count + 1)
        }

        // mixed: sequence 0 verifies two tokens (all rows), 1 fills its cache (no rows), 2 decodes one
        var mixedCaches = prompts.map { _ in batched.makeCache(capacity: 64) }
        var soloCaches = prompts.map { _ in alone.makeCache(capacity: 64) }
        for index in prompts.indices {
            _ = try batched.forward(tokens: prompts[index], startPosition: 0, plan: plan, cache: &mixedCaches[index], logits: .none)
            _ = try alone.forward(tokens: prompts[index], startPosition: 0, plan: plan, cache: &soloCaches[index], logits: .none)
        }
        let segments = [
            BatchSegment(tokens: [5, 9], startPosition: prompts[0].count, logits: .all),
            BatchSegment(tokens: [3, 4, 5], startPosition: prompts[1].count, logits: .none),
            BatchSegment(tokens: [11], startPosition: prompts[2].count, logits: .last),
        ]
        let mixed = try batched.forward(batch: segments, plan: plan, caches: &mixedCaches)
        for (index, segment) in segments.enumerated() {
            let solo = try alone.forward(tokens: segment.tokens, startPosition: segment.startPosition, plan: plan,
                                         cache: &soloCaches[index], logits: segment.logits)
            #expect(mixed[index].rows == solo.rows && mixed[index].values == solo.values, "\(testModel) \(numerics) mixed \(index)")
            #expect(mixedCaches[index].count == soloCaches[index].count)
        }
    }

    @Test("a batch checks every segment: a full cache or a bad token is refused before any work")
    func refusesBadSegments() throws {
        let model = try TinyModels.model(.llama)
        var transformer = try PreparedModels.transformer(.llama)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        var caches = [transformer.makeCache(capacity: 4), transformer.makeCache(capacity: 4)]
        #expect(throws: ForwardError.contextFull(needed: 5, capacity: 4)) {
            try transformer.forward(batch: [BatchSegment(tokens: [1], startPosition: 0, logits: .last),
                                            BatchSegment(tokens: [1, 2, 3, 4, 5], startPosition: 0, logits: .last)],
                                    plan: plan, caches: &caches)
        }
        #expect(caches.allSatisfy { $0.count == 0 })
        var one = [transformer.makeCache(capacity: 4)]
        #expect(throws: ForwardError.tokenOutOfRange(token: -1, vocabularySize: model.config.vocabularySize)) {
            try transformer.forward(batch: [BatchSegment(tokens: [-1], startPosition: 0, logits: .last)], plan: plan,
                                    caches: &one)
        }
    }
}
