import StrataTokenizer

/// Drafts with the same model run with a cheaper layer plan (one that skips layers or
/// sublayers), as many tokens as the adaptive draft length asks.
public struct PlanDrafter: Drafter {
    public let plan: LayerPlan
    private var runner = ModelDraftRunner()

    public init(plan: LayerPlan) {
        self.plan = plan
    }

    public var description: String { "plan(\(plan.method ?? "custom"), \(plan.steps.count) steps)" }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        try runner.run(plan: plan, request: request, count: request.length, transformer: &transformer, cache: &cache, stats: &stats)
    }
}
