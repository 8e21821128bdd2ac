import Foundation
import StrataFormats
import StrataKernels

/// One quantization type per weight tensor, chosen to meet a bits-per-weight budget by measured
/// error: every layer tensor is quantized to every candidate type, its squared error against
/// the source weights (per column weighted by `columnWeights` when given, llama.cpp's imatrix,
/// which then also serve the quantizers as importance)
/// is scaled by its layer's importance weight, and the types that minimise the total for the
/// budget are chosen (a Lagrangian choice: each tensor takes the type minimising
/// `weight × error + λ × bits`, λ bisected to the budget, then the bits left over go to the
/// upgrades that cut the most error per bit).
///
/// Unlike `LayerWiseMix`, tensors of one layer may differ, so the bits go where a tensor's
/// measured error drops most: tensors whose source type is finer than the budget's (Q6_K
/// value and down projections in a Q4_K_M file), or kinds whose error grows fastest at low
/// bits. The layer weights rise geometrically with the importance rank, from 1/2 for the least
/// important layer to 2 for the most important by default (`range` 4; `reverse`: the other way
/// round, the control), so importance tips choices between tensors of similar measured error.
/// Because error falls about fourfold per bit, a range of about 4 is where moving a whole
/// layer a type up or down starts to pay; wider ranges let importance outweigh measured error.
///
/// With a `KindSensitivity` the measured errors are not used: each tensor's cost at a type is
/// its kind's measured calibration loss change at that type, shared equally among the layers
/// and scaled by the same layer weights, and only the measured types are candidates.
public struct MeasuredMix: Sendable {
    /// The types a tensor can take.
    public static let candidates: [QuantFormat] = [.q2_K, .q3_K, .q4_K, .q5_K, .q6_K]
    /// The default ratio between the most and the least important layer's weight.
    public static let defaultImportanceRange = 4.0

    /// Every weight tensor's type.
    public var formats: [String: QuantFormat]
    /// Bits per layer weight reached.
    public var bitsPerWeight: Double
    /// The importance weight each layer's errors were scaled by.
    public var layerWeights: [Double]

    /// A layer tensor's measured errors and sizes, one per candidate (after row-width fallbacks).
    struct TensorChoices {
        var name: String
        var layer: Int
        var elements: Int
        var formats: [QuantFormat]
        var bits: [Int]
        var errors: [Double]
    }

    /// Every layer tensor's measured errors at every candidate: what the choice starts from.
    public struct Measurements: Sendable {
        var tensors: [TensorChoices]
    }

    /// Measures and chooses for `quantizer`'s model. `importance[l]` ranks layer `l` (higher is
    /// more important), `budget` is bits per layer weight, `range` the ratio between the most and
    /// the least important layer's weight; tensors outside the layers take `outside`'s types.
    /// `progress` is called before each tensor is measured.
    public init(quantizer: ModelQuantizer, importance: [Double], budget: Double, reverse: Bool = false,
                range: Double = defaultImportanceRange, columnWeights: [String: [Float]] = [:],
                outside: QuantizationPreset = .q4_K_M, pool: WorkerPool? = nil,
                progress: (Int, Int, String) -> Void = { _, _, _ in }) throws {
        try Self.checkArguments(quantizer: quantizer, importance: importance, range: range)
        let measurements = try Self.measure(quantizer: quantizer, columnWeights: columnWeights, pool: pool, progress: progress)
        try self.init(quantizer: quantizer, measurements: measurements, importance: importance, budget: budget,
                      reverse: reverse, range: range, outside: outside)
    }

    /// Chooses from `measurements` (`measure`) for `quantizer`'s model, as the measuring
    /// initializer does. With `sensitivity`, each tensor's errors are replaced by the loss
    /// changes they predict (`KindSensitivity.estimates`) and it chooses among the types that
    /// were measured.
    public init(quantizer: ModelQuantizer, measurements: Measurements, importance: [Double], budget: Double,
                reverse: Bool = false, range: Double = defaultImportanceRange, sensitivity: KindSensitivity? = nil,
                outside: QuantizationPreset = .q4_K_M) throws {
        try Self.checkArguments(quantizer: quantizer, importance: importance, range: range)
        try self.init(choices: sensitivity.map { $0.estimates(measurements.tensors) } ?? measurements.tensors,
                      layerWeights: Self.layerWeights(importance: importance, reverse: reverse, range: range),
                      budget: budget, sourceBitsPerWeight: quantizer.layerBitsPerWeight([:]).source)
        var all = quantizer.formats(preset: outside)
        for (name, format) in formats { all[name] = format }
        formats = all
    }

    /// Refuses an importance list of another length than the model's layers, or a range below 1.
    public static func checkArguments(quantizer: ModelQuantizer, importance: [Double], range: Double) throws {
        guard importance.count == quantizer.shape.layerCount else {
            throw QuantizationRequestError.importanceMismatch(report: importance.count, model: quantizer.shape.layerCount)
        }
        guard range >= 1, range.isFinite else { throw QuantizationRequestError.importanceRange(range) }
    }

    /// Quantizes every layer tensor of `quantizer`'s model to every candidate and measures its
    /// error (per column weighted by `columnWeights` when given). `progress` is called before
    /// each tensor.
    public static func measure(quantizer: ModelQuantizer, columnWeights: [String: [Float]] = [:], pool: WorkerPool? = nil,
                               progress: (Int, Int, String) -> Void = { _, _, _ in }) throws -> Measurements {
        let layerCount = quantizer.shape.layerCount
        let layerTensors = quantizer.quantizedTensors.filter {
            TensorRole.layer(of: $0.name).map { $0 < layerCount } ?? false
        }
        var choices = [TensorChoices]()
        for (index, tensor) in layerTensors.enumerated() {
            progress(index, layerTensors.count, tensor.name)
            choices.append(try measure(tensor, in: quantizer, columnWeights: columnWeights[tensor.name], pool: pool))
        }
        return Measurements(tensors: choices)
    }

    /// Every layer tensor's candidate types and sizes without quantizing anything (errors 0):
    /// what a choice from `KindSensitivity` needs, which costs types by measured loss instead.
    public static func typeChoices(quantizer: ModelQuantizer) -> Measurements {
        let layerCount = quantizer.shape.layerCount
        let tensors = quantizer.quantizedTensors.compactMap { tensor -> TensorChoices? in
            guard let layer = TensorRole.layer(of: tensor.name), layer < layerCount else { return nil }
            let sizes = candidateSizes(tensor)
            return TensorChoices(name: tensor.name, layer: layer, elements: tensor.elementCount, formats: sizes.map(\.format),
                                 bits: sizes.map(\.bits), errors: sizes.map { _ in 0 })
        }
        return Measurements(tensors: tensors)
    }

    /// The choice alone, from measured errors (tested apart from the measuring).
    init(choices: [TensorChoices], layerWeights: [Double], budget: Double, sourceBitsPerWeight: Double) throws {
        let elements = choices.reduce(0) { $0 + $1.elements }
        try QuantizationRequestError.checkBudget(budget, smallestBits: choices.reduce(0) { $0 + ($1.bits.min() ?? 0) },
                                                 elements: elements, sourceBitsPerWeight: sourceBitsPerWeight)
        let weightCount = Double(elements)
        let allowed = budget * weightCount
        func cost(_ tensor: TensorChoices, _ step: Int) -> Double { layerWeights[tensor.layer] * tensor.errors[step] }
        func pick(_ lambda: Double) -> [Int] {
            choices.map { tensor in
                tensor.bits.indices.min { a, b in
                    let (first, second) = (cost(tensor, a) + lambda * Double(tensor.bits[a]),
                                           cost(tensor, b) + lambda * Double(tensor.bits[b]))
                    return first != second ? first < second : tensor.bits[a] < tensor.bits[b]
                } ?? 0
            }
        }
        func total(_ steps: [Int]) -> Int { zip(choices, steps).reduce(0) { $0 + $1.0.bits[$1.1] } }
        // λ large enough that every tensor takes its smallest type fits; bisect down to the budget
        var (low, high) = (0.0, 1.0)
        while Double(total(pick(high))) > allowed && high < 1e30 { high *= 16 }
        for _ in 0..<200 {
            let middle = (low + high) / 2
            if Double(total(pick(middle))) > allowed { low = middle } else { high = middle }
        }
        var steps = pick(high)
        // spend what is left on the upgrades that cut the most weighted error per bit
        var spent = total(steps)
        while true {
            var best: (tensor: Int, step: Int, gain: Double)?
            for (index, tensor) in choices.enumerated() {
                for step in tensor.bits.indices where tensor.bits[step] > tensor.bits[steps[index]] {
                    let extra = tensor.bits[step] - tensor.bits[steps[index]]
                    guard Double(spent + extra) <= allowed else { continue }
                    let gain = (cost(tensor, steps[index]) - cost(tensor, step)) / Double(extra)
                    if gain > 0 && gain > (best?.gain ?? 0) { best = (index, step, gain) }
                }
            }
            guard let best else { break }
            spent += choices[best.tensor].bits[best.step] - choices[best.tensor].bits[steps[best.tensor]]
            steps[best.tensor] = best.step
        }
        formats = Dictionary(uniqueKeysWithValues: zip(choices, steps).map { ($0.name, $0.formats[$1]) })
        bitsPerWeight = Double(spent) / max(1, weightCount)
        self.layerWeights = layerWeights
    }

    /// Weights rising geometrically with importance rank, from 1/√range to √range.
    static func layerWeights(importance: [Double], reverse: Bool, range: Double = defaultImportanceRange) -> [Double] {
        let order = importance.indices.sorted {
            importance[$0] != importance[$1] ? importance[$0] < importance[$1] : $0 < $1
        }
        var weights = [Double](repeating: 1, count: importance.count)
        let last = max(1, importance.count - 1)
        for (rank, layer) in order.enumerated() {
            let position = Double(reverse ? last - rank : rank) / Double(last) - 0.5
            weights[layer] = pow(range, position)
        }
        return weights
    }

    /// The candidate types `tensor` can take (after row-width fallbacks, each once, in rising
    /// size) with its size in bits at each.
    static func candidateSizes(_ tensor: TensorInfo) -> [(format: QuantFormat, bits: Int)] {
        var sizes: [(format: QuantFormat, bits: Int)] = []
        for candidate in candidates {
            let format = QuantizationPreset.fitting(candidate, columns: tensor.shape[0])
            guard !sizes.contains(where: { $0.format == format }),
                  let bytes = format.byteCount(elements: tensor.elementCount) else { continue }
            sizes.append((format, bytes * 8))
        }
        return sizes
    }

    /// Quantizes `tensor` to every candidate and measures its squared error.
    static func measure(_ tensor: TensorInfo, in quantizer: ModelQuantizer, columnWeights: [Float]?,
                        pool: WorkerPool?) throws -> TensorChoices {
        let columns = tensor.shape[0], rows = tensor.elementCount / max(1, columns)
        let values = quantizer.source.data(for: tensor).dequantized(tensor.format, count: tensor.elementCount)
        if let columnWeights, columnWeights.count != columns {
            throw QuantizationRequestError.columnWeightCount(tensor: tensor.name, expected: columns, found: columnWeights.count)
        }
        var formats = [QuantFormat](), bits = [Int](), errors = [Double]()
        for (format, size) in candidateSizes(tensor) {
            // quantized as the write will, with the column weights as importance
            let encoded = try encodedTensor(values, rows: rows, columns: columns, format: format, importance: columnWeights,
                                            pool: pool)
            let decoded = ByteView(ByteStorage.copying(encoded)).dequantized(format, count: tensor.elementCount)
            var error = 0.0
            for row in 0..<rows {
                var rowError = 0.0
                for column in 0..<columns {
                    let difference = Double(values[row * columns + column] - decoded[row * columns + column])
                    rowError += difference * difference * Double(columnWeights?[column] ?? 1)
                }
                error += rowError
            }
            formats.append(format)
            bits.append(size)
            errors.append(error)
        }
        return TensorChoices(name: tensor.name, layer: TensorRole.layer(of: tensor.name) ?? 0, elements: tensor.elementCount,
                             formats: formats, bits: bits, errors: errors)
    }
}
