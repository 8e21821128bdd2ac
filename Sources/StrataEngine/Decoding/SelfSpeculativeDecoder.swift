import StrataTokenizer

/// Self-speculative decoding over ONE model and ONE cache: a draft (n-gram lookup, or the
/// same model run with a cheaper layer plan) proposes tokens, the full plan verifies them in
/// one batched forward pass, and the cache is rolled back past the first rejection.
///
/// Greedy output is token for token the full model's: a verified row's logits are bitwise the
/// ones plain decoding computes (the kernels are batch invariant), and each kept token is the
/// full model's own choice. With sampling, drafts are accepted with probability
/// min(1, p(x)/q(x)) and a rejection resamples from normalize(max(0, p − q)), so the output
/// distribution is exactly the full model's.
struct Speculator: Sendable {
    let parameters: SpeculationParameters
    private(set) var stats = SpeculationStats()
    /// The draft plan for `.plan`, `.earlyExit` and `.auto(fallback:)`.
    private let draftPlan: LayerPlan?
    /// Adaptive draft length for the non-auto sources.
    private var draftLength: Int
    /// Running estimates for the cost model (methods.md section 7).
    private var verifySeconds: [Int: Double] = [:]
    private var draftStepSeconds: Double?
    private var draftSampler: Sampler?
    private var ngramAcceptance = 0.6
    private var planAcceptance = 0.6
    private let clock = ContinuousClock()

    init(parameters: SpeculationParameters, config: ModelConfig) {
        self.parameters = parameters
        switch parameters.draft {
        case .ngram: draftPlan = nil
        case .plan(let plan): draftPlan = plan
        case .earlyExit(let layers):
            draftPlan = LayerPlan(layerCount: config.layerCount, steps: (0..<min(layers, config.layerCount)).map { LayerStep(layer: $0) },
                                  method: "early-exit:\(layers)")
        case .auto(let fallback): draftPlan = fallback
        }
        draftLength = max(1, min(4, parameters.maxDraft))
        stats.draftPlan = parameters.draft.description
    }

    /// Decides the next tokens after `tokens` (whose last token is not in `cache` yet). At
    /// most `limit` drafts are tried, so a round never decides more than `limit + 1` tokens.
    mutating func round(
        transformer: inout Transformer, cache: inout KVCache, tokens: [TokenID], plan: LayerPlan,
        sampler: inout Sampler, limit: Int
    ) throws -> [TokenID] {
        let position = cache.count
        let pending = tokens[tokens.count - 1]
        var drafts: [TokenID] = []
        // nil: a deterministic draft (n-gram), q is a point mass on the drafted token.
        var draftDistributions: [TokenDistribution?] = []
        var usedPlan = false

        switch parameters.draft {
        case .ngram:
            drafts = NGramDrafter.propose(history: tokens, maximum: min(draftLength, limit, parameters.maxDraft))
        case .plan, .earlyExit:
            usedPlan = true
            (drafts, draftDistributions) = try modelDraft(
                transformer: &transformer, cache: &cache, tokens: tokens, sampler: sampler,
                count: min(draftLength, limit, parameters.maxDraft))
        case .auto(let fallback):
            let proposal = NGramDrafter.propose(history: tokens, maximum: min(limit, parameters.maxDraft))
            if !proposal.isEmpty {
                let length = bestLength(acceptance: ngramAcceptance, maximum: proposal.count, draftCost: 0)
                drafts = Array(proposal.prefix(length))
            } else if fallback != nil, limit > 0 {
                let cost = draftStepSeconds.map { $0 / stepSeconds(1) } ?? 0.5
                let length = bestLength(acceptance: planAcceptance, maximum: min(limit, parameters.maxDraft), draftCost: cost)
                if length > 0 {
                    usedPlan = true
                    (drafts, draftDistributions) = try modelDraft(
                        transformer: &transformer, cache: &cache, tokens: tokens, sampler: sampler, count: length)
                }
            }
        }
        if draftDistributions.isEmpty { draftDistributions = drafts.map { _ in nil } }

        let start = clock.now
        let logits = try transformer.forward(
            tokens: [pending] + drafts, startPosition: position, plan: plan, cache: &cache,
            logits: drafts.isEmpty ? .last : .all)
        let verifyElapsed = seconds(since: start)
        record(&verifySeconds[drafts.count + 1], verifyElapsed)
        stats.timings.recordVerify(size: drafts.count + 1, seconds: verifyElapsed)

        var output: [TokenID] = []
        var history = tokens
        var accepted = 0
        if drafts.isEmpty {
            output = [sampler.sample(logits: logits.last, history: history)]
        } else if sampler.parameters.isGreedy {
            for row in 0...drafts.count {
                let choice = sampler.sample(logits: logits.row(row), history: history)
                output.append(choice)
                history.append(choice)
                guard row < drafts.count, choice == drafts[row] else { break }
                accepted += 1
            }
        } else {
            accepted = verifySampled(logits: logits, drafts: drafts, distributions: draftDistributions,
                                     history: &history, sampler: &sampler, output: &output)
        }
        cache.truncate(to: position + 1 + accepted)

        stats.verifyPasses += 1
        stats.drafted += drafts.count
        stats.accepted += accepted
        if drafts.isEmpty {
            stats.plainRounds += 1
        } else if usedPlan {
            stats.planRounds += 1
            planAcceptance = 0.8 * planAcceptance + 0.2 * Double(accepted) / Double(drafts.count)
        } else {
            stats.ngramRounds += 1
            ngramAcceptance = 0.8 * ngramAcceptance + 0.2 * Double(accepted) / Double(drafts.count)
        }
        if parameters.adaptive && !drafts.isEmpty {
            // Draft & Verify style: grow after a fully accepted round, shrink to what was kept.
            draftLength = accepted == drafts.count ? min(parameters.maxDraft, draftLength + 1) : max(1, accepted + 1)
        }
        return output
    }

    /// Runs the draft plan autoregressively from the pending token, stopping early when the
    /// draft's most likely token falls below the confidence threshold.
    private mutating func modelDraft(
        transformer: inout Transformer, cache: inout KVCache, tokens: [TokenID], sampler: Sampler, count: Int
    ) throws -> ([TokenID], [TokenDistribution?]) {
        guard let draftPlan, count > 0 else { return ([], []) }
        var drafts: [TokenID] = []
        var distributions: [TokenDistribution?] = []
        var history = tokens
        // Drafts draw from their own random stream: reusing the verifier's numbers would
        // correlate the draft with its acceptance test and bias the output distribution.
        var drawer = draftSampler ?? Sampler(parameters: sampler.parameters, seed: sampler.parameters.seed ^ 0x9E37_79B9_7F4A_7C15)
        defer { draftSampler = drawer }
        for _ in 0..<count {
            let start = clock.now
            let logits = try transformer.forward(
                tokens: [history[history.count - 1]], startPosition: cache.count, plan: draftPlan,
                cache: &cache)
            let stepElapsed = seconds(since: start)
            record(&draftStepSeconds, stepElapsed)
            stats.timings.recordDraftStep(seconds: stepElapsed)
            stats.draftLayerForwards += draftPlan.steps.count
            let distribution = sampler.distribution(logits: logits.last, history: history)
            let confidence = sampler.parameters.isGreedy ? topProbability(logits.last) : (distribution.probabilities.first ?? 0)
            guard confidence >= parameters.confidence else { break }
            let token = sampler.parameters.isGreedy ? distribution.tokens[0] : drawer.draw(from: distribution)
            drafts.append(token)
            distributions.append(distribution)
            history.append(token)
        }
        // The draft advanced the cache; the verify pass rewrites these positions for every layer.
        cache.truncate(to: tokens.count - 1)
        return (drafts, distributions)
    }

    /// Speculative sampling: accept draft x with probability min(1, p(x)/q(x)); on the first
    /// rejection draw from normalize(max(0, p − q)); if all are accepted, draw a bonus token
    /// from the full model's last row. Returns the number of drafts accepted.
    private func verifySampled(
        logits: Logits, drafts: [TokenID], distributions: [TokenDistribution?], history: inout [TokenID],
        sampler: inout Sampler, output: inout [TokenID]
    ) -> Int {
        for (row, draft) in drafts.enumerated() {
            let target = sampler.distribution(logits: logits.row(row), history: history)
            let draftProbability = distributions[row]?.probability(of: draft) ?? 1
            let ratio = draftProbability > 0 ? target.probability(of: draft) / draftProbability : 0
            if sampler.nextUnitFloat() < min(1, ratio) {
                output.append(draft)
                history.append(draft)
                continue
            }
            let residual = Self.residual(target: target, draft: distributions[row], draftToken: draft)
            output.append(sampler.draw(from: residual))
            return row
        }
        output.append(sampler.draw(from: sampler.distribution(logits: logits.row(drafts.count), history: history)))
        return drafts.count
    }

    /// normalize(max(0, p − q)); a point-mass q removes the drafted token from p.
    static func residual(target: TokenDistribution, draft: TokenDistribution?, draftToken: TokenID) -> TokenDistribution {
        var tokens: [TokenID] = []
        var probabilities: [Float] = []
        for (token, probability) in zip(target.tokens, target.probabilities) {
            let draftProbability = draft?.probability(of: token) ?? (token == draftToken ? 1 : 0)
            let remaining = probability - draftProbability
            if remaining > 0 {
                tokens.append(token)
                probabilities.append(remaining)
            }
        }
        let total = probabilities.reduce(0, +)
        guard total > 0 else { return target }
        return TokenDistribution(tokens: tokens, probabilities: probabilities.map { $0 / total })
    }

    // MARK: cost model

    private func stepSeconds(_ size: Int) -> Double {
        if let measured = verifySeconds[size] { return measured }
        // Before a size is measured: one token's time (or 1) and a mild per-token slope.
        let single = verifySeconds[1] ?? 1
        return single * (1 + 0.15 * Double(size - 1))
    }

    /// The draft length that maximises expected tokens per unit of time:
    /// E(γ) = (1 − α^(γ+1)) / (1 − α) tokens for γ·c + v(γ+1) (in single-step units).
    /// 0 means decoding plainly is expected to be faster.
    private func bestLength(acceptance: Double, maximum: Int, draftCost: Double) -> Int {
        let alpha = min(max(acceptance, 0.05), 0.95)
        let single = stepSeconds(1)
        var best = 0
        var bestRate = 1.0
        for length in stride(from: 1, through: maximum, by: 1) {
            let expected = (1 - pow(alpha, Double(length + 1))) / (1 - alpha)
            let cost = Double(length) * draftCost + stepSeconds(length + 1) / single
            if expected / cost > bestRate * 1.02 {
                best = length
                bestRate = expected / cost
            }
        }
        return best
    }

    private func record(_ estimate: inout Double?, _ value: Double) {
        estimate = estimate.map { 0.7 * $0 + 0.3 * value } ?? value
    }

    private func seconds(since start: ContinuousClock.Instant) -> Double {
        let duration = clock.now - start
        return duration.seconds
    }

    private func topProbability(_ logits: ArraySlice<Float>) -> Float {
        guard let maximum = logits.max() else { return 0 }
        var sum: Float = 0
        for value in logits { sum += expf(value - maximum) }
        return 1 / sum
    }
}

#if canImport(Glibc)
import Glibc
#endif
