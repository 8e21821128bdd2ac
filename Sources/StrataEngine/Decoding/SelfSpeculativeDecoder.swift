import StrataTokenizer

/// Self-speculative decoding over ONE model and ONE cache: a `Drafter` (n-gram lookup, or the
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
    private(set) var drafter: any Drafter
    private(set) var stats = SpeculationStats()
    /// Adaptive draft length, which every drafter but `auto` drafts (`auto` chooses its own).
    private var draftLength: Int
    private let clock = ContinuousClock()

    /// Throws what the drafter's `prepare(for:)` throws when it cannot draft for this model.
    init(parameters: SpeculationParameters, config: ModelConfig) throws {
        self.parameters = parameters
        drafter = parameters.drafter
        try drafter.prepare(for: config)
        draftLength = max(1, min(CostModel.initialDraftLength, parameters.maxDraft))
        stats.draftPlan = drafter.description
    }

    /// Decides the next tokens after `tokens` (whose last token is not in `cache` yet). At
    /// most `limit` drafts are tried, so a round never decides more than `limit + 1` tokens.
    mutating func round(
        transformer: inout Transformer, cache: inout KVCache, tokens: [TokenID], plan: LayerPlan,
        sampler: inout Sampler, limit: Int
    ) throws -> [TokenID] {
        let position = cache.count
        let pending = tokens[tokens.count - 1]
        let draft = try propose(transformer: &transformer, cache: &cache, tokens: tokens, plan: plan, sampler: sampler,
                                limit: limit)

        let start = clock.now
        let selection: LogitsSelection = draft.tokens.isEmpty ? .last : .all
        let seed = try drafter.verificationStart(for: [pending] + draft.tokens, at: position, transformer: &transformer,
                                                 cache: &cache)
        let logits = if let seed {
            try transformer.forward(hidden: seed.hidden, firstStep: seed.firstStep, startPosition: position,
                                    plan: plan, cache: &cache, logits: selection)
        } else {
            try transformer.forward(tokens: [pending] + draft.tokens, startPosition: position, plan: plan, cache: &cache,
                                    logits: selection)
        }
        return decide(draft: draft, logits: logits, tokens: tokens, position: position, sampler: &sampler,
                      verifySeconds: (clock.now - start).seconds, cache: &cache)
    }

    /// The first half of a round: the drafter's proposal to follow `tokens` (whose last token
    /// is not in `cache` yet). The caller verifies `[pending] + draft.tokens` at `cache.count`
    /// with the full plan (alone, or batched beside other sequences) and hands the logits
    /// (every row when there are drafts, else the last) to `decide`.
    mutating func propose(
        transformer: inout Transformer, cache: inout KVCache, tokens: [TokenID], plan: LayerPlan,
        sampler: Sampler, limit: Int
    ) throws -> Draft {
        // a draft longer than the cache's rollback margin could not be undone in sliding-window layers
        let maximum = min(limit, parameters.maxDraft, KVCache.rollbackMargin)
        let request = DraftRequest(
            tokens: tokens, length: min(draftLength, maximum), maximum: maximum,
            verifierPlan: plan, sampler: sampler, confidence: parameters.confidence)
        return try drafter.draft(request, transformer: &transformer, cache: &cache, stats: &stats)
    }

    /// The second half of a round: keeps the longest accepted prefix of the drafts, rolls the
    /// cache back to `position` + 1 + accepted, counts, and returns the tokens decided.
    mutating func decide(
        draft: Draft, logits: Logits, tokens: [TokenID], position: Int, sampler: inout Sampler, verifySeconds: Double,
        cache: inout KVCache
    ) -> [TokenID] {
        let drafts = draft.tokens
        // nil: a deterministic draft (n-gram), q is a point mass on the drafted token.
        let draftDistributions = draft.distributions.isEmpty ? drafts.map { _ in nil } : draft.distributions
        stats.timings.recordVerify(size: drafts.count + 1, seconds: verifySeconds)

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
        } else if draft.kind == .layerPlan {
            stats.planRounds += 1
        } else {
            stats.ngramRounds += 1
        }
        drafter.verified(VerifiedRound(drafted: drafts.count, accepted: accepted, kind: draft.kind, verifySeconds: verifySeconds))
        if parameters.adaptive && !drafts.isEmpty {
            // Draft & Verify style: grow after a fully accepted round, shrink to what was kept.
            draftLength = accepted == drafts.count ? min(parameters.maxDraft, draftLength + 1) : max(1, accepted + 1)
        }
        return output
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

    /// With `--draft layers`: the best plan the search found and its matchness.
    var searchedPlan: (plan: LayerPlan, matchness: Double)? { (drafter as? LayerSearchDrafter)?.searchedPlan }
}
