import Foundation
import StrataAnalysis
@testable import StrataEngine
import StrataKernels
import StrataTestSupport
import StrataTokenizer
import Testing

/// Shortcut drafts (`--draft shortcut:E[:V]`): a fitted map to the last layer's stream and a head
/// over the most frequent tokens. The full model verifies, so output is unchanged.
@Suite("Shortcut drafts", .serialized)
struct ShortcutDraftTests {
    /// A fit on the first `windows` windows of `context` tokens of the bundled text.
    static func fit(_ transformer: inout Transformer, tokenizer: Tokenizer, depth: Int, windows: Int, context: Int) throws -> ShortcutDraftFit {
        let tokens = tokenizer.encode(CalibrationText.prideAndPrejudice, addSpecial: false, parseSpecial: false)
        let calibration = try CalibrationSet(tokens: tokens, context: context, windows: windows)
        let maps = try fitShortcutMaps(transformer: &transformer, windows: calibration.windows, depths: [depth])
        let width = transformer.config.hiddenSize
        return ShortcutDraftFit(
            depth: depth, map: LinearMap(name: "shortcut.map", site: .stream, map: maps.maps[depth]!, width: width),
            tokensByFrequency: ShortcutDraftFit.tokensByFrequency(tokens), model: "test", text: "bundled")
    }

    func generate(_ transformer: Transformer, prompt: [TokenID], maxTokens: Int, speculation: SpeculationParameters?)
        throws -> (tokens: [TokenID], stats: SpeculationStats) {
        var generator = Generator(transformer: transformer, prompt: prompt,
                                  parameters: GenerationParameters(maxTokens: maxTokens, sampling: .greedy, speculation: speculation))
        var tokens: [TokenID] = []
        while let event = try generator.next() { if case .token(let token, _) = event { tokens.append(token) } }
        return (tokens, generator.speculationStats)
    }

    static let models: [TestModel] = [.tiny(.llama), .tiny(.qwen2), .real("smollm2-135m"), .real("qwen2.5-coder-0.5b")]

    @Test("greedy output with shortcut drafts equals plain greedy output", arguments: models)
    func greedyIsLossless(model testModel: TestModel) throws {
        let model = try testModel.load()
        var transformer = try testModel.transformer(numerics: .recommended(for: model.config))
        let layers = model.config.layerCount
        let isTiny = if case .tiny = testModel { true } else { false }
        let fit = try Self.fit(&transformer, tokenizer: model.tokenizer, depth: max(1, layers / 2),
                               windows: 2, context: isTiny ? 64 : 256)
        var accepted = 0
        for text in speculationPrompts {
            let prompt = model.tokenizer.encode(text, addSpecial: true)
            let plain = try generate(transformer, prompt: prompt, maxTokens: 32, speculation: nil).tokens
            for vocabulary in isTiny ? [16, 4_096] : [4_096] {
                let drafter = fit.drafter(vocabulary: vocabulary)
                let (tokens, stats) = try generate(
                    transformer, prompt: prompt, maxTokens: 32,
                    speculation: SpeculationParameters(drafter: drafter, maxDraft: 6, confidence: 0.3))
                #expect(tokens == plain, "\(testModel) \(drafter) on \(text.prefix(20).debugDescription)")
                #expect(stats.accepted <= stats.drafted)
                accepted += stats.accepted
            }
        }
        // a fitted shortcut of half the layers is right often enough on real text to be accepted
        if !isTiny { #expect(accepted > 0, "\(testModel): no shortcut draft was accepted") }
    }

    @Test("a restricted head gives the full head's logits at its tokens, and -inf elsewhere once expanded")
    func restrictedHeadMatchesFullHead() throws {
        var transformer = try PreparedModels.transformer(.qwen2, numerics: .exact)
        let full = LayerPlan.full(layerCount: transformer.config.layerCount)
        let tokens: [TokenID] = [3, 1, 40, 7, 99]
        let head = try transformer.outputHead(tokens: tokens)
        var cache = transformer.makeCache(capacity: 16)
        let plain = try transformer.forward(tokens: [5, 6, 7], startPosition: 0, plan: full, cache: &cache, logits: .all)
        cache.truncate(to: 0)
        let restricted = try transformer.forward(tokens: [5, 6, 7], startPosition: 0, plan: full, cache: &cache, logits: .all, head: head)
        #expect(restricted.rows == 3 && restricted.vocabularySize == tokens.count)
        for row in 0..<3 {
            for (column, token) in tokens.enumerated() {
                #expect(abs(restricted.row(row)[restricted.row(row).startIndex + column] - plain.row(row)[plain.row(row).startIndex + Int(token)]) < 1e-5)
            }
        }
        var expanded = [Float](repeating: 0, count: transformer.config.vocabularySize)
        head.expand(restricted.last, into: &expanded)
        #expect(expanded.filter { $0 > -.infinity }.count == tokens.count)
        #expect(throws: ForwardError.self) { try transformer.outputHead(tokens: [1, 1]) }
        #expect(throws: ForwardError.self) { try transformer.outputHead(tokens: [TokenID(transformer.config.vocabularySize)]) }
    }

    @Test("sampled speculation with shortcut drafts keeps the full model's distribution (chi-square)")
    func samplingKeepsTheDistribution() throws {
        let model = try TinyModels.model(.llama)
        var transformer = try PreparedModels.transformer(.llama)
        let fit = try Self.fit(&transformer, tokenizer: model.tokenizer, depth: 2, windows: 2, context: 64)
        let prompt = model.tokenizer.encode("the cat and the dog and the", addSpecial: false)
        let sampling = SamplingParameters(temperature: 1.5, topK: 4, topP: 1, minP: 0)
        let (target, prefilled) = try fullModelDistribution(transformer: &transformer, prompt: prompt, sampling: sampling)
        var cache = prefilled
        // The draft's vocabulary holds two of the target's four tokens (and others): the other two
        // have q = 0, so they are reached only through the residual distribution.
        let outside = Set(target.tokens.suffix(2))
        let vocabulary = [target.tokens[0], target.tokens[1]] + fit.tokensByFrequency.filter { !outside.contains($0) && !target.tokens.prefix(2).contains($0) }.prefix(30)
        let drafter = ShortcutDrafter(depth: 2, map: fit.map, tokens: Array(vocabulary))
        let draws = 1500
        let (counts, drafted, accepted) = try speculativeRounds(
            drafter: drafter, transformer: &transformer, cache: &cache, prompt: prompt, sampling: sampling, draws: draws)
        let statistic = SpeculativeDecodingTests.chiSquare(counts, target, draws: draws)
        // df = 3; the 0.1% critical value is 16.27
        #expect(statistic < 16.27, "chi-square \(statistic); target \(target), counts \(counts)")
        #expect(counts.keys.allSatisfy { target.tokens.contains($0) })
        #expect(outside.allSatisfy { counts[$0, default: 0] > 0 }, "tokens outside the draft's vocabulary must still be sampled")
        #expect(accepted > 0 && accepted < drafted, "drafts both accepted and rejected")
    }

    @Test("a fit file round-trips, and a damaged one is refused with its path")
    func fitFileRoundTrips() throws {
        var transformer = try PreparedModels.transformer(.llama)
        let model = try TinyModels.model(.llama)
        let fit = try Self.fit(&transformer, tokenizer: model.tokenizer, depth: 2, windows: 2, context: 64)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("shortcut-\(UUID()).gguf").path
        try fit.write(to: path, overwrite: false)
        #expect(throws: (any Error).self) { try fit.write(to: path, overwrite: false) }
        let loaded = try ShortcutDraftFit.load(path: path)
        #expect(loaded.depth == 2 && loaded.tokensByFrequency == fit.tokensByFrequency && loaded.map.values == fit.map.values)
        try Data("not a gguf".utf8).write(to: URL(fileURLWithPath: path))
        #expect { try ShortcutDraftFit.load(path: path) } throws: { "\($0)".contains(path) }
    }
}
