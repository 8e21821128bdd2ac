import StrataEngine

/// Records what importance metrics need from one forward pass: the residual stream entering
/// every step and leaving the last one, and each sublayer's contribution ratio
/// `||sublayer output|| / ||stream entering it||` averaged over tokens.
final class ResidualRecorder: HiddenStateObserver {
    /// `[steps + 1][tokens × hidden]`: `inputs[s]` enters step s, `inputs[steps]` leaves the
    /// last step (before the final norm).
    private(set) var inputs: [[Float]] = []
    /// Per step: mean over tokens of `||attention branch|| / ||stream entering it||`.
    private(set) var attentionRatios: [Double] = []
    /// Per step: mean over tokens of `||FFN branch|| / ||stream entering it||`.
    private(set) var feedForwardRatios: [Double] = []
    /// Whether to measure contribution ratios (costs one pass over the stream per boundary).
    let measuresContributions: Bool
    private var afterAttention: [Float] = []

    init(measuresContributions: Bool = true) {
        self.measuresContributions = measuresContributions
    }

    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        // Only the first tokens × hidden values are live: the scratch buffer may be larger.
        let live = Array(hidden[0..<(tokens * hiddenSize)])
        switch boundary {
        case .layerInput:
            precondition(step == inputs.count, "the recorder expects every step from the first, in order")
            inputs.append(live)
        case .afterAttention:
            afterAttention = live
            if measuresContributions {
                attentionRatios.append(Self.meanRatio(branchEnd: live, start: inputs[step], tokens: tokens, width: hiddenSize))
            }
        case .layerOutput:
            if measuresContributions {
                feedForwardRatios.append(
                    Self.meanRatio(branchEnd: live, start: afterAttention, tokens: tokens, width: hiddenSize))
            }
            // Kept so that after the pass the stream leaving the last step is available; the
            // next step's `.layerInput` replaces it with the identical array.
            finalOutput = live
        }
    }

    private var finalOutput: [Float] = []

    /// Appends the stream leaving the last step, once the forward pass has finished.
    func finish() {
        inputs.append(finalOutput)
    }

    /// Mean over tokens of `||end - start|| / ||start||`: the size of what a sublayer added
    /// relative to the stream it read.
    static func meanRatio(branchEnd end: [Float], start: [Float], tokens: Int, width: Int) -> Double {
        var sum = 0.0
        for token in 0..<tokens {
            var branch = 0.0
            var stream = 0.0
            for index in (token * width)..<((token + 1) * width) {
                let difference = Double(end[index] - start[index])
                branch += difference * difference
                stream += Double(start[index]) * Double(start[index])
            }
            sum += stream > 0 ? (branch / stream).squareRoot() : 0
        }
        return sum / Double(tokens)
    }
}

/// Vector helpers over rows of a `[tokens × width]` stream, in double precision.
enum StreamMath {
    /// Cosine similarity of row `row` of `a` and of `b`.
    static func cosine(_ a: [Float], _ b: [Float], row: Int, width: Int) -> Double {
        var dot = 0.0
        var normA = 0.0
        var normB = 0.0
        for index in (row * width)..<((row + 1) * width) {
            let x = Double(a[index])
            let y = Double(b[index])
            dot += x * y
            normA += x * x
            normB += y * y
        }
        let denominator = (normA * normB).squareRoot()
        return denominator > 0 ? dot / denominator : 0
    }
}
