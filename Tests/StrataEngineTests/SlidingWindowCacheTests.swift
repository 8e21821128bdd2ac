@testable import StrataEngine
import StrataKernels
import StrataTestSupport
import Foundation
import Testing

/// Sliding-window layers keep only recent positions in their cache; these tests check that a
/// bounded cache gives bitwise the logits of one that keeps every position, through long
/// prompts, decoding, rollbacks and re-processing, and that what it can no longer serve is
/// refused with an error.
@Suite("Sliding-window KV cache", .serialized)
struct SlidingWindowCacheTests {
    /// Runs the same passes over a bounded and an unbounded cache: `prompt` (sliced by the
    /// forward pass), then `steps` greedy tokens, every fifth step preceded by a 6-token draft
    /// that is rolled back to its first token, as speculation does. Returns the final caches.
    func compareCaches(_ transformer: inout Transformer, prompt: [TokenID], steps: Int, capacity: Int,
                       label: String) throws -> (bounded: KVCache, unbounded: KVCache) {
        let config = transformer.config
        let plan = LayerPlan.full(layerCount: config.layerCount)
        var bounded = KVCache(config: config, capacity: capacity)
        var unbounded = KVCache(config: config, capacity: capacity, boundedWindows: false)
        var last = try transformer.forward(tokens: prompt, startPosition: 0, plan: plan, cache: &bounded)
        let reference = try transformer.forward(tokens: prompt, startPosition: 0, plan: plan, cache: &unbounded)
        #expect(last.values == reference.values, "\(label): prompt logits")
        for step in 0..<steps {
            let token = TokenID(Sampler.argmax(last.row(0)))
            if step % 5 == 4 {
                let draft = [token] + (1...5).map { TokenID((Int(token) + $0 * 31) % config.vocabularySize) }
                let position = bounded.count
                let a = try transformer.forward(tokens: draft, startPosition: position, plan: plan, cache: &bounded, logits: .all)
                let b = try transformer.forward(tokens: draft, startPosition: position, plan: plan, cache: &unbounded, logits: .all)
                #expect(a.values == b.values, "\(label): draft at \(position)")
                bounded.truncate(to: position)
                unbounded.truncate(to: position)
            }
            let position = bounded.count
            last = try transformer.forward(tokens: [token], startPosition: position, plan: plan, cache: &bounded)
            let expected = try transformer.forward(tokens: [token], startPosition: position, plan: plan, cache: &unbounded)
            guard last.values == expected.values else {
                Issue.record("\(label): logits differ at position \(position)")
                break
            }
        }
        return (bounded, unbounded)
    }

    @Test("a bounded cache gives the logits of an unbounded one on the Gemma 3 fixture")
    func tinyGemma3() throws {
        let model = try LanguageModel(path: Fixture.url("architectures/gemma3-tiny.gguf").path)
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        let window = try #require(model.config.slidingWindow)
        // enough positions that the windowed slots move their contents several times
        let prompt: [TokenID] = (0..<300).map { TokenID(3 + $0 * 7 % 500) }
        let capacity = 300 + 3 * (window + KVCache.windowSlack) + 200
        let (bounded, unbounded) = try compareCaches(&transformer, prompt: prompt, steps: capacity - 300 - 20, capacity: capacity,
                                                     label: "gemma3-tiny")
        #expect(bounded.windowStart > 0)
        #expect(bounded.byteCount < unbounded.byteCount)
        // 5 of 6 layers slide: their slots hold window + slack positions, the global layer all
        let rows = window + KVCache.windowSlack
        let expectedBytes = 2 * (5 * rows + capacity) * bounded.rowWidth * MemoryLayout<Float>.size
        #expect(bounded.byteCount == expectedBytes)
    }

    @Test("positions a sliding-window layer dropped are refused, not silently misread")
    func droppedPositionsAreRefused() throws {
        let model = try LanguageModel(path: Fixture.url("architectures/gemma3-tiny.gguf").path)
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        let window = try #require(model.config.slidingWindow)
        var cache = transformer.makeCache(capacity: 2_000)
        let tokens: [TokenID] = (0..<1_500).map { TokenID(3 + $0 * 11 % 500) }
        _ = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache)
        #expect(cache.windowStart > 0)
        let earliest = cache.earliestRestart
        #expect(earliest == cache.windowStart + window - 1)
        #expect(earliest <= 1_500 - 128 - KVCache.rollbackMargin, "the last slice's start less the margin stays reachable")
        #expect(cache.canTruncate(to: earliest) && !cache.canTruncate(to: earliest - 1) && cache.canTruncate(to: 0))
        #expect(throws: ForwardError.positionsDropped(startPosition: earliest - 1, earliest: earliest)) {
            _ = try transformer.forward(tokens: [5], startPosition: earliest - 1, plan: plan, cache: &cache)
        }
        // restarting from 0 over fewer positions than the cache holds would leave the rest unreadable
        #expect(throws: ForwardError.self) {
            _ = try transformer.forward(tokens: [5], startPosition: 0, plan: plan, cache: &cache)
        }
        // an emptied cache starts over
        cache.truncate(to: 0)
        #expect(cache.windowStart == 0)
        var fresh = transformer.makeCache(capacity: 2_000)
        let a = try transformer.forward(tokens: Array(tokens[0..<40]), startPosition: 0, plan: plan, cache: &cache)
        let b = try transformer.forward(tokens: Array(tokens[0..<40]), startPosition: 0, plan: plan, cache: &fresh)
        #expect(a.values == b.values)
    }

    @Test("the server's prompt cache offers a bounded cache only where it can be cut back")
    func promptCacheRespectsDroppedPositions() throws {
        let model = try LanguageModel(path: Fixture.url("architectures/gemma3-tiny.gguf").path)
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        let tokens: [TokenID] = (0..<1_200).map { TokenID(3 + $0 * 11 % 500) }
        var cache = transformer.makeCache(capacity: 1_300)
        _ = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache)
        let earliest = cache.earliestRestart
        #expect(earliest > 100)
        var prompts = PromptCache(limit: 2)
        prompts.insert(tokens: tokens, plan: plan, cache: cache)
        // sharing only the first 100 tokens: the cut would fall before what the windowed layers hold
        let early = prompts.take(longestPrefixOf: Array(tokens[0..<100]) + [7, 7], plan: plan)
        #expect(early == nil)
        let late = prompts.take(longestPrefixOf: Array(tokens[0..<(earliest + 10)]) + [7], plan: plan)
        #expect(late?.reusable == earliest + 10)
    }

    @Test("greedy speculative output past the window equals plain output on the Gemma 3 fixture")
    func speculationPastTheWindow() throws {
        let model = try LanguageModel(path: Fixture.url("architectures/gemma3-tiny.gguf").path)
        let transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        // longer than the window and its slack: the windowed slots have dropped positions
        // before decoding starts, and drop more while it runs
        let prompt: [TokenID] = (0..<600).map { TokenID(3 + $0 * 13 % 500) }
        func generate(_ speculation: SpeculationParameters?) throws -> [TokenID] {
            var generator = Generator(
                transformer: transformer, prompt: prompt,
                parameters: GenerationParameters(maxTokens: 300, sampling: .greedy, contextLength: 1_000, speculation: speculation))
            var tokens: [TokenID] = []
            while let event = try generator.next() { if case .token(let token, _) = event { tokens.append(token) } }
            return tokens
        }
        let plain = try generate(nil)
        #expect(plain.count >= 100, "the fixture stopped at its end token after \(plain.count) tokens")
        let skipPlan = try LayerPlan.full(layerCount: 6).skipping(layers: [2])
        for source: DraftSource in [.ngram, .plan(skipPlan), .layers(seed: nil)] {
            #expect(try generate(SpeculationParameters(draft: source, maxDraft: 6, confidence: 0.1)) == plain, "\(source)")
        }
    }

    @Test("Gemma 3 270M: a 1,100-token prompt and decoding give the same logits with a bounded cache")
    func realGemma3() throws {
        let model = try LoadedModels.model("gemma3-270m")
        var transformer = try PreparedModels.transformer("gemma3-270m")
        let text = String(repeating: speculationPrompts.joined(separator: "\n\n") + "\n\n", count: 12)
        let prompt = Array(model.tokenizer.encode(text, addSpecial: true).prefix(1_100))
        #expect(prompt.count == 1_100)
        let (bounded, unbounded) = try compareCaches(&transformer, prompt: prompt, steps: 24, capacity: 1_200, label: "gemma3-270m")
        #expect(bounded.windowStart > 0)
        #expect(bounded.byteCount < unbounded.byteCount)
    }
}
