import Foundation
@testable import StrataKernels
import StrataTestSupport

/// The formats `Dequantization` implements, in a fixed order for parameterised tests.
let computableFormats = QuantFormat.allCases.filter(\.isComputable)

/// Byte offsets of the fp16 scale fields inside one block of `format`.
func halfScaleOffsets(_ format: QuantFormat) -> [Int] {
    switch format {
    case .q4_0, .q5_0, .q8_0: [0]
    case .q4_1, .q5_1, .q4_K, .q5_K: [0, 2]
    case .q6_K: [208]
    case .q2_K: [80, 82]
    case .q3_K: [108]
    default: []
    }
}

/// `blockCount` blocks of random bytes whose fp16 scales are finite and of weight-like size
/// (random bits elsewhere: every code and packed sub-scale is valid). Plain float formats keep
/// fully random bits, infinities and NaNs included.
func randomBlocks(_ format: QuantFormat, blockCount: Int, generator: inout SeededGenerator) -> [UInt8] {
    var bytes = (0..<(blockCount * format.bytesPerBlock)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    for blockIndex in 0..<blockCount {
        for offset in halfScaleOffsets(format) {
            let magnitude = Float.random(in: 1e-4 ... 0.05, using: &generator)
            let scale = Float16(Bool.random(using: &generator) ? magnitude : -magnitude).bitPattern
            bytes[blockIndex * format.bytesPerBlock + offset] = UInt8(truncatingIfNeeded: scale)
            bytes[blockIndex * format.bytesPerBlock + offset + 1] = UInt8(truncatingIfNeeded: scale >> 8)
        }
    }
    return bytes
}

/// A dequantization path: the kernels at one level, or the scalar reference.
enum Path {
    case level(KernelLevel), reference
    /// The kernels at the level this machine runs.
    static let fast = Path.level(.detected)
}

/// Dequantizes `bytes` (whole blocks) with one of the paths.
func dequantize(_ format: QuantFormat, _ bytes: [UInt8], path: Path) -> [Float] {
    let count = bytes.count / format.bytesPerBlock * format.blockSize
    return bytes.withUnsafeBytes { source in
        [Float](unsafeUninitializedCapacity: count) { buffer, initializedCount in
            guard let base = source.baseAddress, let destination = buffer.baseAddress else {
                initializedCount = 0
                return
            }
            switch path {
            case .level(let level):
                Dequantization.dequantize(format, source: base, into: destination, count: count, level: level)
            case .reference: Dequantization.dequantizeReference(format, source: base, into: destination, count: count)
            }
            initializedCount = count
        }
    }
}

/// Raw blocks and the values gguf-py's `dequantize` returned for them (see Fixtures/README.md).
struct QuantizationFixture {
    let blocks: [UInt8]
    let values: [Float]

    init(_ format: QuantFormat) throws {
        func load(_ suffix: String) throws -> Data {
            guard let url = Bundle.module.url(forResource: format.description, withExtension: suffix,
                                              subdirectory: "Fixtures/Quantization") else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: "\(format).\(suffix)"])
            }
            return try Data(contentsOf: url)
        }
        blocks = [UInt8](try load("blocks"))
        let valueBytes = try load("values")
        values = stride(from: 0, to: valueBytes.count, by: 4).map { start in
            let word = valueBytes[start..<start + 4].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
            return Float(bitPattern: word)
        }
    }
}

/// The shortest of `repetitions` timed runs of `body` after one warm-up run, in seconds. The
/// minimum is the run least disturbed by other work on the machine.
func bestSeconds(repetitions: Int, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity
    for _ in 0..<repetitions {
        let start = ContinuousClock.now
        body()
        let elapsed = ContinuousClock.now - start
        best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }
    return best
}
