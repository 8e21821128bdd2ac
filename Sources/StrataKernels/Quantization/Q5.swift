/// Q5_0: 32 weights, each a 5-bit code `q` meaning `d × (q - 16)`.
///
/// Block, 22 bytes: `d` fp16 | `qh` 4 bytes, a little-endian UInt32 whose bit `i` is the fifth
/// bit of element `i` | `qs` 16 bytes of low nibbles ordered as in Q4_0.
enum Q5_0Blocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let scale = referenceLoadHalf(block, at: 0)
        let highBits = referenceLoadUInt32(block, at: 2)
        for index in 0..<16 {
            let byte = UInt32(block.load(fromByteOffset: 6 + index, as: UInt8.self))
            let first = (byte & 0x0F) | ((highBits >> index) & 1) << 4
            let second = (byte >> 4) | ((highBits >> (index + 16)) & 1) << 4
            output[index] = scale * Float(Int32(first) - 16)
            output[index + 16] = scale * Float(Int32(second) - 16)
        }
    }
}

/// Q5_1: 32 weights, each a 5-bit code `q` meaning `d × q + m`.
///
/// Block, 24 bytes: `d` fp16 | `m` fp16 | `qh` 4 bytes | `qs` 16 bytes, bits placed as in
/// Q5_0.
enum Q5_1Blocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let scale = referenceLoadHalf(block, at: 0)
        let minimum = referenceLoadHalf(block, at: 2)
        let highBits = referenceLoadUInt32(block, at: 4)
        for index in 0..<16 {
            let byte = UInt32(block.load(fromByteOffset: 8 + index, as: UInt8.self))
            let first = (byte & 0x0F) | ((highBits >> index) & 1) << 4
            let second = (byte >> 4) | ((highBits >> (index + 16)) & 1) << 4
            output[index] = scale * Float(first) + minimum
            output[index + 16] = scale * Float(second) + minimum
        }
    }
}

/// A little-endian UInt32 assembled byte by byte, for the reference paths.
func referenceLoadUInt32(_ source: UnsafeRawPointer, at offset: Int) -> UInt32 {
    var value: UInt32 = 0
    for byte in 0..<4 {
        value |= UInt32(source.load(fromByteOffset: offset + byte, as: UInt8.self)) << (8 * byte)
    }
    return value
}
