// Quantizers for the 256-element K formats, following llama.cpp's `quantize_row_q*_K_ref`
// (no importance) and `quantize_row_q*_K_impl` (with importance). Each super-block is
// searched sub-block by sub-block, the sub-block scales (and minimums) are quantized against
// one fp16 super-scale, and finally every code is recomputed from the scales a dequantizer
// will actually read, so rounding in the scales costs as little as possible.

/// Working memory for one super-block: codes and trial codes for 256 elements, the sub-block
/// scales and minimums, their codes, and error weights.
struct KScratch {
    let codes: UnsafeMutablePointer<UInt8>
    let signedCodes: UnsafeMutablePointer<Int8>
    let trialCodes: UnsafeMutablePointer<UInt8>
    let weights: UnsafeMutablePointer<Float>
    let scales: UnsafeMutablePointer<Float>
    let minimums: UnsafeMutablePointer<Float>
    let subBlockWeights: UnsafeMutablePointer<Float>
    let scaleCodes: UnsafeMutablePointer<UInt8>
    let minimumCodes: UnsafeMutablePointer<UInt8>

    /// Fills `weights` with sub-block `sub`'s importance weights (`count` elements) and
    /// records their sum in `subBlockWeights`, which weighs the sub-block's scale.
    func weighSubBlock(_ sub: Int, of x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>,
                       sigma2: Float) {
        importanceWeights(x + count * sub, importance: importance + count * sub, count: count, sigma2: sigma2,
                          into: weights)
        var total: Float = 0
        for index in 0..<count { total += weights[index] }
        subBlockWeights[sub] = total
    }

    static func with<Result>(_ body: (KScratch) -> Result) -> Result {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 * 3 + 32) { bytes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + 16 * 3) { floats in
                let byteBase = bytes.baseAddress!, floatBase = floats.baseAddress!
                let signed = UnsafeMutableRawPointer(byteBase + 256).bindMemory(to: Int8.self, capacity: 256)
                return body(KScratch(
                    codes: byteBase, signedCodes: signed, trialCodes: byteBase + 512, weights: floatBase,
                    scales: floatBase + 32, minimums: floatBase + 48, subBlockWeights: floatBase + 64,
                    scaleCodes: byteBase + 768, minimumCodes: byteBase + 784))
            }
        }
    }
}

/// Packs 256 two-bit codes as Q2_K and Q3_K store them: in each half of 128 elements, byte `l`
/// (0..<32) holds elements `l`, `l + 32`, `l + 64` and `l + 96` in bits 0-1, 2-3, 4-5, 6-7.
private func packTwoBitCodes(_ codes: UnsafePointer<UInt8>, into output: UnsafeMutablePointer<UInt8>) {
    for half in 0..<2 {
        let source = codes + 128 * half
        for index in 0..<32 {
            output[32 * half + index] = source[index] | source[index + 32] << 2 | source[index + 64] << 4
                | source[index + 96] << 6
        }
    }
}

/// Packs eight six-bit scales and minimums into Q4_K/Q5_K's 12 bytes (the inverse of
/// `kScaleAndMinimum`), with C's truncation of out-of-range codes.
private func packKScales(scales: UnsafePointer<UInt8>, minimums: UnsafePointer<UInt8>,
                         into output: UnsafeMutablePointer<UInt8>) {
    output.update(repeating: 0, count: 12)
    for index in 0..<8 {
        let scale = scales[index], minimum = minimums[index]
        if index < 4 {
            output[index] = scale
            output[index + 4] = minimum
        } else {
            output[index + 4] = (scale & 0x0F) | (minimum & 0x0F) << 4
            output[index - 4] |= (scale >> 4) << 6
            output[index] |= (minimum >> 4) << 6
        }
    }
}

enum KQuantizers {
    // MARK: Q2_K — block: scales 16 bytes (scale low nibble, minimum high nibble) | qs 64 |
    // d fp16 | dmin fp16. Sixteen sub-blocks of 16, weight = d·sc·q - dmin·m, q in 0...3.

    static func q2_K(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>?, scratch: KScratch,
                     into output: UnsafeMutablePointer<UInt8>) {
        let codes = scratch.codes, scales = scratch.scales, minimums = scratch.minimums
        let superScale: Float, superMinimum: Float
        if let importance {
            let sigma2 = sumOfSquares(x, count: 256) / 256
            for sub in 0..<16 {
                scratch.weighSubBlock(sub, of: x, count: 16, importance: importance, sigma2: sigma2)
                (scales[sub], minimums[sub]) = ScaleSearch.offset(
                    x + 16 * sub, count: 16, largest: 3, weights: scratch.weights, codes: codes + 16 * sub,
                    trialCodes: scratch.trialCodes, firstStretch: -0.9, stretchStep: 0.05, steps: 36,
                    absoluteError: false)
            }
            let scaleStep = ScaleSearch.positive(scales, count: 16, largest: 15, weights: scratch.subBlockWeights,
                                                 codes: scratch.scaleCodes)
            let minimumStep = ScaleSearch.positive(minimums, count: 16, largest: 15,
                                                   weights: scratch.subBlockWeights, codes: scratch.minimumCodes)
            storeHalf(halfBits(scaleStep), output, at: 80)
            storeHalf(halfBits(minimumStep), output, at: 82)
            for sub in 0..<16 { output[sub] = scratch.scaleCodes[sub] | scratch.minimumCodes[sub] << 4 }
            (superScale, superMinimum) = (roundedToHalf(scaleStep), roundedToHalf(minimumStep))
        } else {
            var largestScale: Float = 0, largestMinimum: Float = 0
            for sub in 0..<16 {
                for index in 0..<16 { scratch.weights[index] = abs(x[16 * sub + index]) }
                (scales[sub], minimums[sub]) = ScaleSearch.offset(
                    x + 16 * sub, count: 16, largest: 3, weights: scratch.weights, codes: codes + 16 * sub,
                    trialCodes: scratch.trialCodes, firstStretch: -0.5, stretchStep: 0.1, steps: 15,
                    absoluteError: true)
                if scales[sub] > largestScale { largestScale = scales[sub] }
                if minimums[sub] > largestMinimum { largestMinimum = minimums[sub] }
            }
            output.update(repeating: 0, count: 16)
            if largestScale > 0 {
                let inverse = 15 / largestScale
                for sub in 0..<16 { output[sub] = UInt8(truncatingIfNeeded: nearestInt(inverse * scales[sub])) }
            }
            if largestMinimum > 0 {
                let inverse = 15 / largestMinimum
                for sub in 0..<16 {
                    output[sub] = UInt8(truncatingIfNeeded: Int32(output[sub]) | nearestInt(inverse * minimums[sub]) << 4)
                }
            }
            let scaleBits = halfBits(largestScale > 0 ? largestScale / 15 : 0)
            let minimumBits = halfBits(largestMinimum > 0 ? largestMinimum / 15 : 0)
            storeHalf(scaleBits, output, at: 80)
            storeHalf(minimumBits, output, at: 82)
            (superScale, superMinimum) = (floatFromHalf(scaleBits), floatFromHalf(minimumBits))
        }
        for sub in 0..<16 {
            let scale = superScale * Float(output[sub] & 0x0F)
            if scale == 0 { continue }
            let minimum = superMinimum * Float(output[sub] >> 4)
            for index in 16 * sub..<16 * (sub + 1) {
                codes[index] = UInt8(truncatingIfNeeded: clamp(nearestInt((x[index] + minimum) / scale), 0, 3))
            }
        }
        packTwoBitCodes(codes, into: output + 16)
    }

    // MARK: Q3_K — block: hmask 32 | qs 64 | scales 12 (sixteen six-bit codes, offset 32) |
    // d fp16. Sixteen sub-blocks of 16, weight = d·(sc - 32)·(q - 4), q in 0...7.

    static func q3_K(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>?, scratch: KScratch,
                     into output: UnsafeMutablePointer<UInt8>) {
        let codes = scratch.signedCodes, scales = scratch.scales
        let packed = output + 96
        packed.update(repeating: 0, count: 12)
        func storeScaleCode(_ sub: Int, _ code: Int32) {
            if sub < 8 {
                packed[sub] = UInt8(truncatingIfNeeded: code & 0x0F)
            } else {
                packed[sub - 8] |= UInt8(truncatingIfNeeded: (code & 0x0F) << 4)
            }
            packed[8 + sub % 4] |= UInt8(truncatingIfNeeded: (code >> 4) << (2 * (sub / 4)))
        }
        let scaleBits: UInt16
        if let importance {
            let sigma2 = 2 * sumOfSquares(x, count: 256) / 256
            for sub in 0..<16 {
                scratch.weighSubBlock(sub, of: x, count: 16, importance: importance, sigma2: sigma2)
                scales[sub] = ScaleSearch.symmetric(x + 16 * sub, count: 16, largest: 4, weights: scratch.weights,
                                                    codes: codes + 16 * sub)
            }
            let scaleCodes = UnsafeMutableRawPointer(scratch.scaleCodes).bindMemory(to: Int8.self, capacity: 16)
            let superScale = ScaleSearch.symmetric(scales, count: 16, largest: 32, weights: scratch.subBlockWeights,
                                                   codes: scaleCodes)
            for sub in 0..<16 { storeScaleCode(sub, Int32(scaleCodes[sub])) }
            scaleBits = halfBits(superScale)
        } else {
            var largest: Float = 0, magnitude: Float = 0
            for sub in 0..<16 {
                scales[sub] = ScaleSearch.symmetricRefined(x + 16 * sub, count: 16, largest: 4, codes: codes + 16 * sub)
                if abs(scales[sub]) > magnitude {
                    magnitude = abs(scales[sub])
                    largest = scales[sub]
                }
            }
            if largest != 0 {
                let inverse = -32 / largest
                for sub in 0..<16 {
                    let code = Int32(Int8(truncatingIfNeeded: nearestInt(inverse * scales[sub])))
                    storeScaleCode(sub, clamp(code, -32, 31) + 32)
                }
                scaleBits = halfBits(1 / inverse)
            } else {
                scaleBits = halfBits(0)
            }
        }
        storeHalf(scaleBits, output, at: 108)
        let superScale = floatFromHalf(scaleBits)
        for sub in 0..<16 {
            let low = sub < 8 ? packed[sub] & 0x0F : packed[sub - 8] >> 4
            let high = (packed[8 + sub % 4] >> (2 * (sub / 4))) & 3
            let scale = superScale * Float(Int32(low | high << 4) - 32)
            if scale == 0 { continue }
            for index in 16 * sub..<16 * (sub + 1) {
                codes[index] = Int8(clamp(nearestInt(x[index] / scale), -4, 3) + 4)
            }
        }
        // the third bit of element j goes to bit j / 32 of hmask[j % 32]
        let highMask = output
        highMask.update(repeating: 0, count: 32)
        let lowCodes = scratch.codes
        for index in 0..<256 {
            var code = codes[index]
            if code > 3 {
                highMask[index % 32] |= UInt8(1) << (index / 32)
                code -= 4
            }
            lowCodes[index] = UInt8(truncatingIfNeeded: code)
        }
        packTwoBitCodes(lowCodes, into: output + 32)
    }

    // MARK: Q4_K and Q5_K — block: d fp16 | dmin fp16 | scales 12 | (Q5_K: qh 32) | qs 128.
    // Eight sub-blocks of 32, weight = d·sc·q - dmin·m with six-bit sc and m.

    /// Q4_K (`largest` 15) or Q5_K (`largest` 31).
    static func fourOrFiveBit(_ x: UnsafePointer<Float>, largest: Int32, importance: UnsafePointer<Float>?,
                              scratch: KScratch, into output: UnsafeMutablePointer<UInt8>) {
        let codes = scratch.codes, scales = scratch.scales, minimums = scratch.minimums
        let scaleCodes = scratch.scaleCodes, minimumCodes = scratch.minimumCodes
        let scaleBits: UInt16, minimumBits: UInt16
        if let importance {
            let sigma2 = 2 * sumOfSquares(x, count: 256) / 256
            for sub in 0..<8 {
                scratch.weighSubBlock(sub, of: x, count: 32, importance: importance, sigma2: sigma2)
                (scales[sub], minimums[sub]) = ScaleSearch.offset(
                    x + 32 * sub, count: 32, largest: largest, weights: scratch.weights, codes: codes + 32 * sub,
                    trialCodes: scratch.trialCodes, firstStretch: -0.9, stretchStep: 0.05, steps: 36,
                    absoluteError: false)
            }
            let scaleStep = ScaleSearch.positive(scales, count: 8, largest: 63, weights: scratch.subBlockWeights,
                                                 codes: scaleCodes)
            let minimumStep = ScaleSearch.positive(minimums, count: 8, largest: 63, weights: scratch.subBlockWeights,
                                                   codes: minimumCodes)
            if largest == 31 {
                for sub in 0..<8 {
                    scaleCodes[sub] = min(63, scaleCodes[sub])
                    minimumCodes[sub] = min(63, minimumCodes[sub])
                }
            }
            (scaleBits, minimumBits) = (halfBits(scaleStep), halfBits(minimumStep))
        } else {
            var largestScale: Float = 0, largestMinimum: Float = 0
            for sub in 0..<8 {
                let group = x + 32 * sub
                let average = (sumOfSquares(group, count: 32) / 32).squareRoot()
                for index in 0..<32 { scratch.weights[index] = average + abs(group[index]) }
                (scales[sub], minimums[sub]) = ScaleSearch.offset(
                    group, count: 32, largest: largest, weights: scratch.weights, codes: codes + 32 * sub,
                    trialCodes: scratch.trialCodes, firstStretch: largest == 15 ? -1 : -0.5, stretchStep: 0.1,
                    steps: largest == 15 ? 20 : 15, absoluteError: false)
                if scales[sub] > largestScale { largestScale = scales[sub] }
                if minimums[sub] > largestMinimum { largestMinimum = minimums[sub] }
            }
            let inverseScale: Float = largestScale > 0 ? 63 / largestScale : 0
            let inverseMinimum: Float = largestMinimum > 0 ? 63 / largestMinimum : 0
            for sub in 0..<8 {
                scaleCodes[sub] = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseScale * scales[sub])))
                minimumCodes[sub] = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseMinimum * minimums[sub])))
            }
            (scaleBits, minimumBits) = (halfBits(largestScale / 63), halfBits(largestMinimum / 63))
        }
        packKScales(scales: scaleCodes, minimums: minimumCodes, into: output + 4)
        storeHalf(scaleBits, output, at: 0)
        storeHalf(minimumBits, output, at: 2)
        let superScale = floatFromHalf(scaleBits), superMinimum = floatFromHalf(minimumBits)
        for sub in 0..<8 {
            let packed = kScaleAndMinimum(UnsafeRawPointer(output + 4), index: sub)
            let scale = superScale * Float(packed.scale)
            if scale == 0 { continue }
            let minimum = superMinimum * Float(packed.minimum)
            for index in 32 * sub..<32 * (sub + 1) {
                codes[index] = UInt8(truncatingIfNeeded: clamp(nearestInt((x[index] + minimum) / scale), 0, largest))
            }
        }
        if largest == 15 {
            for pair in 0..<4 {
                for index in 0..<32 {
                    output[16 + 32 * pair + index] = codes[64 * pair + index] | codes[64 * pair + 32 + index] << 4
                }
            }
            return
        }
        // Q5_K: the fifth bit of element l of sub-block s is bit s of qh[l]
        let fifthBits = output + 16
        fifthBits.update(repeating: 0, count: 32)
        for pair in 0..<4 {
            for index in 0..<32 {
                let first = codes[64 * pair + index], second = codes[64 * pair + 32 + index]
                fifthBits[index] |= (first >> 4) << (2 * pair) | (second >> 4) << (2 * pair + 1)
                output[48 + 32 * pair + index] = (first & 0x0F) | (second & 0x0F) << 4
            }
        }
    }

    // MARK: Q6_K — block: ql 128 | qh 64 | scales 16 signed bytes | d fp16. Sixteen
    // sub-blocks of 16, weight = d·sc·(q - 32), q in 0...63.

    static func q6_K(_ x: UnsafePointer<Float>, importance: UnsafePointer<Float>?, scratch: KScratch,
                     into output: UnsafeMutablePointer<UInt8>) {
        let codes = scratch.signedCodes, scales = scratch.scales
        var largest: Float = 0, magnitude: Float = 0
        for sub in 0..<16 {
            // llama.cpp weights Q6_K's search by the raw importance, without the σ² term
            scales[sub] = ScaleSearch.symmetric(x + 16 * sub, count: 16, largest: 32,
                                                weights: importance.map { $0 + 16 * sub }, codes: codes + 16 * sub)
            if abs(scales[sub]) > magnitude {
                magnitude = abs(scales[sub])
                largest = scales[sub]
            }
        }
        if magnitude < groupMaximumEpsilon {
            output.update(repeating: 0, count: 210)
            return
        }
        let inverse = -128 / largest
        let scaleBits = halfBits(1 / inverse)
        storeHalf(scaleBits, output, at: 208)
        let superScale = floatFromHalf(scaleBits)
        for sub in 0..<16 {
            let code = min(127, nearestInt(inverse * scales[sub]))
            output[192 + sub] = UInt8(truncatingIfNeeded: code)
            let scale = superScale * Float(Int8(truncatingIfNeeded: code))
            if scale == 0 { continue }
            for index in 16 * sub..<16 * (sub + 1) {
                codes[index] = Int8(clamp(nearestInt(x[index] / scale), -32, 31) + 32)
            }
        }
        for half in 0..<2 {
            let source = codes + 128 * half, low = output + 64 * half, high = output + 128 + 32 * half
            for index in 0..<32 {
                let first = UInt8(bitPattern: source[index]), second = UInt8(bitPattern: source[index + 32])
                let third = UInt8(bitPattern: source[index + 64]), fourth = UInt8(bitPattern: source[index + 96])
                low[index] = (first & 0x0F) | (third & 0x0F) << 4
                low[index + 32] = (second & 0x0F) | (fourth & 0x0F) << 4
                high[index] = first >> 4 | (second >> 4) << 2 | (third >> 4) << 4 | (fourth >> 4) << 6
            }
        }
    }
}
