@testable import StrataKernels
import StrataTestSupport

/// The quantized formats `WeightMatrix.multiply(_:into:pool:)` implements.
let quantizedProductFormats: [QuantFormat] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K]

/// Allowed distance between a kernel's output and the Double reference over the same quantized
/// activations, relative to `Σ_c |Â[t, c]| × max_c |W[r, c]|`. The kernels' integer dot
/// products are exact, so only float rounding remains: a few float32 ulps per 32-element
/// block (scale product, multiply-add, the offset term) and the final 8-lane reduction. A
/// single wrong 4-bit code in a 256-column row moves the result by ~1e-3 of that magnitude.
let quantizedProductTolerance = 3e-5

/// A block as `QuantizedActivations` should hold it, computed field by field in Swift.
struct ReferenceActivationBlock: Equatable {
    var scale: Float
    var sum: Float
    var values: [Int16]
    /// Σ values[0..<16] and Σ values[16..<32] (8-bit blocks only; empty for 16-bit).
    var halfSums: [Int16]
}

/// The activation quantizer's definition: scale `max |x| / 32767` over each group (256
/// elements when rows of `columns` are whole groups of 256, else 32), or `/ 127` per 32 (8 bits),
/// codes `x × (1 / scale)` rounded to nearest even, sum `scale × Σ codes` per 32-element block.
/// A scale below the smallest normal float is 0 (its inverse could overflow to infinity).
func referenceQuantize(_ input: [Float], columns: Int, precision: ActivationPrecision = .sixteenBit) -> [ReferenceActivationBlock] {
    let group = precision == .sixteenBit && columns % 256 == 0 ? 256 : 32
    let largestCode: Float = precision == .sixteenBit ? 32767 : 127
    return stride(from: 0, to: input.count, by: 32).map { start in
        let groupStart = start - start % group
        let magnitude = input[groupStart..<groupStart + group].reduce(Float(0)) { max($0, abs($1)) }
        let exactScale = magnitude / largestCode
        let scale = exactScale < Float.leastNormalMagnitude ? 0 : exactScale
        let inverse: Float = scale != 0 ? 1 / scale : 0
        let values = input[start..<start + 32].map { Int16(max(-largestCode, min(largestCode, ($0 * inverse).rounded(.toNearestOrEven)))) }
        let sum = scale * Float(values.reduce(Int32(0)) { $0 + Int32($1) })
        let halfSums = precision == .sixteenBit ? [] : [values[0..<16].reduce(0, +), values[16..<32].reduce(0, +)]
        return ReferenceActivationBlock(scale: scale, sum: sum, values: values, halfSums: halfSums)
    }
}

extension QuantizedActivations {
    /// The held blocks in the reference's shape.
    var referenceBlocks: [ReferenceActivationBlock] {
        let count = tokens * columns / 32
        switch precision {
        case .sixteenBit:
            return blocks.prefix(count).map { block in
                let values = withUnsafeBytes(of: block.values) { Array($0.bindMemory(to: Int16.self)) }
                return ReferenceActivationBlock(scale: block.scale, sum: block.sum, values: values, halfSums: [])
            }
        case .eightBit:
            return (0..<count).map { block in
                ReferenceActivationBlock(scale: scales8[block], sum: sums8[block],
                                         values: codes8[(32 * block)..<(32 * block + 32)].map(Int16.init),
                                         halfSums: Array(halfSums8[(2 * block)..<(2 * block + 2)]))
            }
        }
    }
}

/// A `rows × columns` matrix over a heap copy of `bytes`.
func weightMatrix(_ format: QuantFormat, rows: Int, columns: Int, bytes: [UInt8]) -> WeightMatrix {
    guard let matrix = WeightMatrix(format: format, rows: rows, columns: columns, bytes: ByteView(ByteStorage.copying(bytes)))
    else { preconditionFailure("\(format) \(rows)×\(columns) does not fit \(bytes.count) bytes") }
    return matrix
}

/// `Σ_c W[r, c] · A[t, c]` in Double with W from `dequantizeReference` (laid out `[t × rows + r]`),
/// and for each element the magnitude the tolerance is relative to.
func referenceProduct(_ matrix: WeightMatrix, weightBytes: [UInt8], activations: [Float], tokens: Int)
    -> (values: [Double], magnitudes: [Double]) {
    let weights = dequantize(matrix.format, weightBytes, path: .reference)
    var values = [Double](repeating: 0, count: tokens * matrix.rows)
    var magnitudes = values
    for row in 0..<matrix.rows {
        let weightRow = weights[(row * matrix.columns)..<((row + 1) * matrix.columns)]
        let largest = weightRow.reduce(0.0) { max($0, Double(abs($1))) }
        for token in 0..<tokens {
            var sum = 0.0, absoluteSum = 0.0
            for column in 0..<matrix.columns {
                let activation = Double(activations[token * matrix.columns + column])
                sum += Double(weightRow[weightRow.startIndex + column]) * activation
                absoluteSum += abs(activation)
            }
            values[token * matrix.rows + row] = sum
            magnitudes[token * matrix.rows + row] = absoluteSum * largest
        }
    }
    return (values, magnitudes)
}

/// Random activations of transformer-like size, a few large outliers included.
func randomActivations(count: Int, generator: inout SeededGenerator) -> [Float] {
    (0..<count).map { _ in
        let value = Float.random(in: -1...1, using: &generator)
        return Int.random(in: 0..<50, using: &generator) == 0 ? value * 20 : value
    }
}
