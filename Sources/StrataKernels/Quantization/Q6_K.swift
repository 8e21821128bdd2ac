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
}
