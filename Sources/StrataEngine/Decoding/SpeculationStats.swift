/// Counts of one speculative generation.
public struct SpeculationStats: Sendable, Codable, Equatable {
    /// Draft tokens proposed.
    public var drafted = 0
    /// Draft tokens the full model confirmed.
    public var accepted = 0
    /// Batched forward passes of the full model (each yields at least one token).
    public var verifyPasses = 0
    /// Rounds that drafted from n-gram lookup / from a layer plan / not at all.
    public var ngramRounds = 0
    public var planRounds = 0
    public var plainRounds = 0
    /// Layer forwards the draft passes ran, and those the full model would have run for the
    /// same tokens decoded plainly.
    public var draftLayerForwards = 0
    /// Draft plans scored by the layer-skip search (`--draft layers`).
    public var searchEvaluations = 0
    public var draftPlan: String = ""
    /// The forward-pass times the speculator measured for its cost model.
    public var timings = SpeculationTimings()

    public init() {}

    public var acceptanceRate: Double { drafted > 0 ? Double(accepted) / Double(drafted) : 0 }
    /// Draft tokens accepted per verification pass.
    public var meanAcceptedPerVerify: Double { verifyPasses > 0 ? Double(accepted) / Double(verifyPasses) : 0 }

    /// Adds the counts and times of another generation (for totals over several runs); the
    /// draft description is kept, or taken from `other` when this one has none.
    public mutating func add(_ other: SpeculationStats) {
        drafted += other.drafted
        accepted += other.accepted
        verifyPasses += other.verifyPasses
        ngramRounds += other.ngramRounds
        planRounds += other.planRounds
        plainRounds += other.plainRounds
        draftLayerForwards += other.draftLayerForwards
        searchEvaluations += other.searchEvaluations
        if draftPlan.isEmpty { draftPlan = other.draftPlan }
        timings.add(other.timings)
    }

    enum CodingKeys: String, CodingKey {
        case drafted, accepted
        case verifyPasses = "verify_passes"
        case ngramRounds = "ngram_rounds"
        case planRounds = "plan_rounds"
        case plainRounds = "plain_rounds"
        case draftLayerForwards = "draft_layer_forwards"
        case searchEvaluations = "search_evaluations"
        case draftPlan = "draft_plan"
        case timings
        case acceptanceRate = "acceptance_rate"
        case meanAcceptedPerVerify = "mean_accepted_per_verify"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(drafted, forKey: .drafted)
        try container.encode(accepted, forKey: .accepted)
        try container.encode(verifyPasses, forKey: .verifyPasses)
        try container.encode(ngramRounds, forKey: .ngramRounds)
        try container.encode(planRounds, forKey: .planRounds)
        try container.encode(plainRounds, forKey: .plainRounds)
        try container.encode(draftLayerForwards, forKey: .draftLayerForwards)
        try container.encode(searchEvaluations, forKey: .searchEvaluations)
        try container.encode(draftPlan, forKey: .draftPlan)
        try container.encode(timings, forKey: .timings)
        try container.encode(acceptanceRate, forKey: .acceptanceRate)
        try container.encode(meanAcceptedPerVerify, forKey: .meanAcceptedPerVerify)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        drafted = try container.decode(Int.self, forKey: .drafted)
        accepted = try container.decode(Int.self, forKey: .accepted)
        verifyPasses = try container.decode(Int.self, forKey: .verifyPasses)
        ngramRounds = try container.decode(Int.self, forKey: .ngramRounds)
        planRounds = try container.decode(Int.self, forKey: .planRounds)
        plainRounds = try container.decode(Int.self, forKey: .plainRounds)
        draftLayerForwards = try container.decode(Int.self, forKey: .draftLayerForwards)
        searchEvaluations = try container.decodeIfPresent(Int.self, forKey: .searchEvaluations) ?? 0
        draftPlan = try container.decode(String.self, forKey: .draftPlan)
        // Absent from output written before the timings were recorded.
        timings = try container.decodeIfPresent(SpeculationTimings.self, forKey: .timings) ?? SpeculationTimings()
    }
}

/// Seconds spent in the forward passes of speculative decoding, summed, as the speculator
/// measures them to choose draft lengths (the cost model of methods.md section 7). Totals rather
/// than running estimates, so that runs can be added up and averaged afterwards.
public struct SpeculationTimings: Sendable, Codable, Equatable {
    /// Verification passes by batch size k (the pending token plus k − 1 drafts).
    public var verifyPasses: [Int: Int] = [:]
    /// Seconds of those passes by batch size, summed.
    public var verifySeconds: [Int: Double] = [:]
    /// Single-token forward passes of a draft plan (including a last one whose token fell below
    /// the confidence threshold and was not drafted), and their seconds summed.
    public var draftSteps = 0
    public var draftSeconds: Double = 0
    /// Seconds the layer-skip search spent scoring candidate plans.
    public var searchSeconds: Double = 0

    public init() {}

    /// Mean seconds of verifying `size` tokens in one pass, or nil if no such pass ran.
    public func meanVerifySeconds(size: Int) -> Double? {
        guard let passes = verifyPasses[size], passes > 0, let seconds = verifySeconds[size] else { return nil }
        return seconds / Double(passes)
    }

    /// Mean seconds of one draft step, or nil if the draft never ran a model pass (n-gram).
    public var meanDraftStepSeconds: Double? { draftSteps > 0 ? draftSeconds / Double(draftSteps) : nil }

    mutating func recordVerify(size: Int, seconds: Double) {
        verifyPasses[size, default: 0] += 1
        verifySeconds[size, default: 0] += seconds
    }

    mutating func recordDraftStep(seconds: Double) {
        draftSteps += 1
        draftSeconds += seconds
    }

    mutating func add(_ other: SpeculationTimings) {
        verifyPasses.merge(other.verifyPasses, uniquingKeysWith: +)
        verifySeconds.merge(other.verifySeconds, uniquingKeysWith: +)
        draftSteps += other.draftSteps
        draftSeconds += other.draftSeconds
        searchSeconds += other.searchSeconds
    }

    enum CodingKeys: String, CodingKey {
        case verifyPasses = "verify_passes_by_size"
        case verifySeconds = "verify_seconds_by_size"
        case draftSteps = "draft_steps"
        case draftSeconds = "draft_seconds"
        case searchSeconds = "search_seconds"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        verifyPasses = try container.decode([Int: Int].self, forKey: .verifyPasses)
        verifySeconds = try container.decode([Int: Double].self, forKey: .verifySeconds)
        draftSteps = try container.decode(Int.self, forKey: .draftSteps)
        draftSeconds = try container.decode(Double.self, forKey: .draftSeconds)
        // Absent from output written before the layer-skip search existed.
        searchSeconds = try container.decodeIfPresent(Double.self, forKey: .searchSeconds) ?? 0
    }
}
