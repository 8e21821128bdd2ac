import Foundation
import StrataAnalysis
import StrataEngine
import StrataFormats
import StrataKernels
import StrataTestSupport
import StrataTokenizer
import Testing

/// The matrix inputs the forward pass shows its observer, averaged as llama.cpp's imatrix
/// averages them, against the same inputs rebuilt here from the residual stream and the file's
/// own weights, in double precision: the norms' outputs, the gated activation from the gate and
/// up rows, and the attention output by solving `W_o a = Δ` for the attention sublayer's
/// contribution Δ (which needs no attention code, and is exact where the sublayer adds `W_o a`
/// to the stream unnormalized and `W_o` is square).
@Suite("Activation statistics for quantization")
struct ActivationStatisticsTests {
    /// A model to collect on: a generated tiny model or an architecture fixture.
    struct Source: CustomStringConvertible, Sendable {
        let description: String
        let load: @Sendable () throws -> LanguageModel

        static func tiny(_ spec: TinyModelSpec) -> Source {
            Source(description: "tiny \(spec)") { try TinyModels.model(spec) }
        }

        static func fixture(_ family: String) -> Source {
            Source(description: "\(family) fixture") {
                try LanguageModel(path: Fixture.url("architectures/\(family)-tiny.gguf").path)
            }
        }
    }

    /// Llama (tied output), Qwen2 (biases, a separate output), Phi-3 (fused q/k/v and gate/up)
    /// and Gemma 3 (GeGLU, sublayer output norms).
    static let sources: [Source] = [.tiny(.llama), .tiny(.qwen2), .fixture("phi3"), .fixture("gemma3")]

    @Test("each matrix's vector is the mean square of its input, rebuilt from the stream and the weights",
          arguments: sources)
    func meanSquaresMatchTheInputs(source: Source) throws {
        let model = try source.load()
        let config = model.config
        let file = model.file
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        var random = SeededGenerator(seed: 11)
        let tokens = (0..<80).map { _ in TokenID(Int.random(in: 0..<config.vocabularySize, using: &random)) }
        let calibration = try CalibrationSet(tokens: tokens, context: 40, windows: 2)
        let statistics = try ActivationStatistics.collect(transformer: &transformer, calibration: calibration)
        #expect(statistics.tokens == 80 && statistics.windows == 2 && statistics.context == 40)
        #expect(statistics.perplexity.isFinite && statistics.perplexity > 1)

        func weights(_ name: String) throws -> [Double] {
            let tensor = try #require(file.tensor(named: name), "\(name)")
            return file.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount).map(Double.init)
        }
        let fused = file.tensor(named: "blk.0.attn_qkv.weight") != nil
        let hidden = config.hiddenSize, feedForward = config.feedForwardSize
        let attentionWidth = config.headCount * config.headDimensions
        let addsAttentionDirectly = !model.architecture.hasSublayerOutputNorms && attentionWidth == hidden
        var sums: [String: [Double]] = [:]
        func add(_ rows: [[Double]], to names: [String]) {
            for name in names {
                var total = sums[name] ?? [Double](repeating: 0, count: rows[0].count)
                for row in rows { for (column, value) in row.enumerated() { total[column] += value * value } }
                sums[name] = total
            }
        }
        for window in calibration.windows {
            let streams = StreamRecorder()
            var cache = transformer.makeCache(capacity: calibration.context)
            _ = try transformer.forward(tokens: window, startPosition: 0, plan: .full(layerCount: config.layerCount),
                                        cache: &cache, observer: streams, logits: .none)
            for layer in 0..<config.layerCount {
                let name = { (suffix: String) in "blk.\(layer).\(suffix)" }
                let attentionInput = try normalized(streams.rows(streams.inputs[layer], hidden),
                                                    weight: weights(name("attn_norm.weight")), epsilon: config.rmsNormEpsilon)
                add(attentionInput, to: fused ? [name("attn_qkv.weight")] : ["attn_q", "attn_k", "attn_v"].map { name($0 + ".weight") })

                if addsAttentionDirectly {
                    let contribution = zip(streams.rows(streams.afterAttention[layer], hidden),
                                           streams.rows(streams.inputs[layer], hidden)).map { zip($0, $1).map { $0 - $1 } }
                    let output = try weights(name("attn_output.weight"))
                    add(solve(output, size: hidden, contribution), to: [name("attn_output.weight")])
                }

                let feedForwardInput = try normalized(streams.rows(streams.afterAttention[layer], hidden),
                                                      weight: weights(name("ffn_norm.weight")), epsilon: config.rmsNormEpsilon)
                add(feedForwardInput, to: fused ? [name("ffn_up.weight")] : [name("ffn_gate.weight"), name("ffn_up.weight")])
                // Phi-3's ffn_up holds the gate rows first, then the up rows
                let gateRows = fused ? Array(try weights(name("ffn_up.weight")).prefix(feedForward * hidden))
                    : try weights(name("ffn_gate.weight"))
                let upRows = fused ? Array(try weights(name("ffn_up.weight")).suffix(feedForward * hidden))
                    : try weights(name("ffn_up.weight"))
                let gated = feedForwardInput.map { x in
                    let gate = product(gateRows, x, rows: feedForward), up = product(upRows, x, rows: feedForward)
                    return zip(gate, up).map { activate($0, model.architecture.activation) * $1 }
                }
                add(gated, to: [name("ffn_down.weight")])
            }
            if !config.tiedOutput {
                let finalInput = try normalized(streams.rows(streams.lastOutput, hidden), weight: weights("output_norm.weight"),
                                                epsilon: config.rmsNormEpsilon)
                add(finalInput, to: ["output.weight"])
            }
        }

        var expectedNames = Set(sums.keys)
        if !addsAttentionDirectly {
            // a normalized or wider attention output cannot be solved for: only its presence is checked
            let outputs = (0..<config.layerCount).map { "blk.\($0).attn_output.weight" }
            for name in outputs {
                #expect(statistics.meanSquares[name]?.count == attentionWidth, "\(source) \(name)")
                #expect(statistics.meanSquares[name]?.allSatisfy { $0 > 0 } == true, "\(source) \(name)")
            }
            expectedNames.formUnion(outputs)
        }
        #expect(Set(statistics.meanSquares.keys) == expectedNames, "\(source): vectors for the wrong tensors")
        #expect(statistics.meanSquares["token_embd.weight"] == nil)
        for (name, sum) in sums {
            let expected = sum.map { $0 / Double(statistics.tokens) }
            let found = try #require(statistics.meanSquares[name], "\(source): no vector for \(name)")
            try #require(found.count == expected.count, "\(source) \(name): \(found.count) values, expected \(expected.count)")
            let error = zip(found, expected).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }.squareRoot()
            let size = expected.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
            // float32 passes against double rebuilds agree to ~1e-6; solving for the attention
            // output multiplies the stream's rounding by the output matrix's condition number
            let bound = name.hasSuffix("attn_output.weight") ? 1e-3 : 1e-5
            #expect(size > 0 && error / size < bound, "\(source) \(name): relative error \(error / size)")
        }
    }

    @Test("the observed calibration passes score the windows as the unobserved perplexity evaluation does")
    func observedPassesComputeTheSame() throws {
        let model = try TinyModels.model(.qwen2)
        var transformer = Transformer(model: model, pool: WorkerPool(threadCount: 2), numerics: .exact)
        let tokens = model.tokenizer.encode(String(repeating: "def fibonacci(n): return the quick brown fox. ", count: 60),
                                            addSpecial: false)
        // windows longer than a prompt slice: unobserved passes run in slices, observed ones whole
        let calibration = try CalibrationSet(tokens: tokens, context: 160, windows: 2)
        let statistics = try ActivationStatistics.collect(transformer: &transformer, calibration: calibration)
        let report = try evaluatePerplexity(transformer: &transformer, tokens: tokens, context: 160, windows: 2)
        #expect(abs(statistics.perplexity - report.perplexity) <= 1e-9 * report.perplexity,
                "\(statistics.perplexity) against \(report.perplexity)")
    }

    // MARK: the rebuilds, in double precision

    /// RMSNorm of each row, times `weight`.
    func normalized(_ rows: [[Double]], weight: [Double], epsilon: Float) -> [[Double]] {
        rows.map { row in
            let meanSquare = row.reduce(0) { $0 + $1 * $1 } / Double(row.count)
            let inverse = 1 / (meanSquare + Double(epsilon)).squareRoot()
            return zip(row, weight).map { $0 * inverse * $1 }
        }
    }

    /// `matrix` (`rows × x.count`, row-major) times `x`.
    func product(_ matrix: [Double], _ x: [Double], rows: Int) -> [Double] {
        (0..<rows).map { row in
            var sum = 0.0
            for column in x.indices { sum += matrix[row * x.count + column] * x[column] }
            return sum
        }
    }

    func activate(_ x: Double, _ activation: GatedActivation) -> Double {
        switch activation {
        case .silu: x / (1 + exp(-x))
        case .geluTanh: 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        }
    }

    /// For each `b` of `right`, the `a` with `matrix · a = b` for a square `matrix` (`size × size`,
    /// row-major), by Gaussian elimination with partial pivoting on all of them at once.
    func solve(_ matrix: [Double], size: Int, _ right: [[Double]]) -> [[Double]] {
        var a = matrix, x = right
        for pivot in 0..<size {
            let best = (pivot..<size).max { abs(a[$0 * size + pivot]) < abs(a[$1 * size + pivot]) }!
            if best != pivot {
                for column in 0..<size { a.swapAt(pivot * size + column, best * size + column) }
                for index in x.indices { x[index].swapAt(pivot, best) }
            }
            for row in (pivot + 1)..<size {
                let factor = a[row * size + pivot] / a[pivot * size + pivot]
                guard factor != 0 else { continue }
                for column in pivot..<size { a[row * size + column] -= factor * a[pivot * size + column] }
                for index in x.indices { x[index][row] -= factor * x[index][pivot] }
            }
        }
        for index in x.indices {
            for row in stride(from: size - 1, through: 0, by: -1) {
                var sum = x[index][row]
                for column in (row + 1)..<size { sum -= a[row * size + column] * x[index][column] }
                x[index][row] = sum / a[row * size + row]
            }
        }
        return x
    }
}

/// The residual stream at every boundary of one pass.
private final class StreamRecorder: HiddenStateObserver {
    var inputs: [[Float]] = []
    var afterAttention: [[Float]] = []
    var lastOutput: [Float] = []

    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        let live = Array(hidden[0..<(tokens * hiddenSize)])
        switch boundary {
        case .layerInput: inputs.append(live)
        case .afterAttention: afterAttention.append(live)
        case .layerOutput: lastOutput = live
        }
    }

    /// `stream` as rows of `width`, in double precision.
    func rows(_ stream: [Float], _ width: Int) -> [[Double]] {
        stride(from: 0, to: stream.count, by: width).map { stream[$0..<($0 + width)].map(Double.init) }
    }
}
