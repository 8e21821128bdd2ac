@testable import StrataKernels
import Testing

/// Deterministic pseudo-random floats in [-1, 1).
func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
}

@Suite("Float kernels against their scalar references")
struct FloatKernelTests {
    @Test(arguments: [1, 15, 16, 31, 32, 33, 64, 576, 1000, 4096])
    func dotMatchesReference(count: Int) {
        let a = randomFloats(count, seed: 1)
        let b = randomFloats(count, seed: 2)
        let fast = FloatKernels.dot(a, 0, b, 0, count: count)
        let reference = FloatKernels.dotReference(a, b)
        // Float32 accumulation over n terms of magnitude <= 1: relative error ~ n * 2^-24.
        #expect(abs(fast - reference) <= Float(count) * 1.2e-7 + 1e-6)
    }

    /// The Swift SIMD loop `dot` was before it moved to C (FloatRows.c), kept as its definition:
    /// two SIMD16 accumulators of fused multiply-adds, an unfused tail, `sum()` in lane order.
    static func dotDefinition(_ a: [Float], _ b: [Float]) -> Float {
        let load = { (values: [Float], start: Int) in SIMD16<Float>(values[start..<(start + 16)]) }
        var accumulator0 = SIMD16<Float>(), accumulator1 = SIMD16<Float>()
        var index = 0
        while index + 32 <= a.count {
            accumulator0.addProduct(load(a, index), load(b, index))
            accumulator1.addProduct(load(a, index + 16), load(b, index + 16))
            index += 32
        }
        if index + 16 <= a.count {
            accumulator0.addProduct(load(a, index), load(b, index))
            index += 16
        }
        var tail: Float = 0
        while index < a.count {
            tail += a[index] * b[index]
            index += 1
        }
        return (accumulator0 + accumulator1).sum() + tail
    }

    @Test("dot equals its definition bitwise at every level", arguments: KernelLevel.available)
    func dotMatchesDefinitionBitwise(level: KernelLevel) {
        for count in [0, 1, 15, 16, 17, 31, 32, 33, 48, 63, 64, 100, 576, 1000, 4096] {
            // magnitudes spread over 2^-20...2^20, so that any other rounding or order shows
            let scales = randomFloats(count, seed: 7).map { Float(sign: .plus, exponent: Int($0 * 20), significand: 1) }
            let a = zip(randomFloats(count, seed: 5), scales).map(*)
            let b = randomFloats(count, seed: 6)
            let definition = Self.dotDefinition(a, b)
            let kernel = FloatKernels.dot(a, b, level: level)
            #expect(kernel.bitPattern == definition.bitPattern, "count \(count): \(kernel) against \(definition)")
        }
    }

    @Test func rmsNormMatchesReference() {
        let columns = 576
        let input = randomFloats(3 * columns, seed: 3)
        let weight = randomFloats(columns, seed: 4)
        var output = [Float](repeating: 0, count: 2 * columns)
        FloatKernels.rmsNorm(input, firstRow: 1, rows: 2, columns: columns, weight: weight, epsilon: 1e-5, into: &output)
        for row in 0..<2 {
            let expected = FloatKernels.rmsNormReference(
                Array(input[((row + 1) * columns)..<((row + 2) * columns)]), weight: weight, epsilon: 1e-5)
            for column in 0..<columns {
                #expect(abs(output[row * columns + column] - expected[column]) <= 1e-5)
            }
        }
    }

    @Test("allFinite agrees with its reference on every length and position of a NaN or infinity")
    func allFiniteFindsEveryNonFiniteValue() {
        for count in [0, 1, 15, 16, 17, 40, 1000] {
            let finite = (0..<count).map { Float($0) * 1e30 - 3e32 }
            #expect(FloatKernels.allFinite(finite[...]) && FloatKernels.allFiniteReference(finite[...]))
            for position in Set([0, count / 2, count - 1]) where position >= 0 && count > 0 {
                for bad in [Float.nan, .infinity, -.infinity] {
                    var values = finite
                    values[position] = bad
                    #expect(!FloatKernels.allFinite(values[...]), "count \(count), position \(position), \(bad)")
                    #expect(FloatKernels.allFinite(values[1...]) == FloatKernels.allFiniteReference(values[1...]))
                }
            }
        }
    }

    @Test func softmaxSumsToOneAndKeepsOrder() {
        var values: [Float] = [1, 2, 3, 1000, -1000]
        FloatKernels.softmax(&values, count: 5)
        #expect(abs(values.reduce(0, +) - 1) < 1e-6)
        #expect(values[3] > 0.999 && values[4] == 0)
    }

    @Test func swiGLUIsSiluTimesUp() {
        var gate: [Float] = [-2, 0, 1, 3]
        let up: [Float] = [1, 2, 3, 4]
        FloatKernels.swiGLU(gate: &gate, up: up, count: 4)
        let expected = zip([-2.0, 0, 1, 3], [1.0, 2, 3, 4]).map { x, u in x / (1 + exp(-x)) * u }
        for (value, target) in zip(gate, expected) { #expect(abs(Double(value) - target) < 1e-6) }
    }

    /// Every level against the double-precision formula with tanh, over the range activations
    /// take, the tails where e^(-2u) is clamped, a count that leaves a scalar tail, and a NaN.
    @Test(arguments: KernelLevel.available)
    func geluTanhGLUMatchesReference(level: KernelLevel) {
        let count = 1003
        var gate = randomFloats(count, seed: 11).map { $0 * 12 }
        gate[0] = 0; gate[1] = -100; gate[2] = 100; gate[3] = 1e-20; gate[4] = -1e-20; gate[5] = 30; gate[6] = -30
        let up = randomFloats(count, seed: 12).map { $0 * 3 }
        var result = gate
        FloatKernels.geluTanhGLU(gate: &result, up: up, count: count, level: level)
        for index in 0..<count {
            let expected = FloatKernels.geluTanhReference(Double(gate[index])) * Double(up[index])
            // a few float roundings of values up to ~36 in magnitude
            #expect(abs(Double(result[index]) - expected) <= 4e-7 * max(1, abs(expected)),
                    "level \(level), x = \(gate[index]): \(result[index]) against \(expected)")
        }
        var portable = gate
        FloatKernels.geluTanhGLU(gate: &portable, up: up, count: count, level: .portable)
        #expect(result.map(\.bitPattern) == portable.map(\.bitPattern), "level \(level) differs from the portable bits")
        var withNaN: [Float] = [.nan, 1]
        FloatKernels.geluTanhGLU(gate: &withNaN, up: [1, 1], count: 2, level: level)
        #expect(withNaN[0].isNaN)
    }
}

@Suite("Rotary embedding")
struct RotaryEmbeddingTests {
    @Test func adjacentAndSplitStylesRotateTheirPairs() {
        let dimensions = 8
        let frequencies = RotaryEmbedding.inverseFrequencies(dimensions: dimensions, base: 10_000)
        #expect(frequencies[0] == 1 && abs(frequencies[1] - 0.1) < 1e-7)
        var cosines = [Float](repeating: 0, count: 4)
        var sines = [Float](repeating: 0, count: 4)
        RotaryEmbedding.table(positions: 3..<4, inverseFrequencies: frequencies, cosines: &cosines, sines: &sines)
        let input = randomFloats(dimensions, seed: 9)
        for style in [RotaryStyle.adjacentPairs, .splitHalves] {
            var rotated = input
            RotaryEmbedding.apply(&rotated, tokens: 1, heads: 1, headDimensions: dimensions, rotaryDimensions: dimensions,
                                  style: style, cosines: cosines, sines: sines)
            for pair in 0..<4 {
                let (i, j) = style == .adjacentPairs ? (2 * pair, 2 * pair + 1) : (pair, pair + 4)
                let angle = 3 * Double(frequencies[pair])
                let expectedI = Double(input[i]) * cos(angle) - Double(input[j]) * sin(angle)
                let expectedJ = Double(input[j]) * cos(angle) + Double(input[i]) * sin(angle)
                #expect(abs(Double(rotated[i]) - expectedI) < 1e-5 && abs(Double(rotated[j]) - expectedJ) < 1e-5)
            }
        }
    }
}

@Suite("WeightMatrix")
struct WeightMatrixTests {
    @Test func floatMultiplyMatchesReferenceAndIsInvariantToBatchAndThreads() throws {
        let rows = 37, columns = 64, tokens = 5
        let weights = randomFloats(rows * columns, seed: 21)
        let bytes = weights.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        let matrix = try #require(WeightMatrix(format: .f32, rows: rows, columns: columns, bytes: ByteView(.copying(bytes))))
        let input = randomFloats(tokens * columns, seed: 22)
        var batched = [Float](repeating: 0, count: tokens * rows)
        matrix.multiply(input, tokens: tokens, into: &batched, pool: WorkerPool(threadCount: 2))
        for token in 0..<tokens {
            var alone = [Float](repeating: 0, count: rows)
            matrix.multiply(Array(input[(token * columns)..<((token + 1) * columns)]), tokens: 1, into: &alone,
                            pool: WorkerPool(threadCount: 1))
            #expect(alone == Array(batched[(token * rows)..<((token + 1) * rows)]))
            for row in 0..<rows {
                let expected = FloatKernels.dotReference(
                    Array(weights[(row * columns)..<((row + 1) * columns)]),
                    Array(input[(token * columns)..<((token + 1) * columns)]))
                #expect(abs(alone[row] - expected) < 1e-4)
            }
        }
    }

    @Test func rejectsGeometryThatDoesNotFit() {
        let bytes = ByteView(.copying([UInt8](repeating: 0, count: 34)))
        #expect(WeightMatrix(format: .q8_0, rows: 1, columns: 32, bytes: bytes) != nil)
        #expect(WeightMatrix(format: .q8_0, rows: 1, columns: 31, bytes: bytes) == nil)
        #expect(WeightMatrix(format: .q8_0, rows: 2, columns: 32, bytes: bytes) == nil)
        func zeros(_ count: Int) -> ByteView { ByteView(.copying([UInt8](repeating: 0, count: count))) }
        #expect(WeightMatrix(format: .q2_K, rows: 1, columns: 256, bytes: bytes) == nil)
        #expect(WeightMatrix(format: .q2_K, rows: 1, columns: 256, bytes: zeros(84)) != nil)
        // the right size, but a format the kernels cannot dequantize
        #expect(WeightMatrix(format: .iq2_xs, rows: 1, columns: 256, bytes: zeros(74)) == nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
