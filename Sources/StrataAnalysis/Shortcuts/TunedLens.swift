import StrataEngine

/// The training-free tuned lens of `strata analyze`: per layer, a map fitted to the last
/// layer's stream, and the lens measured with and without it on a held-out window.
public struct TunedLensResult: Sendable, Codable, Equatable {
    /// Per layer: how often the tuned lens's argmax equals the full model's, on the held-out window.
    public var agreement: [Double]
    /// Per layer: mean KL(full model || tuned lens) in nats, on the held-out window.
    public var divergence: [Double]
    /// The plain logit lens on the same positions of the held-out window, for comparison.
    public var plainAgreement: [Double]
    public var plainDivergence: [Double]
    /// Windows the maps were fitted on (the first ones); the last window of the calibration
    /// set is the held-out one.
    public var fitWindows: Int
    public var positions: Int
    public var ridge: Double
    /// Seconds the fits and the held-out measurement took.
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case agreement, divergence, positions, ridge, seconds
        case plainAgreement = "plain_agreement"
        case plainDivergence = "plain_divergence"
        case fitWindows = "fit_windows"
    }
}

/// Fits a map from every layer's output to the last layer's on all windows but the last, then
/// measures the logit lens with and without the maps at `positions` evenly spaced positions
/// of the last window. Needs at least two windows.
public func measureTunedLens(
    transformer: inout Transformer, calibration: CalibrationSet, positions: Int, ridge: Double = 1e-3,
    progress: ((AnalysisProgress) -> Void)? = nil
) throws -> TunedLensResult {
    let clock = ContinuousClock()
    let start = clock.now
    let layers = transformer.config.layerCount
    let windows = calibration.windows
    guard windows.count >= 2 else {
        throw EvaluationError.invalidArgument("the tuned lens needs at least 2 calibration windows (one is held out), found \(windows.count)")
    }
    let shortcuts = try fitShortcutMaps(transformer: &transformer, windows: Array(windows.dropLast()), depths: Array(1..<layers),
                                        ridge: ridge, progress: progress)
    let heldOut = windows[windows.count - 1]
    let recorder = ResidualRecorder(measuresContributions: false)
    var cache = transformer.makeCache(capacity: heldOut.count)
    let logits = try transformer.forward(tokens: heldOut, startPosition: 0, plan: .full(layerCount: layers), cache: &cache,
                                         observer: recorder, logits: .all)
    recorder.finish()
    let count = min(positions, heldOut.count)
    var plain = LogitLensAccumulator(layers: layers)
    var tuned = LogitLensAccumulator(layers: layers)
    try plain.measure(transformer: &transformer, states: recorder.inputs, fullLogits: logits, positions: count)
    try tuned.measure(transformer: &transformer, states: recorder.inputs, fullLogits: logits, positions: count, shortcuts: shortcuts)
    return TunedLensResult(
        agreement: tuned.agreement, divergence: tuned.meanDivergence, plainAgreement: plain.agreement,
        plainDivergence: plain.meanDivergence, fitWindows: windows.count - 1, positions: count, ridge: ridge,
        seconds: (clock.now - start).seconds)
}
