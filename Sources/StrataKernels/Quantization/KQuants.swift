// Q4_K and Q5_K: 256-weight super-blocks split into eight sub-blocks of 32. Sub-block `s` has
// a 6-bit scale `sc[s]` and a 6-bit minimum `m[s]`, and weight `q` means
// `(d × sc[s]) × q - (dmin × m[s])`, GGML's expression.

/// Unpacks the six-bit scale and minimum of sub-block `index` (0..<8) from the 12 scale bytes
/// (GGML's `get_scale_min_k4`). Bytes 0-3 hold scales 0-3 and bytes 4-7 minimums 0-3 in their
/// low six bits; scales and minimums 4-7 keep their low four bits in the nibbles of bytes 8-11
/// and their top two bits in the spare top bits of bytes 0-7.
@inline(__always)
func kScaleAndMinimum(_ scales: UnsafeRawPointer, index: Int) -> (scale: UInt8, minimum: UInt8) {
    let byte = { (offset: Int) in scales.load(fromByteOffset: offset, as: UInt8.self) }
    if index < 4 {
        return (byte(index) & 63, byte(index + 4) & 63)
    }
    let scale = (byte(index + 4) & 0x0F) | ((byte(index - 4) >> 6) << 4)
    let minimum = (byte(index + 4) >> 4) | ((byte(index) >> 6) << 4)
    return (scale, minimum)
}

/// The float scales and minimums (`d × sc`, `dmin × m`) of sub-blocks `2 × pair` and
/// `2 × pair + 1`, which share one run of 32 `qs` bytes.
struct KPairScales {
    let lowScale: Float, lowMinimum: Float, highScale: Float, highMinimum: Float

    @inline(__always)
    init(_ block: UnsafeRawPointer, pair: Int, superScale: Float, superMinimum: Float) {
        let low = kScaleAndMinimum(block + 4, index: 2 * pair)
        let high = kScaleAndMinimum(block + 4, index: 2 * pair + 1)
        lowScale = superScale * Float(low.scale)
        lowMinimum = superMinimum * Float(low.minimum)
        highScale = superScale * Float(high.scale)
        highMinimum = superMinimum * Float(high.minimum)
    }
}

/// Q4_K. Block, 144 bytes: `d` fp16 | `dmin` fp16 | `scales` 12 bytes | `qs` 128 bytes. Each
/// 32 bytes of `qs` carry two sub-blocks: the low nibbles the first, the high nibbles the next.
enum Q4_KBlocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let superScale = referenceLoadHalf(block, at: 0)
        let superMinimum = referenceLoadHalf(block, at: 2)
        for pair in 0..<4 {
            let scales = KPairScales(block, pair: pair, superScale: superScale, superMinimum: superMinimum)
            for index in 0..<32 {
                let byte = block.load(fromByteOffset: 16 + 32 * pair + index, as: UInt8.self)
                output[64 * pair + index] = scales.lowScale * Float(byte & 0x0F) - scales.lowMinimum
                output[64 * pair + 32 + index] = scales.highScale * Float(byte >> 4) - scales.highMinimum
            }
        }
    }
}

/// Q5_K. Block, 176 bytes: `d` fp16 | `dmin` fp16 | `scales` 12 bytes | `qh` 32 bytes |
/// `qs` 128 bytes. Nibbles are placed as in Q4_K; the fifth bit of element `l` of sub-block
/// `s` is bit `s` of `qh[l]`.
enum Q5_KBlocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let superScale = referenceLoadHalf(block, at: 0)
        let superMinimum = referenceLoadHalf(block, at: 2)
        for pair in 0..<4 {
            let scales = KPairScales(block, pair: pair, superScale: superScale, superMinimum: superMinimum)
            let lowMask = UInt8(1) << (2 * pair)
            let highMask = UInt8(2) << (2 * pair)
            for index in 0..<32 {
                let byte = block.load(fromByteOffset: 48 + 32 * pair + index, as: UInt8.self)
                let fifth = block.load(fromByteOffset: 16 + index, as: UInt8.self)
                let first = (byte & 0x0F) + (fifth & lowMask != 0 ? 16 : 0)
                let second = (byte >> 4) + (fifth & highMask != 0 ? 16 : 0)
                output[64 * pair + index] = scales.lowScale * Float(first) - scales.lowMinimum
                output[64 * pair + 32 + index] = scales.highScale * Float(second) - scales.highMinimum
            }
        }
    }
}
