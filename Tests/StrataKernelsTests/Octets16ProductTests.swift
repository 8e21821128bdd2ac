import Testing
@testable import StrataKernels
import StrataTestSupport

/// The interleaved Q4_1 / Q5_0 product's float operations (Octets16Portable.c), written from the
/// file's own block layouts (Q4_1: d, m, then sixteen bytes whose low nibbles are elements 0-15
/// and high nibbles 16-31; Q5_0: d, 32 fifth bits, then the same sixteen bytes, meaning
/// d × (code - 16)), so the repacking and both kernel levels are checked against a definition
/// that shares no code with them.
func referenceInterleaved16Product(_ format: QuantFormat, _ bytes: [UInt8], rows: Int, columns: Int,
                                   activations: QuantizedActivations) -> [Float] {
    let blocks = columns / 32, tokens = activations.tokens, blockBytes = format.bytesPerBlock
    let nibbles = format == .q5_0 ? 6 : 4
    func half(_ offset: Int) -> Float { Float(Float16(bitPattern: UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)) }
    var output = [Float](repeating: 0, count: tokens * rows)
    for token in 0..<tokens {
        for row in 0..<rows {
            var accumulator: Float = 0, offset: Float = 0
            for block in 0..<blocks {
                let start = (row * blocks + block) * blockBytes
                let input = activations.blocks[token * blocks + block]
                let values = withUnsafeBytes(of: input.values) { Array($0.bindMemory(to: Int16.self)) }
                let fifthBits = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[start + 2 + $1]) << (8 * $1) }
                var dot: Int32 = 0
                for element in 0..<32 {
                    let byte = bytes[start + nibbles + element % 16]
                    var code = Int32(element < 16 ? byte & 0x0F : byte >> 4)
                    if format == .q5_0 { code |= Int32((fifthBits >> element) & 1) << 4 }
                    dot += code * Int32(values[element])
                }
                let d = half(start), minimum = format == .q5_0 ? d * -16 : half(start + 2)
                accumulator = accumulator.addingProduct(Float(dot), d * input.scale)
                offset = offset.addingProduct(minimum, input.sum)
            }
            output[token * rows + row] = accumulator + offset
        }
    }
    return output
}

/// The formats with an interleaved layout for 16-bit products.
let octets16Formats: [QuantFormat] = [.q4_1, .q5_0]

@Suite struct Octets16ProductTests {
    private func quantized(_ input: [Float], tokens: Int, columns: Int) -> QuantizedActivations {
        var activations = QuantizedActivations(capacity: input.count, precision: .sixteenBit)
        activations.quantize(input, tokens: tokens, columns: columns)
        return activations
    }

    @Test("only Q4_1 and Q5_0 matrices with rows in eights are repacked for 16-bit products")
    func eligibility() {
        var generator = SeededGenerator(seed: 0x1B1)
        func prepared(_ format: QuantFormat, rows: Int, columns: Int) -> Bool {
            let bytes = randomBlocks(format, blockCount: rows * columns / format.blockSize, generator: &generator)
            return weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
                .preparedForSixteenBitProducts(releasingFilePages: false).isInterleaved
        }
        #expect(prepared(.q4_1, rows: 16, columns: 96))
        #expect(!prepared(.q4_1, rows: 12, columns: 96))
        #expect(prepared(.q5_0, rows: 8, columns: 896))
        #expect(!prepared(.q5_0, rows: 20, columns: 96))
        #expect(!prepared(.q4_0, rows: 16, columns: 96))
        #expect(!prepared(.q5_1, rows: 16, columns: 96))
        #expect(!prepared(.q4_K, rows: 16, columns: 512))
    }

    @Test("every level equals the Swift definition bitwise", arguments: octets16Formats, KernelLevel.available)
    func matchesDefinition(format: QuantFormat, level: KernelLevel) {
        var generator = SeededGenerator(seed: 0x1B2)
        // 576 columns: one activation scale per 32; 1536: one per 256 (the quantizer's groups)
        for (rows, columns, tokens) in [(8, 32, 1), (24, 576, 3), (16, 1536, 6), (8, 96, 9)] {
            let bytes = randomBlocks(format, blockCount: rows * columns / 32, generator: &generator)
            let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
                .preparedForSixteenBitProducts(releasingFilePages: false)
            let activations = quantized(randomActivations(count: tokens * columns, generator: &generator), tokens: tokens, columns: columns)
            var output = [Float](repeating: .nan, count: tokens * rows)
            matrix.multiply(activations, into: &output, pool: WorkerPool(threadCount: 2), level: level)
            let expected = referenceInterleaved16Product(format, bytes, rows: rows, columns: columns, activations: activations)
            #expect(firstBitwiseDifference(output, expected) == nil, "\(format) \(level) \(rows)×\(columns), \(tokens) tokens")
        }
    }

    @Test("matches the Double reference, also at the largest codes and activations", arguments: octets16Formats)
    func matchesDoubleReference(format: QuantFormat) {
        var generator = SeededGenerator(seed: 0x1B3)
        let (rows, columns, tokens) = (16, 576, 5)
        var bytes = randomBlocks(format, blockCount: rows * columns / 32, generator: &generator)
        // rows 0-7 with every code at its largest (Q4_1 15, Q5_0 31) against token 0's
        // activations all at 32767: the largest int32 block sums there can be
        let codeBytes = format == .q5_0 ? 2..<22 : 4..<20
        for block in 0..<(8 * columns / 32) {
            for offset in codeBytes { bytes[block * format.bytesPerBlock + offset] = 0xFF }
        }
        var input = randomActivations(count: tokens * columns, generator: &generator)
        for index in 0..<columns { input[index] = 1 }
        let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
        let activations = quantized(input, tokens: tokens, columns: columns)
        var output = [Float](repeating: .nan, count: tokens * rows)
        matrix.preparedForSixteenBitProducts(releasingFilePages: false).multiply(activations, into: &output, pool: WorkerPool(threadCount: 2))
        let reference = referenceProduct(matrix, weightBytes: bytes, activations: activations.dequantized(), tokens: tokens)
        for index in output.indices {
            let error = abs(Double(output[index]) - reference.values[index]) / max(reference.magnitudes[index], 1e-30)
            #expect(error <= quantizedProductTolerance, "\(format) element \(index): relative error \(error)")
        }
    }

    @Test("a token's output is bitwise the same alone, in any batch, on 1 or 2 threads", arguments: octets16Formats)
    func batchInvariance(format: QuantFormat) {
        var generator = SeededGenerator(seed: 0x1B4)
        // 8192 columns make token passes of 12 (256 KiB of activation blocks), so 30 tokens
        // cross pass boundaries
        for (rows, columns, tokenCount) in [(40, 576, 17), (16, 8192, 30)] {
            let bytes = randomBlocks(format, blockCount: rows * columns / 32, generator: &generator)
            let matrix = weightMatrix(format, rows: rows, columns: columns, bytes: bytes)
                .preparedForSixteenBitProducts(releasingFilePages: false)
            expectBatchInvariance(matrix, tokenCount: tokenCount, precision: .sixteenBit, generator: &generator, label: "\(format)")
        }
    }

    @Test("a matrix repacked for 16-bit products still multiplies 8-bit activations, from the file's rows")
    func otherPrecisionReadsTheFile() {
        var generator = SeededGenerator(seed: 0x1B5)
        let (rows, columns, tokens) = (16, 576, 3)
        let bytes = randomBlocks(.q4_1, blockCount: rows * columns / 32, generator: &generator)
        let plain = weightMatrix(.q4_1, rows: rows, columns: columns, bytes: bytes)
        let repacked = plain.preparedForSixteenBitProducts(releasingFilePages: false)
        let input = randomActivations(count: tokens * columns, generator: &generator)
        var activations = QuantizedActivations(capacity: input.count, precision: .eightBit)
        activations.quantize(input, tokens: tokens, columns: columns)
        var expected = [Float](repeating: .nan, count: tokens * rows), output = expected
        plain.multiply(activations, into: &expected, pool: WorkerPool(threadCount: 1))
        repacked.multiply(activations, into: &output, pool: WorkerPool(threadCount: 1))
        #expect(firstBitwiseDifference(output, expected) == nil)
    }
}
