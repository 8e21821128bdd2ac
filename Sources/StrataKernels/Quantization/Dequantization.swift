import StrataKernelsC

/// Block dequantization: turns `count` encoded elements into float32.
///
/// Every computable format decodes to `scale × integer`, plus a minimum for Q4_1, Q5_1, Q2_K,
/// Q4_K and Q5_K. Both paths evaluate GGML's float32 expression (`d * Float(q - 8)`,
/// `d * Float(q) + m`, `(d * sc) * Float(q) - dmin * m`, `(d * sc) * Float(q - 32)`) as separate
/// multiplies and adds. The order hardly matters: an fp16 scale has 11 significant bits, so
/// `d × sc` and `d × q` (at most 22 bits) are exact in float32 and each element is rounded
/// once at most, which makes fused or reordered versions give the same bits. Fast and
/// reference paths therefore agree bit for bit, and with GGML and gguf-py.
public enum Dequantization {
    /// Dequantizes with the vector kernels of the C target (`strata_dequantize`).
    ///
    /// - Parameters:
    ///   - format: a format whose `isComputable` is true; any other traps.
    ///   - source: `count / format.blockSize` whole blocks, at any alignment.
    ///   - destination: room for `count` floats, at any alignment.
    ///   - count: a multiple of `format.blockSize`.
    public static func dequantize(_ format: QuantFormat, source: UnsafeRawPointer,
                                  into destination: UnsafeMutablePointer<Float>, count: Int) {
        dequantize(format, source: source, into: destination, count: count, level: .detected)
    }

    /// `dequantize` at a given level, for tests that compare the levels.
    static func dequantize(_ format: QuantFormat, source: UnsafeRawPointer,
                           into destination: UnsafeMutablePointer<Float>, count: Int, level: KernelLevel) {
        checkWholeBlocks(format, count: count)
        guard format.isComputable else { unsupported(format) }
        strata_dequantize(level.rawValue, format.rawValue, source, destination, count)
    }

    /// The plain scalar version of `dequantize`, written to follow each format's definition
    /// (GGML's `dequantize_row_*`) and reading fp16 scales field by field rather than through
    /// the hardware conversion. Tests use it as the oracle; same preconditions as `dequantize`.
    public static func dequantizeReference(_ format: QuantFormat, source: UnsafeRawPointer,
                                           into destination: UnsafeMutablePointer<Float>, count: Int) {
        checkWholeBlocks(format, count: count)
        switch format {
        case .f32: PlainFloats.referenceF32(source, into: destination, count: count)
        case .f16: PlainFloats.referenceF16(source, into: destination, count: count)
        case .bf16: PlainFloats.referenceBF16(source, into: destination, count: count)
        case .q4_0: forEachBlock(format, source, destination, count) { Q4_0Blocks.reference($0, into: $1) }
        case .q4_1: forEachBlock(format, source, destination, count) { Q4_1Blocks.reference($0, into: $1) }
        case .q5_0: forEachBlock(format, source, destination, count) { Q5_0Blocks.reference($0, into: $1) }
        case .q5_1: forEachBlock(format, source, destination, count) { Q5_1Blocks.reference($0, into: $1) }
        case .q8_0: forEachBlock(format, source, destination, count) { Q8_0Blocks.reference($0, into: $1) }
        case .q2_K: forEachBlock(format, source, destination, count) { Q2_KBlocks.reference($0, into: $1) }
        case .q3_K: forEachBlock(format, source, destination, count) { Q3_KBlocks.reference($0, into: $1) }
        case .q4_K: forEachBlock(format, source, destination, count) { Q4_KBlocks.reference($0, into: $1) }
        case .q5_K: forEachBlock(format, source, destination, count) { Q5_KBlocks.reference($0, into: $1) }
        case .q6_K: forEachBlock(format, source, destination, count) { Q6_KBlocks.reference($0, into: $1) }
        default: unsupported(format)
        }
    }

    private static func checkWholeBlocks(_ format: QuantFormat, count: Int) {
        precondition(count >= 0 && count % format.blockSize == 0,
                     "\(format): \(count) elements is not a whole number of \(format.blockSize)-element blocks")
    }

    /// Runs `decode` on each block and the place of its first output element.
    private static func forEachBlock(_ format: QuantFormat, _ source: UnsafeRawPointer,
                                     _ destination: UnsafeMutablePointer<Float>, _ count: Int,
                                     _ decode: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void) {
        let bytesPerBlock = format.bytesPerBlock
        let elementsPerBlock = format.blockSize
        for blockIndex in 0..<(count / elementsPerBlock) {
            decode(source + blockIndex * bytesPerBlock, destination + blockIndex * elementsPerBlock)
        }
    }

    private static func unsupported(_ format: QuantFormat) -> Never {
        preconditionFailure("\(format) dequantization is not implemented; check QuantFormat.isComputable")
    }
}

extension ByteView {
    /// Dequantizes `count` elements of `format` starting at element `elementOffset`, both
    /// multiples of `format.blockSize`, into a new array. For callers above the kernels: norm
    /// weights, single embedding rows, tests. Traps if the blocks lie outside the view or the
    /// format is not computable.
    public func dequantized(_ format: QuantFormat, elementOffset: Int = 0, count: Int) -> [Float] {
        guard let start = format.byteCount(elements: elementOffset),
              let length = format.byteCount(elements: count) else {
            preconditionFailure("\(format): offset \(elementOffset) or count \(count) is not on a block boundary")
        }
        precondition(contains(start: start, length: length),
                     "\(format): elements \(elementOffset)+\(count) need bytes \(start)+\(length), view has \(self.count)")
        return withUnsafeBytes { bytes in
            [Float](unsafeUninitializedCapacity: count) { buffer, initializedCount in
                if let destination = buffer.baseAddress, let base = bytes.baseAddress {
                    Dequantization.dequantize(format, source: base + start, into: destination, count: count)
                }
                initializedCount = count
            }
        }
    }
}
