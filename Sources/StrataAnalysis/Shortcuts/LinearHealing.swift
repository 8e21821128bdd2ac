import StrataEngine
import StrataKernels

/// How `healPlan` fits its maps.
public struct HealingOptions: Sendable {
    /// Where each map applies: the FFN output of the step before a cut (ReplaceMe's choice, which
    /// folds into the FFN's down projection) or the whole stream leaving that step. A step
    /// without its FFN is healed at the stream whatever this says.
    public var site: LinearMap.Site
    /// The ridge λ as a fraction of the mean diagonal of `XᵀX` (scale-free across models), or
    /// nil: per cut, the one of `ridgeCandidates` with the least held-out error (then at least
    /// one window must be held out).
    public var ridge: Double?
    /// Calibration windows held out of the fit to measure how it generalises (0: none; at
    /// least one window is always fitted on).
    public var heldOutWindows: Int

    /// The ridges tried when `ridge` is nil.
    public static let ridgeCandidates = [1e-4, 1e-3, 1e-2, 1e-1]

    public init(site: LinearMap.Site = .stream, ridge: Double? = nil, heldOutWindows: Int = 1) {
        self.site = site
        self.ridge = ridge
        self.heldOutWindows = heldOutWindows
    }
}

/// One place a plan departs from the full model, and the map fitted there.
public struct HealedCut: Sendable, Codable, Equatable {
    /// The plan step whose map heals the cut (the step before the removed layers).
    public var step: Int
    /// The layer that step runs.
    public var layer: Int
    /// The full model's layer the plan continues with (the layer count: the final stream).
    public var nextLayer: Int
    /// What the plan removed between them, e.g. "layers 5-8", "the FFN of layer 4".
    public var removed: String
    public var site: LinearMap.Site
    /// Calibration rows the map was fitted on.
    public var rows: Int
    /// The relative ridge of the map (chosen on the held-out window unless given).
    public var ridge: Double
    /// On the held-out windows: the squared distance to the full model's stream after healing,
    /// relative to before (below 1: the map helps), or nil without held-out windows.
    public var heldOutErrorRatio: Double?

    enum CodingKeys: String, CodingKey {
        case step, layer, removed, site, rows, ridge
        case nextLayer = "next_layer"
        case heldOutErrorRatio = "held_out_error_ratio"
    }
}

/// The healed plan, its cuts, and what fitting cost.
public struct HealingResult: Sendable {
    public var plan: LayerPlan
    public var cuts: [HealedCut]
    public var seconds: Double
}

/// Why a plan cannot be healed.
public enum HealingError: Error, CustomStringConvertible, Equatable {
    case notInOrder
    case removesFirstLayers(first: Int)
    case nothingToHeal
    case tooFewWindows(windows: Int, heldOut: Int)
    case ridgeNeedsHeldOut

    public var description: String {
        switch self {
        case .notInOrder:
            "healing needs a plan that runs layers once each, in increasing order (a pruning plan); this one repeats or reorders layers"
        case .removesFirstLayers(let first):
            "the plan starts at layer \(first): a map heals the stream leaving a kept layer, so layer 0 must run"
        case .nothingToHeal:
            "the plan runs every layer whole: there is nothing to heal"
        case .tooFewWindows(let windows, let heldOut):
            "\(windows) calibration windows leave none to fit on after holding out \(heldOut); use more text or fewer held-out windows"
        case .ridgeNeedsHeldOut:
            "choosing the ridge needs a held-out window; give a ridge or hold a window out"
        }
    }
}

/// Fits, for each contiguous run of removed layers or sublayers in `plan`, a linear map that
/// carries the stream leaving the kept step before the run to the full model's stream entering
/// the layer after it (ReplaceMe, `docs/methods.md` section 9), and returns the plan with the
/// maps on those steps.
///
/// Maps are fitted in step order, each on the stream the plan (with the maps before it) really
/// computes, against the full model's stream on the same windows. The fit is ridge least
/// squares in float64 in residual form (the map is `I + T'`, and the ridge pulls `T'` toward
/// zero, i.e. toward the unhealed plan). Deterministic: the same inputs give the same maps.
public func healPlan(
    _ plan: LayerPlan, transformer: inout Transformer, calibration: CalibrationSet, options: HealingOptions = HealingOptions(),
    progress: ((AnalysisProgress) -> Void)? = nil
) throws -> HealingResult {
    let clock = ContinuousClock()
    let start = clock.now
    let config = transformer.config
    let width = config.hiddenSize
    try plan.validate(layerCount: config.layerCount)
    let cuts = try healingCuts(of: plan, layerCount: config.layerCount)
    let windows = calibration.windows
    let heldOut = min(options.heldOutWindows, windows.count)
    guard windows.count > heldOut else { throw HealingError.tooFewWindows(windows: windows.count, heldOut: heldOut) }
    guard options.ridge != nil || heldOut > 0 else { throw HealingError.ridgeNeedsHeldOut }
    let fitWindows = windows.count - heldOut

    // the full model's stream at every boundary a cut is healed toward, per window
    let full = LayerPlan.full(layerCount: config.layerCount)
    let targetSteps = Set(cuts.map { $0.nextLayer - 1 })
    var targets: [Int: [[Float]]] = [:]
    let totalPasses = Double(windows.count * (1 + cuts.count))
    var passes = 0.0
    func report(_ activity: String) {
        passes += 1
        let elapsed = (clock.now - start).seconds
        progress?(AnalysisProgress(activity: activity, fractionDone: passes / totalPasses,
                                   secondsLeft: passes > 0 ? elapsed / passes * (totalPasses - passes) : nil))
    }
    for (index, window) in windows.enumerated() {
        let recorder = StepStreams(steps: targetSteps)
        var cache = transformer.makeCache(capacity: window.count)
        _ = try transformer.forward(tokens: window, startPosition: 0, plan: full, cache: &cache, observer: recorder, logits: .none)
        for (step, stream) in recorder.outputs { targets[step, default: []].append(stream) }
        report("window \(index + 1)/\(windows.count): full model")
    }

    var healed = plan
    var results: [HealedCut] = []
    let pool = transformer.pool
    for var cut in cuts {
        let step = cut.step
        let prefix = LayerPlan(layerCount: config.layerCount, steps: Array(healed.steps[0...step]))
        let site: LinearMap.Site = healed.steps[step].runsFFN ? options.site : .stream
        var regression = RidgeRegression(inputWidth: width, outputWidth: width)
        var heldOutPairs: [(inputs: [Float], residual: [Float])] = []
        for (index, window) in windows.enumerated() {
            let recorder = StepStreams(steps: [step])
            var cache = transformer.makeCache(capacity: window.count)
            _ = try transformer.forward(tokens: window, startPosition: 0, plan: prefix, cache: &cache, observer: recorder, logits: .none)
            guard let output = recorder.outputs[step], let afterAttention = recorder.afterAttention[step],
                  let target = targets[cut.nextLayer - 1]?[index] else {
                preconditionFailure("the observer saw every step of the pass")
            }
            // what the map must add: the full model's stream minus what the plan has
            var residual = target
            for position in residual.indices { residual[position] -= output[position] }
            var inputs = output
            if site == .feedForwardOutput {
                for position in inputs.indices { inputs[position] -= afterAttention[position] }
            }
            if index < fitWindows {
                regression.add(inputs: inputs, outputs: residual, rows: window.count, pool: pool)
            } else {
                heldOutPairs.append((inputs, residual))
            }
            report("cut \(results.count + 1)/\(cuts.count) (\(cut.removed)): window \(index + 1)/\(windows.count)")
        }
        var correction: [Double] = []
        var chosenRidge = options.ridge ?? 0
        var bestRatio: Double?
        for ridge in options.ridge.map({ [$0] }) ?? HealingOptions.ridgeCandidates {
            let candidate = try regression.solve(ridge: ridge * regression.meanDiagonal, pool: pool)
            let ratio = heldOutPairs.isEmpty ? nil : errorRatio(pairs: heldOutPairs, correction: candidate, width: width)
            if correction.isEmpty || (ratio ?? .infinity) < (bestRatio ?? .infinity) {
                correction = candidate
                chosenRidge = ridge
                bestRatio = ratio
            }
        }
        var map = [Float](repeating: 0, count: width * width)
        for index in map.indices { map[index] = Float(correction[index]) }
        for i in 0..<width { map[i * width + i] += 1 }
        healed.steps[step].map = LinearMap(name: "heal.\(step)", site: site, map: map, width: width)
        cut.site = site
        cut.rows = regression.rows
        cut.ridge = chosenRidge
        cut.heldOutErrorRatio = bestRatio
        results.append(cut)
    }
    let method = (plan.method ?? "manual") + "+heal"
    healed.method = method
    healed.notes = (plan.notes.map { $0 + "; " } ?? "") + "healed with \(cuts.count) linear map\(cuts.count == 1 ? "" : "s") (\(options.site.rawValue))"
    return HealingResult(plan: healed, cuts: results, seconds: (clock.now - start).seconds)
}

/// `Σ‖r - x T'‖² / Σ‖r‖²` over the held-out rows.
private func errorRatio(pairs: [(inputs: [Float], residual: [Float])], correction: [Double], width: Int) -> Double {
    var before = 0.0
    var after = 0.0
    for (inputs, residual) in pairs {
        let predicted = rowsTimesMap(inputs, correction, width: width)
        for (r, p) in zip(residual, predicted) {
            let target = Double(r)
            before += target * target
            after += (target - p) * (target - p)
        }
    }
    return before > 0 ? after / before : 1
}

/// The cuts of a pruning plan: each kept step after which the plan stops matching the full
/// model (a layer removed after it, or one of its own sublayers off).
public func healingCuts(of plan: LayerPlan, layerCount: Int) throws(HealingError) -> [HealedCut] {
    let layers = plan.steps.map(\.layer)
    guard zip(layers, layers.dropFirst()).allSatisfy({ $0 < $1 }) else { throw .notInOrder }
    guard let first = layers.first, first == 0 else { throw .removesFirstLayers(first: layers.first ?? 0) }
    var cuts: [HealedCut] = []
    for (index, step) in plan.steps.enumerated() {
        let next = index + 1 < plan.steps.count ? plan.steps[index + 1].layer : layerCount
        var removed: [String] = []
        if !step.runsAttention { removed.append("the attention of layer \(step.layer)") }
        if !step.runsFFN { removed.append("the FFN of layer \(step.layer)") }
        if next > step.layer + 1 {
            removed.append(next == step.layer + 2 ? "layer \(step.layer + 1)" : "layers \(step.layer + 1)-\(next - 1)")
        }
        guard !removed.isEmpty else { continue }
        cuts.append(HealedCut(step: index, layer: step.layer, nextLayer: next, removed: removed.joined(separator: " and "),
                              site: .stream, rows: 0, ridge: 0, heldOutErrorRatio: nil))
    }
    guard !cuts.isEmpty else { throw .nothingToHeal }
    return cuts
}

/// Keeps the stream after the attention sublayer and leaving the layer, for chosen plan steps.
private final class StepStreams: HiddenStateObserver {
    let steps: Set<Int>
    private(set) var outputs: [Int: [Float]] = [:]
    private(set) var afterAttention: [Int: [Float]] = [:]

    init(steps: Set<Int>) { self.steps = steps }

    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        guard steps.contains(step) else { return }
        switch boundary {
        case .afterAttention: afterAttention[step] = Array(hidden.prefix(tokens * hiddenSize))
        case .layerOutput: outputs[step] = Array(hidden.prefix(tokens * hiddenSize))
        case .layerInput: break
        }
    }
}
