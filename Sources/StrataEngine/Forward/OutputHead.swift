import StrataKernels
import StrataTokenizer

/// An output head in place of the model's, for drafts (FR-Spec, shortcut drafts): an optional
/// linear map applied to the stream before the final norm, and the output rows of a subset of
/// the vocabulary, so the product costs `tokens.count / vocabulary` of the full head.
///
/// Logits computed with it have one column per entry of `tokens`; `expand` puts them back in
/// a full-vocabulary row, every other token at -infinity (probability zero).
public struct OutputHead: Sendable {
    /// The vocabulary the head scores, in column order.
    public let tokens: [TokenID]
    /// The output matrix's rows of `tokens`, prepared for the transformer's numerics.
    let rows: WeightMatrix
    /// `Tᵀ` of the map on the final stream, or nil.
    let map: WeightMatrix?

    /// Writes `logits` (one per entry of `tokens`) into `row`, a full-vocabulary row, with -inf
    /// for every token outside the head's vocabulary.
    public func expand(_ logits: ArraySlice<Float>, into row: inout [Float]) {
        for index in row.indices { row[index] = -.infinity }
        for (column, token) in tokens.enumerated() { row[Int(token)] = logits[logits.startIndex + column] }
    }
}

extension Transformer {
    /// A head scoring only `tokens` (distinct ids of this model's vocabulary), after `map` (a
    /// stream map of the model's width) when given.
    public func outputHead(tokens: [TokenID], map: LinearMap? = nil) throws(ForwardError) -> OutputHead {
        guard !tokens.isEmpty, Set(tokens).count == tokens.count else {
            throw .invalidPlan("an output head needs distinct tokens, found \(tokens.count) with repeats or none")
        }
        for token in tokens where token < 0 || Int(token) >= config.vocabularySize {
            throw .tokenOutOfRange(token: token, vocabularySize: config.vocabularySize)
        }
        if let map {
            do throws(PlanError) { try map.checkWidth(config.hiddenSize) } catch { throw .invalidPlan(error.description) }
        }
        let gathered = model.weights.output.gathering(rows: tokens.map(Int.init))
        let rows: WeightMatrix = switch numerics.activationPrecision {
        case .eightBit: gathered.preparedForEightBitProducts(releasingFilePages: false, pool: pool)
        case .sixteenBit: gathered.preparedForSixteenBitProducts(releasingFilePages: false, pool: pool)
        case nil: gathered
        }
        return OutputHead(tokens: tokens, rows: rows, map: map?.matrix)
    }
}
