#if canImport(Glibc)
import Glibc
#endif

/// Running estimates of what drafting costs and how often it is accepted, and the draft length
/// they make best (the cost model of methods.md section 7). The `auto` drafter decides with it
/// each round whether an n-gram draft or its fallback plan pays, and how long a draft to make.
///
/// Costs are in units of one single-token verification pass, so that they carry over between
/// machines and models; the acceptance rates are per draft source.
struct CostModel: Sendable {
    // MARK: constants

    /// Weight a running time estimate keeps when a new measurement arrives (the rest,
    /// `timeMeasurementWeight`, goes to the measurement): timings on a shared CPU are noisy, so
    /// one pass moves the estimate by under a third, yet a lasting change in speed shows
    /// within a few rounds.
    static let timeEstimateWeight = 0.7
    static let timeMeasurementWeight = 0.3
    /// Weight a running acceptance rate keeps when a round's rate arrives (the rest,
    /// `acceptanceMeasurementWeight`, goes to the round): slower than the times, since one
    /// round of a few drafts is a coarse sample of the rate.
    static let acceptanceEstimateWeight = 0.8
    static let acceptanceMeasurementWeight = 0.2
    /// The acceptance the expected-length formula sees is clamped to this range: at 0 no
    /// length would ever pay again, and at 1 the formula divides by zero.
    static let acceptanceRange = 0.05...0.95
    /// The upper end of that range for history drafts: a repeated request's drafts are accepted
    /// nearly always (246 of 246 regenerating an answer on Qwen2.5-Coder-1.5B), and at 0.95 the
    /// formula undervalues long drafts: with verification as dear as a loaded 2-core CPU makes it
    /// (each extra token 0.65 of a step) it settles on 2 drafts where 5 are expected to pay.
    static let historyAcceptanceCeiling = 0.99
    /// The acceptance an n-gram draft starts with, and drifts back to while it is not tried,
    /// by the length of the match it follows (index 1...3; 0 unused): a longer match is likelier
    /// to be continued the same way. Conservative, so that a text where drafts fail costs little
    /// before they are measured: with verification of two tokens costing 1.3-1.5 single steps
    /// on a 2-core CPU, an n-gram draft pays only above about 0.4.
    static let ngramPriors = [0, 0.3, 0.45, 0.55]
    /// The same for drafts from the history of earlier requests (`TokenHistory`), by the bucket
    /// of the match length (`historyBucket`: 2-3, 4-7, 8-15, 16-32 tokens). A match of a few
    /// tokens in other requests' text is weaker evidence than the same match in this request's
    /// own text (hence below `ngramPriors[3]` at first); a match of 16 or more tokens is a
    /// repeated request (a regenerated answer, a file sent again), which SuffixDecoding finds
    /// continued alike most of the time.
    static let historyPriors = [0.4, 0.55, 0.7, 0.8]
    /// The same for a fallback plan's drafts.
    static let planPrior = 0.5
    /// Share of the distance back to the prior that a declined source regains each round. A
    /// source the cost model declines is never measured again, so one bad stretch would rule it
    /// out for the rest of the text; drifting back towards the prior makes it try again after
    /// some 15-25 declined rounds, which costs a few percent at most when it still does not pay.
    static let regainRate = 0.02
    /// Extra cost of each token a verify pass adds, relative to one token, before two sizes
    /// have been measured: what 0.5B-1.5B models show here (0.3-0.45).
    static let defaultVerifySlope = 0.35
    /// Cost of one draft step of a plan, relative to a single-token verify pass, before one has
    /// been measured: a plan that skips about half the model.
    static let defaultDraftStepCost = 0.5
    /// How much faster (in expected tokens per unit of time) a longer draft must be than the
    /// best shorter one, or than plain decoding, to be chosen: measurement noise alone should not
    /// make the speculator draft.
    static let margin = 1.02
    /// The draft length the adaptive sources (every source but `auto`) start with, before any
    /// round has been verified: long enough to profit from a good draft at once, short enough
    /// that a bad one wastes little.
    static let initialDraftLength = 4

    // MARK: state

    /// Running seconds of a verify pass by its size (the pending token plus the drafts).
    private(set) var verifySeconds: [Int: Double] = [:]
    /// Running seconds of one draft step of a plan.
    private(set) var draftStepSeconds: Double?
    /// Running acceptance of n-gram drafts by the length of the match they follow.
    private(set) var ngramAcceptance = Self.ngramPriors
    /// Running acceptance of history drafts by the bucket of the match they follow.
    private(set) var historyAcceptance = Self.historyPriors
    /// Running acceptance of the fallback plan's drafts.
    private(set) var planAcceptance = Self.planPrior

    // MARK: recording

    mutating func recordVerify(size: Int, seconds: Double) {
        Self.record(&verifySeconds[size], seconds)
    }

    mutating func recordDraftStep(seconds: Double) {
        Self.record(&draftStepSeconds, seconds)
    }

    /// A verified n-gram round: `accepted` of `drafted` (at least one) drafts that followed a
    /// match of `matchLength` tokens.
    mutating func recordNGram(matchLength: Int, drafted: Int, accepted: Int) {
        Self.recordAcceptance(&ngramAcceptance[matchLength], drafted: drafted, accepted: accepted)
    }

    /// A verified history round: `accepted` of `drafted` (at least one) drafts that followed a
    /// match of `matchLength` tokens in earlier requests.
    mutating func recordHistory(matchLength: Int, drafted: Int, accepted: Int) {
        Self.recordAcceptance(&historyAcceptance[Self.historyBucket(matchLength)], drafted: drafted, accepted: accepted)
    }

    /// A verified round of the fallback plan: `accepted` of `drafted` (at least one) drafts.
    mutating func recordPlan(drafted: Int, accepted: Int) {
        Self.recordAcceptance(&planAcceptance, drafted: drafted, accepted: accepted)
    }

    // MARK: decisions

    /// How many of the `available` n-gram tokens (following a match of `matchLength`) to draft;
    /// 0 when decoding plainly is expected to be faster, which also lets the source regain hope.
    mutating func ngramDraftLength(matchLength: Int, available: Int) -> Int {
        let length = bestLength(acceptance: ngramAcceptance[matchLength], maximum: available, draftCost: 0)
        if length == 0 { Self.regainHope(&ngramAcceptance[matchLength], prior: Self.ngramPriors[matchLength]) }
        return length
    }

    /// How many of the `available` history tokens (following a match of `matchLength`) to draft;
    /// 0 as above.
    mutating func historyDraftLength(matchLength: Int, available: Int) -> Int {
        let bucket = Self.historyBucket(matchLength)
        let length = bestLength(acceptance: historyAcceptance[bucket], maximum: available, draftCost: 0,
                                ceiling: Self.historyAcceptanceCeiling, single: inferredSingleStepSeconds)
        if length == 0 { Self.regainHope(&historyAcceptance[bucket], prior: Self.historyPriors[bucket]) }
        return length
    }

    /// The index into `historyPriors` of a history match of `matchLength` (at least 2) tokens:
    /// powers of two, as the history indexes n-grams of those lengths.
    static func historyBucket(_ matchLength: Int) -> Int {
        min(historyPriors.count - 1, max(0, Int.bitWidth - matchLength.leadingZeroBitCount - 2))
    }

    /// How many tokens (at most `maximum`) the fallback plan should draft; 0 as above.
    mutating func planDraftLength(maximum: Int) -> Int {
        let cost = draftStepSeconds.map { $0 / stepSeconds(1) } ?? Self.defaultDraftStepCost
        let length = bestLength(acceptance: planAcceptance, maximum: maximum, draftCost: cost)
        if length == 0 { Self.regainHope(&planAcceptance, prior: Self.planPrior) }
        return length
    }

    /// The draft length that maximises expected tokens per unit of time:
    /// E(γ) = (1 − α^(γ+1)) / (1 − α) tokens for γ·c + v(γ+1) (in single-step units).
    /// 0 means decoding plainly is expected to be faster. `ceiling` caps the acceptance the
    /// formula sees; `single` is the seconds of a single-token pass (default `stepSeconds(1)`).
    func bestLength(
        acceptance: Double, maximum: Int, draftCost: Double, ceiling: Double = Self.acceptanceRange.upperBound,
        single: Double? = nil
    ) -> Int {
        let alpha = min(max(acceptance, Self.acceptanceRange.lowerBound), ceiling)
        let single = single ?? stepSeconds(1)
        var best = 0
        var bestRate = 1.0
        for length in stride(from: 1, through: maximum, by: 1) {
            let expected = (1 - pow(alpha, Double(length + 1))) / (1 - alpha)
            let cost = Double(length) * draftCost + stepSeconds(length + 1, single: single) / single
            if expected / cost > bestRate * Self.margin {
                best = length
                bestRate = expected / cost
            }
        }
        return best
    }

    /// Seconds of a verify pass of `size` tokens: measured, or extrapolated from one token
    /// (`single`, or the measured single-token pass, or 1 before any).
    func stepSeconds(_ size: Int, single: Double? = nil) -> Double {
        if let measured = verifySeconds[size] { return measured }
        let single = single ?? verifySeconds[1] ?? 1
        return single * (1 + verifySlope * Double(size - 1))
    }

    /// Seconds of a single-token verify pass: measured, or inferred from the smallest size
    /// measured and the default slope. History drafts need the inference: a repeated request
    /// drafts from its first round on, so no single-token pass is measured, and against the
    /// placeholder of 1 the one size measured looks far cheaper than the others and is chosen for
    /// good (2 drafts a round on Qwen2.5-Coder-1.5B, all accepted, where 8 pay).
    var inferredSingleStepSeconds: Double {
        if let single = verifySeconds[1] { return single }
        guard let smallest = verifySeconds.keys.min(), let seconds = verifySeconds[smallest] else { return 1 }
        return seconds / (1 + Self.defaultVerifySlope * Double(smallest - 1))
    }

    /// Extra cost of each token a verify pass adds, relative to one token: measured from the
    /// sizes seen so far, or `defaultVerifySlope` before any.
    var verifySlope: Double {
        guard let single = verifySeconds[1] else { return Self.defaultVerifySlope }
        let slopes = verifySeconds.compactMap { size, seconds in size > 1 ? (seconds / single - 1) / Double(size - 1) : nil }
        return slopes.isEmpty ? Self.defaultVerifySlope : max(0, slopes.reduce(0, +) / Double(slopes.count))
    }

    private static func regainHope(_ acceptance: inout Double, prior: Double) {
        acceptance += regainRate * (prior - acceptance)
    }

    private static func recordAcceptance(_ rate: inout Double, drafted: Int, accepted: Int) {
        rate = acceptanceEstimateWeight * rate + acceptanceMeasurementWeight * Double(accepted) / Double(drafted)
    }

    private static func record(_ estimate: inout Double?, _ value: Double) {
        estimate = estimate.map { timeEstimateWeight * $0 + timeMeasurementWeight * value } ?? value
    }
}
