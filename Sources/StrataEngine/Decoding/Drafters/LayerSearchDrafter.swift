import StrataTokenizer

/// Drafts with a layer-skip plan searched for during generation (`LayerSkipSearch`, SWIFT
/// style): each round, once enough generated text has been verified, one candidate plan is
/// scored on it, and the best plan so far drafts. `seed`, a plan an earlier search found, is
/// tried first and shortens the search.
public struct LayerSearchDrafter: Drafter {
    /// Recently verified tokens a candidate is scored on.
    public static let matchnessWindow = 16
    /// Candidates scored from scratch, and when starting from a seed: a warm start only
    /// confirms (or improves on) the plan found before.
    static let budget = 16
    static let warmStartBudget = 4

    public let seed: LayerPlan?
    private var search: LayerSkipSearch?
    /// The best plan the search has found so far.
    private var draftPlan: LayerPlan?
    /// Where the generated text begins: candidates are scored only against tokens the full
    /// model chose.
    private var generatedStart: Int?
    private var runner = ModelDraftRunner()
    private let clock = ContinuousClock()

    public init(seed: LayerPlan? = nil) {
        self.seed = seed
    }

    public var description: String { seed == nil ? "layers" : "layers(warm start)" }

    public mutating func prepare(for config: ModelConfig) throws {
        search = LayerSkipSearch(layerCount: config.layerCount, budget: seed == nil ? Self.budget : Self.warmStartBudget, seed: seed)
    }

    /// The best plan the search found and its matchness, nil before it scored one.
    public var searchedPlan: (plan: LayerPlan, matchness: Double)? {
        guard let search, let plan = search.bestPlan, let best = search.best else { return nil }
        return (plan, best.matchness)
    }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        try searchStep(transformer: &transformer, cache: &cache, tokens: request.tokens, stats: &stats)
        guard let draftPlan else { return Draft(tokens: [], kind: .layerPlan) }
        return try runner.run(plan: draftPlan, request: request, count: request.length, transformer: &transformer,
                              cache: &cache, stats: &stats)
    }

    /// One evaluation of the search, once enough generated text has been verified.
    private mutating func searchStep(
        transformer: inout Transformer, cache: inout KVCache, tokens: [TokenID], stats: inout SpeculationStats
    ) throws {
        let position = cache.count
        if generatedStart == nil { generatedStart = tokens.count - 1 }
        let window = Self.matchnessWindow
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
        stats.timings.searchSeconds += (clock.now - start).seconds
    }
}
