/// Which positions of a forward pass need next-token logits.
public enum LogitsSelection: Sendable {
    /// Only the last token (generation).
    case last
    /// Every token (perplexity, verification of draft tokens).
    case all
    /// None (filling the cache only).
    case none
}

/// Next-token logits for some rows of a forward pass.
public struct Logits: Sendable {
    /// [rows × vocabularySize]
    public var values: [Float]
    public var rows: Int
    public var vocabularySize: Int

    /// The logits of row `row`.
    public func row(_ row: Int) -> ArraySlice<Float> {
        precondition(row >= 0 && row < rows)
        return values[(row * vocabularySize)..<((row + 1) * vocabularySize)]
    }

    /// The logits of the last row.
    public var last: ArraySlice<Float> { row(rows - 1) }
}
