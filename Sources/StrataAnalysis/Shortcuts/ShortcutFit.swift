import StrataEngine
import StrataKernels
import StrataTokenizer

/// Maps from a layer's stream to the last layer's, fitted in closed form: the training-free
/// tuned lens and the shortcut of shortcut drafts (`docs/methods.md` section 9).
public struct ShortcutMaps: Sendable {
    /// Per depth e (the stream after the first e layers, 1 <= e < layers): `T_e` row-major,
    /// `h_e · T_e ≈ h_L`, identity included.
    public var maps: [Int: [Float]]
    public var width: Int
    /// Calibration rows each map was fitted on.
    public var rows: Int
    public var seconds: Double

    /// `rows` (`[count × width]`) times `T_depth`, in float64 sums.
    public func apply(depth: Int, to rows: [Float]) -> [Float] {
        guard let map = maps[depth] else { preconditionFailure("no shortcut map for depth \(depth)") }
        return rowsTimesMap(rows, map.map(Double.init), width: width).map(Float.init)
    }
}

/// `rows` (`[count × width]`, row-vector convention) times the `width × width` `map`, summed in
/// float64: applying a fitted map, or its correction, outside the forward pass.
func rowsTimesMap(_ rows: [Float], _ map: [Double], width: Int) -> [Double] {
    var result = [Double](repeating: 0, count: rows.count)
    for start in stride(from: 0, to: rows.count, by: width) {
        for i in 0..<width {
            let x = Double(rows[start + i])
            guard x != 0 else { continue }
            let base = i * width
            for j in 0..<width { result[start + j] += x * map[base + j] }
        }
    }
    return result
}

/// Fits `T_e` for each depth in `depths` on `windows` run through the full model: ridge least
/// squares in float64 in residual form (`T_e = I + T'_e`, the ridge `ridge × mean diag(XᵀX)`
/// pulling toward the plain logit lens), so the fit is deterministic.
public func fitShortcutMaps(
    transformer: inout Transformer, windows: [[TokenID]], depths: [Int], ridge: Double = 1e-3,
    progress: ((AnalysisProgress) -> Void)? = nil
) throws -> ShortcutMaps {
    let clock = ContinuousClock()
    let start = clock.now
    let config = transformer.config
    let width = config.hiddenSize
    let full = LayerPlan.full(layerCount: config.layerCount)
    for depth in depths where depth < 1 || depth >= config.layerCount {
        throw EvaluationError.invalidArgument("a shortcut starts after 1...\(config.layerCount - 1) layers, found \(depth)")
    }
    var regressions = depths.map { _ in RidgeRegression(inputWidth: width, outputWidth: width) }
    for (index, window) in windows.enumerated() {
        let recorder = ResidualRecorder(measuresContributions: false)
        var cache = transformer.makeCache(capacity: window.count)
        _ = try transformer.forward(tokens: window, startPosition: 0, plan: full, cache: &cache, observer: recorder, logits: .none)
        recorder.finish()
        let final = recorder.inputs[config.layerCount]
        for (slot, depth) in depths.enumerated() {
            let inputs = recorder.inputs[depth]
            var residual = final
            for position in residual.indices { residual[position] -= inputs[position] }
            regressions[slot].add(inputs: inputs, outputs: residual, rows: window.count, pool: transformer.pool)
            let done = Double(index * depths.count + slot + 1) / Double(windows.count * depths.count)
            let elapsed = (clock.now - start).seconds
            progress?(AnalysisProgress(activity: "shortcut fits: window \(index + 1)/\(windows.count), depth \(depth)",
                                       fractionDone: done * 0.9, secondsLeft: elapsed / done * (1 - done)))
        }
    }
    var maps: [Int: [Float]] = [:]
    for (slot, depth) in depths.enumerated() {
        let correction = try regressions[slot].solve(ridge: ridge * regressions[slot].meanDiagonal, pool: transformer.pool)
        var map = correction.map(Float.init)
        for i in 0..<width { map[i * width + i] += 1 }
        maps[depth] = map
    }
    return ShortcutMaps(maps: maps, width: width, rows: regressions.first?.rows ?? 0, seconds: (clock.now - start).seconds)
}
