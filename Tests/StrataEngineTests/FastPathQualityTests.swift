import Foundation
import StrataAnalysis
import StrataEngine
import StrataTokenizer
import StrataTestSupport
import Testing

/// The default fast path of each model (`Numerics.recommended(for:)`: 16-bit activations for
/// SmolLM2-135M and Qwen2.5-Coder-0.5B; the 8-bit default of the larger Qwen2.5-Coder-1.5B,
/// too slow to check here, is measured by `FastPathQualityMeasurement`) against the
/// reference: it may be the default only while it keeps perplexity within 1% of transformers'
/// figure and agrees with the exact path's next-token argmax at >= 97% of positions,
/// disagreeing only at near-ties.
@Suite("Fast path quality", .serialized)
struct FastPathQualityTests {
    /// Positions where the exact top-2 margin is below this may flip.
    static let nearTieMargin: Float = 0.25

    @Test("fast perplexity (2 windows by default, 8 in the full tier) is within 1% of transformers'",
          arguments: ReferenceAgreementTests.models)
    func perplexityWithinOnePercent(modelName: String) throws {
        let model = try LoadedModels.model(modelName)
        let reference = try TransformersReference.perplexityForTier(model: modelName)
        let tokens = model.tokenizer.encode(try Fixture.text("pride-and-prejudice.txt"), addSpecial: false, parseSpecial: false)
        var transformer = try PreparedModels.transformer(modelName)
        let report = try evaluatePerplexity(transformer: &transformer, tokens: tokens, context: reference.context, windows: reference.windows)
        #expect(abs(report.perplexity / reference.perplexity - 1) < 0.01,
                "\(modelName): \(transformer.numerics) perplexity \(report.perplexity), reference \(reference.perplexity)")
    }

    @Test("fast top-1 agrees with the exact path at >= 97% of positions, differing only at near-ties",
          arguments: ReferenceAgreementTests.models)
    func argmaxAgreement(modelName: String) throws {
        let model = try LoadedModels.model(modelName)
        let comparison = try FastPathComparison(model: model, numerics: Numerics.recommended(for: model.config))
        for flip in comparison.flips {
            #expect(flip.margin < Self.nearTieMargin, "\(modelName): position \(flip.position) flipped with margin \(flip.margin)")
        }
        print("\(modelName): \(comparison.numerics)/exact argmax agreement \(comparison.agreement) over \(comparison.positions) positions")
        #expect(comparison.agreement >= 0.97, "\(modelName): fast/exact argmax agreement \(comparison.agreement)")
    }
}

/// A fast numerics' logits against the exact path's on 512-token windows of the reference
/// texts (in the full tier three, two of prose and one of the GPL; by default the first):
/// where the next-token argmax differs and by what exact top-2 margin, and both perplexities
/// over the windows.
struct FastPathComparison {
    let numerics: Numerics
    private(set) var positions = 0
    private(set) var agreements = 0
    private(set) var flips: [(position: Int, margin: Float)] = []
    private var exactLoss = 0.0, fastLoss = 0.0, predicted = 0

    var agreement: Double { Double(agreements) / Double(positions) }
    var exactPerplexity: Double { exp(exactLoss / Double(predicted)) }
    var fastPerplexity: Double { exp(fastLoss / Double(predicted)) }

    init(model: LanguageModel, numerics: Numerics) throws {
        self.numerics = numerics
        let prose = model.tokenizer.encode(try Fixture.text("pride-and-prejudice.txt"), addSpecial: false, parseSpecial: false)
        let licence = model.tokenizer.encode(try Fixture.text("gpl-3.txt"), addSpecial: false, parseSpecial: false)
        // one window of prose by default, all three in the full tier (the bounds stay the same)
        let windows = [Array(prose[0..<512]), Array(prose[50_000..<50_512]), Array(licence[0..<512])]
            .prefix(TestTier.size(reduced: 1, full: 3))
        var exact = Transformer(model: model, pool: PreparedModels.pool, numerics: .exact)
        var fast = Transformer(model: model, pool: PreparedModels.pool, numerics: numerics)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        for window in windows {
            var exactCache = exact.makeCache(capacity: 512)
            var fastCache = fast.makeCache(capacity: 512)
            let exactLogits = try exact.forward(tokens: window, startPosition: 0, plan: plan, cache: &exactCache, logits: .all)
            let fastLogits = try fast.forward(tokens: window, startPosition: 0, plan: plan, cache: &fastCache, logits: .all)
            for position in 0..<window.count {
                positions += 1
                let reference = Array(exactLogits.row(position))
                let top = topIndices(reference, count: 2)
                if Sampler.argmax(fastLogits.row(position)) == top[0] {
                    agreements += 1
                } else {
                    flips.append((position, reference[Int(top[0])] - reference[Int(top[1])]))
                }
                if position + 1 < window.count {
                    exactLoss += Self.negativeLogLikelihood(reference, target: window[position + 1])
                    fastLoss += Self.negativeLogLikelihood(Array(fastLogits.row(position)), target: window[position + 1])
                    predicted += 1
                }
            }
        }
    }

    private static func negativeLogLikelihood(_ logits: [Float], target: TokenID) -> Double {
        let largest = logits.max() ?? 0
        let total = logits.reduce(0.0) { $0 + exp(Double($1 - largest)) }
        return log(total) + Double(largest) - Double(logits[Int(target)])
    }
}
