/// Q6_K: 256-weight super-blocks of sixteen sub-blocks of 16, each with a signed 8-bit scale;
/// weight `q` (6 bits) means `(d × scale) × (q - 32)`, GGML's order of multiplication.
///
/// Block, 210 bytes: `ql` 128 bytes (low four bits) | `qh` 64 bytes (high two bits) |
/// `scales` 16 signed bytes | `d` fp16. Each half of 128 elements uses 64 bytes of `ql` and 32
/// of `qh`: element `l` (0..<32) of its four quarters takes the low nibble of `ql[l]`, the low
/// nibble of `ql[l + 32]`, the high nibble of `ql[l]`, the high nibble of `ql[l + 32]`, with
/// bits 0-1, 2-3, 4-5, 6-7 of `qh[l]` on top.
enum Q6_KBlocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let superScale = referenceLoadHalf(block, at: 208)
        for half in 0..<2 {
            let low = block + 64 * half
            let high = block + 128 + 32 * half
            let halfOutput = output + 128 * half
            for index in 0..<32 {
                let lowFirst = low.load(fromByteOffset: index, as: UInt8.self)
                let lowSecond = low.load(fromByteOffset: index + 32, as: UInt8.self)
                let highBits = high.load(fromByteOffset: index, as: UInt8.self)
                let scaleOffset = 192 + 8 * half + index / 16
                func weight(_ code: UInt8, quarter: Int) -> Float {
                    let scale = superScale * Float(block.load(fromByteOffset: scaleOffset + 2 * quarter, as: Int8.self))
                    return scale * Float(Int32(code) - 32)
                }
                halfOutput[index] = weight((lowFirst & 0x0F) | (highBits & 3) << 4, quarter: 0)
                halfOutput[index + 32] = weight((lowSecond & 0x0F) | ((highBits >> 2) & 3) << 4, quarter: 1)
                halfOutput[index + 64] = weight((lowFirst >> 4) | ((highBits >> 4) & 3) << 4, quarter: 2)
                halfOutput[index + 96] = weight((lowSecond >> 4) | ((highBits >> 6) & 3) << 4, quarter: 3)
            }
        }
    }

    @inline(__always)
    static func fast(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let superScale = loadHalf(block, at: 208)
        for half in 0..<2 {
            let halfOutput = output + 128 * half
            // one pass per 16 lanes: sub-blocks are 16 long, so each store has one scale
            for part in 0..<2 {
                let lowFirst = loadBytes(block, at: 64 * half + 16 * part)
                let lowSecond = loadBytes(block, at: 64 * half + 32 + 16 * part)
                let highBits = loadBytes(block, at: 128 + 32 * half + 16 * part)
                let codes = (
                    lowNibbles(lowFirst) | ((highBits & 3) &<< 4),
                    lowNibbles(lowSecond) | (((highBits &>> 2) & 3) &<< 4),
                    highNibbles(lowFirst) | (((highBits &>> 4) & 3) &<< 4),
                    highNibbles(lowSecond) | ((highBits &>> 6) &<< 4))
                let scales = block + 192 + 8 * half + part
                let scale = { (quarter: Int) in
                    SIMD16<Float>(repeating: superScale * Float(scales.load(fromByteOffset: 2 * quarter, as: Int8.self)))
                }
                let partOutput = halfOutput + 16 * part
                store(scale(0) * SIMD16<Float>(codes.0, minus: 32), to: partOutput)
                store(scale(1) * SIMD16<Float>(codes.1, minus: 32), to: partOutput + 32)
                store(scale(2) * SIMD16<Float>(codes.2, minus: 32), to: partOutput + 64)
                store(scale(3) * SIMD16<Float>(codes.3, minus: 32), to: partOutput + 96)
            }
        }
    }
}
