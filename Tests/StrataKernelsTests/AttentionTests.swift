import Foundation
@testable import StrataKernels
import StrataTestSupport
import Testing

@Suite("Attention")
struct AttentionTests {
    /// A layer's cache and a batch of queries, with keys scaled by `keyScale` to spread the scores.
    struct Case {
        var shape: Attention.Shape
        var positions: Int
        var tokens: Int
        var keys: [Float]
        var values: [Float]
        var queries: [Float]
        let scale: Float = 0.25

        init(heads: Int, kvHeads: Int, headDimensions: Int, positions: Int, tokens: Int, keyScale: Float) {
            shape = Attention.Shape(heads: heads, kvHeads: kvHeads, headDimensions: headDimensions)
            self.positions = positions
            self.tokens = tokens
            let rowWidth = kvHeads * headDimensions
            keys = randomFloats(positions * rowWidth, seed: 11).map { $0 * keyScale }
            values = randomFloats(positions * rowWidth, seed: 12)
            queries = randomFloats(tokens * heads * headDimensions, seed: 13)
        }

        var start: Int { positions - tokens }

        func run(level: KernelLevel, threads: Int = 2) -> [Float] {
            var output = [Float](repeating: .nan, count: queries.count)
            Attention.causal(queries: queries, keys: keys, values: values, tokens: tokens, startPosition: start,
                             shape: shape, scale: scale, into: &output, pool: WorkerPool(threadCount: threads), level: level)
            return output
        }
    }

    // Positions below, at and above the kernel's block of 8, partial last blocks, and head
    // sizes of the registered models (64, 128); keyScale 40 spreads scores past e^-87.
    static let cases: [(Int, Int, Int, Int, Int, Float)] = [
        (4, 2, 16, 7, 3, 4), (4, 2, 16, 8, 8, 4), (6, 2, 64, 45, 5, 4), (3, 1, 128, 70, 2, 4), (2, 2, 64, 33, 4, 40),
    ]

    @Test(arguments: KernelLevel.available, cases.indices)
    func causalGroupedQueryAttentionMatchesDoubleReference(level: KernelLevel, index: Int) {
        let (heads, kvHeads, dimensions, positions, tokens, keyScale) = Self.cases[index]
        let test = Case(heads: heads, kvHeads: kvHeads, headDimensions: dimensions, positions: positions, tokens: tokens,
                        keyScale: keyScale)
        let output = test.run(level: level)
        let rowWidth = kvHeads * dimensions
        var worst: Float = 0
        for token in 0..<tokens {
            for head in 0..<heads {
                let kvHead = head / (heads / kvHeads)
                func row(_ data: [Float], _ position: Int) -> [Float] {
                    let base = position * rowWidth + kvHead * dimensions
                    return Array(data[base..<(base + dimensions)])
                }
                let visible = 0...(test.start + token)
                let offset = (token * heads + head) * dimensions
                let expected = Attention.reference(
                    query: Array(test.queries[offset..<(offset + dimensions)]),
                    keys: visible.map { row(test.keys, $0) }, values: visible.map { row(test.values, $0) }, scale: test.scale)
                for index in 0..<dimensions { worst = max(worst, abs(output[offset + index] - expected[index])) }
            }
        }
        #expect(worst < 2e-6, "largest difference from the double-precision reference: \(worst)")
    }

    @Test func levelsAgreeBitForBit() {
        for (heads, kvHeads, dimensions, positions, tokens, keyScale) in Self.cases {
            let test = Case(heads: heads, kvHeads: kvHeads, headDimensions: dimensions, positions: positions,
                            tokens: tokens, keyScale: keyScale)
            let outputs = KernelLevel.available.map { test.run(level: $0) }
            for output in outputs.dropFirst() {
                #expect(firstBitwiseDifference(output, outputs[0]) == nil, "shape \(heads)/\(kvHeads)/\(dimensions)")
            }
        }
    }

    /// A query's result must not depend on the other queries in the call or the thread count:
    /// self-speculative verification relies on it.
    @Test func eachQueryIsIndependentOfBatchAndThreads() {
        let test = Case(heads: 6, kvHeads: 2, headDimensions: 64, positions: 45, tokens: 11, keyScale: 4)
        let batched = test.run(level: .detected)
        #expect(firstBitwiseDifference(test.run(level: .detected, threads: 1), batched) == nil)
        let width = test.shape.heads * test.shape.headDimensions
        for token in 0..<test.tokens {
            var alone = [Float](repeating: .nan, count: width)
            Attention.causal(queries: Array(test.queries[(token * width)..<((token + 1) * width)]), keys: test.keys,
                             values: test.values, tokens: 1, startPosition: test.start + token, shape: test.shape,
                             scale: test.scale, into: &alone, pool: WorkerPool(threadCount: 2))
            #expect(firstBitwiseDifference(alone, Array(batched[(token * width)..<((token + 1) * width)])) == nil,
                    "token \(token)")
        }
    }
}
