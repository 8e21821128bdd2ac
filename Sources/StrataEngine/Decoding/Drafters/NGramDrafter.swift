import StrataTokenizer

/// Prompt-lookup drafting: finds the most recent earlier occurrence of the history's last n
/// tokens (n = 3 down to 1) in the prompt and the text so far, and proposes the tokens that
/// followed it. Free to compute, and deterministic (each draft is a point mass).
///
/// With a history attached (`attach(history:)`) it drafts as `HistoryDrafter`, so that a server
/// asked for n-gram drafts copies from earlier requests too.
public struct NGramDrafter: Drafter {
    private var history: TokenHistory?

    public init() {}

    public var description: String { history == nil ? "ngram" : "ngram+history" }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        Draft(tokens: HistoryDrafter.proposal(for: request.tokens, history: history, maximum: request.length).tokens,
              kind: .lookup)
    }

    public mutating func attach(history: TokenHistory) {
        self.history = history
    }

    /// Up to `maximum` tokens that followed the latest earlier match of the history's last
    /// `longest`, or fewer, tokens.
    public static func propose(history: [TokenID], maximum: Int, longest: Int = 3) -> [TokenID] {
        proposal(history: history, maximum: maximum, longest: longest).tokens
    }

    /// The proposed tokens and the length of the match they follow (0 when there is none): a
    /// longer match is likelier to be continued the same way.
    public static func proposal(history: [TokenID], maximum: Int, longest: Int = 3) -> (tokens: [TokenID], matchLength: Int) {
        guard maximum > 0, history.count >= 2 else { return ([], 0) }
        for length in stride(from: min(longest, history.count - 1), through: 1, by: -1) {
            let suffixStart = history.count - length
            // Latest match first: recent text predicts the continuation best.
            var start = suffixStart - 1
            while start >= 0 {
                var matches = true
                for offset in 0..<length where history[start + offset] != history[suffixStart + offset] {
                    matches = false
                    break
                }
                if matches {
                    let follow = start + length
                    let end = min(follow + maximum, history.count)
                    if follow < end { return (Array(history[follow..<end]), length) }
                }
                start -= 1
            }
        }
        return ([], 0)
    }
}
