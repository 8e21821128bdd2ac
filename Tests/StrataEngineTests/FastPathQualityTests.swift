import StrataAnalysis
import StrataEngine
import StrataTokenizer
import StrataTestSupport
import Testing

/// The fast path (16-bit activations, integer dot products) against the reference: it may be
/// the default only while it keeps perplexity within 1% of transformers' figure and agrees with
/// the exact path's next-token argmax at >= 97% of positions, disagreeing only at near-ties.
@Suite("Fast path quality", .serialized)
struct FastPathQualityTests {
    /// Positions where the exact top-2 margin is below this may flip.
    static let nearTieMargin: Float = 0.25

    @Test("fast perplexity is within 1% of transformers'", arguments: ReferenceAgreementTests.models)
    func perplexityWithinOnePercent(modelName: String) throws {
        let model = try LoadedModels.model(modelName)
        let reference = try TransformersReference.load(model: modelName).perplexity
        let tokens = model.tokenizer.encode(try Fixture.text("pride-and-prejudice.txt"), addSpecial: false, parseSpecial: false)
        var transformer = Transformer(model: model, numerics: .fast)
        let report = try evaluatePerplexity(transformer: &transformer, tokens: tokens, context: reference.context, windows: reference.windows)
        #expect(abs(report.perplexity / reference.perplexity - 1) < 0.01,
                "\(modelName): fast perplexity \(report.perplexity), reference \(reference.perplexity)")
    }

    @Test("fast top-1 agrees with the exact path at >= 97% of positions, differing only at near-ties",
          arguments: ReferenceAgreementTests.models)
    func argmaxAgreement(modelName: String) throws {
        let model = try LoadedModels.model(modelName)
        let prose = model.tokenizer.encode(try Fixture.text("pride-and-prejudice.txt"), addSpecial: false, parseSpecial: false)
        let licence = model.tokenizer.encode(try Fixture.text("gpl-3.txt"), addSpecial: false, parseSpecial: false)
        let windows = [Array(prose[0..<512]), Array(prose[50_000..<50_512]), Array(licence[0..<512])]
        var exact = Transformer(model: model, numerics: .exact)
        var fast = Transformer(model: model, numerics: .fast)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        var positions = 0
        var agreements = 0
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
                    let margin = reference[Int(top[0])] - reference[Int(top[1])]
                    #expect(margin < Self.nearTieMargin, "\(modelName): position \(position) flipped with margin \(margin)")
                }
            }
        }
        let rate = Double(agreements) / Double(positions)
        print("\(modelName): fast/exact argmax agreement \(rate) over \(positions) positions")
        #expect(rate >= 0.97, "\(modelName): fast/exact argmax agreement \(rate)")
    }
}
