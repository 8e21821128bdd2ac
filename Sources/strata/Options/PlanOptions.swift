import ArgumentParser
import StrataEngine

/// `--plan` and the skip shorthands, shared by every command that runs a model.
struct PlanOptions: ParsableArguments {
    @Option(help: "A layer plan file (plan.json, as `strata plan` writes) to run instead of the full model.")
    var plan: String?

    @Option(name: .customLong("skip-layers"), help: "Layers to skip entirely, e.g. 3,7-9 (0-based, ranges inclusive).")
    var skipLayers: String?

    @Option(name: .customLong("skip-attention"), help: "Layers whose attention sublayer is skipped, e.g. 20-25.")
    var skipAttention: String?

    @Option(name: .customLong("skip-ffn"), help: "Layers whose feed-forward sublayer is skipped, e.g. 12,14.")
    var skipFFN: String?

    func validate() throws {
        for list in [skipLayers, skipAttention, skipFFN].compactMap({ $0 }) {
            _ = try LayerPlan.parseLayerList(list)
        }
    }

    /// Whether any option was given.
    var isSet: Bool { plan != nil || skipLayers != nil || skipAttention != nil || skipFFN != nil }

    /// The plan to run on a model with `config`: the plan file (or the full model) with the
    /// skips applied, checked against the model.
    func plan(for config: ModelConfig) throws -> LayerPlan {
        var result = try plan.map { try LayerPlan.load(path: $0) } ?? .full(layerCount: config.layerCount)
        let layers = try skipLayers.map { try LayerPlan.parseLayerList($0) } ?? []
        let attention = try skipAttention.map { try LayerPlan.parseLayerList($0) } ?? []
        let ffn = try skipFFN.map { try LayerPlan.parseLayerList($0) } ?? []
        do {
            // the model's layer count first: a plan file for another model fails there, not on a skip
            try result.validate(layerCount: config.layerCount)
            result = try result.skipping(layers: layers, attention: attention, ffn: ffn)
            try result.validate(layerCount: config.layerCount)
        } catch {
            throw CommandFailure(plan.map { "plan \($0): \(error)" } ?? "\(error)")
        }
        return result
    }
}
