/// Q4_0: 32 weights, each a 4-bit code `q` meaning `d × (q - 8)`.
///
/// Block, 18 bytes: `d` fp16 | `qs` 16 bytes. Element `i < 16` is the low nibble of `qs[i]`,
/// element `i + 16` its high nibble.
enum Q4_0Blocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let scale = referenceLoadHalf(block, at: 0)
        for index in 0..<16 {
            let byte = block.load(fromByteOffset: 2 + index, as: UInt8.self)
            output[index] = scale * Float(Int32(byte & 0x0F) - 8)
            output[index + 16] = scale * Float(Int32(byte >> 4) - 8)
        }
    }
}

/// Q4_1: 32 weights, each a 4-bit code `q` meaning `d × q + m`.
///
/// Block, 20 bytes: `d` fp16 | `m` fp16 | `qs` 16 bytes, nibbles ordered as in Q4_0.
enum Q4_1Blocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let scale = referenceLoadHalf(block, at: 0)
        let minimum = referenceLoadHalf(block, at: 2)
        for index in 0..<16 {
            let byte = block.load(fromByteOffset: 4 + index, as: UInt8.self)
            output[index] = scale * Float(byte & 0x0F) + minimum
            output[index + 16] = scale * Float(byte >> 4) + minimum
        }
    }
}
