import StrataEngine
import StrataTestSupport
import StrataTokenizer
import Testing

/// Drafting from earlier requests: lossless, and a repeated answer is drafted from the history.
@Suite("HistoryDrafter")
struct HistoryDrafterTests {
    static let prompt = "Once upon a time, the fox said to the crow: give me the cheese"

    /// The model, its transformer and `prompt` in its tokens.
    static func load(_ testModel: TestModel) throws -> (model: LanguageModel, transformer: Transformer, prompt: [TokenID]) {
        let model = try testModel.load()
        return (model, try testModel.transformer(numerics: .recommended(for: model.config)),
                model.tokenizer.encode(Self.prompt, addSpecial: false))
    }

    static func generate(
        _ transformer: Transformer, prompt: [TokenID], maxTokens: Int, drafter: (any Drafter)?
    ) throws -> (tokens: [TokenID], stats: SpeculationStats) {
        try DrafterProtocolTests.generate(
            transformer, prompt: prompt, maxTokens: maxTokens, speculation: drafter.map { SpeculationParameters(drafter: $0) })
    }

    @Test("drafts from a history of related and unrelated text keep the greedy output",
          arguments: TestModel.mechanics(tiny: [.llama, .qwen2]))
    func lossless(testModel: TestModel) throws {
        let (model, transformer, prompt) = try Self.load(testModel)
        let plain = try Self.generate(transformer, prompt: prompt, maxTokens: 40, drafter: nil).tokens
        // The answer with every fifth token changed: drafts from it are accepted, then rejected.
        let history = TokenHistory(budget: 4_096)
        history.add(model.tokenizer.encode("the fox and the crow and the cheese", addSpecial: false))
        history.add(prompt + plain.enumerated().map { $0.offset % 5 == 4 ? prompt[$0.offset % prompt.count] : $0.element })
        for drafter: any Drafter in [HistoryDrafter(history: history), Self.attached(AutoDrafter(), history)] {
            let (tokens, stats) = try Self.generate(transformer, prompt: prompt, maxTokens: 40, drafter: drafter)
            #expect(tokens == plain, "\(drafter)")
            #expect(stats.ngramRounds > 0 && stats.accepted < stats.drafted, "\(drafter): \(stats.accepted) of \(stats.drafted)")
        }
    }

    @Test("a request whose answer the history holds accepts most of it, with every lookup drafter",
          arguments: TestModel.mechanics(tiny: [.llama, .qwen2]))
    func repeatedAnswer(testModel: TestModel) throws {
        let (_, transformer, prompt) = try Self.load(testModel)
        let first = try Self.generate(transformer, prompt: prompt, maxTokens: 48, drafter: nil).tokens
        let history = TokenHistory()
        history.add(prompt + first)
        // A second request (as a chat turn that sends earlier text back) whose prompt differs and
        // whose answer is the rest of the first one.
        let second = prompt + first.prefix(4)
        let plain = try Self.generate(transformer, prompt: second, maxTokens: first.count - 4, drafter: nil).tokens
        #expect(plain == Array(first.dropFirst(4)))
        let own = try Self.generate(transformer, prompt: second, maxTokens: plain.count, drafter: NGramDrafter()).stats
        for drafter: any Drafter in [HistoryDrafter(history: history), Self.attached(NGramDrafter(), history),
                                     Self.attached(AutoDrafter(), history)] {
            let (tokens, stats) = try Self.generate(transformer, prompt: second, maxTokens: plain.count, drafter: drafter)
            #expect(tokens == plain, "\(drafter)")
            // The first generated token comes from the prompt pass; of the rest, most are drafts
            // (`auto` drafts fewer at a time when its cost model finds verifying many dear).
            #expect(stats.accepted * 2 >= plain.count - 1, "\(drafter): \(stats.accepted) of \(plain.count)")
            #expect(stats.accepted > own.accepted, "\(drafter): \(stats.accepted), own text alone \(own.accepted)")
        }
    }

    @Test("attaching a history names it, and is a no-op for drafters that run the model")
    func attaching() {
        let history = TokenHistory(budget: 16)
        let plan = LayerPlan(layerCount: 4, steps: [LayerStep(layer: 0), LayerStep(layer: 3)], method: "skip")
        #expect(Self.attached(NGramDrafter(), history).description == "ngram+history")
        #expect(Self.attached(AutoDrafter(), history).description == "auto(ngram+history)")
        #expect(Self.attached(AutoDrafter(fallback: plan), history).description == "auto(ngram+history, then skip with 2 steps)")
        #expect(Self.attached(PlanDrafter(plan: plan), history).description == "plan(skip, 2 steps)")
        #expect(HistoryDrafter().description == "history")
        // Without a history, the history drafter proposes what prompt lookup does.
        let text: [TokenID] = [1, 2, 3, 9, 1, 2, 3, 7, 1, 2, 3]
        #expect(HistoryDrafter.proposal(for: text, history: nil, maximum: 2).tokens == NGramDrafter.propose(history: text, maximum: 2))
        // With one, the longer match drafts: 4 tokens in the history beat 3 in the text itself.
        history.add([9, 1, 2, 3, 5, 6])
        #expect(HistoryDrafter.proposal(for: text, history: history, maximum: 2) == ([7, 1], 3, false))
        history.add([3, 7, 1, 2, 3, 4])
        #expect(HistoryDrafter.proposal(for: text, history: history, maximum: 2) == ([4], 5, true))
    }

    static func attached(_ drafter: any Drafter, _ history: TokenHistory) -> any Drafter {
        var drafter = drafter
        drafter.attach(history: history)
        return drafter
    }
}
