// Lane conversions written as fixed 16-iteration loops. The stdlib's generic SIMD conversion
// initialisers compile to vector code but are called out of line, which made a Q4_0 block
// loop 2.5x slower than these loops, which LLVM folds into vpmovzxbd + vcvtdq2ps.

extension SIMD16 where Scalar == Float {
    /// `Float(Int32(byte) - offset)` per lane.
    @inline(__always)
    init(_ bytes: SIMD16<UInt8>, minus offset: Int32) {
        self.init()
        for lane in 0..<16 { self[lane] = Float(Int32(bytes[lane]) - offset) }
    }

    /// `Float(byte)` per lane.
    @inline(__always)
    init(_ bytes: SIMD16<UInt8>) {
        self.init()
        for lane in 0..<16 { self[lane] = Float(bytes[lane]) }
    }

    /// `Float(byte)` per lane, for signed bytes.
    @inline(__always)
    init(_ bytes: SIMD16<Int8>) {
        self.init()
        for lane in 0..<16 { self[lane] = Float(bytes[lane]) }
    }
}

/// Sixteen bytes at `offset`; block fields sit at arbitrary alignment.
@inline(__always)
func loadBytes(_ source: UnsafeRawPointer, at offset: Int) -> SIMD16<UInt8> {
    source.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self)
}

/// Writes sixteen floats; callers' buffers need not be 64-byte aligned.
@inline(__always)
func store(_ values: SIMD16<Float>, to destination: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(destination).storeBytes(of: values, as: SIMD16<Float>.self)
}

/// The low four bits of each byte.
@inline(__always)
func lowNibbles(_ bytes: SIMD16<UInt8>) -> SIMD16<UInt8> { bytes & 0x0F }

/// The high four bits of each byte, shifted down.
@inline(__always)
func highNibbles(_ bytes: SIMD16<UInt8>) -> SIMD16<UInt8> { bytes &>> 4 }
