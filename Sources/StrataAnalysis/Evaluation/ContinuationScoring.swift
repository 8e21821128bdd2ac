import StrataEngine
import StrataTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// A request as token ids: the context's ids followed by the continuation's.
public struct TokenizedRequest: Sendable, Equatable {
    /// Context ids, then continuation ids.
    public var tokens: [TokenID]
    /// Index in `tokens` of the first continuation token.
    public var continuationStart: Int
    /// The continuation's length in Unicode scalars (Python's `len`), for `acc_per_char`.
    public var continuationCharacters: Int

    public init(tokens: [TokenID], continuationStart: Int, continuationCharacters: Int) {
        precondition(continuationStart >= 1 && continuationStart < tokens.count, "a request needs context and continuation tokens")
        self.tokens = tokens
        self.continuationStart = continuationStart
        self.continuationCharacters = continuationCharacters
    }

    /// Tokenizes like the evaluation harnesses do: the context alone (no BOS), and the
    /// continuation as the ids of context + continuation with the context's ids removed from
    /// the front, so a word is tokenized as it is in running text. A sequence longer than
    /// `maximumLength` loses context tokens from the left.
    public init(_ request: TaskRequest, tokenizer: Tokenizer, maximumLength: Int) throws(EvaluationError) {
        let context = tokenizer.encode(request.context, addSpecial: false, parseSpecial: false)
        let whole = tokenizer.encode(request.context + request.continuation, addSpecial: false, parseSpecial: false)
        let continuation = whole.dropFirst(context.count)
        guard !context.isEmpty, !continuation.isEmpty else {
            throw .invalidArgument("the request \(String(reflecting: request.context.suffix(40)))… + \(String(reflecting: request.continuation)) has no \(context.isEmpty ? "context" : "continuation") tokens")
        }
        guard continuation.count < maximumLength else {
            throw .invalidArgument("a continuation of \(continuation.count) tokens does not fit the model's context of \(maximumLength)")
        }
        let keptContext = context.suffix(maximumLength - continuation.count)
        self.init(tokens: Array(keptContext) + continuation, continuationStart: keptContext.count,
                  continuationCharacters: request.continuation.unicodeScalars.count)
    }
}

/// How likely a continuation is under the model.
public struct ContinuationScore: Sendable, Equatable {
    /// Summed natural-log probability of the continuation tokens.
    public var logProbability: Double
    /// Whether every continuation token is the argmax of its prediction (greedy decoding would
    /// produce the continuation).
    public var isGreedy: Bool

    public init(logProbability: Double, isGreedy: Bool) {
        self.logProbability = logProbability
        self.isGreedy = isGreedy
    }
}

/// Scores each of `requests` (typically the choices of one document) by one forward pass of the
/// plan over its tokens.
///
/// With `sharesPrefix`, the token prefix all requests share (up to the last context token
/// before the earliest continuation) runs once, and each request runs only its remaining
/// tokens after truncating the cache back to the prefix. Rows of a batch are computed
/// independently, so the result equals scoring each request whole (tests check this).
/// `cache` must hold the longest request; its contents are replaced. Returns the scores in
/// request order and how many tokens went through the forward pass.
public func scoreContinuations(
    _ requests: [TokenizedRequest], transformer: inout Transformer, plan: LayerPlan, cache: inout KVCache,
    sharesPrefix: Bool = true
) throws -> (scores: [ContinuationScore], tokensRun: Int) {
    guard let first = requests.first else { return ([], 0) }
    var prefix = 0
    if sharesPrefix {
        // Ending the prefix before every continuation's first prediction row means the prefix
        // run needs no logits at all.
        prefix = requests.map { $0.continuationStart - 1 }.min() ?? 0
        for request in requests.dropFirst() {
            prefix = min(prefix, zip(first.tokens, request.tokens).prefix { $0 == $1 }.count)
        }
    }
    cache.truncate(to: 0)
    var tokensRun = prefix
    if prefix > 0 {
        _ = try transformer.forward(tokens: Array(first.tokens[..<prefix]), startPosition: 0, plan: plan, cache: &cache, logits: .none)
    }
    var scores: [ContinuationScore] = []
    scores.reserveCapacity(requests.count)
    for request in requests {
        cache.truncate(to: prefix)
        // The last token predicts nothing that is scored, so it is not run.
        let logits = try transformer.forward(
            tokens: Array(request.tokens[prefix..<(request.tokens.count - 1)]), startPosition: prefix, plan: plan,
            cache: &cache, logits: .all)
        tokensRun += logits.rows
        var score = ContinuationScore(logProbability: 0, isGreedy: true)
        for position in request.continuationStart..<request.tokens.count {
            // Row r of this run holds the prediction made at position prefix + r.
            let prediction = tokenPrediction(of: request.tokens[position], in: logits.row(position - 1 - prefix))
            score.logProbability += prediction.logProbability
            score.isGreedy = score.isGreedy && prediction.isArgmax
        }
        scores.append(score)
    }
    return (scores, tokensRun)
}

/// The natural-log probability of `token` under softmax(`logits`), in double precision, and
/// whether it is the argmax (the first index of the maximum, as `torch.argmax` picks on ties).
public func tokenPrediction(of token: TokenID, in logits: ArraySlice<Float>) -> (logProbability: Double, isArgmax: Bool) {
    var best = logits.startIndex
    for index in logits.indices where logits[index] > logits[best] { best = index }
    let maximum = Double(logits[best])
    var sum = 0.0
    for value in logits { sum += exp(Double(value) - maximum) }
    let index = logits.startIndex + Int(token)
    return (Double(logits[index]) - maximum - log(sum), index == best)
}
