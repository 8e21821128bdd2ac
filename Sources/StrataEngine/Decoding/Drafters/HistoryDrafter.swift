import StrataTokenizer

/// Lookup drafting from two sources: the request's own text (prompt lookup, as `NGramDrafter`)
/// and a `TokenHistory` of earlier requests shared by a server's sequences. Whichever follows
/// the longer match drafts. Free to compute, and deterministic (each draft is a point mass).
///
/// Why the longer match: a longer matched suffix is likelier to be continued the same way, on
/// either source. On a tie the request's own text drafts, as it is this request's context (the
/// file being edited, the answer so far) while the history holds other requests. The own text is
/// matched on at most 3 tokens and the history on up to 32, so a request that repeats an earlier
/// one (a regenerated answer, an edited file sent again) drafts from the history once 4 tokens
/// match, and from its own text where it only quotes itself.
public struct HistoryDrafter: Drafter {
    /// The shared history; without one this drafts as `NGramDrafter`.
    public private(set) var history: TokenHistory?

    public init(history: TokenHistory? = nil) {
        self.history = history
    }

    public var description: String { "history" }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        Draft(tokens: Self.proposal(for: request.tokens, history: history, maximum: request.length).tokens, kind: .lookup)
    }

    public mutating func attach(history: TokenHistory) {
        self.history = history
    }

    /// Up to `maximum` tokens to follow `tokens`, from `tokens` itself or from `history`
    /// (whichever follows the longer match), the length of that match (0 when neither has one)
    /// and whether the history proposed them. Without a history, exactly `NGramDrafter`'s proposal.
    public static func proposal(
        for tokens: [TokenID], history: TokenHistory?, maximum: Int
    ) -> (tokens: [TokenID], matchLength: Int, fromHistory: Bool) {
        let own = NGramDrafter.proposal(history: tokens, maximum: maximum)
        guard let history else { return (own.tokens, own.matchLength, false) }
        let shared = history.proposal(for: tokens, maximum: maximum)
        if !shared.tokens.isEmpty && (own.tokens.isEmpty || shared.matchLength > own.matchLength) {
            return (shared.tokens, shared.matchLength, true)
        }
        return (own.tokens, own.matchLength, false)
    }
}
