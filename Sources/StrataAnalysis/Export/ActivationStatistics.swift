import Foundation
import StrataEngine

/// How large each weight matrix's input is in each column, over calibration text: for every
/// matrix, per input column j, the mean over tokens of `x_j²` (x the vector the matrix
/// multiplies). This is what llama.cpp's `llama-imatrix` computes and `llama-quantize
/// --imatrix` hands its quantizers as `quant_weights`: a column whose input is large makes its
/// rounding error count more, so the scale searches spend precision where the products feel it.
///
/// Matrices that read the same input share a vector (q, k and v; gate and up). The token
/// embedding has none: it is a lookup table, not a product.
public struct ActivationStatistics: Sendable, Equatable {
    /// Per tensor name (as the GGUF file names it), one mean square per input column.
    public var meanSquares: [String: [Float]]
    /// Tokens averaged over (every position of every window).
    public var tokens: Int
    /// Calibration windows run.
    public var windows: Int
    /// Tokens per window.
    public var context: Int
    /// Perplexity of the model on the calibration windows (every prediction scored): a check
    /// that the text and the model suit each other.
    public var perplexity: Double

    public init(meanSquares: [String: [Float]], tokens: Int, windows: Int, context: Int, perplexity: Double) {
        self.meanSquares = meanSquares
        self.tokens = tokens
        self.windows = windows
        self.context = context
        self.perplexity = perplexity
    }

    /// Runs every window of `calibration` through the full model in `transformer` and averages
    /// the squares of each matrix input it reads, through the forward pass's observer (the
    /// numbers are the products' own inputs at the transformer's numerics). `progress` is
    /// called after each window with the number done and the total.
    public static func collect(
        transformer: inout Transformer, calibration: CalibrationSet, progress: ((Int, Int) -> Void)? = nil
    ) throws -> ActivationStatistics {
        let model = transformer.model
        let layers = model.config.layerCount
        let recorder = MatrixInputRecorder(layers: layers)
        // every row's logits also make the output matrix read the final norm of every position
        let loss = try calibration.meanNegativeLogLikelihood(transformer: &transformer, observer: recorder, progress: progress)
        var meanSquares: [String: [Float]] = [:]
        for layer in 0...layers {
            for input in MatrixInput.allCases where (input == .output) == (layer == layers) {
                guard let mean = recorder.meanSquares(layer: layer, input: input) else { continue }
                for name in model.matrixNames(reading: input, layer: layer) { meanSquares[name] = mean }
            }
        }
        return ActivationStatistics(
            meanSquares: meanSquares, tokens: calibration.windows.count * calibration.context,
            windows: calibration.windows.count, context: calibration.context, perplexity: exp(loss))
    }
}

/// Sums the squares of every matrix input, per column, over the passes it observes.
final class MatrixInputRecorder: HiddenStateObserver {
    /// Per layer (and one past the last for `.output`) and input: the column sums, in double
    /// precision so that many windows add up without losing the small ones.
    private var sums: [[Double]]
    /// Rows summed into each slot.
    private var rows: [Int]
    private let layers: Int

    init(layers: Int) {
        self.layers = layers
        let slots = (layers + 1) * MatrixInput.allCases.count
        sums = [[Double]](repeating: [], count: slots)
        rows = [Int](repeating: 0, count: slots)
    }

    private func slot(layer: Int, input: MatrixInput) -> Int {
        let kind = switch input {
        case .attention: 0
        case .attentionOutput: 1
        case .feedForward: 2
        case .feedForwardDown: 3
        case .output: 4
        }
        return layer * MatrixInput.allCases.count + kind
    }

    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {}

    func observe(step: Int, layer: Int, input: MatrixInput, values: [Float], tokens: Int, columns: Int) {
        precondition((0...layers).contains(layer), "layer \(layer) outside the model's \(layers)")
        let index = slot(layer: layer, input: input)
        // taken out and put back so the additions write one uniquely held array in place
        var columnSums = sums[index]
        sums[index] = []
        if columnSums.isEmpty { columnSums = [Double](repeating: 0, count: columns) }
        precondition(columnSums.count == columns, "\(input) of layer \(layer): \(columns) columns, earlier \(columnSums.count)")
        for token in 0..<tokens {
            let start = token * columns
            for column in 0..<columns {
                let value = Double(values[start + column])
                columnSums[column] += value * value
            }
        }
        sums[index] = columnSums
        rows[index] += tokens
    }

    /// The mean square per column of `input` in `layer`, or nil if it was never observed.
    func meanSquares(layer: Int, input: MatrixInput) -> [Float]? {
        let index = slot(layer: layer, input: input)
        guard rows[index] > 0 else { return nil }
        let count = Double(rows[index])
        return sums[index].map { Float($0 / count) }
    }
}
