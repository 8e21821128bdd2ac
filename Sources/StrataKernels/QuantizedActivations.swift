import StrataKernelsC

/// The implementation the quantized kernels run, detected once per process.
enum KernelLevel: Int32, Sendable, CaseIterable {
    /// Plain C; the same bits as the vector levels, only slower.
    case portable = 0
    /// AVX2 with FMA and F16C (e.g. AMD Zen 2/3): the AVX-512 arithmetic in 8-lane halves.
    case avx2 = 1
    /// AVX-512 F/BW/VL/VNNI with FMA and F16C.
    case avx512 = 2

    /// The fastest level this CPU runs: the one place the choice is made.
    static let detected = KernelLevel(rawValue: strata_detect_level()) ?? .portable

    /// Levels this machine can run, for tests that compare them.
    static var available: [KernelLevel] { allCases.filter { $0.rawValue <= detected.rawValue } }
}

/// How finely `QuantizedActivations` rounds activations.
public enum ActivationPrecision: String, Sendable, Codable, CaseIterable {
    /// int16 codes: rounding error ~1/65,000 of a group's largest value; what the small models
    /// with large activation outliers need to keep their next-token choices.
    case sixteenBit = "16"
    /// int8 codes, as llama.cpp's q8 blocks: rounding error ~1/250 of a group's largest value,
    /// for half the integer arithmetic per token (a batch of tokens costs about half as much).
    case eightBit = "8"
}

/// Token activations quantized to 16-bit or 8-bit codes for `WeightMatrix.multiply(_:into:pool:)`.
///
/// Each run of 32 floats becomes 32 integer codes with a float scale and the block's sum.
/// 16 bits: scale `max |x| / 32767`, shared by each run of 256 floats when a row is a
/// multiple of 256 (the K formats' super-block, so a K-format product converts to float once
/// per 256 weights), else per 32. 8 bits: scale `max |x| / 127` per 32 floats always (one per
/// 256 broke the quality bounds on Qwen2.5-Coder-1.5B: perplexity +1.5%), plus sums per 16.
/// A row is quantized once and reused by every weight row.
///
/// Create one per model with the largest `tokens × columns` it will hold; `quantize` then
/// reuses the same storage and never allocates.
public struct QuantizedActivations: Sendable {
    /// Bits per code.
    public let precision: ActivationPrecision
    /// Token rows currently held.
    public private(set) var tokens = 0
    /// Elements per token row (a multiple of 32).
    public private(set) var columns = 0
    /// The most elements (`tokens × columns`) this buffer can hold.
    public let capacity: Int
    /// 16-bit blocks (`capacity / 32` of them when `precision` is 16 bits, else none); the
    /// first `tokens × columns / 32` are valid.
    var blocks: [strata_activation_block16]
    /// 8-bit codes, one per element (empty at 16 bits); `strata_activations8` describes the
    /// layout of these four arrays.
    var codes8: [Int8]
    /// 8-bit scales, one per 32 elements.
    var scales8: [Float]
    /// `scale × Σ codes` per 32 elements.
    var sums8: [Float]
    /// Σ codes per 16 elements.
    var halfSums8: [Int16]

    /// An empty buffer with room for `capacity` elements (rounded up to whole blocks).
    public init(capacity: Int, precision: ActivationPrecision = .sixteenBit) {
        precondition(capacity >= 0, "capacity must not be negative")
        let blockCount = (capacity + 31) / 32
        self.precision = precision
        self.capacity = blockCount * 32
        let sixteen = precision == .sixteenBit
        self.blocks = [strata_activation_block16](repeating: strata_activation_block16(), count: sixteen ? blockCount : 0)
        let eightBitBlocks = sixteen ? 0 : blockCount
        self.codes8 = [Int8](repeating: 0, count: eightBitBlocks * 32)
        self.scales8 = [Float](repeating: 0, count: eightBitBlocks)
        self.sums8 = [Float](repeating: 0, count: eightBitBlocks)
        self.halfSums8 = [Int16](repeating: 0, count: eightBitBlocks * 2)
    }

    /// Quantizes `tokens` rows of `columns` floats from `input` (row after row), replacing the
    /// previous contents. `columns` must be a multiple of 32.
    public mutating func quantize(_ input: [Float], tokens: Int, columns: Int) {
        quantize(input, tokens: tokens, columns: columns, level: .detected)
    }

    mutating func quantize(_ input: [Float], tokens: Int, columns: Int, level: KernelLevel) {
        precondition(tokens >= 0 && columns >= 0 && columns % 32 == 0, "columns (\(columns)) must be a multiple of 32")
        let count = tokens * columns
        precondition(count <= capacity, "\(tokens) × \(columns) activations exceed the capacity \(capacity)")
        precondition(input.count >= count, "input holds \(input.count) floats, need \(count)")
        self.tokens = tokens
        self.columns = columns
        let group = Self.groupSize(columns: columns)
        input.withUnsafeBufferPointer { source in
            guard let base = source.baseAddress else { return }
            switch precision {
            case .sixteenBit:
                blocks.withUnsafeMutableBufferPointer { destination in
                    guard let output = destination.baseAddress else { return }
                    strata_quantize16(level.rawValue, base, count, group, output)
                }
            case .eightBit:
                withEightBitArrays { arrays in strata_quantize8(level.rawValue, base, count, arrays) }
            }
        }
    }

    /// Calls `body` with the 8-bit arrays as the C kernels take them.
    private mutating func withEightBitArrays(_ body: (strata_activations8) -> Void) {
        codes8.withUnsafeMutableBufferPointer { codes in
            scales8.withUnsafeMutableBufferPointer { scales in
                sums8.withUnsafeMutableBufferPointer { sums in
                    halfSums8.withUnsafeMutableBufferPointer { halfSums in
                        body(strata_activations8(values: codes.baseAddress, scales: scales.baseAddress,
                                                 sums: sums.baseAddress, half_sums: halfSums.baseAddress))
                    }
                }
            }
        }
    }

    /// Calls `body` with the 8-bit arrays for reading (the kernels take them through the same
    /// C struct as the quantizer, whose pointers are not const; `strata_rows8_multiply` only reads).
    fileprivate func withEightBitInputs(_ body: (strata_activations8) -> Void) {
        codes8.withUnsafeBufferPointer { codes in
            scales8.withUnsafeBufferPointer { scales in
                sums8.withUnsafeBufferPointer { sums in
                    halfSums8.withUnsafeBufferPointer { halfSums in
                        body(strata_activations8(values: UnsafeMutablePointer(mutating: codes.baseAddress),
                                                 scales: UnsafeMutablePointer(mutating: scales.baseAddress),
                                                 sums: UnsafeMutablePointer(mutating: sums.baseAddress),
                                                 half_sums: UnsafeMutablePointer(mutating: halfSums.baseAddress)))
                    }
                }
            }
        }
    }

    /// Elements of a 16-bit row that share one scale: a K super-block (256) when a row is a
    /// whole number of them, so K-format kernels can add integer dot products over a
    /// super-block before converting once; else one 32-element block.
    static func groupSize(columns: Int) -> Int { columns % 256 == 0 ? 256 : 32 }

    /// The float value of every held element (`scale × value`), for tests and diagnostics.
    public func dequantized() -> [Float] {
        var result = [Float]()
        result.reserveCapacity(tokens * columns)
        let blockCount = tokens * columns / 32
        switch precision {
        case .sixteenBit:
            for block in blocks.prefix(blockCount) {
                withUnsafeBytes(of: block.values) { bytes in
                    for value in bytes.bindMemory(to: Int16.self) { result.append(block.scale * Float(value)) }
                }
            }
        case .eightBit:
            for index in 0..<blockCount * 32 { result.append(scales8[index / 32] * Float(codes8[index])) }
        }
        return result
    }
}

extension WeightMatrix {
    /// Whether `multiply(_:into:pool:)` takes this matrix's format: Q4_0, Q4_1, Q5_0, Q5_1,
    /// Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K. Other formats use the float `multiply(_:tokens:into:pool:)`.
    public var supportsQuantizedMultiply: Bool { strata_multiply_supports(format.rawValue) != 0 }

    /// `output[t × rows + r] ≈ Σ_c W[r, c] · A[t, c]` for every token row of `activations`,
    /// with integer dot products between the weight codes and the quantized activations.
    ///
    /// Each weight row is read from memory once per call (per ~256 KiB of activations) and
    /// dotted with the tokens in tiles. Every output element is computed by the same float
    /// operations whatever the number of tokens or threads, so a token's result is bitwise
    /// independent of the batch it travels in. Requires `supportsQuantizedMultiply` and
    /// `activations.columns == columns`.
    public func multiply(_ activations: QuantizedActivations, into output: inout [Float], pool: WorkerPool) {
        multiply(activations, into: &output, pool: pool, level: .detected)
    }

    /// Quantizes `tokens` rows of `input` into `scratch`, then calls `multiply(_:into:pool:)`.
    /// `scratch` must have room for `tokens × columns` elements.
    public func multiplyQuantized(_ input: [Float], tokens: Int, into output: inout [Float], pool: WorkerPool,
                                  scratch: inout QuantizedActivations) {
        scratch.quantize(input, tokens: tokens, columns: columns)
        multiply(scratch, into: &output, pool: pool)
    }

    func multiply(_ activations: QuantizedActivations, into output: inout [Float], pool: WorkerPool, level: KernelLevel) {
        precondition(supportsQuantizedMultiply, "\(format) has no quantized kernel; use the float multiply")
        precondition(activations.columns == columns, "activations have \(activations.columns) columns, matrix \(columns)")
        let tokens = activations.tokens
        precondition(output.count >= tokens * rows, "output holds \(output.count) floats, need \(tokens * rows)")
        guard tokens > 0 else { return }
        let rows = rows, columns = columns, rowByteCount = rowByteCount, format = format.rawValue
        bytes.withUnsafeBytes { weightBytes in
            output.withUnsafeMutableBufferPointer { outputBuffer in
                nonisolated(unsafe) let weights = weightBytes.baseAddress!
                nonisolated(unsafe) let results = outputBuffer.baseAddress!
                switch activations.precision {
                case .sixteenBit:
                    activations.blocks.withUnsafeBufferPointer { activationBlocks in
                        nonisolated(unsafe) let inputs = activationBlocks.baseAddress!
                        if let interleaved, interleavedPrecision == .sixteenBit {
                            nonisolated(unsafe) let packed = interleaved.base
                            pool.parallelFor(count: rows / 8, granularity: 2) { octets in
                                strata_octets16_multiply(level.rawValue, format, packed, rows, octets.lowerBound,
                                                         octets.upperBound, columns, inputs, tokens, results)
                            }
                            return
                        }
                        pool.parallelFor(count: rows, granularity: 16) { range in
                            strata_rows16_multiply(level.rawValue, format, weights, rowByteCount, rows, range.lowerBound,
                                                   range.upperBound, columns, inputs, tokens, results)
                        }
                    }
                case .eightBit:
                    activations.withEightBitInputs { arrays in
                        nonisolated(unsafe) let inputs = arrays
                        if let interleaved, interleavedPrecision == .eightBit {
                            nonisolated(unsafe) let packed = interleaved.base
                            pool.parallelFor(count: rows / 8, granularity: 2) { octets in
                                strata_octets8_multiply(level.rawValue, format, packed, rows, octets.lowerBound,
                                                        octets.upperBound, columns, inputs, tokens, results)
                            }
                            return
                        }
                        pool.parallelFor(count: rows, granularity: 16) { range in
                            strata_rows8_multiply(level.rawValue, format, weights, rowByteCount, rows, range.lowerBound,
                                                  range.upperBound, columns, inputs, tokens, results)
                        }
                    }
                }
            }
        }
    }
}
