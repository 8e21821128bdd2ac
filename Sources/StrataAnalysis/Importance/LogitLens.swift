import StrataEngine

/// Logit lens: the final norm and LM head applied to each layer's output, compared with the
/// full model's next-token distribution at the same positions.
struct LogitLensAccumulator {
    private var matches: [Int]
    private var divergenceSums: [Double]
    private var positionsSeen = 0

    init(layers: Int) {
        matches = [Int](repeating: 0, count: layers)
        divergenceSums = [Double](repeating: 0, count: layers)
    }

    /// Per layer: fraction of positions whose lens argmax equals the full model's.
    var agreement: [Double] { matches.map { Double($0) / Double(max(positionsSeen, 1)) } }
    /// Per layer: mean KL(full || lens) in nats.
    var meanDivergence: [Double] { divergenceSums.map { $0 / Double(max(positionsSeen, 1)) } }

    /// Evenly spaced positions of a window of `context`, the last one included.
    static func positions(count: Int, context: Int) -> [Int] {
        (0..<count).map { ($0 + 1) * context / count - 1 }
    }

    /// Adds one window. `states[l + 1]` is layer l's output (`[tokens × hidden]`);
    /// `fullLogits` are the full model's `.all` logits for the window. With `shortcuts` (a tuned
    /// lens), each layer's rows go through its fitted map to the last layer's stream first.
    mutating func measure(
        transformer: inout Transformer, states: [[Float]], fullLogits: Logits, positions count: Int, shortcuts: ShortcutMaps? = nil
    ) throws {
        let hiddenSize = transformer.config.hiddenSize
        let context = fullLogits.rows
        let positions = Self.positions(count: count, context: context)
        let full = LayerPlan.full(layerCount: transformer.config.layerCount)
        let reference = positions.map { LogDistribution(logits: fullLogits.row($0)) }
        // The lens runs no layer, so the cache only has to admit the rows.
        var cache = transformer.makeCache(capacity: count)
        for layer in 0..<(states.count - 1) {
            var rows = [Float]()
            rows.reserveCapacity(count * hiddenSize)
            for position in positions {
                rows.append(contentsOf: states[layer + 1][(position * hiddenSize)..<((position + 1) * hiddenSize)])
            }
            if let shortcuts, shortcuts.maps[layer + 1] != nil { rows = shortcuts.apply(depth: layer + 1, to: rows) }
            cache.truncate(to: 0)
            let lens = try transformer.forward(hidden: rows, firstStep: full.steps.count, startPosition: 0, plan: full,
                                               cache: &cache, logits: .all)
            for (row, target) in reference.enumerated() {
                let guess = LogDistribution(logits: lens.row(row))
                if guess.argmax == target.argmax { matches[layer] += 1 }
                divergenceSums[layer] += target.divergence(from: guess)
            }
        }
        positionsSeen += count
    }
}

/// Log-probabilities of a softmax over logits, in double precision.
struct LogDistribution {
    let logProbabilities: [Double]
    let argmax: Int

    init(logits: ArraySlice<Float>) {
        var maximum = -Double.infinity
        var best = 0
        for (index, value) in logits.enumerated() where Double(value) > maximum {
            maximum = Double(value)
            best = index
        }
        var sum = 0.0
        for value in logits { sum += exp(Double(value) - maximum) }
        let shift = maximum + log(sum)
        logProbabilities = logits.map { Double($0) - shift }
        argmax = best
    }

    /// KL(self || other) in nats.
    func divergence(from other: LogDistribution) -> Double {
        var total = 0.0
        for (mine, theirs) in zip(logProbabilities, other.logProbabilities) {
            total += exp(mine) * (mine - theirs)
        }
        return total
    }
}

#if canImport(Glibc)
import Glibc
#endif
