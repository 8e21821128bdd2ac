import Foundation
import StrataEngine
import StrataFormats
import StrataKernels

/// Writes a layer plan as a plain model: a GGUF file that any engine runs as it runs the
/// source model, computing what Strata computes when it runs the plan on the source.
///
/// Every step that runs a sublayer becomes one block, numbered in plan order, so removal,
/// repetition and reordering of layers rename the `blk.N.*` tensors (a repeated layer's tensors
/// are written again under each new index), set `<arch>.block_count`, and reorder the per-layer
/// metadata arrays. A sublayer the plan switches off becomes a zero output projection
/// (`attn_output` / `ffn_down`): its branch adds zero to the residual stream, also in families
/// that RMSNorm the sublayer output first (RMSNorm of a zero vector is zero), but other engines
/// still compute it, so it saves no compute there. A step that runs neither sublayer is left out.
///
/// Tensor bytes are copied as they are, in their format, never decoded; the file is written
/// through a temporary sibling, so a failed write leaves no partial model.
public struct PlanExport: Sendable {
    /// The source model.
    public let model: LanguageModel
    /// The plan, checked against the model.
    public let plan: LayerPlan
    /// What the file will hold; `bytes` and `output` are filled in by `write`.
    public private(set) var summary: PlanExportSummary
    private let writer: GGUFWriter

    /// The metadata keys (after `<arch>.`) that llama.cpp reads as either one value or one value
    /// per layer. An array under one of them is reordered with the layers.
    public static let perLayerKeys = [
        "attention.head_count", "attention.head_count_kv", "feed_forward_length", "attention.sliding_window_pattern",
    ]

    /// Prepares the export of `plan` over `model`: checks the plan against the model and lays out
    /// the file (metadata, tensor directory, views of the source's tensor bytes) without
    /// reading any weights. `sourceName` is recorded as `strata.export.source` (default: the
    /// model file's name).
    public init(model: LanguageModel, plan: LayerPlan, sourceName: String? = nil) throws(PlanExportError) {
        let file = model.file
        let config = model.config
        do {
            try plan.validate(layerCount: config.layerCount)
        } catch {
            throw .plan(error)
        }
        self.model = model
        self.plan = plan

        let steps = plan.steps.enumerated().filter { $0.element.runsAttention || $0.element.runsFFN }
        let blocks = try Self.layerTensors(file, layerCount: config.layerCount)
        let names = model.architecture.tensorNames
        var writer = GGUFWriter(alignment: file.alignment)
        let layout = try Self.metadata(model: model, layers: steps.map(\.element.layer), into: &writer)
        let source = sourceName ?? URL(fileURLWithPath: file.path).lastPathComponent
        writer.set("strata.export.source", .string(source))
        writer.set("strata.export.plan", .string(Self.json(plan)))
        writer.set("strata.export.method", .string(plan.method ?? "unspecified"))

        var tensorCount = 0
        let folded = try Self.foldedMaps(model: model, plan: plan)
        func add(_ tensor: TensorInfo, as name: String, zero: Bool, replacement: [UInt8]? = nil) throws(PlanExportError) {
            do {
                if let replacement {
                    try writer.addTensor(name: name, shape: tensor.shape, format: tensor.format, data: replacement)
                } else if zero {
                    try writer.addZeroTensor(name: name, shape: tensor.shape, format: tensor.format)
                } else {
                    try writer.addTensor(name: name, shape: tensor.shape, format: tensor.format, data: file.data(for: tensor))
                }
            } catch {
                throw .write(path: file.path, reason: "\(error)")
            }
            tensorCount += 1
        }
        for tensor in file.tensors where Self.layerIndex(of: tensor.name) == nil {
            try add(tensor, as: tensor.name, zero: false)
        }
        var zeroed: [PlanExportSummary.ZeroedSublayer] = []
        for (block, (stepIndex, step)) in steps.enumerated() {
            let tensors = blocks[step.layer]
            // the projection's bias, when a family has one, is part of the branch and goes too
            var zeroSuffixes: [(sublayer: String, suffixes: [String])] = []
            if !step.runsAttention { zeroSuffixes.append(("attention", Self.projection(names.attentionOutput))) }
            if !step.runsFFN { zeroSuffixes.append(("ffn", Self.projection(names.down))) }
            var zeroedNames: Set<String> = []
            for (sublayer, suffixes) in zeroSuffixes {
                let present = suffixes.filter { suffix in tensors.contains { $0.suffix == suffix } }
                guard present.contains(suffixes[0]) else {
                    throw .missingProjection(path: file.path, tensor: names.layer(step.layer, suffixes[0]), step: stepIndex,
                                             sublayer: sublayer)
                }
                zeroedNames.formUnion(present)
                zeroed.append(.init(block: block, step: stepIndex, sourceLayer: step.layer, sublayer: sublayer,
                                    tensors: present.map { names.layer(block, $0) }))
            }
            for tensor in tensors {
                let replacement = tensor.suffix == names.down ? folded[stepIndex] : nil
                try add(tensor.info, as: names.layer(block, tensor.suffix), zero: zeroedNames.contains(tensor.suffix),
                        replacement: replacement)
            }
        }
        self.writer = writer
        var warnings: [String] = []
        if !zeroed.isEmpty {
            warnings.append("\(zeroed.count) skipped sublayer(s) are written as zero output projections: the file computes "
                + "what the plan computes, but other engines still run those sublayers, so they save no compute there")
        }
        if let mismatch = layout.windowMismatch { warnings.append(mismatch) }
        if !folded.isEmpty {
            warnings.append("\(folded.count) healing map(s) are folded into FFN down projections and re-quantized to their "
                + "source types, which rounds them once more: check the exported file's perplexity")
        }
        summary = PlanExportSummary(
            output: "", source: file.path, method: plan.method, sourceLayerCount: config.layerCount,
            layers: steps.map(\.element.layer), droppedSteps: plan.steps.indices.filter { index in
                !plan.steps[index].runsAttention && !plan.steps[index].runsFFN
            },
            tensors: tensorCount, bytes: 0, zeroedSublayers: zeroed, slidingWindowLayers: layout.slidingWindowLayers,
            warnings: warnings)
    }

    /// For each step whose map applies to its FFN output, the step's down projection with the
    /// map folded in (`W_down ← Tᵀ W_down`), quantized to the source tensor's format. Stream
    /// maps, and FFN maps in families that normalize the FFN output after the down projection
    /// or give it a bias, are refused: no weight computes them.
    static func foldedMaps(model: LanguageModel, plan: LayerPlan) throws(PlanExportError) -> [Int: [UInt8]] {
        var result: [Int: [UInt8]] = [:]
        let weights = model.weights
        let names = model.architecture.tensorNames
        let hidden = model.config.hiddenSize
        for (index, step) in plan.steps.enumerated() {
            guard let map = step.map else { continue }
            guard map.site == .feedForwardOutput else {
                throw .mapNotFoldable(step: index, name: map.name, reason: "it applies to the whole stream; heal with --heal-site ffn to export")
            }
            let layer = weights.layers[step.layer]
            guard layer.postFeedForwardNorm == nil else {
                throw .mapNotFoldable(step: index, name: map.name,
                                      reason: "this family normalizes the FFN output after its down projection (\(names.postFeedForwardNorm))")
            }
            guard model.file.tensor(named: names.layer(step.layer, projection(names.down)[1])) == nil else {
                throw .mapNotFoldable(step: index, name: map.name, reason: "the FFN down projection has a bias")
            }
            let down = layer.down
            guard Quantizer.supports(down.format) || down.format == .f32 || down.format == .f16 else {
                throw .mapNotFoldable(step: index, name: map.name, reason: "no quantizer writes the down projection's format \(down.format)")
            }
            let transform = map.values
            var foldedRows = [Float](repeating: 0, count: hidden * down.columns)
            for i in 0..<hidden {
                let source = down.row(i)
                for j in 0..<hidden {
                    let factor = transform[i * hidden + j]
                    guard factor != 0 else { continue }
                    let base = j * down.columns
                    for column in 0..<down.columns { foldedRows[base + column] += factor * source[column] }
                }
            }
            do {
                result[index] = try encodedTensor(foldedRows, rows: hidden, columns: down.columns, format: down.format)
            } catch {
                throw .mapNotFoldable(step: index, name: map.name, reason: "\(error)")
            }
        }
        return result
    }

    /// Writes the file to `path` after `checkOutput(path:source:overwrite:)`; `progress` gets the
    /// bytes written and the file's size after each chunk. Returns the summary with the path and
    /// size filled in.
    public func write(
        to path: String, overwrite: Bool = false, progress: ((_ written: Int, _ total: Int) -> Void)? = nil
    ) throws(PlanExportError) -> PlanExportSummary {
        try Self.checkOutput(path: path, source: model.file.path, overwrite: overwrite)
        var summary = summary
        do {
            summary.bytes = try writer.fileSize()
            try writer.write(to: path, overwrite: overwrite, progress: progress)
        } catch {
            throw .write(path: path, reason: "\(error)")
        }
        summary.output = path
        return summary
    }
}

// MARK: Layout

extension PlanExport {
    /// A layer tensor: its source entry and the name after `blk.<layer>.`.
    struct LayerTensor {
        var info: TensorInfo
        var suffix: String
    }

    /// The layer index of a `blk.<layer>.<suffix>` name, or nil for a tensor outside the layers.
    static func layerIndex(of name: String) -> (layer: Int, suffix: String)? {
        guard name.hasPrefix("blk.") else { return nil }
        let rest = name.dropFirst(4)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else { return nil }
        return (layer, String(rest[rest.index(after: dot)...]))
    }

    /// Each layer's tensors in file order; a `blk.` name outside the model's layers is refused,
    /// since renumbering would silently drop or misplace it.
    static func layerTensors(_ file: GGUFFile, layerCount: Int) throws(PlanExportError) -> [[LayerTensor]] {
        var blocks = [[LayerTensor]](repeating: [], count: layerCount)
        for tensor in file.tensors {
            if let (layer, suffix) = layerIndex(of: tensor.name) {
                guard blocks.indices.contains(layer) else {
                    throw .strayLayerTensor(path: file.path, tensor: tensor.name, layerCount: layerCount)
                }
                blocks[layer].append(LayerTensor(info: tensor, suffix: suffix))
            } else if tensor.name.hasPrefix("blk.") {
                throw .strayLayerTensor(path: file.path, tensor: tensor.name, layerCount: layerCount)
            }
        }
        return blocks
    }

    /// The weight's suffix and its bias's (`attn_output.weight`, `attn_output.bias`).
    static func projection(_ weight: String) -> [String] {
        guard weight.hasSuffix(".weight") else { return [weight] }
        return [weight, String(weight.dropLast(".weight".count)) + ".bias"]
    }

    /// What the metadata pass decided about sliding windows.
    struct MetadataLayout {
        var slidingWindowLayers: [Bool]?
        var windowMismatch: String?
    }

    /// Copies the source metadata in order, with the block count and per-layer arrays for the
    /// exported `layers` (the source layer of each block), and an explicit sliding-window
    /// pattern when the family has windows: the family's default pattern follows block
    /// positions, which renumbering moves, so a layer keeps its window kind only if the file
    /// says which it is.
    static func metadata(model: LanguageModel, layers: [Int], into writer: inout GGUFWriter) throws(PlanExportError)
        -> MetadataLayout
    {
        let file = model.file
        let config = model.config
        let prefix = model.architecture.metadataPrefix
        let blockCountKey = "\(prefix).block_count"
        let patternKey = "\(prefix).attention.sliding_window_pattern"
        let perLayer = Set(perLayerKeys.map { "\(prefix).\($0)" })
        let windows = config.slidingWindowLayers.map { flags in layers.map { flags[$0] } }

        for key in file.metadata.keys {
            guard let value = file.metadata[key] else { continue }
            switch (key, value) {
            case (blockCountKey, _):
                guard let count = value.sameType(as: layers.count) else {
                    throw .metadata(path: file.path, key: key, reason: "expected an integer, found \(value.summary)")
                }
                writer.set(key, count)
            case (patternKey, _) where windows != nil:
                writer.set(key, .array(windows!.map { .bool($0) }))
            case (_, .array(let elements)) where perLayer.contains(key):
                guard elements.count == config.layerCount else {
                    throw .metadata(path: file.path, key: key,
                                    reason: "expected one value per layer (\(config.layerCount)), found \(elements.count)")
                }
                writer.set(key, .array(layers.map { elements[$0] }))
            case (_, .array(let elements)) where key.hasPrefix(prefix + ".") && elements.count == config.layerCount:
                throw .metadata(path: file.path, key: key,
                                reason: "an array of \(elements.count) values, one per layer, that export does not know how "
                                    + "to renumber (it renumbers \(perLayerKeys.joined(separator: ", ")))")
            default:
                writer.set(key, value)
            }
        }
        var layout = MetadataLayout(slidingWindowLayers: windows)
        guard let windows else { return layout }
        if file.metadata[patternKey] == nil { writer.set(patternKey, .array(windows.map { .bool($0) })) }
        // llama.cpp and transformers place Gemma 3's windows by the family's period and ignore
        // the pattern key; say which blocks those engines would run with the other kind
        if let period = model.architecture.slidingWindowPeriod {
            let implied = windows.indices.map { period == 0 || $0 % period < period - 1 }
            let moved = windows.indices.filter { windows[$0] != implied[$0] }
            if !moved.isEmpty {
                layout.windowMismatch = "blocks \(moved.map(String.init).joined(separator: ", ")) of the exported file use "
                    + "the other attention kind (sliding window vs global) than the \(prefix) default of one global layer "
                    + "in \(period) puts there: Strata reads '\(patternKey)', but engines that ignore it (llama.cpp and "
                    + "transformers for \(prefix)) will compute something else for this plan"
            }
        }
        return layout
    }

    /// The plan as compact, key-sorted JSON (what `strata.export.plan` holds).
    static func json(_ plan: LayerPlan) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(plan)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

extension GGUFValue {
    /// `number` in this value's integer type, or nil if this is not an integer or it does not fit.
    func sameType(as number: Int) -> GGUFValue? {
        switch self {
        case .uint8: UInt8(exactly: number).map { .uint8($0) }
        case .int8: Int8(exactly: number).map { .int8($0) }
        case .uint16: UInt16(exactly: number).map { .uint16($0) }
        case .int16: Int16(exactly: number).map { .int16($0) }
        case .uint32: UInt32(exactly: number).map { .uint32($0) }
        case .int32: Int32(exactly: number).map { .int32($0) }
        case .uint64: UInt64(exactly: number).map { .uint64($0) }
        case .int64: Int64(exactly: number).map { .int64($0) }
        default: nil
        }
    }
}
