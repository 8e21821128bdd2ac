#if canImport(Glibc)
import Glibc
#endif
import StrataKernelsC

/// Causal grouped-query attention over a float KV cache.
public enum Attention {
    /// The shape of one attention call.
    public struct Shape: Sendable {
        /// Query heads.
        public var heads: Int
        /// Key/value heads; each serves `heads / kvHeads` query heads.
        public var kvHeads: Int
        /// Dimensions per head.
        public var headDimensions: Int
        public init(heads: Int, kvHeads: Int, headDimensions: Int) {
            self.heads = heads
            self.kvHeads = kvHeads
            self.headDimensions = headDimensions
        }
    }

    /// For each of `tokens` queries at positions `startPosition + t`, attends causally over cache
    /// positions `0...startPosition + t` (with a `window`, only the last `window` of them:
    /// `startPosition + t - window < p`, sliding-window attention) and writes the weighted
    /// values to `output`.
    ///
    /// - `queries`, `output`: `[rows × heads × headDimensions]`; the call reads and writes rows
    ///   `firstRow..<firstRow + tokens` (a batch of sequences has one run of rows per sequence)
    /// - `keys`, `values`: `[positions × kvHeads × headDimensions]` (the layer's cache); row 0
    ///   holds position `firstStoredPosition` (a sliding-window cache drops older positions),
    ///   which no query's window may reach below
    ///
    /// Uses a one-pass (online) softmax over blocks of 8 positions, so no score buffer is
    /// needed; each (token, head) is computed whole by one thread, with blocks counted from
    /// position 0 (with a window, from the window's first position), so the result does not
    /// depend on how many tokens share the call or on the thread count.
    public static func causal(
        queries: [Float], keys: [Float], values: [Float], tokens: Int, startPosition: Int,
        shape: Shape, scale: Float, window: Int? = nil, firstStoredPosition: Int = 0, into output: inout [Float],
        firstRow: Int = 0, pool: WorkerPool
    ) {
        causal(queries: queries, keys: keys, values: values, tokens: tokens, startPosition: startPosition,
               shape: shape, scale: scale, window: window, firstStoredPosition: firstStoredPosition, into: &output,
               firstRow: firstRow, pool: pool, level: .detected)
    }

    static func causal(
        queries: [Float], keys: [Float], values: [Float], tokens: Int, startPosition: Int,
        shape: Shape, scale: Float, window: Int? = nil, firstStoredPosition: Int = 0, into output: inout [Float],
        firstRow: Int = 0, pool: WorkerPool, level: KernelLevel
    ) {
        precondition(window.map { $0 > 0 } ?? true, "an attention window holds at least one position")
        let headDimensions = shape.headDimensions
        let rowWidth = shape.kvHeads * headDimensions
        precondition(headDimensions > 0 && headDimensions % 8 == 0, "attention needs head dimensions in multiples of 8")
        precondition(shape.kvHeads > 0 && shape.heads % shape.kvHeads == 0)
        precondition(firstRow >= 0 && queries.count >= (firstRow + tokens) * shape.heads * headDimensions)
        precondition(output.count >= (firstRow + tokens) * shape.heads * headDimensions)
        let firstTask = firstRow * shape.heads
        let storedEnd = startPosition + tokens - firstStoredPosition
        precondition(keys.count >= storedEnd * rowWidth && values.count >= storedEnd * rowWidth)
        precondition(firstStoredPosition == 0
                     || window.map { startPosition - $0 + 1 >= firstStoredPosition } ?? false,
                     "attention reaches position \(startPosition - (window ?? startPosition) + 1), below the stored \(firstStoredPosition)")
        let group = shape.heads / shape.kvHeads
        queries.withUnsafeBufferPointer { queryBuffer in
            keys.withUnsafeBufferPointer { keyBuffer in
                values.withUnsafeBufferPointer { valueBuffer in
                    output.withUnsafeMutableBufferPointer { outputBuffer in
                        nonisolated(unsafe) let query = queryBuffer.baseAddress!
                        nonisolated(unsafe) let key = keyBuffer.baseAddress!
                        nonisolated(unsafe) let value = valueBuffer.baseAddress!
                        nonisolated(unsafe) let result = outputBuffer.baseAddress!
                        pool.parallelFor(count: tokens * shape.heads) { range in
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: headDimensions) { accumulator in
                                for task in range {
                                    let token = task / shape.heads
                                    let end = startPosition + token + 1
                                    // the kernel sees the window as its positions 0..., so its
                                    // blocks start where the window does
                                    let first = window.map { max(0, end - $0) } ?? 0
                                    let kvOffset = (first - firstStoredPosition) * rowWidth
                                        + (task % shape.heads / group) * headDimensions
                                    strata_attention(
                                        level.rawValue, query + (firstTask + task) * headDimensions, key + kvOffset,
                                        value + kvOffset, rowWidth, end - first, headDimensions, scale,
                                        accumulator.baseAddress!, result + (firstTask + task) * headDimensions)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Two-pass textbook attention for one query head, in double precision: the test oracle.
    public static func reference(
        query: [Float], keys: [[Float]], values: [[Float]], scale: Float
    ) -> [Float] {
        let scores = keys.map { key in zip(query, key).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } * Double(scale) }
        let maximum = scores.max() ?? 0
        let weights = scores.map { exp($0 - maximum) }
        let total = weights.reduce(0, +)
        var result = [Double](repeating: 0, count: query.count)
        for (weight, value) in zip(weights, values) {
            for index in result.indices { result[index] += weight / total * Double(value[index]) }
        }
        return result.map { Float($0) }
    }
}
