import Foundation
import Testing
@testable import StrataKernels
import StrataTestSupport

/// Seeded rows of the shapes weights take, for round trips.
enum RoundTripRows {
    enum Distribution: String, CaseIterable, Sendable {
        case normal, blockScaled, uniform, heavyTailed, outliers
    }

    static func normal(_ generator: inout SeededGenerator) -> Float {
        // Box-Muller; the generator gives (0, 1] so the logarithm is finite
        let u = Float.random(in: Float.ulpOfOne...1, using: &generator), v = Float.random(in: 0..<1, using: &generator)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }

    static func row(_ distribution: Distribution, width: Int, generator: inout SeededGenerator) -> [Float] {
        switch distribution {
        case .normal:
            return (0..<width).map { _ in 0.02 * normal(&generator) }
        case .blockScaled:
            var row: [Float] = []
            for _ in 0..<(width / 32) {
                let scale = Float.random(in: 0.005...0.2, using: &generator)
                row += (0..<32).map { _ in scale * normal(&generator) }
            }
            return row
        case .uniform:
            return (0..<width).map { _ in Float.random(in: -1...1, using: &generator) }
        case .heavyTailed:
            // a normal divided by an independent |normal|-ish spread: Cauchy-like tails, capped
            return (0..<width).map { _ in
                0.01 * normal(&generator) / max(0.05, abs(normal(&generator)))
            }
        case .outliers:
            var row = (0..<width).map { _ in 0.02 * normal(&generator) }
            for _ in 0..<(width / 128) { row[Int.random(in: 0..<width, using: &generator)] *= 50 }
            return row
        }
    }
}

/// `row` quantized to `format` and read back with the reference dequantizer.
func roundTrip(_ row: [Float], _ format: QuantFormat, importance: [Float]? = nil) throws -> [Float] {
    dequantize(format, try Quantizer.quantize(row, to: format, importance: importance), path: .reference)
}

func rootMeanSquare(_ values: [Float]) -> Float {
    (values.reduce(0) { $0 + $1 * $1 } / Float(max(values.count, 1))).squareRoot()
}

@Suite struct QuantizerRoundTripTests {
    static let width = 1_024

    /// Bounds on a row's RMS error relative to the row's RMS, for Gaussian-like rows (normal,
    /// normal with a scale per 32, uniform). Derivation: a uniform quantizer with step Δ errs by
    /// Δ/√12 RMS. The largest magnitude of 32 Gaussian values is about 2.5σ and of 16 about 2.1σ;
    /// the range of 32 is about 4.2σ and of 16 about 3.5σ. So Q8_0 (step max/127) ≈ 0.0057σ,
    /// Q4_0 (max/8) ≈ 0.090σ, Q5_0 (max/16) ≈ 0.045σ, Q4_1 and Q4_K (range/15) ≈ 0.081σ, Q5_1
    /// and Q5_K (range/31) ≈ 0.039σ, Q2_K (range of 16 over 3) ≈ 0.34σ, Q3_K (max of 16 over 4)
    /// ≈ 0.15σ, Q6_K (max of 16 over 32) ≈ 0.019σ. Each bound is that estimate plus 10-20%
    /// (block maxima vary); measured worst cases over 72 rows per format were 0.0057, 0.093,
    /// 0.047, 0.083, 0.041, 0.32, 0.16, 0.075, 0.038 and 0.019 in the order of the keys below.
    static let gaussianBounds: [QuantFormat: Float] = [
        .q8_0: 0.0065, .q4_0: 0.10, .q5_0: 0.052, .q4_1: 0.092, .q5_1: 0.046,
        .q2_K: 0.36, .q3_K: 0.18, .q4_K: 0.09, .q5_K: 0.045, .q6_K: 0.022,
    ]

    /// Heavy-tailed rows and rows with outliers 50× their spread may err by 2.5 times as much:
    /// a block holding an outlier quantizes its other values with a step the outlier sets.
    /// Measured: at most 2.4 times (Q8_0 with outliers), most formats under 1.7 times.
    static let heavyFactor: Float = 2.5

    @Test("round trips stay within each format's RMS bound", arguments: Quantizer.supportedFormats)
    func relativeError(format: QuantFormat) throws {
        var generator = SeededGenerator(seed: 0x0E_22 &+ UInt64(format.rawValue))
        let gaussian = try #require(Self.gaussianBounds[format])
        for distribution in RoundTripRows.Distribution.allCases {
            let heavy = distribution == .heavyTailed || distribution == .outliers
            let bound = heavy ? Self.heavyFactor * gaussian : gaussian
            var worst: Float = 0
            for _ in 0..<24 {
                let row = RoundTripRows.row(distribution, width: Self.width, generator: &generator)
                let back = try roundTrip(row, format)
                worst = max(worst, rootMeanSquare(zip(row, back).map { $0 - $1 }) / rootMeanSquare(row))
            }
            #expect(worst <= bound, "\(format) \(distribution): worst relative RMS error \(worst), bound \(bound)")
        }
    }

    @Test("a real weight row round-trips within the same bounds", arguments: Quantizer.supportedFormats)
    func realRow(format: QuantFormat) throws {
        let fixture = try #require(QuantizerFixture.shared)
        let row = fixture.rows[12]
        let back = try roundTrip(row, format)
        let error = rootMeanSquare(zip(row, back).map { $0 - $1 }) / rootMeanSquare(row)
        #expect(error <= Self.gaussianBounds[format]!, "\(format): relative RMS error \(error)")
    }

    @Test("Q8_0 errs by at most half a step per element", arguments: RoundTripRows.Distribution.allCases)
    func q8Bound(distribution: RoundTripRows.Distribution) throws {
        // codes are x / d rounded, with d = max|x| / 127 before fp16 rounding; the stored scale
        // d' differs from d by at most 2^-11 d', which moves a code of at most 127 by 127·2^-11 d'
        var generator = SeededGenerator(seed: 0x08_00)
        for _ in 0..<16 {
            let row = RoundTripRows.row(distribution, width: Self.width, generator: &generator)
            let bytes = try Quantizer.quantize(row, to: .q8_0)
            let back = dequantize(.q8_0, bytes, path: .reference)
            for block in 0..<(row.count / 32) {
                let stored = floatFromHalf(UInt16(bytes[34 * block]) | UInt16(bytes[34 * block + 1]) << 8)
                let limit = stored * (0.5 + 127 / 2048) * (1 + 1e-6)
                for index in (32 * block)..<(32 * block + 32) {
                    #expect(abs(row[index] - back[index]) <= limit, "block \(block) element \(index)")
                }
            }
        }
    }

    @Test("all-zero rows and blocks come back as zeros", arguments: Quantizer.supportedFormats)
    func zeros(format: QuantFormat) throws {
        #expect(try roundTrip([Float](repeating: 0, count: 512), format).allSatisfy { $0 == 0 })
        var generator = SeededGenerator(seed: 0x2E40)
        var row = RoundTripRows.row(.normal, width: 512, generator: &generator)
        for index in 0..<256 { row[index] = 0 }
        let back = try roundTrip(row, format)
        #expect(back[0..<256].allSatisfy { $0 == 0 })
        let error = rootMeanSquare(zip(row, back).map { $0 - $1 }) / rootMeanSquare(row)
        #expect(error <= Self.gaussianBounds[format]!)
    }

    @Test("importance lowers the importance-weighted error on average",
          arguments: Quantizer.supportedFormats.filter { $0 != .q8_0 })
    func importanceHelps(format: QuantFormat) throws {
        var generator = SeededGenerator(seed: 0x1A7 &+ UInt64(format.rawValue))
        var plain: Float = 0, weighted: Float = 0
        for rowIndex in 0..<48 {
            let distribution = RoundTripRows.Distribution.allCases[rowIndex % RoundTripRows.Distribution.allCases.count]
            let row = RoundTripRows.row(distribution, width: Self.width, generator: &generator)
            // skewed, imatrix-like: log-normal with a few columns far more important
            let importance = (0..<Self.width).map { _ in exp(1.5 * RoundTripRows.normal(&generator)) }
            func weightedError(_ back: [Float]) -> Float {
                zip(zip(row, back), importance).reduce(0) { $0 + $1.1 * ($1.0.0 - $1.0.1) * ($1.0.0 - $1.0.1) }
                    / rootMeanSquare(row) / rootMeanSquare(row)
            }
            plain += weightedError(try roundTrip(row, format))
            weighted += weightedError(try roundTrip(row, format, importance: importance))
        }
        #expect(weighted < plain, "\(format): weighted error \(weighted / 48) with importance, \(plain / 48) without")
    }
}
