import StrataKernelsC

/// A weight matrix as stored in the model file: `rows` output features, each a row of
/// `columns` input features encoded in `format`, viewed in place (usually memory-mapped).
public struct WeightMatrix: Sendable {
    /// The element encoding of every row.
    public let format: QuantFormat
    /// Output features.
    public let rows: Int
    /// Input features (elements per row).
    public let columns: Int
    /// `rows × rowByteCount` bytes.
    public let bytes: ByteView
    /// Bytes per row.
    public let rowByteCount: Int
    /// The rows repacked eight at a time for products with `interleavedPrecision` activations
    /// (`preparedForEightBitProducts`, `preparedForSixteenBitProducts`), or nil: then every
    /// product reads `bytes`.
    let interleaved: ByteStorage?
    /// The activation precision whose kernels read `interleaved`.
    let interleavedPrecision: ActivationPrecision?

    /// Wraps `bytes` as a `[rows, columns]` matrix; nil if the geometry does not fit `format`
    /// or the byte count does not match.
    public init?(format: QuantFormat, rows: Int, columns: Int, bytes: ByteView) {
        guard format.isComputable, rows > 0, let rowBytes = format.byteCount(elements: columns),
            rowBytes > 0, rowBytes.multipliedReportingOverflow(by: rows) == (bytes.count, false)
        else { return nil }
        self.format = format
        self.rows = rows
        self.columns = columns
        self.bytes = bytes
        self.rowByteCount = rowBytes
        self.interleaved = nil
        self.interleavedPrecision = nil
    }

    private init(_ matrix: WeightMatrix, interleaved: ByteStorage, precision: ActivationPrecision) {
        format = matrix.format
        rows = matrix.rows
        columns = matrix.columns
        bytes = matrix.bytes
        rowByteCount = matrix.rowByteCount
        self.interleaved = interleaved
        interleavedPrecision = precision
    }

    /// Rows `range` of this matrix, viewing the same bytes: one part of a fused matrix (Phi-3's
    /// q/k/v rows in one tensor). Only for a matrix not yet repacked.
    public func rows(_ range: Range<Int>) -> WeightMatrix {
        precondition(interleaved == nil && range.lowerBound >= 0 && range.upperBound <= rows && !range.isEmpty,
                     "rows \(range) of a \(rows)-row matrix")
        let slice = bytes.slice(start: range.lowerBound * rowByteCount, length: range.count * rowByteCount)
        guard let part = WeightMatrix(format: format, rows: range.count, columns: columns, bytes: slice) else {
            preconditionFailure("a row range of a valid matrix is a valid matrix")
        }
        return part
    }

    /// Rows repacked between releases of their file pages (a multiple of 8); also the unit of
    /// work the pool's threads share.
    private static let repackSliceRows = 1_024

    /// Whether products read a repacked copy of the rows.
    public var isInterleaved: Bool { interleaved != nil }

    /// This matrix with its rows also repacked eight at a time, which 8-bit products
    /// (`ActivationPrecision.eightBit`) then read instead of `bytes`: a Q4_K or Q6_K matrix whose
    /// rows are a multiple of 8 and columns of 256. Other matrices, and a matrix already
    /// repacked for either precision, come back unchanged.
    ///
    /// With `releasingFilePages` the file's pages for `bytes` leave resident memory as they are
    /// repacked, so the weights are never resident twice; anything that still reads `bytes`
    /// (embedding lookups, the exact and 16-bit paths) reads them from the file again.
    public func preparedForEightBitProducts(releasingFilePages: Bool, pool: WorkerPool? = nil) -> WeightMatrix {
        repacked(for: .eightBit, size: strata_octets8_size, interleave: strata_octets8_repack,
                 releasingFilePages: releasingFilePages, pool: pool)
    }

    /// This matrix with its rows also repacked eight at a time, which 16-bit products
    /// (`ActivationPrecision.sixteenBit`) then read instead of `bytes`: a Q4_1 or Q5_0 matrix
    /// whose rows are a multiple of 8. Other matrices, and a matrix already repacked for either precision,
    /// come back unchanged. `releasingFilePages` as for `preparedForEightBitProducts`.
    public func preparedForSixteenBitProducts(releasingFilePages: Bool, pool: WorkerPool? = nil) -> WeightMatrix {
        repacked(for: .sixteenBit, size: strata_octets16_size, interleave: strata_octets16_repack,
                 releasingFilePages: releasingFilePages, pool: pool)
    }

    private func repacked(
        for precision: ActivationPrecision, size sizeFunction: (UInt32, Int, Int) -> Int,
        interleave: @escaping @Sendable (UInt32, UnsafeRawPointer?, Int, Int, Int, UnsafeMutableRawPointer?) -> Void,
        releasingFilePages: Bool, pool: WorkerPool?
    ) -> WeightMatrix {
        guard interleaved == nil else { return self }
        let size = sizeFunction(format.rawValue, rows, columns)
        guard size > 0 else { return self }
        let format = format, rows = rows, columns = columns, rowByteCount = rowByteCount, bytes = bytes
        let packedRowBytes = size / rows, sliceRows = Self.repackSliceRows
        let packed = ByteStorage.filled(count: size) { destination in
            nonisolated(unsafe) let destination = destination
            let slices = (rows + sliceRows - 1) / sliceRows
            (pool ?? WorkerPool(threadCount: 1)).parallelFor(count: slices) { range in
                for slice in range {
                    let first = slice * sliceRows, count = min(sliceRows, rows - first)
                    bytes.withUnsafeBytes { source in
                        interleave(format.rawValue, source.baseAddress! + first * rowByteCount, rowByteCount, count,
                                   columns, destination + first * packedRowBytes)
                    }
                    if releasingFilePages {
                        bytes.slice(start: first * rowByteCount, length: count * rowByteCount).releaseResidentPages()
                    }
                }
            }
        }
        return WeightMatrix(self, interleaved: packed, precision: precision)
    }

    /// Row `row` as floats (e.g. an embedding lookup).
    public func row(_ row: Int) -> [Float] {
        var result = [Float](repeating: 0, count: columns)
        copyRow(row, into: &result, at: 0)
        return result
    }

    /// Writes row `row` as floats into `destination[offset..<offset + columns]`.
    public func copyRow(_ row: Int, into destination: inout [Float], at offset: Int) {
        precondition(row >= 0 && row < rows && offset >= 0 && offset + columns <= destination.count)
        bytes.withUnsafeBytes { source in
            destination.withUnsafeMutableBufferPointer { buffer in
                Dequantization.dequantize(
                    format, source: source.baseAddress! + row * rowByteCount,
                    into: buffer.baseAddress! + offset, count: columns)
            }
        }
    }

    /// The exact float product: `output[t × rows + r] = Σ_c W[r, c] · input[t × columns + c]`
    /// for `tokens` input rows, with W dequantized to float32.
    ///
    /// Each weight row is dequantized once and dotted with every token, so weights stream from
    /// memory once per call however many tokens there are. Every output element is the same
    /// `FloatKernels.dot` of the same two rows whatever `tokens` or the thread count, which makes
    /// a token's result bitwise independent of the batch it travels in.
    public func multiply(_ input: [Float], tokens: Int, into output: inout [Float], pool: WorkerPool) {
        precondition(input.count >= tokens * columns, "input holds \(input.count) floats, need \(tokens * columns)")
        precondition(output.count >= tokens * rows, "output holds \(output.count) floats, need \(tokens * rows)")
        let rows = rows, columns = columns, rowByteCount = rowByteCount, format = format
        bytes.withUnsafeBytes { weightBytes in
            input.withUnsafeBufferPointer { inputBuffer in
                output.withUnsafeMutableBufferPointer { outputBuffer in
                    nonisolated(unsafe) let weights = weightBytes.baseAddress!
                    nonisolated(unsafe) let activations = inputBuffer.baseAddress!
                    nonisolated(unsafe) let results = outputBuffer.baseAddress!
                    pool.parallelFor(count: rows, granularity: 16) { range in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: columns) { rowValues in
                            let rowPointer = rowValues.baseAddress!
                            for row in range {
                                Dequantization.dequantize(
                                    format, source: weights + row * rowByteCount, into: rowPointer, count: columns)
                                for token in 0..<tokens {
                                    results[token * rows + row] = FloatKernels.dot(
                                        rowPointer, activations + token * columns, count: columns)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

extension WeightMatrix {
    /// A float32 matrix holding a copy of `values` (`rows × columns`, row-major): fitted maps and
    /// other matrices computed rather than read from a model file.
    public static func float32(_ values: [Float], rows: Int, columns: Int) -> WeightMatrix {
        precondition(values.count == rows * columns, "\(rows) x \(columns) values expected, found \(values.count)")
        let bytes = values.withUnsafeBytes { Array($0) }
        guard let matrix = WeightMatrix(format: .f32, rows: rows, columns: columns, bytes: ByteView(ByteStorage.copying(bytes))) else {
            preconditionFailure("a float32 matrix of positive size is valid")
        }
        return matrix
    }
}

extension WeightMatrix {
    /// A new matrix of the given rows of this one, in that order, their bytes copied (a
    /// restricted output head: the rows of a draft's vocabulary). Only for a matrix not yet repacked.
    public func gathering(rows indices: [Int]) -> WeightMatrix {
        precondition(!indices.isEmpty && indices.allSatisfy { $0 >= 0 && $0 < rows }, "row indices within 0..<\(rows)")
        var gathered = [UInt8]()
        gathered.reserveCapacity(indices.count * rowByteCount)
        for row in indices { gathered += bytes.bytes(at: row * rowByteCount, count: rowByteCount) }
        guard let matrix = WeightMatrix(format: format, rows: indices.count, columns: columns,
                                        bytes: ByteView(ByteStorage.copying(gathered))) else {
            preconditionFailure("rows of a valid matrix form a valid matrix")
        }
        return matrix
    }
}
