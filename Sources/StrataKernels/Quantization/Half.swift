/// The float32 value of IEEE binary16 bits (GGML's `ggml_fp16_t`, used for block scales and
/// F16 tensors). Exact: every half value is representable as a float.
///
/// Swift's `Float16` conversion is exact with or without F16C (without it, a runtime call);
/// the dequantization kernels convert block scales in C, with F16C where the CPU has it.
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
}
