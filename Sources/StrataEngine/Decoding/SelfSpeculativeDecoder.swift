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
    /// The draft plan for `.plan`, `.earlyExit` and `.auto(fallback:)`; for `.layers`, the best
    /// plan the search has found so far.
    private var draftPlan: LayerPlan?
    /// `.layers`: the search, and where the generated text begins (the search scores candidates
    /// only against tokens the full model chose).
    private var search: LayerSkipSearch?
    private var generatedStart: Int?
    /// Adaptive draft length for the non-auto sources.
    private var draftLength: Int
    /// Running estimates for the cost model (methods.md section 7).
    private var verifySeconds: [Int: Double] = [:]
    private var draftStepSeconds: Double?
    private var draftSampler: Sampler?
    /// Running acceptance of n-gram drafts by the length of the match they follow (index 1...3).
    private var ngramAcceptance = Speculator.ngramPriors
    private var planAcceptance = Speculator.planPrior
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
        case .layers(let seed):
            draftPlan = nil
            // A warm start only confirms (or improves on) the plan found before.
            search = LayerSkipSearch(layerCount: config.layerCount, budget: seed == nil ? 16 : 4, seed: seed)
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
        var ngramMatch = 0
        // Early exit: the draft's lower layers are kept, so verification runs only those above.
        var capture: LayerOutputCapture?

        switch parameters.draft {
        case .ngram:
            drafts = NGramDrafter.propose(history: tokens, maximum: min(draftLength, limit, parameters.maxDraft))
        case .layers:
            try searchStep(transformer: &transformer, cache: &cache, tokens: tokens)
            usedPlan = draftPlan != nil
            (drafts, draftDistributions) = try modelDraft(
                transformer: &transformer, cache: &cache, tokens: tokens, sampler: sampler,
                count: min(draftLength, limit, parameters.maxDraft))
        case .plan, .earlyExit:
            usedPlan = true
            capture = reusableLayers(of: plan).map { LayerOutputCapture(step: $0 - 1) }
            (drafts, draftDistributions) = try modelDraft(
                transformer: &transformer, cache: &cache, tokens: tokens, sampler: sampler,
                count: min(draftLength, limit, parameters.maxDraft), capture: capture)
        case .auto(let fallback):
            let proposal = NGramDrafter.proposal(history: tokens, maximum: min(limit, parameters.maxDraft))
            if !proposal.tokens.isEmpty {
                let match = proposal.matchLength
                let length = bestLength(acceptance: ngramAcceptance[match], maximum: proposal.tokens.count, draftCost: 0)
                if length == 0 { Self.regainHope(&ngramAcceptance[match], prior: Self.ngramPriors[match]) }
                drafts = Array(proposal.tokens.prefix(length))
                ngramMatch = match
            } else if fallback != nil, limit > 0 {
                let cost = draftStepSeconds.map { $0 / stepSeconds(1) } ?? 0.5
                let length = bestLength(acceptance: planAcceptance, maximum: min(limit, parameters.maxDraft), draftCost: cost)
                if length == 0 { Self.regainHope(&planAcceptance, prior: Self.planPrior) }
                if length > 0 {
                    usedPlan = true
                    (drafts, draftDistributions) = try modelDraft(
                        transformer: &transformer, cache: &cache, tokens: tokens, sampler: sampler, count: length)
                }
            }
        }
        if draftDistributions.isEmpty { draftDistributions = drafts.map { _ in nil } }

        let start = clock.now
        let selection: LogitsSelection = drafts.isEmpty ? .last : .all
        let seed = try capture.map {
            try lowerLayerStream(transformer: &transformer, cache: &cache, position: position,
                                 tokens: [pending] + drafts, capture: $0)
        }
        let logits = if let seed {
            try transformer.forward(hidden: seed.hidden, firstStep: seed.firstStep, startPosition: position,
                                    plan: plan, cache: &cache, logits: selection)
        } else {
            try transformer.forward(tokens: [pending] + drafts, startPosition: position, plan: plan, cache: &cache,
                                    logits: selection)
        }
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
            if ngramMatch > 0 {
                ngramAcceptance[ngramMatch] = 0.8 * ngramAcceptance[ngramMatch] + 0.2 * Double(accepted) / Double(drafts.count)
            }
        }
        if parameters.adaptive && !drafts.isEmpty {
            // Draft & Verify style: grow after a fully accepted round, shrink to what was kept.
            draftLength = accepted == drafts.count ? min(parameters.maxDraft, draftLength + 1) : max(1, accepted + 1)
        }
        return output
    }

    /// Runs the draft plan autoregressively from the pending token, stopping early when the
    /// draft's most likely token falls below the confidence threshold. With `capture`, the cache
    /// keeps what the draft wrote (see `lowerLayerStream`); otherwise it is rolled back.
    private mutating func modelDraft(
        transformer: inout Transformer, cache: inout KVCache, tokens: [TokenID], sampler: Sampler, count: Int,
        capture: LayerOutputCapture? = nil
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
                cache: &cache, observer: capture)
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
        // The draft advanced the cache; the verify pass rewrites these positions (above the
        // early exit only, when the draft's lower layers are reused).
        if capture == nil { cache.truncate(to: tokens.count - 1) }
        return (drafts, distributions)
    }

    /// One evaluation of the layer-skip search, once enough generated text has been verified.
    private mutating func searchStep(transformer: inout Transformer, cache: inout KVCache, tokens: [TokenID]) throws {
        let position = cache.count
        if generatedStart == nil { generatedStart = tokens.count - 1 }
        let window = DraftSource.matchnessWindow
        guard var search, !search.isFinished, let generatedStart, position - window + 1 >= generatedStart else { return }
        let start = clock.now
        let candidate = search.nextCandidate()
        // Fed the last `window` verified tokens, each row should predict the token after it.
        let saved = cache.snapshot((position - window)..<position)
        let logits = try transformer.forward(
            tokens: Array(tokens[(position - window)..<position]), startPosition: position - window, plan: candidate,
            cache: &cache, logits: .all)
        cache.restore(saved)
        var hits = 0
        for row in 0..<window where Sampler.argmax(logits.row(row)) == tokens[position - window + row + 1] { hits += 1 }
        search.record(matchness: Double(hits) / Double(window))
        self.search = search
        draftPlan = search.bestPlan
        stats.searchEvaluations += 1
        stats.timings.searchSeconds += seconds(since: start)
    }

    /// The layer-skip search's best plan and its matchness, nil before it scored one.
    var searchedPlan: (plan: LayerPlan, matchness: Double)? {
        guard let search, let plan = search.bestPlan, let best = search.best else { return nil }
        return (plan, best.matchness)
    }

    /// How many leading layers an early-exit draft shares with `plan` (nil when it is not an
    /// early exit or `plan` does not start with exactly those layers, whole).
    private func reusableLayers(of plan: LayerPlan) -> Int? {
        guard case .earlyExit = parameters.draft, let draftPlan, draftPlan.steps.count < plan.steps.count,
              Array(plan.steps.prefix(draftPlan.steps.count)) == draftPlan.steps else { return nil }
        return draftPlan.steps.count
    }

    /// The residual stream leaving the early-exit layers for `tokens` (the pending token and the
    /// drafts), at `position...`: the draft already ran these layers for every token but perhaps
    /// the last draft, which runs them here (without the output head). Its cache entries for
    /// those layers stay; they are what the full model writes there, since a layer's arithmetic
    /// on a token does not depend on the layers above it or on the batch it is in. The cache is
    /// left at `position`, so the verify pass may start there.
    private mutating func lowerLayerStream(
        transformer: inout Transformer, cache: inout KVCache, position: Int, tokens: [TokenID],
        capture: LayerOutputCapture
    ) throws -> (hidden: [Float], firstStep: Int) {
        guard let draftPlan else { preconditionFailure("an early-exit draft has a plan") }
        // Part of verification (timed with it): the full model must run these layers on it anyway.
        if capture.rows < tokens.count {
            _ = try transformer.forward(tokens: [tokens[tokens.count - 1]], startPosition: position + tokens.count - 1,
                                        plan: draftPlan, cache: &cache, observer: capture, logits: .none)
        }
        cache.truncate(to: position)
        return (Array(capture.hidden.prefix(tokens.count * transformer.config.hiddenSize)), draftPlan.steps.count)
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

    /// The acceptance a draft source starts with, and drifts back to while it is not tried.
    /// Conservative, so that a text where drafts fail costs little before they are measured:
    /// with verification of two tokens costing 1.3-1.5 single steps on a 2-core CPU, an n-gram
    /// draft pays only above about 0.4. Index: the n-gram match length (0 unused).
    private static let ngramPriors = [0, 0.3, 0.45, 0.55]
    private static let planPrior = 0.5

    /// A source the cost model declines is never measured again, so one bad stretch would
    /// rule it out for the rest of the text; drifting back towards the prior makes it try again
    /// after some 15-25 declined rounds, which costs a few percent at most when it still does
    /// not pay.
    private static func regainHope(_ acceptance: inout Double, prior: Double) {
        acceptance += 0.02 * (prior - acceptance)
    }

    private func stepSeconds(_ size: Int) -> Double {
        if let measured = verifySeconds[size] { return measured }
        let single = verifySeconds[1] ?? 1
        return single * (1 + verifySlope * Double(size - 1))
    }

    /// Extra cost of each token a verify pass adds, relative to one token: measured from the
    /// sizes seen so far, or 0.35 before any (what 0.5B-1.5B models show here: 0.3-0.45).
    private var verifySlope: Double {
        guard let single = verifySeconds[1] else { return 0.35 }
        let slopes = verifySeconds.compactMap { size, seconds in size > 1 ? (seconds / single - 1) / Double(size - 1) : nil }
        return slopes.isEmpty ? 0.35 : max(0, slopes.reduce(0, +) / Double(slopes.count))
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

/// Keeps, one token per forward pass, the residual stream leaving plan step `step`.
private final class LayerOutputCapture: HiddenStateObserver {
    let step: Int
    private(set) var hidden: [Float] = []
    private(set) var rows = 0

    init(step: Int) { self.step = step }

    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        guard step == self.step, boundary == .layerOutput else { return }
        // Only the rows of this pass: `hidden` is the forward pass's scratch, sized for its largest batch.
        self.hidden.append(contentsOf: hidden.prefix(tokens * hiddenSize))
        rows += tokens
    }
}

#if canImport(Glibc)
import Glibc
#endif
