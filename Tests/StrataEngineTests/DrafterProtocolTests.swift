import StrataEngine
import StrataTestSupport
import StrataTokenizer
import Testing

/// A drafter the engine knows nothing about, made through the public API alone: it proposes
/// the pending token again, as many times as asked. Right exactly when the model repeats itself.
struct RepeatLastTokenDrafter: Drafter {
    var description: String { "repeat-last" }

    mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        Draft(tokens: Array(repeating: request.tokens[request.tokens.count - 1], count: request.length), kind: .lookup)
    }
}

@Suite("The Drafter protocol")
struct DrafterProtocolTests {
    static func generate(
        _ transformer: Transformer, prompt: [TokenID], maxTokens: Int, speculation: SpeculationParameters?
    ) throws -> (tokens: [TokenID], stats: SpeculationStats) {
        var generator = Generator(
            transformer: transformer, prompt: prompt,
            parameters: GenerationParameters(maxTokens: maxTokens, sampling: .greedy, speculation: speculation))
        var tokens: [TokenID] = []
        while let event = try generator.next() { if case .token(let token, _) = event { tokens.append(token) } }
        return (tokens, generator.speculationStats)
    }

    @Test("a drafter defined outside the engine speculates losslessly, and its rounds are counted",
          arguments: TestModel.mechanics(tiny: [.llama, .qwen2]))
    func outsideDrafterIsLossless(testModel: TestModel) throws {
        let model = try testModel.load()
        let transformer = try testModel.transformer(numerics: .recommended(for: model.config))
        let prompt = model.tokenizer.encode("Row, row, row your boat. Ha ha ha ha ha ha ha ha ha ha ha ha ha", addSpecial: false)
        let plain = try Self.generate(transformer, prompt: prompt, maxTokens: 40, speculation: nil).tokens
        let (tokens, stats) = try Self.generate(
            transformer, prompt: prompt, maxTokens: 40, speculation: SpeculationParameters(drafter: RepeatLastTokenDrafter(), maxDraft: 4))
        #expect(tokens == plain)
        #expect(stats.draftPlan == "repeat-last")
        // Every round but those at the very end (no room for a draft) drafts, as a lookup.
        #expect(stats.drafted > 0 && stats.ngramRounds > 0 && stats.planRounds == 0)
        #expect(stats.ngramRounds + stats.plainRounds == stats.verifyPasses)
        #expect(stats.accepted > 0 && stats.accepted <= stats.drafted, "accepted \(stats.accepted) of \(stats.drafted)")
        // Each verify pass yields its accepted drafts and one token of its own.
        #expect(stats.verifyPasses + stats.accepted == plain.count - 1)
    }

    @Test("the built-in sources are drafters named as before")
    func builtInNames() {
        let plan = LayerPlan(layerCount: 4, steps: [LayerStep(layer: 0), LayerStep(layer: 3)], method: "skip")
        #expect(DraftSource.ngram.makeDrafter() is NGramDrafter)
        #expect(DraftSource.ngram.description == "ngram")
        #expect(DraftSource.plan(plan).description == "plan(skip, 2 steps)")
        #expect(DraftSource.earlyExit(layers: 3).description == "early-exit:3")
        #expect(DraftSource.layers(seed: nil).description == "layers")
        #expect(DraftSource.layers(seed: plan).description == "layers(warm start)")
        #expect(DraftSource.auto(fallback: nil).description == "auto(ngram)")
        #expect(DraftSource.auto(fallback: plan).description == "auto(ngram, then skip with 2 steps)")
    }
}
