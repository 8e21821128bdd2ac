import StrataTokenizer

/// A source of draft tokens for self-speculative decoding.
///
/// Each round, the speculator asks the drafter for up to `DraftRequest.length` tokens to follow
/// the verified text, verifies them with the full model in one batched pass, keeps the longest
/// accepted prefix and tells the drafter how the round went. A drafter is a value: every
/// generation starts from the state it was given in `SpeculationParameters`, and keeps its own
/// state (running estimates, a search) across the rounds of that generation.
///
/// Whatever a drafter proposes, the output is the full model's (greedy: the same tokens;
/// sampling: the same distribution); a drafter only changes the speed.
public protocol Drafter: Sendable, CustomStringConvertible {
    /// Called once before the first round with the model that will decide the output. Throws
    /// when this drafter cannot draft for that model (for example an early exit below a layer
    /// the model lacks). Default: nothing to prepare.
    mutating func prepare(for config: ModelConfig) throws

    /// Proposes tokens to follow `request.tokens`, whose last token is not in `cache` yet.
    /// A drafter that runs the model leaves `cache` where it found it (`request.position`),
    /// unless `verificationStart` takes over what it wrote. It adds its own costs (draft layer
    /// forwards, draft step times, search evaluations) to `stats`; the speculator counts the
    /// rounds, drafts and acceptances.
    mutating func draft(
        _ request: DraftRequest, transformer: inout Transformer, cache: inout KVCache, stats: inout SpeculationStats
    ) throws -> Draft

    /// Where verification of `tokens` (the pending token and the drafts) at `position` starts:
    /// nil runs the whole verifier plan from the tokens (the default); a `VerificationStart`
    /// hands over the residual stream the verifier's first steps would compute, when the draft
    /// already ran exactly those steps. Called inside the timed verification, after `draft`.
    /// On return the cache must hold `position` entries.
    mutating func verificationStart(
        for tokens: [TokenID], at position: Int, transformer: inout Transformer, cache: inout KVCache
    ) throws -> VerificationStart?

    /// Told the outcome of the round `draft` proposed for, including rounds without drafts.
    mutating func verified(_ round: VerifiedRound)

    /// Gives the drafter the text of earlier requests to draft from as well as the request's own.
    /// A server calls it on each request's copy of the drafter before generating, all copies
    /// sharing one history, and adds each finished request's prompt and output to it. Default:
    /// nothing to attach to (a drafter that runs the model has no use for it).
    mutating func attach(history: TokenHistory)
}

extension Drafter {
    public mutating func prepare(for config: ModelConfig) throws {}

    public mutating func verificationStart(
        for tokens: [TokenID], at position: Int, transformer: inout Transformer, cache: inout KVCache
    ) throws -> VerificationStart? { nil }

    public mutating func verified(_ round: VerifiedRound) {}

    public mutating func attach(history: TokenHistory) {}
}

/// What the speculator asks of a drafter in one round.
public struct DraftRequest: Sendable {
    /// The verified text: the prompt and every token decided so far. The last one is pending:
    /// it is not in the cache yet, and the drafts follow it.
    public var tokens: [TokenID]
    /// How many tokens to draft: the adaptive draft length (`SpeculationParameters.adaptive`),
    /// within `maximum`.
    public var length: Int
    /// The most drafts this round may verify: `SpeculationParameters.maxDraft`, and fewer near
    /// the end of the generation or the context. A drafter that chooses its own length (`auto`)
    /// stays within it.
    public var maximum: Int
    /// The plan of the model that verifies (and so decides the output).
    public var verifierPlan: LayerPlan
    /// The verifier's sampler: a model draft draws from the same distribution transform
    /// (temperature, top-k, top-p, min-p), so that q is comparable to p.
    public var sampler: Sampler
    /// A model draft stops when its most likely token is less likely than this (γ).
    public var confidence: Float

    /// The cache position of the pending token.
    public var position: Int { tokens.count - 1 }

    public init(tokens: [TokenID], length: Int, maximum: Int, verifierPlan: LayerPlan, sampler: Sampler, confidence: Float) {
        self.tokens = tokens
        self.length = length
        self.maximum = maximum
        self.verifierPlan = verifierPlan
        self.sampler = sampler
        self.confidence = confidence
    }
}

/// The tokens a drafter proposes for one round.
public struct Draft: Sendable, Equatable {
    /// How the drafts were made, for `SpeculationStats` (`ngramRounds` or `planRounds`) and
    /// the cost model.
    public enum Kind: Sendable, Equatable {
        /// Looked up without running the model (counted as n-gram rounds).
        case lookup
        /// Run by the model with a cheaper layer plan (counted as plan rounds).
        case layerPlan
    }

    public var tokens: [TokenID]
    /// The distribution each token was drawn from (q in the acceptance test min(1, p/q)), or
    /// empty when every draft is deterministic (a point mass on the drafted token). When not
    /// empty, one per token; nil entries are point masses.
    public var distributions: [TokenDistribution?]
    public var kind: Kind

    public init(tokens: [TokenID], distributions: [TokenDistribution?] = [], kind: Kind) {
        precondition(distributions.isEmpty || distributions.count == tokens.count, "one distribution per draft token, or none")
        self.tokens = tokens
        self.distributions = distributions
        self.kind = kind
    }

    /// No drafts: the round decodes one token plainly.
    public static let none = Draft(tokens: [], kind: .lookup)
}

/// The residual stream a verification pass may start from instead of the tokens.
public struct VerificationStart: Sendable {
    /// `[tokens × hiddenSize]`: the stream entering step `firstStep` of the verifier's plan.
    public var hidden: [Float]
    public var firstStep: Int

    public init(hidden: [Float], firstStep: Int) {
        self.hidden = hidden
        self.firstStep = firstStep
    }
}

/// How one round went, as its drafter is told.
public struct VerifiedRound: Sendable, Equatable {
    /// Tokens drafted (0: a plain round) and how many of them the full model accepted.
    public var drafted: Int
    public var accepted: Int
    public var kind: Draft.Kind
    /// Seconds of the verification pass over the pending token and the `drafted` tokens.
    public var verifySeconds: Double

    public init(drafted: Int, accepted: Int, kind: Draft.Kind, verifySeconds: Double) {
        self.drafted = drafted
        self.accepted = accepted
        self.kind = kind
        self.verifySeconds = verifySeconds
    }
}
