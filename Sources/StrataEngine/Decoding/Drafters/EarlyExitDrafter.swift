import StrataTokenizer

/// Drafts with the first `layers` layers of the model plus its output head.
///
/// When the verifier's plan starts with exactly those layers, whole, verification does not run
/// them again: the draft keeps what it wrote to the cache for them and hands the verifier the
/// residual stream leaving them (`verificationStart`).
public struct EarlyExitDrafter: Drafter {
    public let layers: Int
    /// The first `layers` layers, made for the model in `prepare`.
    private var plan: LayerPlan?
    private var runner = ModelDraftRunner()
    /// This round's residual stream leaving the draft's layers, when the verifier reuses them.
    private var captured: CapturedStream?
    /// A shortcut head's map and vocabulary (`ShortcutDrafter`), or nil for the model's own head.
    let shortcut: (map: LinearMap, tokens: [TokenID])?
    /// The shortcut head built for the transformer, at the first draft.
    private var head: OutputHead?

    public init(layers: Int) {
        self.layers = layers
        shortcut = nil
    }

    init(layers: Int, shortcut: (map: LinearMap, tokens: [TokenID])) {
        self.layers = layers
        self.shortcut = shortcut
    }

    public var description: String { "early-exit:\(layers)" }

    /// Throws `GenerationError.earlyExitBeyondModel` unless 1 <= `layers` <= the layer count.
    public mutating func prepare(for config: ModelConfig) throws {
        guard layers >= 1, layers <= config.layerCount else {
            throw GenerationError.earlyExitBeyondModel(layers: layers, layerCount: config.layerCount)
        }
        plan = LayerPlan(layerCount: config.layerCount, steps: (0..<layers).map { LayerStep(layer: $0) },
                         method: "early-exit:\(layers)")
    }

    public mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft {
        guard let plan else { preconditionFailure("EarlyExitDrafter.draft before prepare(for:)") }
        if let shortcut, head == nil { head = try transformer.outputHead(tokens: shortcut.tokens, map: shortcut.map) }
        let capture = reusableLayers(of: plan, verifier: request.verifierPlan).map { LayerOutputCapture(step: $0 - 1) }
        let draft = try runner.run(plan: plan, request: request, count: request.length, transformer: &transformer,
                                   cache: &cache, stats: &stats, capture: capture, head: head)
        captured = capture.map { CapturedStream(hidden: $0.hidden, rows: $0.rows) }
        return draft
    }

    /// The residual stream leaving the early-exit layers for `tokens` (the pending token and the
    /// drafts), at `position...`: the draft already ran these layers for every token but perhaps
    /// the last draft, which runs them here (without the output head). Its cache entries for
    /// those layers stay; they are what the full model writes there, since a layer's arithmetic
    /// on a token does not depend on the layers above it or on the batch it is in. The cache is
    /// left at `position`, so the verify pass may start there.
    public mutating func verificationStart(
        for tokens: [TokenID], at position: Int, transformer: inout Transformer, cache: inout KVCache
    ) throws -> VerificationStart? {
        guard let captured, let plan else { return nil }
        self.captured = nil
        let capture = LayerOutputCapture(step: plan.steps.count - 1, continuing: captured)
        if capture.rows < tokens.count {
            _ = try transformer.forward(tokens: [tokens[tokens.count - 1]], startPosition: position + tokens.count - 1,
                                        plan: plan, cache: &cache, observer: capture, logits: .none)
        }
        cache.truncate(to: position)
        return VerificationStart(hidden: Array(capture.hidden.prefix(tokens.count * transformer.config.hiddenSize)),
                                 firstStep: plan.steps.count)
    }

    /// How many leading layers the draft shares with the verifier's plan (nil when that plan
    /// does not start with exactly those layers, whole, and go on beyond them).
    private func reusableLayers(of plan: LayerPlan, verifier: LayerPlan) -> Int? {
        // a per-token rule decides from the first step on: its pass cannot be seeded midway
        guard verifier.depth == nil, plan.depth == nil, plan.steps.count < verifier.steps.count,
              Array(verifier.steps.prefix(plan.steps.count)) == plan.steps else { return nil }
        return plan.steps.count
    }
}

/// The residual stream leaving a plan step, one row per token the draft ran.
private struct CapturedStream: Sendable {
    var hidden: [Float]
    var rows: Int
}

/// Keeps, one token per forward pass, the residual stream leaving plan step `step`.
private final class LayerOutputCapture: HiddenStateObserver {
    let step: Int
    private(set) var hidden: [Float]
    private(set) var rows: Int

    init(step: Int, continuing stream: CapturedStream = CapturedStream(hidden: [], rows: 0)) {
        self.step = step
        hidden = stream.hidden
        rows = stream.rows
    }

    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        guard step == self.step, boundary == .layerOutput else { return }
        // Only the rows of this pass: `hidden` is the forward pass's scratch, sized for its largest batch.
        self.hidden.append(contentsOf: hidden.prefix(tokens * hiddenSize))
        rows += tokens
    }
}
