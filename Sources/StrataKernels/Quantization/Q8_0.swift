/// Q8_0: 32 weights, each a signed byte `q` meaning `d × q`.
///
/// Block, 34 bytes: `d` fp16 | `qs` 32 signed bytes in element order.
enum Q8_0Blocks {
    @inline(__always)
    static func reference(_ block: UnsafeRawPointer, into output: UnsafeMutablePointer<Float>) {
        let scale = referenceLoadHalf(block, at: 0)
        for index in 0..<32 {
            output[index] = scale * Float(block.load(fromByteOffset: 2 + index, as: Int8.self))
        }
    }
}
