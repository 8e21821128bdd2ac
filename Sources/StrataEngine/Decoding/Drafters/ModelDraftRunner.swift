import StrataTokenizer
#if canImport(Glibc)
import Glibc
#endif

/// The draft loop the model drafters share: runs a draft plan autoregressively from the pending
/// token, one token per forward pass, stopping early when the draft's most likely token falls
/// below the confidence threshold.
struct ModelDraftRunner: Sendable {
    /// Drafts draw from their own random stream: reusing the verifier's numbers would correlate
    /// the draft with its acceptance test and bias the output distribution. Made at the first
    /// sampled draft, from the verifier's settings.
    private var drawer: Sampler?
    private let clock = ContinuousClock()
    /// A full-vocabulary row the logits of a restricted head are expanded into, kept so a
    /// draft step allocates it once.
    private var expanded: [Float] = []

    /// Seed of the draft's random stream, derived from the verifier's seed.
    static let drawerSeedMask: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// Drafts up to `count` tokens with `plan`. With `capture` (an observer keeping the stream
    /// the verifier will start from), the cache keeps what the draft wrote, since the verifier
    /// reuses those layers; otherwise it is rolled back. `recordStep` is given the seconds of
    /// each forward pass.
    mutating func run(
        plan: LayerPlan, request: DraftRequest, count: Int, transformer: inout Transformer, cache: inout KVCache,
        stats: inout SpeculationStats, capture: (any HiddenStateObserver)? = nil, head: OutputHead? = nil,
        recordStep: (Double) -> Void = { _ in }
    ) throws -> Draft {
        guard count > 0 else { return Draft(tokens: [], kind: .layerPlan) }
        let sampler = request.sampler
        var drafts: [TokenID] = []
        var distributions: [TokenDistribution?] = []
        var history = request.tokens
        var drawer = drawer ?? Sampler(parameters: sampler.parameters, seed: sampler.parameters.seed ^ Self.drawerSeedMask)
        defer { self.drawer = drawer }
        for _ in 0..<count {
            let start = clock.now
            let logits = try transformer.forward(
                tokens: [history[history.count - 1]], startPosition: cache.count, plan: plan,
                cache: &cache, observer: capture, head: head)
            var row = logits.last
            if let head {
                // q is zero outside the head's vocabulary: -inf logits there
                if expanded.count != transformer.config.vocabularySize {
                    expanded = [Float](repeating: 0, count: transformer.config.vocabularySize)
                }
                head.expand(row, into: &expanded)
                row = expanded[...]
            }
            let stepElapsed = (clock.now - start).seconds
            recordStep(stepElapsed)
            stats.timings.recordDraftStep(seconds: stepElapsed)
            stats.draftLayerForwards += plan.steps.count
            let distribution = sampler.distribution(logits: row, history: history)
            let confidence = sampler.parameters.isGreedy ? Self.topProbability(row) : (distribution.probabilities.first ?? 0)
            guard confidence >= request.confidence else { break }
            let token = sampler.parameters.isGreedy ? distribution.tokens[0] : drawer.draw(from: distribution)
            drafts.append(token)
            distributions.append(distribution)
            history.append(token)
        }
        // The draft advanced the cache; the verify pass rewrites these positions (above the
        // early exit only, when the draft's lower layers are reused).
        if capture == nil { cache.truncate(to: request.position) }
        return Draft(tokens: drafts, distributions: distributions, kind: .layerPlan)
    }

    private static func topProbability(_ logits: ArraySlice<Float>) -> Float {
        guard let maximum = logits.max(), maximum > -.infinity else { return 0 }
        var sum: Float = 0
        for value in logits where value > -.infinity { sum += expf(value - maximum) }
        return 1 / sum
    }
}
