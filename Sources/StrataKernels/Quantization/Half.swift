/// The float32 value of IEEE binary16 bits (GGML's `ggml_fp16_t`, used for block scales and
/// F16 tensors). Exact: every half value is representable as a float.
///
/// Swift's `Float16` lowers to one `vcvtph2ps` under the kernels' Haswell target (checked in
/// the disassembly); inlined into other modules it still converts exactly, only more slowly.
@inlinable
public func floatFromHalf(_ bits: UInt16) -> Float {
    Float(Float16(bitPattern: bits))
}

/// The float32 value of bfloat16 bits: the upper half of a float32, so the conversion is a
/// shift.
@inlinable
public func floatFromBFloat16(_ bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

/// Half to float by taking the fields apart, written from the binary16 definition. It is the
/// oracle for `floatFromHalf`, so the reference dequantizers do not depend on the hardware
/// conversion they are checked against. NaNs come out quiet, as `vcvtph2ps` makes them.
func referenceFloatFromHalf(_ bits: UInt16) -> Float {
    let sign = UInt32(bits >> 15) << 31
    let exponent = Int(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x3FF)
    switch exponent {
    case 0:
        // zero or subnormal: mantissa × 2^-24, exact in float32
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return Float(bitPattern: sign | magnitude.bitPattern)
    case 0x1F:
        let quiet: UInt32 = mantissa == 0 ? 0 : 0x0040_0000
        return Float(bitPattern: sign | 0x7F80_0000 | quiet | (mantissa << 13))
    default:
        // rebias the exponent from 15 to 127; the mantissa gains 13 low zero bits
        return Float(bitPattern: sign | (UInt32(exponent + 127 - 15) << 23) | (mantissa << 13))
    }
}

/// Reads a little-endian fp16 scale at `offset`; GGUF blocks do not align their fields.
@inline(__always)
func loadHalf(_ source: UnsafeRawPointer, at offset: Int) -> Float {
    floatFromHalf(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

/// The reference dequantizers' scale reader, built on the field-by-field conversion.
func referenceLoadHalf(_ source: UnsafeRawPointer, at offset: Int) -> Float {
    let low = UInt16(source.load(fromByteOffset: offset, as: UInt8.self))
    let high = UInt16(source.load(fromByteOffset: offset + 1, as: UInt8.self))
    return referenceFloatFromHalf(low | high << 8)
}

/// F32, F16 and BF16 rows: blocks of one element.
enum PlainFloats {
    static func referenceF32(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for index in 0..<count {
            var bits: UInt32 = 0
            for byte in 0..<4 {
                bits |= UInt32(source.load(fromByteOffset: 4 * index + byte, as: UInt8.self)) << (8 * byte)
            }
            destination[index] = Float(bitPattern: bits)
        }
    }

    static func referenceF16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for index in 0..<count {
            destination[index] = referenceLoadHalf(source, at: 2 * index)
        }
    }

    static func referenceBF16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        for index in 0..<count {
            let low = UInt32(source.load(fromByteOffset: 2 * index, as: UInt8.self))
            let high = UInt32(source.load(fromByteOffset: 2 * index + 1, as: UInt8.self))
            destination[index] = Float(bitPattern: (low << 16) | (high << 24))
        }
    }

    static func f32(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: 4 * count)
    }

    static func f16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        let vectorCount = count / 16
        for vectorIndex in 0..<vectorCount {
            let halves = source.loadUnaligned(fromByteOffset: 32 * vectorIndex, as: SIMD16<UInt16>.self)
            var floats = SIMD16<Float>()
            for lane in 0..<16 { floats[lane] = Float(Float16(bitPattern: halves[lane])) }
            store(floats, to: destination + 16 * vectorIndex)
        }
        for index in (16 * vectorCount)..<count {
            destination[index] = loadHalf(source, at: 2 * index)
        }
    }

    static func bf16(_ source: UnsafeRawPointer, into destination: UnsafeMutablePointer<Float>, count: Int) {
        // a plain loop: LLVM vectorizes it to vpmovzxwd + vpslld, faster than SIMD16 lane inserts
        for index in 0..<count {
            destination[index] = floatFromBFloat16(source.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self))
        }
    }
}
