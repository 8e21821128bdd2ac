/// One step of a layer plan: run layer `layer`, with its attention and/or FFN sublayer.
/// A sublayer that does not run contributes the identity (its residual branch is not added).
public struct LayerStep: Sendable, Codable, Equatable, Hashable {
    public var layer: Int
    public var runsAttention: Bool
    public var runsFFN: Bool

    public init(layer: Int, runsAttention: Bool = true, runsFFN: Bool = true) {
        self.layer = layer
        self.runsAttention = runsAttention
        self.runsFFN = runsFFN
    }

    enum CodingKeys: String, CodingKey {
        case layer
        case runsAttention = "attention"
        case runsFFN = "ffn"
    }
}

/// The order in which the forward pass runs layers and sublayers. Every method that changes
/// depth (pruning, sublayer skipping, drafting, loops) is a plan handed to the same forward pass.
public struct LayerPlan: Sendable, Codable, Equatable, Hashable {
    /// Layers of the model the plan was made for.
    public var layerCount: Int
    public var steps: [LayerStep]

    public init(layerCount: Int, steps: [LayerStep]) {
        self.layerCount = layerCount
        self.steps = steps
    }

    /// Every layer once, in order, with both sublayers.
    public static func full(layerCount: Int) -> LayerPlan {
        LayerPlan(layerCount: layerCount, steps: (0..<layerCount).map { LayerStep(layer: $0) })
    }

    /// Whether this is exactly the full model.
    public var isFull: Bool { self == .full(layerCount: layerCount) }

    enum CodingKeys: String, CodingKey {
        case layerCount = "layer_count"
        case steps
    }
}
