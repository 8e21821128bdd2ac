/// Ridge least squares in float64: sums `XᵀX` and `XᵀY` over pairs of rows (x, y) and solves
/// `T = (XᵀX + λI)⁻¹ XᵀY`, so that `x · T ≈ y` (row-vector convention).
///
/// Why float64: the rows are residual-stream activations whose squares span many orders of
/// magnitude (a few outlier features dominate), and thousands of them are summed; float32 sums
/// lose the small directions the fit needs. The sums are deterministic: every element is
/// accumulated by one thread in row order, whatever the thread count.
public struct RidgeRegression: Sendable {
    /// Width of x (the columns of X).
    public let inputWidth: Int
    /// Width of y.
    public let outputWidth: Int
    /// Rows summed so far.
    public private(set) var rows = 0
    /// `XᵀX`, `inputWidth × inputWidth`, row-major; only the upper triangle (column >= row) is kept.
    public private(set) var gramUpper: [Double]
    /// `XᵀY`, `inputWidth × outputWidth`, row-major.
    public private(set) var cross: [Double]

    /// Rows transposed to float64 and summed at a time: each sum element is read and written once
    /// per chunk instead of once per row, which keeps the loop compute-bound.
    static let chunkRows = 64

    public init(inputWidth: Int, outputWidth: Int) {
        precondition(inputWidth > 0 && outputWidth > 0, "widths must be positive")
        self.inputWidth = inputWidth
        self.outputWidth = outputWidth
        gramUpper = [Double](repeating: 0, count: inputWidth * inputWidth)
        cross = [Double](repeating: 0, count: inputWidth * outputWidth)
    }

    /// Adds `rows` pairs: `inputs` is `[rows × inputWidth]`, `outputs` `[rows × outputWidth]`,
    /// both row-major (extra values beyond those rows are ignored).
    public mutating func add(inputs: [Float], outputs: [Float], rows count: Int, pool: WorkerPool) {
        precondition(inputs.count >= count * inputWidth && outputs.count >= count * outputWidth, "fewer values than rows")
        let chunk = Self.chunkRows
        var inputColumns = [Double](repeating: 0, count: inputWidth * chunk)
        var outputColumns = [Double](repeating: 0, count: outputWidth * chunk)
        for first in stride(from: 0, to: count, by: chunk) {
            let rowsHere = min(chunk, count - first)
            // column-major chunks (feature × row), zero-padded to `chunk` rows
            Self.transpose(inputs, firstRow: first, rows: rowsHere, width: inputWidth, into: &inputColumns, chunk: chunk)
            Self.transpose(outputs, firstRow: first, rows: rowsHere, width: outputWidth, into: &outputColumns, chunk: chunk)
            accumulate(inputColumns: inputColumns, outputColumns: outputColumns, pool: pool)
        }
        rows += count
    }

    private static func transpose(_ values: [Float], firstRow: Int, rows: Int, width: Int, into columns: inout [Double], chunk: Int) {
        for index in columns.indices { columns[index] = 0 }
        for row in 0..<rows {
            let base = (firstRow + row) * width
            for feature in 0..<width { columns[feature * chunk + row] = Double(values[base + feature]) }
        }
    }

    private mutating func accumulate(inputColumns: [Double], outputColumns: [Double], pool: WorkerPool) {
        let n = inputWidth
        let m = outputWidth
        let chunk = Self.chunkRows
        let block = 4
        gramUpper.withUnsafeMutableBufferPointer { gram in
            cross.withUnsafeMutableBufferPointer { cross in
                inputColumns.withUnsafeBufferPointer { xs in
                    outputColumns.withUnsafeBufferPointer { ys in
                        let gram = gram.baseAddress!, cross = cross.baseAddress!
                        let xs = xs.baseAddress!, ys = ys.baseAddress!
                        pool.parallelFor(count: (n + block - 1) / block) { blocks in
                            for blockIndex in blocks {
                                let first = blockIndex * block
                                let last = min(first + block, n)
                                // gram: rows first..<last, columns from `first` on (the upper triangle
                                // and a few below it in the block, which solve() ignores)
                                Self.dotBlock(xs, rows: first..<last, against: xs, columns: first..<n, chunk: chunk,
                                              into: gram, stride: n)
                                Self.dotBlock(xs, rows: first..<last, against: ys, columns: 0..<m, chunk: chunk,
                                              into: cross, stride: m)
                            }
                        }
                    }
                }
            }
        }
    }

    /// `target[i * stride + j] += dot(a[i], b[j])` over chunk-long columns, four rows at a time.
    @inline(__always)
    private static func dotBlock(
        _ a: UnsafePointer<Double>, rows: Range<Int>, against b: UnsafePointer<Double>, columns: Range<Int>, chunk: Int,
        into target: UnsafeMutablePointer<Double>, stride: Int
    ) {
        typealias Vector = SIMD8<Double>
        func load(_ pointer: UnsafePointer<Double>) -> Vector { UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self) }
        if rows.count == 4 {
            let a0 = a + rows.lowerBound * chunk, a1 = a0 + chunk, a2 = a1 + chunk, a3 = a2 + chunk
            for column in columns {
                let bColumn = b + column * chunk
                var s0 = Vector(), s1 = Vector(), s2 = Vector(), s3 = Vector()
                var offset = 0
                while offset < chunk {
                    let y = load(bColumn + offset)
                    s0.addProduct(load(a0 + offset), y)
                    s1.addProduct(load(a1 + offset), y)
                    s2.addProduct(load(a2 + offset), y)
                    s3.addProduct(load(a3 + offset), y)
                    offset += Vector.scalarCount
                }
                let row = rows.lowerBound
                target[row * stride + column] += s0.sum()
                target[(row + 1) * stride + column] += s1.sum()
                target[(row + 2) * stride + column] += s2.sum()
                target[(row + 3) * stride + column] += s3.sum()
            }
        } else {
            for row in rows {
                let aRow = a + row * chunk
                for column in columns {
                    let bColumn = b + column * chunk
                    var sum = Vector()
                    var offset = 0
                    while offset < chunk {
                        sum.addProduct(load(aRow + offset), load(bColumn + offset))
                        offset += Vector.scalarCount
                    }
                    target[row * stride + column] += sum.sum()
                }
            }
        }
    }

    /// The sums by definition, one row at a time: the reference `add` is tested against.
    /// Returns the full (symmetric) `XᵀX` and `XᵀY`.
    public static func referenceSums(
        inputs: [Float], outputs: [Float], rows: Int, inputWidth: Int, outputWidth: Int
    ) -> (gram: [Double], cross: [Double]) {
        var gram = [Double](repeating: 0, count: inputWidth * inputWidth)
        var cross = [Double](repeating: 0, count: inputWidth * outputWidth)
        for row in 0..<rows {
            for i in 0..<inputWidth {
                let x = Double(inputs[row * inputWidth + i])
                for j in 0..<inputWidth { gram[i * inputWidth + j] += x * Double(inputs[row * inputWidth + j]) }
                for j in 0..<outputWidth { cross[i * outputWidth + j] += x * Double(outputs[row * outputWidth + j]) }
            }
        }
        return (gram, cross)
    }

    /// `XᵀX` in full (the lower triangle mirrored from the upper).
    public var gram: [Double] {
        var full = gramUpper
        let n = inputWidth
        for i in 0..<n { for j in 0..<i { full[i * n + j] = gramUpper[j * n + i] } }
        return full
    }

    /// The mean of `XᵀX`'s diagonal: the scale a relative ridge is taken of.
    public var meanDiagonal: Double {
        var sum = 0.0
        for i in 0..<inputWidth { sum += gramUpper[i * inputWidth + i] }
        return sum / Double(inputWidth)
    }

    /// `T = (XᵀX + λI)⁻¹ XᵀY`, `inputWidth × outputWidth`, row-major, by a Cholesky factorization.
    /// Throws when the sums are not finite or the system is not positive definite (λ = 0 with
    /// fewer independent rows than inputs).
    public func solve(ridge lambda: Double, pool: WorkerPool) throws(LeastSquaresError) -> [Double] {
        let n = inputWidth
        let m = outputWidth
        guard gramUpper.allSatisfy(\.isFinite), cross.allSatisfy(\.isFinite) else { throw .notFinite }
        guard lambda >= 0, lambda.isFinite else { throw .invalidRidge(lambda) }
        // lower factor L (row-major), A = L Lᵀ
        var factor = gram
        for i in 0..<n { factor[i * n + i] += lambda }
        try Self.choleskyInPlace(&factor, n: n, pool: pool)
        var solution = cross
        factor.withUnsafeBufferPointer { lower in
            solution.withUnsafeMutableBufferPointer { rows in
                let lower = lower.baseAddress!, rows = rows.baseAddress!
                // each output column is an independent system: split them over the pool
                pool.parallelFor(count: m, granularity: 16) { columns in
                    let width = columns.count
                    // forward: L Z = B, one row of Z at a time
                    for i in 0..<n {
                        let target = rows + i * m + columns.lowerBound
                        for k in 0..<i {
                            Self.subtract(lower[i * n + k], times: rows + k * m + columns.lowerBound, from: target, count: width)
                        }
                        Self.scale(target, by: 1 / lower[i * n + i], count: width)
                    }
                    // backward: Lᵀ T = Z
                    for i in stride(from: n - 1, through: 0, by: -1) {
                        let target = rows + i * m + columns.lowerBound
                        for k in (i + 1)..<n {
                            Self.subtract(lower[k * n + i], times: rows + k * m + columns.lowerBound, from: target, count: width)
                        }
                        Self.scale(target, by: 1 / lower[i * n + i], count: width)
                    }
                }
            }
        }
        return solution
    }

    /// Cholesky factorization of the symmetric positive-definite `n × n` matrix in `matrix`,
    /// leaving L in its lower triangle (the upper triangle is zeroed).
    static func choleskyInPlace(_ matrix: inout [Double], n: Int, pool: WorkerPool) throws(LeastSquaresError) {
        var failedPivot: Int?
        matrix.withUnsafeMutableBufferPointer { buffer in
            let a = buffer.baseAddress!
            for j in 0..<n {
                let rowJ = a + j * n
                let pivot = rowJ[j] - Self.dot(rowJ, rowJ, count: j)
                guard pivot > 0, pivot.isFinite else { failedPivot = j; return }
                let diagonal = pivot.squareRoot()
                rowJ[j] = diagonal
                let remaining = n - j - 1
                guard remaining > 0 else { continue }
                // rows below j are independent of each other: split them over the pool when the
                // dot products are long enough to pay for a parallel region
                let body: (Range<Int>) -> Void = { range in
                    for offset in range {
                        let rowI = a + (j + 1 + offset) * n
                        rowI[j] = (rowI[j] - Self.dot(rowI, rowJ, count: j)) / diagonal
                    }
                }
                if j * remaining > 65_536 { pool.parallelFor(count: remaining, granularity: 8, body) } else { body(0..<remaining) }
            }
            for i in 0..<n { for j in (i + 1)..<n { a[i * n + j] = 0 } }
        }
        if let failedPivot { throw .notPositiveDefinite(pivot: failedPivot) }
    }

    @inline(__always)
    private static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, count: Int) -> Double {
        typealias Vector = SIMD8<Double>
        var sum = Vector()
        var index = 0
        while index + Vector.scalarCount <= count {
            sum.addProduct(UnsafeRawPointer(a + index).loadUnaligned(as: Vector.self),
                           UnsafeRawPointer(b + index).loadUnaligned(as: Vector.self))
            index += Vector.scalarCount
        }
        var total = sum.sum()
        while index < count {
            total += a[index] * b[index]
            index += 1
        }
        return total
    }

    @inline(__always)
    private static func subtract(_ factor: Double, times source: UnsafePointer<Double>, from target: UnsafeMutablePointer<Double>, count: Int) {
        guard factor != 0 else { return }
        for index in 0..<count { target[index] -= factor * source[index] }
    }

    @inline(__always)
    private static func scale(_ target: UnsafeMutablePointer<Double>, by factor: Double, count: Int) {
        for index in 0..<count { target[index] *= factor }
    }
}

private extension SIMD8<Double> {
    @inline(__always)
    mutating func addProduct(_ a: SIMD8<Double>, _ b: SIMD8<Double>) { self = self.addingProduct(a, b) }
}

/// Why a least-squares fit failed.
public enum LeastSquaresError: Error, CustomStringConvertible, Equatable, Sendable {
    case notFinite
    case invalidRidge(Double)
    case notPositiveDefinite(pivot: Int)

    public var description: String {
        switch self {
        case .notFinite: "the fit's sums are not finite: an activation was infinite or NaN"
        case .invalidRidge(let value): "the ridge must be a finite number >= 0, found \(value)"
        case .notPositiveDefinite(let pivot):
            "the fit's system is singular at feature \(pivot): too few calibration rows for the width; use more text or a larger ridge"
        }
    }
}
