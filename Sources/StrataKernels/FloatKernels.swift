import StrataKernelsC

/// Elementwise and reduction kernels over `Float` rows. Each has a scalar `reference` twin used
/// by tests; the fast versions use SIMD with several accumulators in a fixed order, so results
/// do not depend on batch size or threads.
public enum FloatKernels {
    // MARK: dot product

    /// Sum of `a[i] * b[i]` for `i < count`: two 16-lane accumulators of fused multiply-adds and
    /// a fixed reduction (`strata_dot`, FloatRows.c), the same bits at every kernel level.
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        strata_dot(KernelLevel.detected.rawValue, a, b, count)
    }

    /// `dot` at a given level, for tests that compare the levels.
    static func dot(_ a: [Float], _ b: [Float], level: KernelLevel) -> Float {
        precondition(a.count == b.count)
        return a.withUnsafeBufferPointer { first in
            b.withUnsafeBufferPointer { second in
                strata_dot(level.rawValue, first.baseAddress, second.baseAddress, a.count)
            }
        }
    }

    /// Plain loop version of `dot`, in double precision: the oracle the fast path is tested against.
    public static func dotReference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        var sum: Double = 0
        for index in a.indices { sum += Double(a[index]) * Double(b[index]) }
        return Float(sum)
    }

    // MARK: safe wrappers over whole arrays

    /// Dot product of `a[aOffset..<aOffset+count]` and `b[bOffset..<bOffset+count]`.
    public static func dot(_ a: [Float], _ aOffset: Int, _ b: [Float], _ bOffset: Int, count: Int) -> Float {
        precondition(aOffset >= 0 && bOffset >= 0 && aOffset + count <= a.count && bOffset + count <= b.count)
        return a.withUnsafeBufferPointer { aBuffer in
            b.withUnsafeBufferPointer { bBuffer in
                dot(aBuffer.baseAddress! + aOffset, bBuffer.baseAddress! + bOffset, count: count)
            }
        }
    }

    // MARK: RMS normalization

    /// `output[row] = input[row] / sqrt(mean(input[row]^2) + epsilon) * weight` for each of `rows`
    /// rows of `columns` values, as Llama/Qwen's RMSNorm computes it. Input rows start at row
    /// `firstRow`; output rows start at 0.
    public static func rmsNorm(
        _ input: [Float], firstRow: Int = 0, rows: Int, columns: Int, weight: [Float], epsilon: Float,
        into output: inout [Float]
    ) {
        precondition(input.count >= (firstRow + rows) * columns && output.count >= rows * columns && weight.count == columns)
        input.withUnsafeBufferPointer { source in
            weight.withUnsafeBufferPointer { scale in
                output.withUnsafeMutableBufferPointer { destination in
                    for row in 0..<rows {
                        let x = source.baseAddress! + (firstRow + row) * columns
                        let y = destination.baseAddress! + row * columns
                        let meanSquare = dot(x, x, count: columns) / Float(columns)
                        let inverse = 1 / (meanSquare + epsilon).squareRoot()
                        for column in 0..<columns { y[column] = scale[column] * (x[column] * inverse) }
                    }
                }
            }
        }
    }

    /// Scalar twin of `rmsNorm` for one row.
    public static func rmsNormReference(_ input: [Float], weight: [Float], epsilon: Float) -> [Float] {
        var sum: Double = 0
        for value in input { sum += Double(value) * Double(value) }
        let inverse = 1 / (sum / Double(input.count) + Double(epsilon)).squareRoot()
        return input.indices.map { Float(Double(weight[$0]) * Double(input[$0]) * inverse) }
    }

    // MARK: residual add, bias

    /// `target[i] += addend[i]` for `i < count`.
    public static func add(_ addend: [Float], into target: inout [Float], count: Int) {
        precondition(addend.count >= count && target.count >= count)
        addend.withUnsafeBufferPointer { source in
            target.withUnsafeMutableBufferPointer { destination in
                for index in 0..<count { destination[index] += source[index] }
            }
        }
    }

    /// Adds `bias` (length `columns`) to each of `rows` rows of `target`.
    public static func addBias(_ bias: [Float], into target: inout [Float], rows: Int, columns: Int) {
        precondition(bias.count == columns && target.count >= rows * columns)
        bias.withUnsafeBufferPointer { source in
            target.withUnsafeMutableBufferPointer { destination in
                for row in 0..<rows {
                    let base = row * columns
                    for column in 0..<columns { destination[base + column] += source[column] }
                }
            }
        }
    }

    // MARK: SwiGLU

    /// `gate[i] = silu(gate[i]) * up[i]` for `i < count`, silu(x) = x / (1 + exp(-x)).
    public static func swiGLU(gate: inout [Float], up: [Float], count: Int) {
        precondition(gate.count >= count && up.count >= count)
        up.withUnsafeBufferPointer { upBuffer in
            gate.withUnsafeMutableBufferPointer { gateBuffer in
                for index in 0..<count {
                    let x = gateBuffer[index]
                    gateBuffer[index] = x / (1 + expf(-x)) * upBuffer[index]
                }
            }
        }
    }

    // MARK: GeGLU

    /// `gate[i] = gelu(gate[i]) * up[i]` for `i < count`, with GELU's tanh approximation
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))` (Gemma's `gelu_pytorch_tanh`), computed
    /// without tanh as `x / (1 + exp(-2u))`; every kernel level gives the same bits.
    public static func geluTanhGLU(gate: inout [Float], up: [Float], count: Int) {
        geluTanhGLU(gate: &gate, up: up, count: count, level: .detected)
    }

    static func geluTanhGLU(gate: inout [Float], up: [Float], count: Int, level: KernelLevel) {
        precondition(gate.count >= count && up.count >= count)
        up.withUnsafeBufferPointer { upBuffer in
            gate.withUnsafeMutableBufferPointer { gateBuffer in
                strata_gelu_tanh_glu(level.rawValue, gateBuffer.baseAddress!, upBuffer.baseAddress!, count)
            }
        }
    }

    /// The same in double precision, one value: the test oracle.
    public static func geluTanhReference(_ x: Double) -> Double {
        0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    }

    // MARK: softmax

    /// In-place softmax of `values[0..<count]` (max-subtracted for stability).
    public static func softmax(_ values: inout [Float], count: Int) {
        precondition(values.count >= count && count > 0)
        values.withUnsafeMutableBufferPointer { buffer in
            var maximum = -Float.infinity
            for index in 0..<count { maximum = max(maximum, buffer[index]) }
            var sum: Float = 0
            for index in 0..<count {
                let value = expf(buffer[index] - maximum)
                buffer[index] = value
                sum += value
            }
            let inverse = 1 / sum
            for index in 0..<count { buffer[index] *= inverse }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension FloatKernels {
    /// Copies `source[start..<start + count]` into `destination[offset..<offset + count]`.
    public static func copy(_ source: [Float], from start: Int = 0, count: Int, into destination: inout [Float], at offset: Int) {
        precondition(count >= 0 && start >= 0 && source.count >= start + count && offset >= 0 && offset + count <= destination.count)
        source.withUnsafeBufferPointer { from in
            destination.withUnsafeMutableBufferPointer { to in
                (to.baseAddress! + offset).update(from: from.baseAddress! + start, count: count)
            }
        }
    }
}

extension FloatKernels {
    /// Whether every value is finite (no NaN, no infinity). `x - x` is 0 for a finite x and NaN
    /// otherwise, and a NaN stays in the SIMD sum, so one pass with no branches decides it.
    public static func allFinite(_ values: ArraySlice<Float>) -> Bool {
        values.withUnsafeBufferPointer { buffer in
            var sum = SIMD16<Float>()
            var index = 0
            while index + 16 <= buffer.count {
                let chunk = UnsafeRawPointer(buffer.baseAddress! + index).loadUnaligned(as: SIMD16<Float>.self)
                sum += chunk - chunk
                index += 16
            }
            var tail: Float = 0
            while index < buffer.count {
                tail += buffer[index] - buffer[index]
                index += 1
            }
            return sum == SIMD16<Float>() && tail == 0
        }
    }

    /// `allFinite`, one value at a time.
    public static func allFiniteReference(_ values: ArraySlice<Float>) -> Bool { values.allSatisfy(\.isFinite) }
}
