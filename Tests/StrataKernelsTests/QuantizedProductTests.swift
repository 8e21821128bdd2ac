import Testing
@testable import StrataKernels
import StrataTestSupport

@Suite struct ActivationQuantizationTests {
    @Test("quantizer matches the Swift definition bitwise, with 32- and 256-element scale groups",
          arguments: KernelLevel.available, ActivationPrecision.allCases)
    func matchesReference(level: KernelLevel, precision: ActivationPrecision) {
        for columns in [320, 512] {
            var generator = SeededGenerator(seed: 0xAC7)
            var input = randomActivations(count: columns * 4, generator: &generator)
            // an all-zero block, a block of one sign, ties at exactly half a step, tiny values, and
            // values so tiny that the inverse of their scale would overflow to infinity
            for index in 0..<32 { input[index] = 0 }
            for index in 32..<64 { input[index] = Float(index) }
            for index in 64..<96 { input[index] = Float(index - 80) * 0.5 }
            for index in 96..<128 { input[index] = Float(index - 112) * 1e-30 }
            for index in 128..<160 { input[index] = Float(index - 144) * 1e-39 }
            var activations = QuantizedActivations(capacity: input.count, precision: precision)
            activations.quantize(input, tokens: 4, columns: columns, level: level)
            let blocks = activations.referenceBlocks
            #expect(blocks == referenceQuantize(input, columns: columns, precision: precision))
            if QuantizedActivations.groupSize(columns: columns) == 32 || precision == .eightBit {
                // such a block quantizes to zeros (before, vector levels made every code -32767 or -127)
                #expect(blocks[4].scale == 0 && blocks[4].values.allSatisfy { $0 == 0 })
            }
        }
    }

    @Test("dequantized values are within half a step of the input", arguments: ActivationPrecision.allCases)
    func roundTrip(precision: ActivationPrecision) {
        var generator = SeededGenerator(seed: 0xAC8)
        let input = randomActivations(count: 32 * 64, generator: &generator)
        var activations = QuantizedActivations(capacity: input.count + 100, precision: precision)
        activations.quantize(input, tokens: 2, columns: input.count / 2)
        let values = activations.dequantized()
        for (index, block) in activations.referenceBlocks.enumerated() {
            for lane in 0..<32 {
                let element = 32 * index + lane
                // half a step, plus float rounding in `x × (1 / scale)` and `scale × code`: ulps of up to 32767 steps
                #expect(abs(values[element] - input[element]) <= block.scale * 0.505)
            }
        }
    }
}

@Suite struct QuantizedProductTests {
    @Test("kernel matches the Double reference on random blocks", arguments: quantizedProductFormats, ActivationPrecision.allCases)
    func matchesReference(format: QuantFormat, precision: ActivationPrecision) {
        var generator = SeededGenerator(seed: 0x9_0000 + UInt64(format.rawValue))
        for (rows, columns, tokens) in [(5, 256, 1), (19, 512, 7), (3, 2048, 4)] {
            let blockCount = rows * columns / format.blockSize
            let bytes = randomBlocks(format, blockCount: blockCount, generator: &generator)
            let input = randomActivations(count: tokens * columns, generator: &generator)
            checkAgainstReference(format, rows: rows, columns: columns, bytes: bytes, input: input, tokens: tokens, precision: precision)
        }
    }

    @Test("kernel matches the Double reference on real blocks", arguments: quantizedProductFormats, ActivationPrecision.allCases)
    func matchesReferenceOnFixtures(format: QuantFormat, precision: ActivationPrecision) throws {
        let fixture = try QuantizationFixture(format)
        let rows = fixture.blocks.count / format.bytesPerBlock
        var generator = SeededGenerator(seed: 0xF1_0000 + UInt64(format.rawValue))
        let input = randomActivations(count: 3 * format.blockSize, generator: &generator)
        checkAgainstReference(format, rows: rows, columns: format.blockSize, bytes: fixture.blocks, input: input, tokens: 3, precision: precision)
    }

    @Test("every level gives the same bits", arguments: quantizedProductFormats, ActivationPrecision.allCases)
    func levelsAgree(format: QuantFormat, precision: ActivationPrecision) {
        var generator = SeededGenerator(seed: 0x1E_0000 + UInt64(format.rawValue))
        let (rows, columns, tokens) = (23, 768, 6)
        let matrix = weightMatrix(format, rows: rows, columns: columns,
                                  bytes: randomBlocks(format, blockCount: rows * columns / format.blockSize, generator: &generator))
        let input = randomActivations(count: tokens * columns, generator: &generator)
        var activations = QuantizedActivations(capacity: input.count, precision: precision)
        activations.quantize(input, tokens: tokens, columns: columns)
        let pool = WorkerPool(threadCount: 1)
        let outputs = KernelLevel.available.map { level in
            var output = [Float](repeating: .nan, count: tokens * rows)
            matrix.multiply(activations, into: &output, pool: pool, level: level)
            return output
        }
        for output in outputs.dropFirst() {
            #expect(firstBitwiseDifference(output, outputs[0]) == nil, "\(format) \(precision) levels differ")
        }
    }

    @Test("error against float activations stays within the rounding of the activations",
          arguments: [QuantFormat.q4_1, .q8_0, .q2_K, .q3_K, .q4_K, .q6_K], ActivationPrecision.allCases)
    func boundedByActivationRounding(format: QuantFormat, precision: ActivationPrecision) {
        var generator = SeededGenerator(seed: 0xB0_0000 + UInt64(format.rawValue))
        let (rows, columns) = (11, 1024)
        let bytes = randomBlocks(format, blockCount: rows * columns / format.blockSize, generator: &generator)
        let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
        let input = randomActivations(count: columns, generator: &generator)
        var scratch = QuantizedActivations(capacity: columns, precision: precision)
        var output = [Float](repeating: 0, count: rows)
        matrix.multiplyQuantized(input, tokens: 1, into: &output, pool: WorkerPool(threadCount: 1), scratch: &scratch)
        let exact = referenceProduct(matrix, weightBytes: bytes, activations: input, tokens: 1)
        let weights = dequantize(format, bytes, path: .reference)
        let blocks = scratch.referenceBlocks
        for row in 0..<rows {
            // |x - Â| ≤ scale / 2 per element, so the product moves by at most Σ |w| · scale / 2
            var bound = 0.0
            for column in 0..<columns {
                bound += Double(abs(weights[row * columns + column])) * Double(blocks[column / 32].scale) * 0.5001
            }
            bound += quantizedProductTolerance * exact.magnitudes[row]
            #expect(abs(Double(output[row]) - exact.values[row]) <= bound, "\(format) row \(row)")
        }
    }

    private func checkAgainstReference(_ format: QuantFormat, rows: Int, columns: Int, bytes: [UInt8], input: [Float], tokens: Int,
                                       precision: ActivationPrecision) {
        let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
        var activations = QuantizedActivations(capacity: input.count, precision: precision)
        activations.quantize(input, tokens: tokens, columns: columns)
        var output = [Float](repeating: .nan, count: tokens * rows)
        matrix.multiply(activations, into: &output, pool: WorkerPool(threadCount: 2))
        let reference = referenceProduct(matrix, weightBytes: bytes, activations: activations.dequantized(), tokens: tokens)
        var worst = 0.0
        for index in output.indices {
            let error = abs(Double(output[index]) - reference.values[index]) / max(reference.magnitudes[index], 1e-30)
            worst = max(worst, error)
        }
        #expect(worst <= quantizedProductTolerance, "\(format) \(precision) \(rows)×\(columns), \(tokens) tokens: relative error \(worst)")
    }
}

@Suite struct QuantizedProductBatchInvarianceTests {
    @Test("a token's output is bitwise the same alone, in any batch, on 1 or 2 threads",
          arguments: quantizedProductFormats, ActivationPrecision.allCases)
    func batchInvariance(format: QuantFormat, precision: ActivationPrecision) {
        var generator = SeededGenerator(seed: 0xBA_0000 + UInt64(format.rawValue))
        // 8192 columns make token passes of 24, so 30 tokens also cross a pass boundary; 768
        // columns are an odd number of K groups (the single-token K kernel takes groups in pairs)
        for (rows, columns, tokenCount) in [(37, 512, 17), (11, 768, 9), (5, 8192, 30)] {
            let matrix = weightMatrix(format, rows: rows, columns: columns,
                                      bytes: randomBlocks(format, blockCount: rows * columns / format.blockSize, generator: &generator))
            let input = randomActivations(count: tokenCount * columns, generator: &generator)
            var scratch = QuantizedActivations(capacity: input.count, precision: precision)
            let single = WorkerPool(threadCount: 1)
            // each token alone
            var alone = [[Float]]()
            for token in 0..<tokenCount {
                var output = [Float](repeating: .nan, count: rows)
                let row = Array(input[(token * columns)..<((token + 1) * columns)])
                matrix.multiplyQuantized(row, tokens: 1, into: &output, pool: single, scratch: &scratch)
                alone.append(output)
            }
            for pool in [single, WorkerPool(threadCount: 2)] {
                for batch in [1, 2, 3, 8, 16, 17, 30] where batch <= tokenCount {
                    for first in stride(from: 0, to: tokenCount - batch + 1, by: batch) {
                        let slice = Array(input[(first * columns)..<((first + batch) * columns)])
                        var output = [Float](repeating: .nan, count: batch * rows)
                        matrix.multiplyQuantized(slice, tokens: batch, into: &output, pool: pool, scratch: &scratch)
                        for token in 0..<batch {
                            let result = Array(output[(token * rows)..<((token + 1) * rows)])
                            #expect(firstBitwiseDifference(result, alone[first + token]) == nil,
                                    "\(format) \(precision) \(columns) columns: token \(first + token) in a batch of \(batch) on \(pool.threadCount) threads")
                        }
                    }
                }
            }
        }
    }
}
