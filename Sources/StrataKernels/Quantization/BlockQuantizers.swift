// Quantizers for the 32-element formats: Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1, each written
// from llama.cpp's rules (`quantize_row_*_ref` without importance, `quantize_row_*_impl`
// with it). They are scalar and plain: each is its own reference.

/// Stores fp16 `bits` little-endian at `output[offset]`.
@inline(__always)
func storeHalf(_ bits: UInt16, _ output: UnsafeMutablePointer<UInt8>, at offset: Int) {
    output[offset] = UInt8(truncatingIfNeeded: bits)
    output[offset + 1] = UInt8(truncatingIfNeeded: bits >> 8)
}

/// Packs 32 codes of up to five bits in the Q4_x/Q5_x order: element `i < 16` in the low
/// nibble of `nibbles[i]`, element `i + 16` in its high nibble; bit 4 of element `i` becomes
/// bit `i` of the little-endian word at `fifthBits` when there is one.
@inline(__always)
func packSmallBlockCodes(_ codes: UnsafePointer<UInt8>, nibbles: UnsafeMutablePointer<UInt8>,
                         fifthBits: UnsafeMutablePointer<UInt8>?) {
    var high: UInt32 = 0
    for index in 0..<16 {
        nibbles[index] = (codes[index] & 0x0F) | (codes[index + 16] & 0x0F) << 4
        high |= UInt32(codes[index] >> 4 & 1) << index
        high |= UInt32(codes[index + 16] >> 4 & 1) << (index + 16)
    }
    guard let fifthBits else { return }
    for byte in 0..<4 { fifthBits[byte] = UInt8(truncatingIfNeeded: high >> (8 * byte)) }
}

/// The per-element error weights of llama.cpp's importance-weighted quantizers:
/// `importance × √(σ² + x²)`, where σ² is the row's (or super-block's) mean square scaled by
/// `spread`. Large values matter more in proportion to their size, but never vanish.
@inline(__always)
func importanceWeights(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>, count: Int, sigma2: Float,
                       into weights: UnsafeMutablePointer<Float>) {
    for index in 0..<count { weights[index] = importance[index] * (sigma2 + x[index] * x[index]).squareRoot() }
}

/// Σ x² in order, the start of every σ².
@inline(__always)
func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
    var sum: Float = 0
    for index in 0..<count { sum += x[index] * x[index] }
    return sum
}

enum SmallBlockQuantizers {
    /// One 32-element block of `format` (Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1), with importance when
    /// given (`sigma2` is then the row's mean square).
    static func quantize(_ x: UnsafePointer<Float>, format: QuantFormat, importance: UnsafePointer<Float>?,
                         sigma2: Float, into output: UnsafeMutablePointer<UInt8>) {
        switch (format, importance) {
        case (.q8_0, _): q8_0(x, into: output)
        case (.q4_0, nil), (.q5_0, nil): symmetric(x, largest: format == .q4_0 ? 8 : 16, into: output)
        case (.q4_0, let importance?), (.q5_0, let importance?):
            symmetric(x, largest: format == .q4_0 ? 8 : 16, importance: importance, sigma2: sigma2, into: output)
        case (.q4_1, nil), (.q5_1, nil): offset(x, largest: format == .q4_1 ? 15 : 31, into: output)
        case (.q4_1, let importance?), (.q5_1, let importance?):
            offset(x, largest: format == .q4_1 ? 15 : 31, importance: importance, sigma2: sigma2, into: output)
        default: preconditionFailure("\(format) has no 32-element quantizer")
        }
    }

    /// Q8_0: `d = max|x| / 127`, codes `x / d` rounded half away from zero. Importance does not
    /// change Q8_0 (nor does it in llama.cpp): the rounding is already the best per element.
    static func q8_0(_ x: UnsafePointer<Float>, into output: UnsafeMutablePointer<UInt8>) {
        var magnitude: Float = 0
        for index in 0..<32 { magnitude = magnitude > abs(x[index]) ? magnitude : abs(x[index]) }
        let scale = magnitude / 127
        let inverse = scale != 0 ? 1 / scale : 0
        storeHalf(halfBits(scale), output, at: 0)
        for index in 0..<32 {
            let code = truncatedInt((x[index] * inverse).rounded(.toNearestOrAwayFromZero))
            output[2 + index] = UInt8(truncatingIfNeeded: code)
        }
    }

    /// Q4_0 (`largest` 8) and Q5_0 (`largest` 16) without importance: the value of largest
    /// magnitude maps to code 0 exactly (`d = max / -largest`), so it keeps its sign and size;
    /// other codes are `x / d + largest` rounded half up and capped at `2 largest - 1`.
    static func symmetric(_ x: UnsafePointer<Float>, largest: Int32, into output: UnsafeMutablePointer<UInt8>) {
        var maximum: Float = 0, magnitude: Float = 0
        for index in 0..<32 where magnitude < abs(x[index]) {
            magnitude = abs(x[index])
            maximum = x[index]
        }
        let scale = maximum / -Float(largest)
        let inverse = scale != 0 ? 1 / scale : 0
        let offset = Float(largest) + 0.5
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { codes in
            for index in 0..<32 {
                // C's `(int8_t)(x + offset)`: truncation, then the narrowing to a byte
                let code = Int32(Int8(truncatingIfNeeded: truncatedInt(x[index] * inverse + offset)))
                codes[index] = UInt8(truncatingIfNeeded: min(2 * largest - 1, code))
            }
            storeSymmetric(scale: scale, codes: codes.baseAddress!, largest: largest, into: output)
        }
    }

    /// Q4_0/Q5_0 with importance: `make_qx_quants`'s search under `importanceWeights`.
    static func symmetric(_ x: UnsafePointer<Float>, largest: Int32, importance: UnsafePointer<Float>, sigma2: Float,
                          into output: UnsafeMutablePointer<UInt8>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { weights in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 32) { codes in
                importanceWeights(x, importance: importance, count: 32, sigma2: sigma2, into: weights.baseAddress!)
                let scale = ScaleSearch.symmetric(x, count: 32, largest: largest, weights: weights.baseAddress!,
                                                  codes: codes.baseAddress!)
                codes.withMemoryRebound(to: UInt8.self) { unsigned in
                    storeSymmetric(scale: scale, codes: unsigned.baseAddress!, largest: largest, into: output)
                }
            }
        }
    }

    private static func storeSymmetric(scale: Float, codes: UnsafePointer<UInt8>, largest: Int32,
                                       into output: UnsafeMutablePointer<UInt8>) {
        storeHalf(halfBits(scale), output, at: 0)
        if largest == 8 {
            packSmallBlockCodes(codes, nibbles: output + 2, fifthBits: nil)
        } else {
            packSmallBlockCodes(codes, nibbles: output + 6, fifthBits: output + 2)
        }
    }

    /// Q4_1 (`largest` 15) and Q5_1 (`largest` 31) without importance: `d` spans the block's
    /// range, `m` is its minimum, codes are `(x - m) / d` rounded half up.
    static func offset(_ x: UnsafePointer<Float>, largest: Int32, into output: UnsafeMutablePointer<UInt8>) {
        var low = Float.greatestFiniteMagnitude, high = -Float.greatestFiniteMagnitude
        for index in 0..<32 {
            if x[index] < low { low = x[index] }
            if x[index] > high { high = x[index] }
        }
        let scale = (high - low) / Float(largest)
        let inverse = scale != 0 ? 1 / scale : 0
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { codes in
            for index in 0..<32 {
                let rounded = truncatedInt((x[index] - low) * inverse + 0.5)
                // Q4_1 narrows to a signed byte and caps at 15; Q5_1 narrows to an unsigned byte
                codes[index] = largest == 15
                    ? UInt8(truncatingIfNeeded: min(15, Int32(Int8(truncatingIfNeeded: rounded))))
                    : UInt8(truncatingIfNeeded: rounded)
            }
            storeOffset(scale: scale, minimum: low, codes: codes.baseAddress!, largest: largest, into: output)
        }
    }

    /// Q4_1/Q5_1 with importance: the scale-and-minimum search under `importanceWeights`.
    static func offset(_ x: UnsafePointer<Float>, largest: Int32, importance: UnsafePointer<Float>, sigma2: Float,
                       into output: UnsafeMutablePointer<UInt8>) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { weights in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { codes in
                importanceWeights(x, importance: importance, count: 32, sigma2: sigma2, into: weights.baseAddress!)
                let fit = ScaleSearch.offset(
                    x, count: 32, largest: largest, weights: weights.baseAddress!, codes: codes.baseAddress!,
                    trialCodes: codes.baseAddress! + 32, firstStretch: -0.9, stretchStep: 0.05, steps: 36,
                    absoluteError: false)
                storeOffset(scale: fit.scale, minimum: -fit.minimum, codes: codes.baseAddress!, largest: largest,
                            into: output)
            }
        }
    }

    private static func storeOffset(scale: Float, minimum: Float, codes: UnsafePointer<UInt8>, largest: Int32,
                                    into output: UnsafeMutablePointer<UInt8>) {
        storeHalf(halfBits(scale), output, at: 0)
        storeHalf(halfBits(minimum), output, at: 2)
        if largest == 15 {
            packSmallBlockCodes(codes, nibbles: output + 4, fifthBits: nil)
        } else {
            packSmallBlockCodes(codes, nibbles: output + 8, fifthBits: output + 4)
        }
    }
}
