import Foundation
import StrataFormats
@testable import StrataKernels
import StrataTestSupport
import Testing

/// Times `WeightMatrix.multiply(_:into:pool:)` on real model matrices and prints GMAC/s and
/// effective GB/s of weights read, for growing batches on one and two threads. Timings vary
/// with the machine and its load (best of several runs is printed); nothing is asserted. Run:
/// Full tier only: `STRATA_TEST_TIER=full swift test -c release -Xswiftc -enable-testing --filter QuantizedProductTiming`
/// (`STRATA_TIMING_MODEL=qwen2.5-coder-1.5b` times one model's matrices only,
/// `STRATA_TIMING_BITS=8` or `16` one activation precision only).
@Suite(.enabled(if: TestTier.isFull, "full tier only: set STRATA_TEST_TIER=full"), .serialized)
struct QuantizedProductTiming {
    static let cases: [(model: String, tensor: String)] = [
        ("smollm2-135m", "blk.0.ffn_up.weight"),
        ("smollm2-135m", "blk.0.ffn_down.weight"),
        ("smollm2-135m", "token_embd.weight"),
        ("qwen2.5-coder-1.5b", "blk.0.ffn_up.weight"),
        ("qwen2.5-coder-1.5b", "blk.0.ffn_down.weight"),
    ]

    @Test("quantized matrix products on model matrices")
    func timings() throws {
        let directory = ProcessInfo.processInfo.environment["STRATA_MODELS"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/strata/models").path
        let batches = [1, 2, 4, 8, 16, 64, 512]
        print("matrix, format, activation bits, tokens, threads, ms, GMAC/s, weight GB/s, time / 1-token time")
        let environment = ProcessInfo.processInfo.environment
        for (model, name) in Self.cases where environment["STRATA_TIMING_MODEL"].map({ $0 == model }) ?? true {
            let path = "\(directory)/\(model).gguf"
            guard FileManager.default.fileExists(atPath: path) else {
                print("\(path) missing; skipped")
                continue
            }
            let file = try GGUFFile.open(path: path)
            guard let tensor = file.tensor(named: name), tensor.shape.count == 2,
                  let matrix = WeightMatrix(format: tensor.format, rows: tensor.shape[1], columns: tensor.shape[0],
                                            bytes: file.data(for: tensor)), matrix.supportsQuantizedMultiply
            else { continue }
            var generator = SeededGenerator(seed: 1)
            let input = randomActivations(count: batches.max()! * matrix.columns, generator: &generator)
            let precisions = environment["STRATA_TIMING_BITS"].flatMap { ActivationPrecision(rawValue: $0) }.map { [$0] }
                ?? ActivationPrecision.allCases
            for precision in precisions {
                var scratch = QuantizedActivations(capacity: input.count, precision: precision)
                var output = [Float](repeating: 0, count: batches.max()! * matrix.rows)
                let macsPerToken = Double(matrix.rows * matrix.columns)
                for threads in [1, 2] {
                    let pool = WorkerPool(threadCount: threads)
                    var singleTokenSeconds = 0.0
                    for tokens in batches {
                        scratch.quantize(input, tokens: tokens, columns: matrix.columns)
                        // about half a second of work per measurement, at least three runs
                        let repetitions = max(3, min(200, Int(0.5 / (macsPerToken * Double(tokens) / 20e9))))
                        let seconds = bestSeconds(repetitions: repetitions) {
                            matrix.multiply(scratch, into: &output, pool: pool)
                        }
                        if tokens == 1 { singleTokenSeconds = seconds }
                        if tokens == 64 {
                            // process CPU time over wall time: how many threads really ran
                            let cpuStart = clock(), wallStart = ContinuousClock.now
                            for _ in 0..<3 { matrix.multiply(scratch, into: &output, pool: pool) }
                            let wall = ContinuousClock.now - wallStart
                            let wallSeconds = Double(wall.components.attoseconds) * 1e-18 + Double(wall.components.seconds)
                            print("  threads busy: " + String(format: "%.2f", Double(clock() - cpuStart) / Double(CLOCKS_PER_SEC) / wallSeconds))
                        }
                        let gmacs = macsPerToken * Double(tokens) / seconds / 1e9
                        let gigabytes = Double(matrix.bytes.count) / seconds / 1e9
                        print("\(model) \(name) \(matrix.rows)x\(matrix.columns)\t\(matrix.format)\t\(precision.rawValue)-bit\t\(tokens)\t\(threads)\t"
                              + String(format: "%.3f\t%.1f\t%.1f\t%.2f", seconds * 1000, gmacs, gigabytes, seconds / singleTokenSeconds))
                    }
                }
            }
        }
    }
}
