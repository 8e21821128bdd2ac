import StrataTokenizer

/// The built-in draft sources by name: a small value that makes their `Drafter`.
public enum DraftSource: Sendable, Equatable, CustomStringConvertible {
    /// The most recent earlier occurrence of the last 3, 2 or 1 tokens in the prompt and the
    /// text so far, and the tokens that followed it ("prompt lookup"): free to compute.
    case ngram
    /// The same model run with a layer plan that skips layers or sublayers.
    case plan(LayerPlan)
    /// The first `layers` layers plus the LM head.
    case earlyExit(layers: Int)
    /// A layer-skip plan searched for during generation (`LayerSkipSearch`), starting from
    /// `seed` (a plan an earlier search found) when given.
    case layers(seed: LayerPlan?)
    /// Per round: n-gram drafts when the history has a match, otherwise the `fallback` plan if
    /// the measured costs say it pays, otherwise plain decoding.
    case auto(fallback: LayerPlan?)

    /// Recently verified tokens a `.layers` candidate is scored on.
    public static let matchnessWindow = LayerSearchDrafter.matchnessWindow

    /// A drafter of this source, in its starting state.
    public func makeDrafter() -> any Drafter {
        switch self {
        case .ngram: NGramDrafter()
        case .plan(let plan): PlanDrafter(plan: plan)
        case .earlyExit(let layers): EarlyExitDrafter(layers: layers)
        case .layers(let seed): LayerSearchDrafter(seed: seed)
        case .auto(let fallback): AutoDrafter(fallback: fallback)
        }
    }

    public var description: String { makeDrafter().description }
}

/// Settings of self-speculative decoding.
public struct SpeculationParameters: Sendable {
    /// Where drafts come from. Each generation starts from this drafter's state.
    public var drafter: any Drafter
    /// Most tokens drafted per round (K).
    public var maxDraft: Int
    /// A model draft stops when its most likely token is less likely than this (γ).
    public var confidence: Float
    /// Adapt the draft length to the running acceptance and measured costs.
    public var adaptive: Bool

    public init(drafter: any Drafter, maxDraft: Int = 8, confidence: Float = 0.5, adaptive: Bool = true) {
        self.drafter = drafter
        self.maxDraft = maxDraft
        self.confidence = confidence
        self.adaptive = adaptive
    }

    /// Settings drafting from one of the built-in sources.
    public init(draft: DraftSource = .auto(fallback: nil), maxDraft: Int = 8, confidence: Float = 0.5, adaptive: Bool = true) {
        self.init(drafter: draft.makeDrafter(), maxDraft: maxDraft, confidence: confidence, adaptive: adaptive)
    }
}
