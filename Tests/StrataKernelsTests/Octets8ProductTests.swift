import Testing
@testable import StrataKernels
import StrataTestSupport

/// The interleaved product's float operations (Octets8Portable.c), written from the file's own
/// block layouts (GGML's `get_scale_min_k4` scale packing for Q4_K, `dequantize_row_q6_K`'s
/// code order for Q6_K), so the repacking and both kernel levels are checked against a
/// definition that shares no code with them.
func referenceInterleavedProduct(_ format: QuantFormat, _ bytes: [UInt8], rows: Int, columns: Int,
                                 activations: QuantizedActivations) -> [Float] {
    let groups = columns / 256, tokens = activations.tokens, blockBytes = format.bytesPerBlock
    func half(_ block: [UInt8], at offset: Int) -> Float {
        Float(Float16(bitPattern: UInt16(block[offset]) | UInt16(block[offset + 1]) << 8))
    }
    var output = [Float](repeating: 0, count: tokens * rows)
    for token in 0..<tokens {
        for row in 0..<rows {
            var accumulator: Float = 0
            for group in 0..<groups {
                let start = (row * groups + group) * blockBytes
                let block = Array(bytes[start..<(start + blockBytes)])
                var groupSum: Float = 0, correction: Float = 0
                for sub in 0..<8 {
                    let blockIndex = (token * columns + group * 256) / 32 + sub
                    let values = (0..<32).map { Int32(activations.codes8[token * columns + group * 256 + sub * 32 + $0]) }
                    var dot: Int32 = 0
                    var minimum: Int32 = 0
                    if format == .q6_K {
                        // element i of sub-block sub = 32 q + l within half h = sub / 4 (q = sub % 4)
                        let halfIndex = sub / 4, quarter = sub % 4
                        for sixteenth in 0..<2 {
                            var sum: Int32 = 0, valueSum: Int32 = 0
                            for element in (16 * sixteenth)..<(16 * sixteenth + 16) {
                                let low = block[64 * halfIndex + 32 * (quarter % 2) + element]
                                let high = block[128 + 32 * halfIndex + element]
                                let code = Int32(quarter < 2 ? low & 0x0F : low >> 4) | Int32((high >> (2 * quarter)) & 3) << 4
                                sum += code * values[element]
                                valueSum += values[element]
                            }
                            dot += Int32(Int8(bitPattern: block[192 + 2 * sub + sixteenth])) * (sum - 32 * valueSum)
                        }
                    } else {
                        let packed = Array(block[4..<16])
                        let scale: Int32
                        if sub < 4 {
                            scale = Int32(packed[sub] & 63)
                            minimum = Int32(packed[sub + 4] & 63)
                        } else {
                            scale = Int32((packed[sub + 4] & 0x0F) | ((packed[sub - 4] >> 6) << 4))
                            minimum = Int32((packed[sub + 4] >> 4) | ((packed[sub] >> 6) << 4))
                        }
                        for element in 0..<32 {
                            let byte = block[16 + 32 * (sub / 2) + element]
                            dot += Int32(sub % 2 == 0 ? byte & 0x0F : byte >> 4) * values[element]
                        }
                        dot *= scale
                    }
                    let lane = Float(dot), activationScale = activations.scales8[blockIndex]
                    let sum = activations.sums8[blockIndex]
                    groupSum = sub == 0 ? lane * activationScale : groupSum.addingProduct(lane, activationScale)
                    correction = sub == 0 ? Float(minimum) * sum : correction.addingProduct(Float(minimum), sum)
                }
                if format == .q6_K {
                    accumulator = accumulator.addingProduct(groupSum, half(block, at: 208))
                } else {
                    accumulator = accumulator.addingProduct(groupSum, half(block, at: 0))
                    accumulator = accumulator.addingProduct(correction, -half(block, at: 2))
                }
            }
            output[token * rows + row] = accumulator
        }
    }
    return output
}

/// The formats with an interleaved layout.
let octets8Formats: [QuantFormat] = [.q4_K, .q6_K]

@Suite struct Octets8ProductTests {
    private func quantized(_ input: [Float], tokens: Int, columns: Int) -> QuantizedActivations {
        var activations = QuantizedActivations(capacity: input.count, precision: .eightBit)
        activations.quantize(input, tokens: tokens, columns: columns)
        return activations
    }

    @Test("only Q4_K and Q6_K matrices with rows in eights and columns in 256s are repacked")
    func eligibility() {
        var generator = SeededGenerator(seed: 0x1A7)
        func prepared(_ format: QuantFormat, rows: Int, columns: Int) -> Bool {
            let bytes = randomBlocks(format, blockCount: rows * columns / format.blockSize, generator: &generator)
            return weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
                .preparedForEightBitProducts(releasingFilePages: false).isInterleaved
        }
        #expect(prepared(.q4_K, rows: 16, columns: 512))
        #expect(!prepared(.q4_K, rows: 12, columns: 512))
        #expect(prepared(.q6_K, rows: 16, columns: 512))
        #expect(!prepared(.q6_K, rows: 20, columns: 512))
        #expect(!prepared(.q5_K, rows: 16, columns: 512))
        #expect(!prepared(.q4_0, rows: 16, columns: 512))
    }

    @Test("every level equals the Swift definition bitwise", arguments: octets8Formats, KernelLevel.available)
    func matchesDefinition(format: QuantFormat, level: KernelLevel) {
        var generator = SeededGenerator(seed: 0x1A8)
        // 37 tokens: more than the 32 the batch kernels keep accumulators for at once
        for (rows, columns, tokens) in [(8, 256, 1), (24, 768, 6), (16, 2048, 9), (8, 512, 37)] {
            let bytes = randomBlocks(format, blockCount: rows * columns / 256, generator: &generator)
            let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes).preparedForEightBitProducts(releasingFilePages: false)
            let activations = quantized(randomActivations(count: tokens * columns, generator: &generator), tokens: tokens, columns: columns)
            var output = [Float](repeating: .nan, count: tokens * rows)
            matrix.multiply(activations, into: &output, pool: WorkerPool(threadCount: 2), level: level)
            let expected = referenceInterleavedProduct(format, bytes, rows: rows, columns: columns, activations: activations)
            #expect(firstBitwiseDifference(output, expected) == nil, "\(format) \(level) \(rows)×\(columns), \(tokens) tokens")
        }
    }

    @Test("matches the Double reference, also at the largest codes, scales and activations", arguments: octets8Formats)
    func matchesDoubleReference(format: QuantFormat) {
        var generator = SeededGenerator(seed: 0x1A9)
        let (rows, columns, tokens) = (16, 1024, 5)
        var bytes = randomBlocks(format, blockCount: rows * columns / 256, generator: &generator)
        // rows 0-7: the int16 sums' worst case, every code at its largest (Q4_K 15, Q6_K 63) with
        // the largest scales (Q4_K's six-bit scales and minimums 63, Q6_K's -128)
        let codeBytes = format == .q6_K ? 0..<192 : 4..<144
        for block in 0..<(8 * columns / 256) {
            for offset in codeBytes { bytes[block * format.bytesPerBlock + offset] = 0xFF }
            if format == .q6_K { for offset in 192..<208 { bytes[block * format.bytesPerBlock + offset] = 0x80 } }
        }
        var input = randomActivations(count: tokens * columns, generator: &generator)
        for index in 0..<columns { input[index] = index % 3 == 0 ? -1 : 1 } // token 0: codes of ±127
        let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
        let activations = quantized(input, tokens: tokens, columns: columns)
        var output = [Float](repeating: .nan, count: tokens * rows)
        matrix.preparedForEightBitProducts(releasingFilePages: false).multiply(activations, into: &output, pool: WorkerPool(threadCount: 2))
        let reference = referenceProduct(matrix, weightBytes: bytes, activations: activations.dequantized(), tokens: tokens)
        for index in output.indices {
            let error = abs(Double(output[index]) - reference.values[index]) / max(reference.magnitudes[index], 1e-30)
            #expect(error <= quantizedProductTolerance, "\(format) element \(index): relative error \(error)")
        }
    }

    @Test("a token's output is bitwise the same alone, in any batch, on 1 or 2 threads", arguments: octets8Formats)
    func batchInvariance(format: QuantFormat) {
        var generator = SeededGenerator(seed: 0x1AA)
        // 8192 columns make token passes of 24, so 30 tokens cross a pass boundary
        for (rows, columns, tokenCount) in [(40, 512, 17), (16, 8192, 30)] {
            let bytes = randomBlocks(format, blockCount: rows * columns / 256, generator: &generator)
            let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes).preparedForEightBitProducts(releasingFilePages: false)
            expectBatchInvariance(matrix, tokenCount: tokenCount, precision: .eightBit, generator: &generator, label: "\(format)")
        }
    }
}
