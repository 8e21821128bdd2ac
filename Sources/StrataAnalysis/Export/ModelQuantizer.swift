import Foundation
import StrataEngine
import StrataFormats
import StrataKernels

/// Why a model cannot be quantized as asked. Every case is found before any tensor is written.
public enum QuantizationRequestError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedSource(tensor: String, format: QuantFormat)
    case unsupportedTarget(tensor: String, format: QuantFormat)
    case budgetBelowSmallest(requested: Double, smallest: Double)
    case budgetAboveSource(requested: Double, source: Double)
    case importanceMismatch(report: Int, model: Int)
    case missingMetadata(String)
    /// Column weights (activation statistics) whose length is not the tensor's row width.
    case columnWeightCount(tensor: String, expected: Int, found: Int)
    /// Activation statistics for a tensor the model does not have: they were made for another model.
    case statisticsForUnknownTensor(String)
    /// A ratio between the most and the least important layer's weight below 1 or not finite.
    case importanceRange(Double)

    public var description: String {
        switch self {
        case .unsupportedSource(let tensor, let format):
            "tensor '\(tensor)' is \(format), which Strata cannot dequantize (it reads F32, F16, BF16, Q4_0, Q4_1, "
                + "Q5_0, Q5_1, Q8_0 and Q2_K-Q6_K)"
        case .unsupportedTarget(let tensor, let format):
            "tensor '\(tensor)' would need \(format), which Strata cannot write"
        case .budgetBelowSmallest(let requested, let smallest):
            String(format: "a budget of %.2f bits per weight is below what the smallest type reaches on this model "
                   + "(%.2f bits per layer weight)", requested, smallest)
        case .budgetAboveSource(let requested, let source):
            String(format: "a budget of %.2f bits per weight is above the source's precision (%.2f bits per layer "
                   + "weight): quantizing cannot add what the source does not have", requested, source)
        case .importanceMismatch(let report, let model):
            "the importance report has \(report) layers, the model \(model): it was made for another model"
        case .missingMetadata(let key):
            "the model has no metadata '\(key)'"
        case .columnWeightCount(let tensor, let expected, let found):
            "tensor '\(tensor)': expected one column weight per column (\(expected)), found \(found)"
        case .statisticsForUnknownTensor(let tensor):
            "the activation statistics name tensor '\(tensor)', which the model does not have: they were made for another model"
        case .importanceRange(let range):
            "an importance range of \(range): expected a ratio of at least 1 between the most and the least important layer's weight"
        }
    }
}

extension QuantizationRequestError {
    /// Refuses a mix's budget (bits per layer weight) that the smallest types cannot get under
    /// (`smallestBits` for all `elements` layer weights) or that asks for more than the source
    /// holds: the one check every kind of mix makes before it chooses anything.
    static func checkBudget(_ budget: Double, smallestBits: Int, elements: Int, sourceBitsPerWeight: Double) throws {
        let weights = Double(max(1, elements))
        guard Double(smallestBits) <= budget * weights else {
            throw budgetBelowSmallest(requested: budget, smallest: Double(smallestBits) / weights)
        }
        guard budget <= sourceBitsPerWeight + 1e-9 else {
            throw budgetAboveSource(requested: budget, source: sourceBitsPerWeight)
        }
    }
}

/// Rewrites a GGUF model with other tensor types: a llama.cpp-style preset, or one type per
/// layer chosen from measured importance. Weights are dequantized to float32 and quantized
/// again, so from an already quantized source the result cannot be better than the source;
/// a tensor that keeps its source type is copied byte for byte.
public struct ModelQuantizer: Sendable {
    /// The model being rewritten.
    public let source: GGUFFile
    /// What the type rules need to know of the model.
    public let shape: QuantizationPreset.ModelShape

    /// Checks that every weight tensor of `source` can be dequantized.
    public init(source: GGUFFile) throws {
        self.source = source
        let architecture = try source.metadata.string("general.architecture")
        let prefix = architecture + "."
        guard let layers = try source.metadata.optionalInteger(prefix + "block_count") else {
            throw QuantizationRequestError.missingMetadata(prefix + "block_count")
        }
        let heads = try source.metadata.optionalInteger(prefix + "attention.head_count") ?? 1
        let kvHeads = try source.metadata.optionalInteger(prefix + "attention.head_count_kv") ?? heads
        shape = QuantizationPreset.ModelShape(
            layerCount: layers, queryGroupSize: max(1, heads / max(1, kvHeads)),
            tiedOutput: source.tensor(named: "output.weight") == nil)
        for tensor in source.tensors where QuantizationPreset.isQuantized(name: tensor.name, shape: tensor.shape) {
            guard tensor.format.isComputable else {
                throw QuantizationRequestError.unsupportedSource(tensor: tensor.name, format: tensor.format)
            }
        }
    }

    /// The weight tensors that get a new type.
    public var quantizedTensors: [TensorInfo] {
        source.tensors.filter { QuantizationPreset.isQuantized(name: $0.name, shape: $0.shape) }
    }

    /// The type of every weight tensor under `preset`, counting layers in `order`.
    public func formats(preset: QuantizationPreset, hasImportance: Bool = false, order: TensorOrder = .layerNumber)
        -> [String: QuantFormat] {
        var model = shape
        model.hasImportance = hasImportance
        func key(_ name: String) -> (Int, [UInt8]) {
            (order == .layerNumber ? TensorRole.layer(of: name) ?? -1 : 0, Array(name.utf8))
        }
        var ranks: [String: Int] = [:]
        var seen: [TensorRole: Int] = [:]
        for tensor in quantizedTensors.sorted(by: { a, b in
            let (first, second) = (key(a.name), key(b.name))
            return first.0 != second.0 ? first.0 < second.0 : first.1.lexicographicallyPrecedes(second.1)
        }) {
            let role = TensorRole(name: tensor.name)
            ranks[tensor.name] = seen[role, default: 0]
            seen[role, default: 0] += 1
        }
        return Dictionary(uniqueKeysWithValues: quantizedTensors.map {
            ($0.name, preset.format(forTensor: $0.name, columns: $0.shape[0], rank: ranks[$0.name] ?? 0, model: model))
        })
    }

    /// Every weight tensor at `format`, or the block-32 type its row width needs instead.
    public func uniformFormats(_ format: QuantFormat) -> [String: QuantFormat] {
        Dictionary(uniqueKeysWithValues: quantizedTensors.map {
            ($0.name, QuantizationPreset.fitting(format, columns: $0.shape[0]))
        })
    }

    /// Bits per weight over the layer (`blk.N.`) weight tensors under `formats`, and over the source.
    public func layerBitsPerWeight(_ formats: [String: QuantFormat]) -> (target: Double, source: Double) {
        var elements = 0, targetBits = 0, sourceBits = 0
        for tensor in quantizedTensors where TensorRole.layer(of: tensor.name) != nil {
            elements += tensor.elementCount
            sourceBits += tensor.byteCount * 8
            targetBits += (formats[tensor.name] ?? tensor.format).byteCount(elements: tensor.elementCount).map { $0 * 8 } ?? 0
        }
        guard elements > 0 else { return (0, 0) }
        return (Double(targetBits) / Double(elements), Double(sourceBits) / Double(elements))
    }

    /// Writes the model with `formats` (tensors not named keep their type) to `path`, adding
    /// `notes` to the metadata. A tensor that `statistics` has a vector for is quantized with it
    /// as importance (each column's error weighed by its input's mean square); the others as
    /// without. `progress` is called before each tensor with its index, the tensor count and its
    /// name.
    public func write(
        formats: [String: QuantFormat], fileType: Int?, notes: [(String, GGUFValue)], to path: String, overwrite: Bool,
        statistics: ActivationStatistics? = nil, pool: WorkerPool? = nil,
        progress: (Int, Int, String) -> Void = { _, _, _ in }
    ) throws -> QuantizationSummary {
        var none = EncodedTensors(keeping: false)
        let (writer, counts, weighted) = try makeWriter(formats: formats, fileType: fileType, notes: notes,
                                                        statistics: statistics, pool: pool, cache: &none, progress: progress)
        try writer.write(to: path, overwrite: overwrite)
        let bits = layerBitsPerWeight(formats)
        var summary = QuantizationSummary(
            path: path, fileBytes: try writer.fileSize(), sourceBytes: source.fileSize, layerBitsPerWeight: bits.target,
            sourceLayerBitsPerWeight: bits.source, tensorsByFormat: counts)
        if statistics != nil { summary.tensorsWithImportance = weighted }
        return summary
    }

    /// The model with `formats` as a GGUF file held in memory (named `label` in errors), the
    /// same tensors `write` would write: for passes that measure a quantization before anything
    /// is written. `cache` keeps every tensor encoded here, by name and type, so that files
    /// differing in a few tensors encode only those.
    public func inMemoryFile(formats: [String: QuantFormat], statistics: ActivationStatistics? = nil,
                             pool: WorkerPool? = nil, label: String, cache: inout EncodedTensors) throws -> GGUFFile {
        let (writer, _, _) = try makeWriter(formats: formats, fileType: nil, notes: [], statistics: statistics,
                                            pool: pool, cache: &cache) { _, _, _ in }
        return try GGUFFile(bytes: ByteView(ByteStorage.copying(try writer.bytes())), path: label)
    }

    /// The writer holding every tensor of the model under `formats`, with the tensor count per
    /// type and how many tensors were quantized with a statistics vector.
    private func makeWriter(
        formats: [String: QuantFormat], fileType: Int?, notes: [(String, GGUFValue)], statistics: ActivationStatistics?,
        pool: WorkerPool?, cache: inout EncodedTensors, progress: (Int, Int, String) -> Void
    ) throws -> (writer: GGUFWriter, counts: [String: Int], weighted: Int) {
        for (name, format) in formats where !(Quantizer.supports(format) || format == .f32) {
            throw QuantizationRequestError.unsupportedTarget(tensor: name, format: format)
        }
        if let statistics { try check(statistics) }
        var writer = GGUFWriter(alignment: source.alignment)
        for key in source.metadata.keys where key != "general.alignment" {
            guard let value = source.metadata[key] else { continue }
            writer.set(key, value)
        }
        if let fileType { writer.set("general.file_type", .uint32(UInt32(fileType))) }
        writer.set("general.quantization_version", .uint32(2))
        for (key, value) in notes { writer.set(key, value) }
        var counts: [String: Int] = [:]
        var weighted = 0
        for (index, tensor) in source.tensors.enumerated() {
            progress(index, source.tensors.count, tensor.name)
            let view = source.data(for: tensor)
            guard let target = formats[tensor.name], target != tensor.format else {
                try writer.addTensor(name: tensor.name, shape: tensor.shape, format: tensor.format, data: view)
                counts[tensor.format.description, default: 0] += 1
                continue
            }
            let importance = statistics?.meanSquares[tensor.name]
            if importance != nil { weighted += 1 }
            let bytes: [UInt8]
            if let kept = cache.bytes[EncodedTensors.Key(name: tensor.name, format: target)] {
                bytes = kept
            } else {
                let values = view.dequantized(tensor.format, count: tensor.elementCount)
                let columns = tensor.shape[0]
                bytes = try encodedTensor(values, rows: tensor.elementCount / columns, columns: columns, format: target,
                                          importance: importance, pool: pool)
                if cache.isKeeping { cache.bytes[EncodedTensors.Key(name: tensor.name, format: target)] = bytes }
            }
            try writer.addTensor(name: tensor.name, shape: tensor.shape, format: target, data: bytes)
            counts[target.description, default: 0] += 1
        }
        return (writer, counts, weighted)
    }

    /// Refuses statistics made for another model before anything is written.
    private func check(_ statistics: ActivationStatistics) throws {
        for (name, vector) in statistics.meanSquares.sorted(by: { $0.key < $1.key }) {
            guard let tensor = source.tensor(named: name) else {
                throw QuantizationRequestError.statisticsForUnknownTensor(name)
            }
            guard vector.count == tensor.shape[0] else {
                throw QuantizationRequestError.columnWeightCount(tensor: name, expected: tensor.shape[0], found: vector.count)
            }
        }
    }
}

/// Tensors already encoded for `ModelQuantizer.inMemoryFile`, by name and type, all with the
/// same statistics (one cache per measurement).
public struct EncodedTensors: Sendable {
    struct Key: Hashable, Sendable {
        var name: String
        var format: QuantFormat
    }

    var bytes: [Key: [UInt8]] = [:]
    /// Whether newly encoded tensors are kept.
    let isKeeping: Bool

    /// An empty cache; `keeping: false` keeps nothing (a plain write).
    public init(keeping: Bool = true) {
        isKeeping = keeping
    }
}

/// What `ModelQuantizer.write` produced.
public struct QuantizationSummary: Codable, Sendable {
    public var path: String
    public var fileBytes: Int
    public var sourceBytes: Int
    /// Bits per weight over the layers' weight matrices (embeddings and output excluded).
    public var layerBitsPerWeight: Double
    public var sourceLayerBitsPerWeight: Double
    public var tensorsByFormat: [String: Int]
    /// One type per layer, for layer-wise mixes.
    public var layerFormats: [String]?
    /// With activation statistics: how many tensors were quantized with a vector of them.
    public var tensorsWithImportance: Int?
    /// The calibration behind the importance weights, when the tensors were quantized with them.
    public var calibration: CalibrationSummary?
    /// What each tensor kind's rounding cost on the calibration text, when a per-tensor mix
    /// measured it (`--kind-sensitivity`).
    public var kindSensitivity: KindSensitivity?

    enum CodingKeys: String, CodingKey {
        case path
        case fileBytes = "file_bytes"
        case sourceBytes = "source_bytes"
        case layerBitsPerWeight = "layer_bits_per_weight"
        case sourceLayerBitsPerWeight = "source_layer_bits_per_weight"
        case tensorsByFormat = "tensors_by_format"
        case layerFormats = "layer_formats"
        case tensorsWithImportance = "tensors_with_importance"
        case calibration
        case kindSensitivity = "kind_sensitivity"
    }
}

/// What the activation statistics a quantization used were computed from.
public struct CalibrationSummary: Codable, Sendable {
    /// The calibration text's name (its file name).
    public var text: String
    public var windows: Int
    /// Tokens per window.
    public var context: Int
    public var tokens: Int
    /// Perplexity on the calibration windows.
    public var perplexity: Double
    /// Time the statistics took.
    public var seconds: Double

    public init(text: String, statistics: ActivationStatistics, seconds: Double) {
        self.text = text
        windows = statistics.windows
        context = statistics.context
        tokens = statistics.tokens
        perplexity = statistics.perplexity
        self.seconds = seconds
    }
}

/// `values` (`rows × columns`) as the bytes of a tensor of `format`: float32 and float16 as they
/// are, every other format through `Quantizer` (which refuses what it cannot write), weighing
/// column errors by `importance` when given.
func encodedTensor(
    _ values: [Float], rows: Int, columns: Int, format: QuantFormat, importance: [Float]? = nil, pool: WorkerPool? = nil
) throws -> [UInt8] {
    switch format {
    case .f32: return values.withUnsafeBytes { Array($0) }
    case .f16: return values.flatMap { value -> [UInt8] in
        let bits = Float16(value).bitPattern
        return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
    }
    default:
        return try Quantizer.quantize(matrix: values, rows: rows, columns: columns, to: format, importance: importance,
                                      pool: pool)
    }
}
