/// Why a row could not be quantized.
public enum QuantizationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `Quantizer` has no encoder for this format (see `Quantizer.supportedFormats`).
    case unsupportedFormat(QuantFormat)
    /// The row width is not a whole number of the format's blocks.
    case rowWidth(format: QuantFormat, width: Int, blockSize: Int)
    /// The importance array's length differs from the row width.
    case importanceCount(format: QuantFormat, expected: Int, found: Int)
    /// A matrix's value count is not `rows × columns`.
    case matrixSize(rows: Int, columns: Int, found: Int)
    /// The row holds a NaN or an infinity, which no block format can encode.
    case nonFiniteValue(index: Int, value: Float)

    public var description: String {
        switch self {
        case .unsupportedFormat(let format):
            let names = Quantizer.supportedFormats.map(\.description).joined(separator: ", ")
            return "cannot quantize to \(format): supported formats are \(names)"
        case .rowWidth(let format, let width, let blockSize):
            return "cannot quantize a row of \(width) values to \(format): expected a multiple of its block size "
                + "\(blockSize), found \(width) (\(width % blockSize) left over)"
        case .importanceCount(let format, let expected, let found):
            return "\(format) importance weights: expected one per column (\(expected)), found \(found)"
        case .matrixSize(let rows, let columns, let found):
            return "a \(rows) × \(columns) matrix needs \(rows * columns) values, found \(found)"
        case .nonFiniteValue(let index, let value):
            return "cannot quantize \(value) at index \(index): values must be finite"
        }
    }
}

/// Float32 → GGUF block quantizers with llama.cpp's block layouts and reference rounding.
///
/// Without importance, each format reproduces llama.cpp's `quantize_row_*_ref` bit for bit
/// (for Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 that is also what the `gguf` Python package writes).
/// With `importance` (llama.cpp's `quant_weights`, one non-negative weight per column, as an
/// imatrix gives them), the scale searches minimise the importance-weighted squared error
/// instead, as `quantize_*` does when given weights. Q8_0 ignores importance, as llama.cpp does.
///
/// The code is scalar and follows each definition directly, so it is its own reference; rows
/// are independent, so `quantize(matrix:...)` spreads them over a pool.
public enum Quantizer {
    /// Every format `quantize` can write.
    public static let supportedFormats: [QuantFormat] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K,
                                                         .q5_K, .q6_K]

    /// Whether `quantize` can write `format`.
    public static func supports(_ format: QuantFormat) -> Bool { supportedFormats.contains(format) }

    /// Quantizes one row to `format`'s blocks.
    ///
    /// - Parameters:
    ///   - row: finite values, a multiple of `format.blockSize` of them.
    ///   - importance: nil, or one weight per element of `row` (how much each column's error
    ///     matters; llama.cpp's imatrix values).
    /// - Returns: `format.byteCount(elements: row.count)` bytes.
    public static func quantize(_ row: [Float], to format: QuantFormat,
                                importance: [Float]? = nil) throws(QuantizationError) -> [UInt8] {
        try quantize(matrix: row, rows: 1, columns: row.count, to: format, importance: importance)
    }

    /// Quantizes a row-major `rows × columns` matrix row by row, `importance` (one weight per
    /// column) applying to every row; rows go to `pool`'s threads when one is given. The result
    /// is the rows' blocks one after the other, as a GGUF tensor stores them.
    public static func quantize(matrix values: [Float], rows: Int, columns: Int, to format: QuantFormat,
                                importance: [Float]? = nil, pool: WorkerPool? = nil) throws(QuantizationError) -> [UInt8] {
        guard supports(format) else { throw .unsupportedFormat(format) }
        guard rows >= 0, columns >= 0, rows.multipliedReportingOverflow(by: columns) == (values.count, false) else {
            throw .matrixSize(rows: rows, columns: columns, found: values.count)
        }
        guard let rowBytes = format.byteCount(elements: columns) else {
            throw .rowWidth(format: format, width: columns, blockSize: format.blockSize)
        }
        if let importance, importance.count != columns {
            throw .importanceCount(format: format, expected: columns, found: importance.count)
        }
        if let index = values.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteValue(index: index, value: values[index])
        }
        var output = [UInt8](repeating: 0, count: rows * rowBytes)
        guard rows > 0, columns > 0 else { return output }
        values.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { bytes in
                withImportance(importance) { weights in
                    nonisolated(unsafe) let source = input.baseAddress!, destination = bytes.baseAddress!
                    nonisolated(unsafe) let weights = weights
                    let body = { (range: Range<Int>) in
                        for row in range {
                            quantizeRow(source + row * columns, count: columns, format: format, importance: weights,
                                        into: destination + row * rowBytes)
                        }
                    }
                    if let pool, rows > 1 { pool.parallelFor(count: rows, body) } else { body(0..<rows) }
                }
            }
        }
        return output
    }

    private static func withImportance<Result>(_ importance: [Float]?,
                                               _ body: (UnsafePointer<Float>?) -> Result) -> Result {
        guard let importance else { return body(nil) }
        return importance.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    /// One row of `count` values (whole blocks) into its blocks at `output`; the checks are
    /// done by the callers.
    static func quantizeRow(_ x: UnsafePointer<Float>, count: Int, format: QuantFormat,
                            importance: UnsafePointer<Float>?, into output: UnsafeMutablePointer<UInt8>) {
        let blocks = count / format.blockSize, stride = format.bytesPerBlock
        switch format {
        case .q8_0, .q4_0, .q4_1, .q5_0, .q5_1:
            // the 32-element formats weigh errors against the whole row's mean square
            let rowSigma2 = importance == nil ? 0 : sumOfSquares(x, count: count) / Float(count)
            for block in 0..<blocks {
                SmallBlockQuantizers.quantize(
                    x + 32 * block, format: format, importance: importance.map { $0 + 32 * block }, sigma2: rowSigma2,
                    into: output + stride * block)
            }
        default:
            KScratch.with { scratch in
                for block in 0..<blocks {
                    let values = x + 256 * block, weights = importance.map { $0 + 256 * block }
                    let destination = output + stride * block
                    switch format {
                    case .q2_K: KQuantizers.q2_K(values, importance: weights, scratch: scratch, into: destination)
                    case .q3_K: KQuantizers.q3_K(values, importance: weights, scratch: scratch, into: destination)
                    case .q4_K:
                        KQuantizers.fourOrFiveBit(values, largest: 15, importance: weights, scratch: scratch,
                                                  into: destination)
                    case .q5_K:
                        KQuantizers.fourOrFiveBit(values, largest: 31, importance: weights, scratch: scratch,
                                                  into: destination)
                    case .q6_K: KQuantizers.q6_K(values, importance: weights, scratch: scratch, into: destination)
                    default: preconditionFailure("\(format) is not a quantizer format")
                    }
                }
            }
        }
    }
}
