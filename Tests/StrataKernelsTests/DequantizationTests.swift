import Testing
@testable import StrataKernels
import StrataTestSupport

@Suite struct DequantizationFixtureTests {
    @Test("reference matches gguf-py on fixture blocks", arguments: computableFormats)
    func referenceMatchesPython(format: QuantFormat) throws {
        let fixture = try QuantizationFixture(format)
        #expect(fixture.blocks.count % format.bytesPerBlock == 0)
        let reference = dequantize(format, fixture.blocks, path: .reference)
        #expect(reference.count == fixture.values.count)
        let mismatch = firstBitwiseDifference(reference, fixture.values)
        #expect(mismatch == nil, "\(format) element \(mismatch ?? -1): Swift \(mismatch.map { reference[$0] } ?? 0), Python \(mismatch.map { fixture.values[$0] } ?? 0)")
    }

    @Test("fast path matches reference on fixture blocks", arguments: computableFormats)
    func fastMatchesReferenceOnFixtures(format: QuantFormat) throws {
        let fixture = try QuantizationFixture(format)
        let fast = dequantize(format, fixture.blocks, path: .fast)
        #expect(firstBitwiseDifference(fast, dequantize(format, fixture.blocks, path: .reference)) == nil)
    }
}

@Suite struct DequantizationRandomTests {
    @Test("every level matches the reference bitwise on random blocks",
          arguments: computableFormats, KernelLevel.available)
    func fastMatchesReference(format: QuantFormat, level: KernelLevel) {
        var generator = SeededGenerator(seed: 0x5EED_0000 + UInt64(format.rawValue))
        // odd block counts, and enough whole elements to exercise F16/BF16's vector tails
        for blockCount in [1, 3, 7, 33, 1001] {
            let bytes = randomBlocks(format, blockCount: blockCount, generator: &generator)
            let fast = dequantize(format, bytes, path: .level(level))
            let reference = dequantize(format, bytes, path: .reference)
            let mismatch = firstBitwiseDifference(fast, reference)
            #expect(mismatch == nil, "\(format), \(level), \(blockCount) blocks: first difference at \(mismatch ?? -1)")
        }
    }

    @Test("fast path reads and writes at any alignment", arguments: computableFormats)
    func unalignedBuffers(format: QuantFormat) {
        var generator = SeededGenerator(seed: 0xA11_0000 + UInt64(format.rawValue))
        let blockCount = 5
        let bytes = randomBlocks(format, blockCount: blockCount, generator: &generator)
        let expected = dequantize(format, bytes, path: .reference)
        let count = blockCount * format.blockSize
        let shifted = [0x7F] + bytes
        var output = [Float](repeating: 0, count: count + 1)
        shifted.withUnsafeBytes { source in
            output.withUnsafeMutableBufferPointer { destination in
                Dequantization.dequantize(format, source: source.baseAddress! + 1,
                                          into: destination.baseAddress! + 1, count: count)
            }
        }
        #expect(output[0] == 0)
        #expect(firstBitwiseDifference(Array(output[1...]), expected) == nil)
    }

    @Test("zero elements write nothing", arguments: computableFormats)
    func emptyInput(format: QuantFormat) {
        #expect(dequantize(format, [], path: .fast).isEmpty)
        #expect(dequantize(format, [], path: .reference).isEmpty)
    }
}

@Suite struct ByteViewDequantizedTests {
    @Test("ByteView.dequantized returns the requested blocks", arguments: computableFormats)
    func offsets(format: QuantFormat) {
        var generator = SeededGenerator(seed: 0xB17E_0000 + UInt64(format.rawValue))
        let blockCount = 9
        let bytes = randomBlocks(format, blockCount: blockCount, generator: &generator)
        let all = dequantize(format, bytes, path: .reference)
        // a view that starts inside its storage, as tensor views in a mapped file do
        let view = ByteView(ByteStorage.copying([1, 2, 3] + bytes + [4])).slice(start: 3, length: bytes.count)
        let size = format.blockSize
        for (firstBlock, blocks) in [(0, 9), (0, 1), (4, 3), (8, 1), (2, 0)] {
            let values = view.dequantized(format, elementOffset: firstBlock * size, count: blocks * size)
            let expected = Array(all[(firstBlock * size)..<((firstBlock + blocks) * size)])
            #expect(firstBitwiseDifference(values, expected) == nil, "\(format) blocks \(firstBlock)+\(blocks)")
        }
        #expect(firstBitwiseDifference(view.dequantized(format, count: blockCount * size), all) == nil)
    }
}

@Suite struct HalfConversionTests {
    @Test("floatFromHalf matches the field-by-field conversion for all 65,536 patterns")
    func everyHalf() {
        var mismatches: [UInt16] = []
        for bits in UInt16.min...UInt16.max where floatFromHalf(bits).bitPattern != referenceFloatFromHalf(bits).bitPattern {
            mismatches.append(bits)
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(5))")
    }

    @Test("half and bfloat16 landmarks")
    func landmarks() {
        #expect(floatFromHalf(0x3C00) == 1)
        #expect(floatFromHalf(0xC000) == -2)
        #expect(floatFromHalf(0x7BFF) == 65504)
        #expect(floatFromHalf(0x0001) == Float(sign: .plus, exponent: -24, significand: 1))
        #expect(floatFromHalf(0x7C00) == .infinity)
        #expect(floatFromHalf(0x7E00).isNaN)
        #expect(floatFromHalf(0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(floatFromBFloat16(0x3F80) == 1)
        #expect(floatFromBFloat16(0xC040) == -3)
        #expect(floatFromBFloat16(0xFF80) == -.infinity)
    }
}
