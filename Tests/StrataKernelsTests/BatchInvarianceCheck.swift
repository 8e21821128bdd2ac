import Testing
@testable import StrataKernels
import StrataTestSupport

/// Expects every token's product with `matrix` to be bitwise the same when the token is
/// multiplied alone on one thread and inside batches of 2-30 tokens on one or two threads
/// (`precision` activations of random values).
func expectBatchInvariance(_ matrix: WeightMatrix, tokenCount: Int, precision: ActivationPrecision,
                           generator: inout SeededGenerator, label: String) {
    let rows = matrix.rows, columns = matrix.columns
    let input = randomActivations(count: tokenCount * columns, generator: &generator)
    var scratch = QuantizedActivations(capacity: input.count, precision: precision)
    let single = WorkerPool(threadCount: 1)
    let alone = (0..<tokenCount).map { token in
        var output = [Float](repeating: .nan, count: rows)
        matrix.multiplyQuantized(Array(input[(token * columns)..<((token + 1) * columns)]), tokens: 1, into: &output,
                                 pool: single, scratch: &scratch)
        return output
    }
    for pool in [single, WorkerPool(threadCount: 2)] {
        for batch in [2, 3, 5, 8, 17, 30] where batch <= tokenCount {
            for first in stride(from: 0, to: tokenCount - batch + 1, by: batch) {
                var output = [Float](repeating: .nan, count: batch * rows)
                matrix.multiplyQuantized(Array(input[(first * columns)..<((first + batch) * columns)]), tokens: batch,
                                         into: &output, pool: pool, scratch: &scratch)
                for token in 0..<batch {
                    #expect(firstBitwiseDifference(Array(output[(token * rows)..<((token + 1) * rows)]), alone[first + token]) == nil,
                            "\(label) \(columns) columns: token \(first + token) in a batch of \(batch) on \(pool.threadCount) threads")
                }
            }
        }
    }
}
