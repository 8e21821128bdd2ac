// The scale searches behind the quantizers, following the rules of llama.cpp's
// `ggml-quants.c` (`make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`/`make_qkx3_quants`,
// `make_qp_quants`). Every float operation is spelled out in GGML's order and without fused
// multiply-adds (Swift does not contract), so the codes and scales come out bit for bit as
// the C reference computes them. Integer conversions that C performs by silent truncation
// (an `int` stored into a `uint8_t`) are written as explicit truncations for the same reason.

/// Below this largest magnitude a group counts as all zeros (GGML's `GROUP_MAX_EPS`).
let groupMaximumEpsilon: Float = 1e-15

/// `value` rounded to the nearest integer, ties to even, by GGML's `nearest_int` trick: adding
/// 1.5 × 2^23 leaves the rounded integer in the low mantissa bits. Exact for |value| ≤ 2^22;
/// beyond that it returns what GGML returns rather than trapping.
@inline(__always)
func nearestInt(_ value: Float) -> Int32 {
    let shifted = value + 12_582_912
    return Int32(bitPattern: shifted.bitPattern & 0x007F_FFFF) - 0x0040_0000
}

/// `value` truncated toward zero as x86's `cvttss2si` does (what a C float-to-integer cast
/// compiles to): out-of-range values and NaN give `Int32.min` instead of trapping.
@inline(__always)
func truncatedInt(_ value: Float) -> Int32 {
    value >= -2_147_483_648 && value < 2_147_483_648 ? Int32(value) : Int32.min
}

/// The fp16 bits nearest to `value` (ties to even), as `GGML_FP32_TO_FP16` rounds.
@inline(__always)
func halfBits(_ value: Float) -> UInt16 { Float16(value).bitPattern }

/// `value` after a trip through fp16: the scale a dequantizer will read back.
@inline(__always)
func roundedToHalf(_ value: Float) -> Float { Float(Float16(value)) }

@inline(__always)
func clamp(_ value: Int32, _ lowest: Int32, _ highest: Int32) -> Int32 { max(lowest, min(highest, value)) }

enum ScaleSearch {
    /// The first value of largest magnitude, with its magnitude.
    @inline(__always)
    static func largestMagnitude(_ x: UnsafePointer<Float>, count: Int) -> (value: Float, magnitude: Float) {
        var value: Float = 0, magnitude: Float = 0
        for index in 0..<count where abs(x[index]) > magnitude {
            magnitude = abs(x[index])
            value = x[index]
        }
        return (value, magnitude)
    }

    /// A symmetric scale for `count` values with codes `-largest..<largest`, stored in `codes`
    /// offset by `largest` (GGML's `make_qx_quants` with `rmse_type` 1). The error weights are
    /// `weights`, or `x²` when nil. Tries 18 scales around `largest / max` and keeps the one
    /// whose least-squares fit explains most of the weighted signal.
    static func symmetric(_ x: UnsafePointer<Float>, count: Int, largest: Int32, weights: UnsafePointer<Float>?,
                          codes: UnsafeMutablePointer<Int8>) -> Float {
        let (maximum, magnitude) = largestMagnitude(x, count: count)
        if magnitude < groupMaximumEpsilon {
            codes.update(repeating: 0, count: count)
            return 0
        }
        @inline(__always) func weight(_ index: Int) -> Float { weights?[index] ?? x[index] * x[index] }
        @inline(__always) func code(_ inverseScale: Float, _ index: Int) -> Int32 {
            clamp(nearestInt(inverseScale * x[index]), -largest, largest - 1)
        }
        let nmax = Float(largest)
        var inverseScale = -nmax / maximum
        var sumXL: Float = 0, sumL2: Float = 0
        for index in 0..<count {
            let level = code(inverseScale, index)
            codes[index] = Int8(truncatingIfNeeded: level + largest)
            let w = weight(index), l = Float(level)
            sumXL += w * x[index] * l
            sumL2 += w * l * l
        }
        var scale = sumL2 != 0 ? sumXL / sumL2 : 0
        var best = scale * sumXL
        for step in -9...9 where step != 0 {
            inverseScale = -(nmax + 0.1 * Float(step)) / maximum
            sumXL = 0
            sumL2 = 0
            for index in 0..<count {
                let w = weight(index), l = Float(code(inverseScale, index))
                sumXL += w * x[index] * l
                sumL2 += w * l * l
            }
            if sumL2 > 0 && sumXL * sumXL > best * sumL2 {
                for index in 0..<count {
                    codes[index] = Int8(truncatingIfNeeded: code(inverseScale, index) + largest)
                }
                scale = sumXL / sumL2
                best = scale * sumXL
            }
        }
        return scale
    }

    /// Q3_K's symmetric search without importance (GGML's `make_q3_quants` with `do_rmse`):
    /// codes from `largest / max`, then up to five passes that move single codes while that
    /// raises the `x²`-weighted fit. Codes are stored offset by `largest`.
    static func symmetricRefined(_ x: UnsafePointer<Float>, count: Int, largest: Int32,
                                 codes: UnsafeMutablePointer<Int8>) -> Float {
        let (maximum, magnitude) = largestMagnitude(x, count: count)
        if magnitude < groupMaximumEpsilon {
            codes.update(repeating: 0, count: count)
            return 0
        }
        let inverseScale = -Float(largest) / maximum
        var sumXL: Float = 0, sumL2: Float = 0
        for index in 0..<count {
            let level = clamp(nearestInt(inverseScale * x[index]), -largest, largest - 1)
            codes[index] = Int8(truncatingIfNeeded: level)
            let w = x[index] * x[index], l = Float(level)
            sumXL += w * x[index] * l
            sumL2 += w * l * l
        }
        for _ in 0..<5 {
            var changed = 0
            for index in 0..<count {
                let w = x[index] * x[index], current = Float(codes[index])
                var otherXL = sumXL - w * x[index] * current
                guard otherXL > 0 else { continue }
                var otherL2 = sumL2 - w * current * current
                let level = clamp(nearestInt(x[index] * otherL2 / otherXL), -largest, largest - 1)
                guard level != Int32(codes[index]) else { continue }
                otherXL += w * x[index] * Float(level)
                otherL2 += w * Float(level) * Float(level)
                if otherL2 > 0 && otherXL * otherXL * sumL2 > sumXL * sumXL * otherL2 {
                    codes[index] = Int8(truncatingIfNeeded: level)
                    sumXL = otherXL
                    sumL2 = otherL2
                    changed += 1
                }
            }
            if changed == 0 { break }
        }
        for index in 0..<count { codes[index] = codes[index] &+ Int8(truncatingIfNeeded: largest) }
        return sumL2 > 0 ? sumXL / sumL2 : 0
    }

    /// A scale and a minimum for `count` values with codes `0...largest`, meaning
    /// `scale × code - minimum` (GGML's `make_qkx2_quants`, and `make_qkx3_quants` with
    /// weights, which is the same search). Starts from the range `[min(x, 0), max(x)]`, then
    /// tries `nstep + 1` stretched ranges, fitting scale and minimum by weighted least squares
    /// for each and keeping the lowest weighted error (absolute with `absoluteError`, else
    /// squared). Returns `minimum` as a non-negative amount to subtract.
    static func offset(_ x: UnsafePointer<Float>, count: Int, largest: Int32, weights: UnsafePointer<Float>,
                       codes: UnsafeMutablePointer<UInt8>, trialCodes: UnsafeMutablePointer<UInt8>,
                       firstStretch: Float, stretchStep: Float, steps: Int, absoluteError: Bool)
        -> (scale: Float, minimum: Float) {
        var low = x[0], high = x[0]
        var sumW = weights[0]
        var sumX = sumW * x[0]
        for index in 1..<count {
            if x[index] < low { low = x[index] }
            if x[index] > high { high = x[index] }
            let w = weights[index]
            sumW += w
            sumX += w * x[index]
        }
        if low > 0 { low = 0 }
        if high <= low {
            codes.update(repeating: 0, count: count)
            return (0, -low)
        }
        let nmax = Float(largest)
        @inline(__always) func error(_ scale: Float, _ minimum: Float, _ code: UInt8, _ index: Int) -> Float {
            let difference = scale * Float(code) + minimum - x[index]
            return weights[index] * (absoluteError ? abs(difference) : difference * difference)
        }
        var inverseScale = nmax / (high - low)
        var scale = 1 / inverseScale
        var bestError: Float = 0
        for index in 0..<count {
            codes[index] = UInt8(truncatingIfNeeded: clamp(nearestInt(inverseScale * (x[index] - low)), 0, largest))
            bestError += error(scale, low, codes[index], index)
        }
        for step in 0...steps {
            inverseScale = (firstStretch + stretchStep * Float(step) + nmax) / (high - low)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for index in 0..<count {
                let level = clamp(nearestInt(inverseScale * (x[index] - low)), 0, largest)
                trialCodes[index] = UInt8(truncatingIfNeeded: level)
                let w = weights[index], l = Float(level)
                sumL += w * l
                sumL2 += w * l * l
                sumXL += w * l * x[index]
            }
            let determinant = sumW * sumL2 - sumL * sumL
            guard determinant > 0 else { continue }
            var trialScale = (sumW * sumXL - sumX * sumL) / determinant
            var trialMinimum = (sumL2 * sumX - sumL * sumXL) / determinant
            if trialMinimum > 0 {
                trialMinimum = 0
                trialScale = sumXL / sumL2
            }
            var trialError: Float = 0
            for index in 0..<count { trialError += error(trialScale, trialMinimum, trialCodes[index], index) }
            if trialError < bestError {
                codes.update(from: trialCodes, count: count)
                bestError = trialError
                scale = trialScale
                low = trialMinimum
            }
        }
        return (scale, -low)
    }

    /// A scale for `count` non-negative values (sub-block scales or minimums) with codes
    /// `0...largest` under importance `weights` (GGML's `make_qp_quants`): the best of nine
    /// scales around `largest / max` by weighted squared error, then up to five passes moving
    /// single codes while that raises the weighted fit.
    static func positive(_ x: UnsafePointer<Float>, count: Int, largest: Int32, weights: UnsafePointer<Float>,
                         codes: UnsafeMutablePointer<UInt8>) -> Float {
        var maximum: Float = 0
        for index in 0..<count { maximum = maximum > x[index] ? maximum : x[index] }
        if maximum < groupMaximumEpsilon {
            codes.update(repeating: 0, count: count)
            return 0
        }
        let nmax = Float(largest)
        var inverseScale = nmax / maximum
        // the first codes are not clamped, as in GGML; they only score the first scale
        for index in 0..<count { codes[index] = UInt8(truncatingIfNeeded: nearestInt(inverseScale * x[index])) }
        let firstScale = 1 / inverseScale
        var bestError: Float = 0
        for index in 0..<count {
            let difference = x[index] - firstScale * Float(codes[index])
            bestError += weights[index] * difference * difference
        }
        for step in -4...4 where step != 0 {
            let trialInverse = (0.1 * Float(step) + nmax) / maximum
            let trialScale = 1 / trialInverse
            var trialError: Float = 0
            for index in 0..<count {
                let level = min(largest, nearestInt(trialInverse * x[index]))
                let difference = x[index] - trialScale * Float(level)
                trialError += weights[index] * difference * difference
            }
            if trialError < bestError {
                bestError = trialError
                inverseScale = trialInverse
            }
        }
        var sumXL: Float = 0, sumL2: Float = 0
        for index in 0..<count {
            let level = min(largest, nearestInt(inverseScale * x[index]))
            codes[index] = UInt8(truncatingIfNeeded: level)
            let w = weights[index], l = Float(level)
            sumXL += w * x[index] * l
            sumL2 += w * l * l
        }
        for _ in 0..<5 {
            var changed = 0
            for index in 0..<count {
                let w = weights[index], current = Float(codes[index])
                var otherXL = sumXL - w * x[index] * current
                var otherL2 = sumL2 - w * current * current
                guard otherXL > 0 && otherL2 > 0 else { continue }
                let level = min(largest, nearestInt(x[index] * otherL2 / otherXL))
                guard level != Int32(codes[index]) else { continue }
                otherXL += w * x[index] * Float(level)
                otherL2 += w * Float(level) * Float(level)
                if otherXL * otherXL * sumL2 > sumXL * sumXL * otherL2 {
                    codes[index] = UInt8(truncatingIfNeeded: level)
                    sumXL = otherXL
                    sumL2 = otherL2
                    changed += 1
                }
            }
            if changed == 0 { break }
        }
        return sumL2 > 0 ? sumXL / sumL2 : 0
    }
}
