import StrataEngine
import StrataTokenizer

/// Non-overlapping windows of `context` tokens cut from the start of a tokenized text; each
/// window is evaluated on its own (fresh cache), as the perplexity evaluation does.
public struct CalibrationSet: Sendable {
    /// `[windows][context]` token ids.
    public let windows: [[TokenID]]
    public let context: Int

    /// The first `windows` whole windows of `tokens` (all whole windows when nil), each with
    /// its first token replaced by `firstToken` when given (`windowStartToken(for:)`: BOS for
    /// models trained with it first, as `evaluatePerplexity` does).
    public init(tokens: [TokenID], context: Int, windows requested: Int? = nil, firstToken: TokenID? = nil) throws {
        guard context >= 2 else { throw EvaluationError.invalidArgument("context must be at least 2, found \(context)") }
        if let requested, requested < 1 {
            throw EvaluationError.invalidArgument("windows must be at least 1, found \(requested)")
        }
        let available = tokens.count / context
        let count = min(requested ?? available, available)
        guard count > 0 else { throw EvaluationError.textTooShort(tokens: tokens.count, context: context) }
        self.context = context
        windows = (0..<count).map { index in
            var window = Array(tokens[(index * context)..<((index + 1) * context)])
            if let firstToken { window[0] = firstToken }
            return window
        }
    }

    /// Predictions scored per window (every position after the first predicts the next token).
    public var predictionsPerWindow: Int { context - 1 }

    /// Mean negative log-likelihood (natural log) per prediction of the full model in
    /// `transformer` over every window, each on a fresh cache; `observer` sees every pass,
    /// `progress` is called after each window with the number done and the total.
    func meanNegativeLogLikelihood(
        transformer: inout Transformer, observer: (any HiddenStateObserver)? = nil, progress: ((Int, Int) -> Void)? = nil
    ) throws -> Double {
        let plan = LayerPlan.full(layerCount: transformer.model.config.layerCount)
        var cache = transformer.makeCache(capacity: context)
        var total = 0.0
        for (index, window) in windows.enumerated() {
            cache.truncate(to: 0)
            // every row's logits: every position is scored
            let logits = try transformer.forward(tokens: window, startPosition: 0, plan: plan, cache: &cache,
                                                 observer: observer, logits: .all)
            total += windowNegativeLogLikelihood(logits: logits, tokens: window)
            progress?(index + 1, windows.count)
        }
        return total / Double(max(1, windows.count * predictionsPerWindow))
    }
}

/// Summed negative log-likelihood (natural log) of each window token after the first, given
/// the `.all` logits of a forward pass over the window.
func windowNegativeLogLikelihood(logits: Logits, tokens: [TokenID]) -> Double {
    var total = 0.0
    for position in 0..<(tokens.count - 1) {
        total -= logProbability(of: tokens[position + 1], in: logits.row(position))
    }
    return total
}
