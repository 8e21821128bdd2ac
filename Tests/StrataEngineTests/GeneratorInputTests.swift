import StrataEngine
import StrataTestSupport
import StrataTokenizer
import Testing

/// What the generator refuses, and the text it streams.
@Suite("Generator: refused inputs and streamed text")
struct GeneratorInputTests {
    static func drain(_ generator: inout Generator) throws -> (tokens: [TokenID], text: String, tail: String, stats: GenerationStats?) {
        var tokens: [TokenID] = []
        var text = ""
        var tail = ""
        var stats: GenerationStats?
        while let event = try generator.next() {
            switch event {
            case .token(let token, let piece):
                tokens.append(token)
                text += piece
            case .text(let piece):
                text += piece
                tail += piece
            case .finished(let final): stats = final
            }
        }
        return (tokens, text, tail, stats)
    }

    @Test("an empty prompt is refused with an error, plainly and speculatively")
    func emptyPrompt() throws {
        let transformer = try PreparedModels.transformer(.llama)
        for speculation in [nil, SpeculationParameters(draft: .ngram)] {
            var generator = Generator(transformer: transformer, prompt: [],
                                      parameters: GenerationParameters(maxTokens: 4, speculation: speculation))
            #expect(throws: GenerationError.emptyPrompt) { try generator.next() }
            #expect(try generator.next() == nil, "nothing follows the error")
        }
    }

    @Test("a prompt that does not fit the context is refused, saying how many tokens fit")
    func promptBeyondContext() throws {
        let model = try TinyModels.model(.llama)
        let transformer = try PreparedModels.transformer(.llama)
        let prompt = Array(model.tokenizer.encode(String(repeating: "the quick brown fox ", count: 8)).prefix(8))
        try #require(prompt.count == 8)

        var tooLong = Generator(transformer: transformer, prompt: prompt,
                                parameters: GenerationParameters(maxTokens: 4, contextLength: 8))
        let error = try #require(throws: GenerationError.self) { try tooLong.next() }
        #expect(error == .promptExceedsContext(promptTokens: 8, contextLength: 8))
        #expect(error.description.contains("at most 7 prompt tokens fit"), "\(error)")

        // Without a context length the model's own is the limit.
        let modelContext = model.config.contextLength
        var beyondModel = Generator(transformer: transformer, prompt: Array(repeating: prompt[0], count: modelContext),
                                    parameters: GenerationParameters(maxTokens: 4))
        #expect(throws: GenerationError.promptExceedsContext(promptTokens: modelContext, contextLength: modelContext)) {
            try beyondModel.next()
        }

        // One token fewer fits: the first generated token takes the last position.
        var fits = Generator(transformer: transformer, prompt: Array(prompt.prefix(7)),
                             parameters: GenerationParameters(maxTokens: 4, sampling: .greedy, contextLength: 8))
        let run = try Self.drain(&fits)
        #expect(run.stats?.stopReason == .context || run.stats?.stopReason == .endOfGeneration)
        #expect(!run.tokens.isEmpty && run.tokens.count <= 2)
    }

    @Test("an early-exit draft beyond the model's layers is refused")
    func earlyExitBeyondModel() throws {
        let model = try TinyModels.model(.llama)
        let layers = model.config.layerCount
        let transformer = try PreparedModels.transformer(.llama)
        let prompt = model.tokenizer.encode("the quick brown fox")
        for exit in [0, layers + 1] {
            var generator = Generator(
                transformer: transformer, prompt: prompt,
                parameters: GenerationParameters(maxTokens: 4, sampling: .greedy,
                                                 speculation: SpeculationParameters(draft: .earlyExit(layers: exit))))
            #expect(throws: GenerationError.earlyExitBeyondModel(layers: exit, layerCount: layers)) { try generator.next() }
        }
        var usable = Generator(
            transformer: transformer, prompt: prompt,
            parameters: GenerationParameters(maxTokens: 4, sampling: .greedy,
                                             speculation: SpeculationParameters(draft: .earlyExit(layers: layers - 1))))
        #expect(try Self.drain(&usable).tokens.count == 4)
    }

    @Test("the streamed text is the generated tokens decoded, even when they end inside a character")
    func streamedTextEndsWhole() throws {
        // SmolLM2 writes Japanese a byte or two per token: its 6th greedy token here leaves a
        // character open, which the stream used to drop.
        let model = try LoadedModels.model("smollm2-135m")
        let transformer = try PreparedModels.transformer("smollm2-135m")
        let prompt = model.tokenizer.encode("日本の首都は", addSpecial: true)
        for speculation in [nil, SpeculationParameters(draft: .ngram)] {
            var generator = Generator(transformer: transformer, prompt: prompt,
                                      parameters: GenerationParameters(maxTokens: 6, sampling: .greedy, speculation: speculation))
            let run = try Self.drain(&generator)
            #expect(run.tokens.count == 6)
            #expect(run.text == model.tokenizer.decode(run.tokens), "\(run.text.debugDescription) for \(run.tokens)")
            #expect(run.tail == "\u{FFFD}", "the last token leaves a character open: \(run.tail.debugDescription)")
        }
    }

    @Test("on tiny models too, the streamed text of every length is the decoded tokens", arguments: [TinyModelSpec.llama, .qwen2])
    func streamedTextOfEveryLength(spec: TinyModelSpec) throws {
        let model = try TinyModels.model(spec)
        let transformer = try PreparedModels.transformer(spec)
        let prompt = model.tokenizer.encode("def fibonacci(n): return 42")
        for maxTokens in 1...12 {
            var generator = Generator(transformer: transformer, prompt: prompt,
                                      parameters: GenerationParameters(maxTokens: maxTokens, sampling: .greedy))
            let run = try Self.drain(&generator)
            #expect(run.text == model.tokenizer.decode(run.tokens), "\(spec), \(maxTokens) tokens")
        }
    }
}
