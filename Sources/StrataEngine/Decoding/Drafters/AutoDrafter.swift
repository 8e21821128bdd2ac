import StrataTokenizer

/// Chooses per round: an n-gram draft when the text so far (or an attached `TokenHistory` of
/// earlier requests, as `HistoryDrafter` chooses) has a match, otherwise the `fallback` plan's
/// draft, each only when the cost model (`CostModel`) expects it to beat plain decoding, and of
/// the length it expects to pay best; otherwise no draft.
public struct AutoDrafter: Drafter {
    public let fallback: LayerPlan?
    private var costModel = CostModel()
    private var runner = ModelDraftRunner()
    private var history: TokenHistory?
    /// The length of the n-gram match this round's draft follows (0: not an n-gram draft), and
    /// whether it was found in the history (whose acceptance the cost model keeps apart).
    private var matchLength = 0
    private var fromHistory = false

    public init(fallback: LayerPlan? = nil) {
        self.fallback = fallback
    }

    public var description: String {
        let lookup = history == nil ? "ngram" : "ngram+history"
        return fallback.map { "auto(\(lookup), then \($0.method ?? "plan") with \($0.steps.count) steps)" } ?? "auto(\(lookup))"
    }

    public mutating func attach(history: TokenHistory) {
        self.history = history
    }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        matchLength = 0
        fromHistory = false
        let proposal = HistoryDrafter.proposal(for: request.tokens, history: history, maximum: request.maximum)
        if !proposal.tokens.isEmpty {
            matchLength = proposal.matchLength
            fromHistory = proposal.fromHistory
            let available = proposal.tokens.count
            let length = fromHistory
                ? costModel.historyDraftLength(matchLength: matchLength, available: available)
                : costModel.ngramDraftLength(matchLength: matchLength, available: available)
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
        case .lookup where matchLength > 0 && fromHistory:
            costModel.recordHistory(matchLength: matchLength, drafted: round.drafted, accepted: round.accepted)
        case .lookup where matchLength > 0:
            costModel.recordNGram(matchLength: matchLength, drafted: round.drafted, accepted: round.accepted)
        case .lookup: break
        }
    }
}
