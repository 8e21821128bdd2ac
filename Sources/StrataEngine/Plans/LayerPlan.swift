/// One step of a layer plan: run layer `layer`, with its attention and/or FFN sublayer, then
/// apply `map` if it has one. A sublayer that does not run contributes the identity (its
/// residual branch is not added).
public struct LayerStep: Sendable, Codable, Equatable, Hashable {
    public var layer: Int
    public var runsAttention: Bool
    public var runsFFN: Bool
    /// A fitted linear map applied in this step (healing the layers a plan removed after it).
    public var map: LinearMap?

    public init(layer: Int, runsAttention: Bool = true, runsFFN: Bool = true, map: LinearMap? = nil) {
        self.layer = layer
        self.runsAttention = runsAttention
        self.runsFFN = runsFFN
        self.map = map
    }

    enum CodingKeys: String, CodingKey {
        case layer
        case runsAttention = "attention"
        case runsFFN = "ffn"
        case map
    }

    /// `attention` and `ffn` default to true when a plan file leaves them out.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        layer = try container.decode(Int.self, forKey: .layer)
        runsAttention = try container.decodeIfPresent(Bool.self, forKey: .runsAttention) ?? true
        runsFFN = try container.decodeIfPresent(Bool.self, forKey: .runsFFN) ?? true
        map = try container.decodeIfPresent(LinearMap.self, forKey: .map)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(layer, forKey: .layer)
        try container.encode(runsAttention, forKey: .runsAttention)
        try container.encode(runsFFN, forKey: .runsFFN)
        try container.encodeIfPresent(map, forKey: .map)
    }
}

/// The order in which the forward pass runs layers and sublayers. Every method that changes
/// depth (pruning, sublayer skipping, drafting, loops) is a plan handed to the same forward pass.
///
/// Steps may omit layers, switch sublayers off, repeat or reorder layers. Written as plan.json:
/// `{"model", "layer_count", "steps": [{"layer", "attention", "ffn"}], "method", "notes"}`.
public struct LayerPlan: Sendable, Codable, Equatable, Hashable {
    /// Layers of the model the plan was made for.
    public var layerCount: Int
    public var steps: [LayerStep]
    /// The model the plan was made for (informational).
    public var model: String?
    /// How the plan was made (`block-influence`, `angular`, `manual`, ...).
    public var method: String?
    /// Free text: what was removed and why.
    public var notes: String?
    /// The GGUF file holding the matrices of the steps' linear maps, relative to plan.json's
    /// folder (nil when no step has a map).
    public var mapFile: String?
    /// A per-token depth rule run on top of the steps (not written to plan.json: built from
    /// fitted maps or thresholds by the front ends).
    public var depth: DepthPolicy? = nil

    public init(layerCount: Int, steps: [LayerStep], model: String? = nil, method: String? = nil, notes: String? = nil) {
        self.layerCount = layerCount
        self.steps = steps
        self.model = model
        self.method = method
        self.notes = notes
    }

    enum CodingKeys: String, CodingKey {
        case layerCount = "layer_count"
        case steps, model, method, notes
        case mapFile = "map_file"
    }

    /// Every layer once, in order, with both sublayers.
    public static func full(layerCount: Int) -> LayerPlan {
        LayerPlan(layerCount: layerCount, steps: (0..<layerCount).map { LayerStep(layer: $0) }, method: "full")
    }

    /// Whether this runs exactly the full model (whatever its descriptive fields say).
    public var isFull: Bool { depth == nil && steps == LayerPlan.full(layerCount: layerCount).steps }

    /// This plan without the given layers, and with the given attention / FFN sublayers off.
    ///
    /// Every index must name a layer of the plan's model (`0..<layerCount`): a layer the model
    /// lacks is refused rather than ignored, since ignoring it would run a different plan from
    /// the one asked for. When anything is skipped, a plan described as `full` (or not at all)
    /// becomes `manual`, the method of hand-picked skips; a plan with another method (one read
    /// from a file) keeps it, with the skips applied on top.
    public func skipping(layers: Set<Int> = [], attention: Set<Int> = [], ffn: Set<Int> = []) throws(PlanError) -> LayerPlan {
        let named = layers.union(attention).union(ffn)
        if let outside = named.filter({ $0 < 0 || $0 >= layerCount }).min() {
            throw .layerNotInModel(layer: outside, layerCount: layerCount)
        }
        var plan = self
        plan.steps = steps.compactMap { step in
            guard !layers.contains(step.layer) else { return nil }
            var step = step
            if attention.contains(step.layer) { step.runsAttention = false }
            if ffn.contains(step.layer) { step.runsFFN = false }
            return step
        }
        if !named.isEmpty && (method == nil || method == "full") { plan.method = "manual" }
        return plan
    }

    /// Checks the plan against a model of `layerCount` layers; the error says what is wrong.
    public func validate(layerCount modelLayers: Int) throws(PlanError) {
        guard layerCount == modelLayers else { throw .layerCountMismatch(plan: layerCount, model: modelLayers) }
        guard steps.count <= Self.maximumStepsPerLayer * modelLayers else {
            throw .tooManySteps(steps: steps.count, limit: Self.maximumStepsPerLayer * modelLayers)
        }
        guard steps.contains(where: { $0.runsAttention || $0.runsFFN }) else { throw .empty }
        if let index = steps.firstIndex(where: { $0.layer < 0 || $0.layer >= modelLayers }) {
            throw .layerOutOfRange(step: index, layer: steps[index].layer, layerCount: modelLayers)
        }
        for (index, step) in steps.enumerated() {
            guard let map = step.map else { continue }
            guard map.matrix != nil else { throw .mapNotLoaded(step: index, name: map.name) }
            if map.site == .feedForwardOutput && !step.runsFFN { throw .mapWithoutFeedForward(step: index, name: map.name) }
        }
    }

    /// For each step, the KV-cache slot its attention uses: a layer's first occurrence uses slot
    /// `layer`, so plans that share layers (a draft and the full model) share their cache
    /// entries; later repeats of a layer get slots from `layerCount` on, so a looped layer
    /// never overwrites the keys of its earlier pass.
    public var cacheSlots: [Int] {
        var seen: Set<Int> = []
        var nextExtra = layerCount
        return steps.map { step in
            if seen.insert(step.layer).inserted { return step.layer }
            defer { nextExtra += 1 }
            return nextExtra
        }
    }
}

/// Why a plan cannot be used.
public enum PlanError: Error, CustomStringConvertible, Equatable, Sendable {
    case layerCountMismatch(plan: Int, model: Int)
    case empty
    case layerOutOfRange(step: Int, layer: Int, layerCount: Int)
    case unreadable(path: String, reason: String)
    case invalidLayerList(String)
    /// A range of a layer list whose first layer comes after its last (`5-3`).
    case reversedLayerRange(list: String, first: Int, last: Int)
    /// A layer named (to skip) that the model does not have.
    case layerNotInModel(layer: Int, layerCount: Int)
    /// More steps than `LayerPlan.maximumStepsPerLayer` times the model's layers.
    case tooManySteps(steps: Int, limit: Int)
    /// A step's linear map whose matrix was not read from the plan's tensor file.
    case mapNotLoaded(step: Int, name: String)
    /// A map on a step's FFN output where the step does not run its FFN.
    case mapWithoutFeedForward(step: Int, name: String)
    /// A map whose size is not the model's hidden size.
    case mapSize(name: String, rows: Int, columns: Int, hiddenSize: Int)

    public var description: String {
        switch self {
        case .layerCountMismatch(let plan, let model):
            "the plan is for a model with \(plan) layers, this model has \(model)"
        case .empty:
            "the plan runs no sublayer: it would skip every layer"
        case .layerOutOfRange(let step, let layer, let layerCount):
            "step \(step) runs layer \(layer), outside 0..<\(layerCount)"
        case .unreadable(let path, let reason):
            "cannot read plan \(path): \(reason)"
        case .invalidLayerList(let text):
            "invalid layer list '\(text)': expected indices and ranges like 3,7-9 (0...\(LayerPlan.largestLayerIndex))"
        case .reversedLayerRange(let list, let first, let last):
            "invalid layer list '\(list)': the range \(first)-\(last) is reversed (write \(last)-\(first))"
        case .layerNotInModel(let layer, let layerCount):
            "layer \(layer) does not exist: the model has layers 0...\(layerCount - 1)"
        case .tooManySteps(let steps, let limit):
            "the plan has \(steps) steps; at most \(limit) (\(LayerPlan.maximumStepsPerLayer) per layer of the model) are allowed"
        case .mapNotLoaded(let step, let name):
            "step \(step) applies the linear map '\(name)', whose matrix was not read (load the plan with its tensor file, map_file)"
        case .mapWithoutFeedForward(let step, let name):
            "step \(step) applies '\(name)' to its FFN output but does not run its FFN"
        case .mapSize(let name, let rows, let columns, let hiddenSize):
            "the linear map '\(name)' is \(columns) x \(rows); this model needs \(hiddenSize) x \(hiddenSize)"
        }
    }
}

extension LayerPlan {
    /// The largest index a layer list may name: far beyond any model, and small enough that a
    /// range such as `0-9223372036854775807` is refused instead of expanded.
    public static let largestLayerIndex = 65_535

    /// The most steps a plan may have per layer of its model. Loops that repeat a block a few
    /// times stay far below it; a plan of a million steps (minutes per token, a cache slot per
    /// step) is refused instead of run.
    public static let maximumStepsPerLayer = 16

    /// Parses a layer list such as `3,7-9` (ranges inclusive) into a set of indices.
    public static func parseLayerList(_ text: String) throws(PlanError) -> Set<Int> {
        var layers: Set<Int> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
                .map { Int($0.trimmingCharacters(in: " ")) }
            switch bounds.count {
            case 1:
                guard let index = bounds[0], index >= 0, index <= largestLayerIndex else { throw .invalidLayerList(text) }
                layers.insert(index)
            case 2:
                guard let low = bounds[0], let high = bounds[1], low >= 0, high <= largestLayerIndex else {
                    throw .invalidLayerList(text)
                }
                guard low <= high else { throw .reversedLayerRange(list: text, first: low, last: high) }
                layers.formUnion(low...high)
            default:
                throw .invalidLayerList(text)
            }
        }
        return layers
    }

    /// Fraction of the full model's per-token layer compute this plan runs, counting each
    /// sublayer by its weight count (attention: q, k, v, o; FFN: gate, up, down).
    public func computeFraction(config: ModelConfig) -> Double {
        SublayerCost(config: config).keptFraction(self)
    }
}

private extension Substring {
    func trimmingCharacters(in set: Character) -> Substring {
        var result = self
        while result.first == set { result = result.dropFirst() }
        while result.last == set { result = result.dropLast() }
        return result
    }
}
