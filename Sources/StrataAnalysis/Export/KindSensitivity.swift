import Foundation
import StrataEngine
import StrataKernels

/// What moving each kind of layer tensor one type up or down costs the model, measured on
/// calibration text where a per-tensor mix decides. The baseline gives every layer tensor the
/// budget's uniform type; then each kind (query, key, value and output projections, gate, up and
/// down) in turn takes the type one below and the type one above in every layer (two above
/// where the uniform type is already the kind's smallest, as for block-32 fallbacks), and the
/// calibration loss is compared with the baseline's.
///
/// A mix then estimates what a tensor at a trial type costs as its kind's measured loss change
/// at that type, shared equally among the kind's layers (`estimates`; the layer's importance
/// weight scales it), and chooses only among the measured types.
///
/// Why: the measured error of a tensor (its input-weighted squared rounding error) says how
/// much the tensor's own output moves, not how much the model's prediction does, and it does
/// not even order the types of one kind reliably. On SmolLM2 the down projections' weighted
/// error is *lower* at Q2_K than at Q3_K (the weights are dominated by a few columns with
/// very large inputs, which Q2_K's offsets happen to fit), yet the calibration loss rises by
/// 0.14 nats when they all move from Q3_K to Q2_K. Measured error alone therefore sends down
/// projections to Q2_K, which is why per-tensor mixes lost to the uniform type there. Sharing a
/// kind's loss among its layers by their measured error changes lost as well (docs/quantization.md),
/// so the layers share it equally and only the importance order tells them apart.
public struct KindSensitivity: Sendable, Codable, Equatable {
    /// One trial: a kind moved from the baseline type to another.
    public struct Trial: Sendable, Codable, Equatable {
        /// The kind as GGUF names its tensors (`attn_v`, `ffn_down`).
        public var kind: String
        /// The kind's tensors (one per layer).
        public var tensors: Int
        /// The baseline's type and the trial's (the first tensor's; row-width fallbacks are the
        /// same in every layer).
        public var from: String
        public var to: String
        /// Ladder steps from the baseline (-1 one type down, +1 one type up).
        public var offset: Int
        /// Mean calibration loss (natural log per predicted token) of the trial minus the
        /// baseline's.
        public var lossChange: Double

        enum CodingKeys: String, CodingKey {
            case kind, tensors, from, to, offset
            case lossChange = "loss_change"
        }
    }

    /// The uniform type the baseline gives every layer tensor (or its row-width fallback).
    public var baseline: String
    /// Mean calibration loss of the baseline (natural log per predicted token).
    public var baselineLoss: Double
    /// Every trial, kinds in layer order of first appearance.
    public var trials: [Trial]
    /// Seconds the passes took.
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case baseline, trials, seconds
        case baselineLoss = "baseline_loss"
    }

    /// Candidate steps of each tensor the baseline and trials used, relative to its baseline step.
    static func trialOffsets(baselineStep: Int, candidates: Int) -> [Int] {
        let offsets = baselineStep > 0 ? [-1, 1] : [1, 2]
        return offsets.filter { (0..<candidates).contains(baselineStep + $0) }
    }

    /// Runs the baseline (every layer tensor at `uniform`, or the block-32 type its row width
    /// needs) and the trials over `calibration` (`1 + 2 × kinds` passes of the model, each on a
    /// copy held in memory, quantized with `statistics` as the write will). `progress` is
    /// called before each pass with its index, the pass count and what it runs.
    public static func measure(
        quantizer: ModelQuantizer, measurements: MeasuredMix.Measurements, around uniform: QuantFormat,
        statistics: ActivationStatistics?, calibration: CalibrationSet, numerics: Numerics?, pool: WorkerPool,
        progress: (Int, Int, String) -> Void = { _, _, _ in }
    ) throws -> KindSensitivity {
        let started = Date()
        var order = [String]()
        var byKind: [String: [MeasuredMix.TensorChoices]] = [:]
        var steps: [String: Int] = [:]
        var baseline: [String: QuantFormat] = [:]
        for tensor in measurements.tensors {
            let kind = kindName(of: tensor.name)
            if byKind[kind] == nil { order.append(kind) }
            byKind[kind, default: []].append(tensor)
            let step = baselineStep(tensor, around: uniform, in: quantizer)
            steps[tensor.name] = step
            baseline[tensor.name] = tensor.formats[step]
        }
        // a kind's tensors share one shape, so the first one's candidates are every layer's
        var planned: [(kind: String, offset: Int)] = []
        for kind in order {
            guard let first = byKind[kind]?.first else { continue }
            planned += trialOffsets(baselineStep: steps[first.name] ?? 0, candidates: first.formats.count).map { (kind, $0) }
        }
        let passes = planned.count + 1
        progress(0, passes, "baseline")
        let label = quantizer.source.path
        // the baseline's tensors are encoded once; each trial encodes only its kind's
        var cache = EncodedTensors()
        let baselineLoss = try meanLoss(
            file: quantizer.inMemoryFile(formats: baseline, statistics: statistics, pool: pool, label: "\(label) at \(uniform)",
                                         cache: &cache),
            calibration: calibration, numerics: numerics, pool: pool)
        var trials = [Trial]()
        for (index, (kind, offset)) in planned.enumerated() {
            let tensors = byKind[kind] ?? []
            var formats = baseline
            var from = "", to = ""
            for tensor in tensors {
                let step = steps[tensor.name] ?? 0, trial = step + offset
                formats[tensor.name] = tensor.formats[trial]
                if from.isEmpty { (from, to) = (tensor.formats[step].description, tensor.formats[trial].description) }
            }
            progress(index + 1, passes, "\(kind) at \(to)")
            let loss = try meanLoss(
                file: quantizer.inMemoryFile(formats: formats, statistics: statistics, pool: pool,
                                             label: "\(label) at \(uniform), \(kind) at \(to)", cache: &cache),
                calibration: calibration, numerics: numerics, pool: pool)
            trials.append(Trial(kind: kind, tensors: tensors.count, from: from, to: to, offset: offset,
                                lossChange: loss - baselineLoss))
        }
        return KindSensitivity(baseline: uniform.description, baselineLoss: baselineLoss, trials: trials,
                               seconds: Date().timeIntervalSince(started))
    }

    /// `choices` with each tensor's errors replaced by the loss changes its kind's trials
    /// measured, shared equally among the kind's tensors, keeping only the baseline type (cost 0)
    /// and the trial types. A tensor whose kind was not measured is left as it is.
    func estimates(_ choices: [MeasuredMix.TensorChoices]) -> [MeasuredMix.TensorChoices] {
        var counts: [String: Int] = [:]
        for tensor in choices { counts[Self.kindName(of: tensor.name), default: 0] += 1 }
        return choices.map { tensor in
            let kind = Self.kindName(of: tensor.name)
            let kindTrials = trials.filter { $0.kind == kind }
            // a kind's tensors share one shape, so one baseline type (the trials' `from`)
            guard let first = kindTrials.first,
                  let step = tensor.formats.firstIndex(where: { $0.description == first.from }) else { return tensor }
            var kept = MeasuredMix.TensorChoices(name: tensor.name, layer: tensor.layer, elements: tensor.elements,
                                                 formats: [tensor.formats[step]], bits: [tensor.bits[step]], errors: [0])
            for trial in kindTrials where tensor.formats.indices.contains(step + trial.offset) {
                kept.formats.append(tensor.formats[step + trial.offset])
                kept.bits.append(tensor.bits[step + trial.offset])
                kept.errors.append(trial.lossChange / Double(counts[kind] ?? 1))
            }
            // the choice expects candidates in rising size
            let order = kept.bits.indices.sorted { kept.bits[$0] < kept.bits[$1] }
            kept.formats = order.map { kept.formats[$0] }
            kept.bits = order.map { kept.bits[$0] }
            kept.errors = order.map { kept.errors[$0] }
            return kept
        }
    }

    /// The candidate step of `tensor` that the uniform type (or its row-width fallback) is.
    static func baselineStep(_ tensor: MeasuredMix.TensorChoices, around uniform: QuantFormat,
                             in quantizer: ModelQuantizer) -> Int {
        let columns = quantizer.source.tensor(named: tensor.name)?.shape[0] ?? 0
        return tensor.formats.firstIndex(of: QuantizationPreset.fitting(uniform, columns: columns)) ?? 0
    }

    /// Mean negative log-likelihood per predicted token of the model in `file` over `calibration`.
    static func meanLoss(file: GGUFFile, calibration: CalibrationSet, numerics: Numerics?, pool: WorkerPool) throws -> Double {
        var transformer = Transformer(model: try LanguageModel(file: file), pool: pool, numerics: numerics)
        return try calibration.meanNegativeLogLikelihood(transformer: &transformer)
    }

    /// `attn_v` for `blk.3.attn_v.weight`: what tensors of one kind share across layers.
    public static func kindName(of tensor: String) -> String {
        var parts = tensor.split(separator: ".")
        if parts.count > 2 && parts.first == "blk" { parts.removeFirst(2) }
        if parts.last == "weight" { parts.removeLast() }
        return parts.joined(separator: ".")
    }
}
