import Foundation
import StrataKernels
import StrataTestSupport
import Testing

/// Prints fast-versus-reference timings. Timings vary with the machine and its load, so nothing
/// is asserted. Run (release needs `-enable-testing` for the target's `@testable` imports):
/// Full tier only: `STRATA_TEST_TIER=full swift test -c release -Xswiftc -enable-testing --filter DequantizationTiming`
@Suite(.enabled(if: TestTier.isFull, "full tier only: set STRATA_TEST_TIER=full"), .serialized)
struct DequantizationTiming {
    @Test("fast versus reference dequantization", arguments: [4 << 20, 64 << 10])
    func timings(sourceBytes: Int) {
        print("source bytes \(sourceBytes): format, reference ms, fast ms, speedup, fast GB/s of floats written")
        for format in computableFormats {
            var generator = SeededGenerator(seed: 7)
            let blockCount = sourceBytes / format.bytesPerBlock
            let bytes = randomBlocks(format, blockCount: blockCount, generator: &generator)
            let count = blockCount * format.blockSize
            let repetitions = max(3, (64 << 20) / (count * 4))
            let destination = UnsafeMutablePointer<Float>.allocate(capacity: count)
            defer { destination.deallocate() }
            let times = bytes.withUnsafeBytes { buffer in
                let source = buffer.baseAddress!
                return (reference: bestSeconds(repetitions: repetitions) {
                            Dequantization.dequantizeReference(format, source: source, into: destination, count: count)
                        },
                        fast: bestSeconds(repetitions: repetitions) {
                            Dequantization.dequantize(format, source: source, into: destination, count: count)
                        })
            }
            let speedup = times.reference / times.fast
            let throughput = Double(count * 4) / times.fast / 1e9
            print("\(format)\t\(milliseconds(times.reference))\t\(milliseconds(times.fast))\t\(String(format: "%.1fx", speedup))\t\(String(format: "%.1f", throughput))")
        }
    }

    private func milliseconds(_ seconds: Double) -> String { String(format: "%.3f", seconds * 1000) }
}
