import StrataTokenizer

/// Chooses per round: an n-gram draft when the history has a match, otherwise the `fallback`
/// plan's draft, each only when the cost model (`CostModel`) expects it to beat plain
/// decoding, and of the length it expects to pay best; otherwise no draft.
public struct AutoDrafter: Drafter {
    public let fallback: LayerPlan?
    private var costModel = CostModel()
    private var runner = ModelDraftRunner()
    /// The length of the n-gram match this round's draft follows (0: not an n-gram draft).
    private var matchLength = 0

    public init(fallback: LayerPlan? = nil) {
        self.fallback = fallback
    }

    public var description: String {
        fallback.map { "auto(ngram, then \($0.method ?? "plan") with \($0.steps.count) steps)" } ?? "auto(ngram)"
    }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        matchLength = 0
        let proposal = NGramDrafter.proposal(history: request.tokens, maximum: request.maximum)
        if !proposal.tokens.isEmpty {
            matchLength = proposal.matchLength
            let length = costModel.ngramDraftLength(matchLength: matchLength, available: proposal.tokens.count)
            return Draft(tokens: Array(proposal.tokens.prefix(length)), kind: .lookup)
        }
        guard let fallback, request.maximum > 0 else { return .none }
        let length = costModel.planDraftLength(maximum: request.maximum)
        guard length > 0 else { return .none }
        var costModel = costModel
        defer { self.costModel = costModel }
        return try runner.run(plan: fallback, request: request, count: length, transformer: &transformer, cache: &cache,
                              stats: &stats, recordStep: { costModel.recordDraftStep(seconds: $0) })
    }

    public mutating func verified(_ round: VerifiedRound) {
        costModel.recordVerify(size: round.drafted + 1, seconds: round.verifySeconds)
        guard round.drafted > 0 else { return }
        switch round.kind {
        case .layerPlan: costModel.recordPlan(drafted: round.drafted, accepted: round.accepted)
        case .lookup where matchLength > 0:
            costModel.recordNGram(matchLength: matchLength, drafted: round.drafted, accepted: round.accepted)
        case .lookup: break
        }
    }
}
