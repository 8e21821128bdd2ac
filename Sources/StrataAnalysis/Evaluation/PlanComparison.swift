import StrataEngine
import StrataTokenizer

/// One row of a plan comparison: quality and speed of the model under one plan.
public struct PlanComparisonEntry: Sendable, Codable, Equatable {
    /// What the row is called (`full`, or the plan file's name).
    public var name: String
    /// The plan's `method` field, if any.
    public var method: String?
    /// Fraction of the full model's layer compute the plan keeps (`LayerPlan.computeFraction`).
    public var computeFraction: Double
    public var perplexity: PerplexityReport?
    public var tasks: [TaskReport]
    /// Generation tokens per second, measured interleaved with the other plans.
    public var generation: Measurement?
    /// `generation.median` over the full model's.
    public var speedRatio: Double?
    /// For a plan with a per-token depth rule: what it ran, measured on the tokens scored
    /// (`computeFraction` is then this measurement, not the static steps').
    public var depth: DepthReport?

    public init(name: String, method: String?, computeFraction: Double, perplexity: PerplexityReport? = nil,
                tasks: [TaskReport] = [], generation: Measurement? = nil, speedRatio: Double? = nil) {
        self.name = name
        self.method = method
        self.computeFraction = computeFraction
        self.perplexity = perplexity
        self.tasks = tasks
        self.generation = generation
        self.speedRatio = speedRatio
    }

    enum CodingKeys: String, CodingKey {
        case name, method, perplexity, tasks, generation
        case computeFraction = "compute_fraction"
        case speedRatio = "speed_ratio"
        case depth
    }

    /// The report of `task`, if it was run.
    public func report(for task: EvaluationTask) -> TaskReport? { tasks.first { $0.task == task } }
}

/// What a per-token depth rule ran over the tokens of one comparison row.
public struct DepthReport: Sendable, Codable, Equatable {
    public var usage: DepthUsage
    /// Layer compute per token, in layers (`DepthUsage.layersPerToken`).
    public var layersPerToken: Double
    /// Fraction of tokens that exited early (dynamic exit).
    public var exitedFraction: Double
    /// What the exit checks cost, as a fraction of the full model's layer compute (not included
    /// in the row's compute fraction).
    public var checkFraction: Double

    public init(usage: DepthUsage, config: ModelConfig, checkVocabulary: Int) {
        self.usage = usage
        layersPerToken = usage.layersPerToken(config: config)
        exitedFraction = usage.tokens > 0 ? Double(usage.exits) / Double(usage.tokens) : 0
        checkFraction = usage.checkFraction(config: config, vocabulary: checkVocabulary)
    }

    enum CodingKeys: String, CodingKey {
        case usage
        case layersPerToken = "layers_per_token"
        case exitedFraction = "exited_fraction"
        case checkFraction = "check_fraction"
    }
}

/// The full model and several plans side by side (what `strata eval compare` prints).
public struct PlanComparisonReport: Sendable, Codable, Equatable {
    public var model: String
    /// Documents scored per task (nil: all).
    public var limit: Int?
    /// What perplexity was measured on.
    public var perplexityText: String
    /// Tokens generated per timed run.
    public var generatedTokens: Int
    /// The full model first, then the plans in the order given.
    public var entries: [PlanComparisonEntry]

    public init(model: String, limit: Int?, perplexityText: String, generatedTokens: Int, entries: [PlanComparisonEntry]) {
        self.model = model
        self.limit = limit
        self.perplexityText = perplexityText
        self.generatedTokens = generatedTokens
        self.entries = entries
    }

    enum CodingKeys: String, CodingKey {
        case model, limit, entries
        case perplexityText = "perplexity_text"
        case generatedTokens = "generated_tokens"
    }
}

/// Generation speed (tokens per second, one token per forward pass) of each plan.
///
/// Runs are interleaved — every plan once per round, `repetitions` rounds after an untimed
/// warm-up round — so a change in machine load touches all plans alike and the ratios stay fair.
/// `text`, when given, supplies the tokens fed (its first `count`): plans with a per-token
/// depth rule run what they run on real text, not on arbitrary ids.
public func measureGenerationSpeeds(
    transformer: inout Transformer, plans: [LayerPlan], tokens count: Int, repetitions: Int, text: [TokenID]? = nil,
    progress: ((_ round: Int, _ of: Int) -> Void)? = nil
) throws -> [Measurement] {
    let config = transformer.config
    // Fixed ordinary ids, so runs are comparable across plans and invocations.
    var tokens = (0..<count).map { TokenID(1000 + ($0 * 7919) % min(20_000, max(1, config.vocabularySize - 1000))) }
    if let text, text.count >= count { tokens = Array(text.prefix(count)) }
    var cache = transformer.makeCache(capacity: count)
    var samples = Array(repeating: [Double](), count: plans.count)
    let clock = ContinuousClock()
    for round in 0...repetitions {
        for (index, plan) in plans.enumerated() {
            cache.truncate(to: 0)
            let start = clock.now
            for (position, token) in tokens.enumerated() {
                _ = try transformer.forward(tokens: [token], startPosition: position, plan: plan, cache: &cache)
            }
            let elapsed = clock.now - start
            let seconds = elapsed.seconds
            if round > 0 { samples[index].append(Double(count) / seconds) }
        }
        progress?(round, repetitions)
    }
    return samples.map { Measurement(samples: $0) }
}
