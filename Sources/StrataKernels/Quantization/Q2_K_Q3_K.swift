// Q2_K and Q3_K: 256-weight super-blocks of sixteen sub-blocks of 16 with two-bit code
// planes. In each half of 128 elements, byte `l` (0..<32) of the half's 32 `qs` bytes holds
// elements `l`, `l + 32`, `l + 64` and `l + 96` in bits 0-1, 2-3, 4-5 and 6-7.

/// The two low bits of element `index` (0..<256) from the `qs` bytes at `codes`.
@inline(__always)
func twoBitCode(_ codes: UnsafeRawPointer, index: Int) -> UInt8 {
    let half = index / 128, within = index % 128
    let byte = codes.load(fromByteOffset: 32 * half + within % 32, as: UInt8.self)
    return (byte >> (2 * (within / 32))) & 3
}

/// Q2_K. Block, 84 bytes: `scales` 16 bytes | `qs` 64 bytes | `d` fp16 | `dmin` fp16. Byte `s`
/// of `scales` gives sub-block `s` its scale (low nibble) and minimum (high nibble); weight
/// `q` (0...3) means `(d × scale) × q - dmin × minimum`, GGML's expression.
enum Q2_KBlocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let superScale = referenceLoadHalf(block, at: 80)
        let superMinimum = referenceLoadHalf(block, at: 82)
        for sub in 0..<16 {
            let packed = block.load(fromByteOffset: sub, as: UInt8.self)
            let scale = superScale * Float(packed & 0x0F)
            let minimum = superMinimum * Float(packed >> 4)
            for index in 16 * sub..<16 * (sub + 1) {
                output[index] = scale * Float(twoBitCode(block + 16, index: index)) - minimum
            }
        }
    }
}

/// Q3_K. Block, 110 bytes: `hmask` 32 bytes | `qs` 64 bytes | `scales` 12 bytes | `d` fp16.
/// Element `j`'s third bit is bit `j / 32` of `hmask[j % 32]`; a clear bit subtracts 4, so
/// codes run -4...3. Sub-block `s` has a six-bit scale stored offset by 32: its low four bits
/// in the low nibble of `scales[s]` (s < 8) or the high nibble of `scales[s - 8]`, its top two
/// bits in bits `2 (s / 4)` of `scales[8 + s % 4]`. Weight = `(d × (scale - 32)) × code`.
enum Q3_KBlocks {
    /// The signed scale of sub-block `index` (0..<16) from the 12 packed bytes.
    @inline(__always)
    static func scale(_ scales: UnsafeRawPointer, index: Int) -> Int32 {
        let byte = { (offset: Int) in scales.load(fromByteOffset: offset, as: UInt8.self) }
        let low = index < 8 ? byte(index) & 0x0F : byte(index - 8) >> 4
        let high = (byte(8 + index % 4) >> (2 * (index / 4))) & 3
        return Int32(low | high << 4) - 32
    }

    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let superScale = referenceLoadHalf(block, at: 108)
        for sub in 0..<16 {
            let scale = superScale * Float(scale(block + 96, index: sub))
            for index in 16 * sub..<16 * (sub + 1) {
                let highBit = block.load(fromByteOffset: index % 32, as: UInt8.self) >> (index / 32) & 1
                let code = Int32(twoBitCode(block + 32, index: index)) - (highBit == 0 ? 4 : 0)
                output[index] = scale * Float(code)
            }
        }
    }
}
