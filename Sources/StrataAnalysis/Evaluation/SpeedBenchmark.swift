import StrataEngine
import StrataTokenizer

#if canImport(Glibc)
import Glibc
#endif

/// Settings of a speed benchmark, named as llama-bench names its tests.
public struct SpeedBenchmarkOptions: Sendable {
    /// Prompt length of the prompt-processing test (pp).
    public var promptTokens = 512
    /// Tokens decoded one at a time in the generation test (tg).
    public var generatedTokens = 128
    /// Batch sizes whose cost, relative to one token, is measured.
    public var batchSizes = [1, 2, 4, 8, 16]
    /// Tokens already in the cache when a batch is measured (as when verifying draft tokens).
    public var batchContext = 128
    /// Timed runs of each test, after one untimed warm-up.
    public var repetitions = 5
    /// The plan to time (default: the full model).
    public var plan: LayerPlan?

    public init() {}
}

/// A median with the spread of the runs around it.
public struct Measurement: Sendable, Codable, Equatable {
    public var median: Double
    public var minimum: Double
    public var maximum: Double
    public var standardDeviation: Double
    public var samples: [Double]

    public init(samples: [Double]) {
        self.samples = samples
        let sorted = samples.sorted()
        median = sorted.isEmpty ? 0 : sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        minimum = sorted.first ?? 0
        maximum = sorted.last ?? 0
        let mean = samples.reduce(0, +) / Double(max(1, samples.count))
        standardDeviation = (samples.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, samples.count))).squareRoot()
    }

    enum CodingKeys: String, CodingKey {
        case median, minimum, maximum, samples
        case standardDeviation = "standard_deviation"
    }
}

/// What `runSpeedBenchmark` measured.
public struct SpeedReport: Sendable, Codable {
    /// Prompt processing, tokens per second.
    public var prompt: Measurement
    /// Generation one token at a time, tokens per second.
    public var generation: Measurement
    /// Median seconds of one forward pass of n tokens, by n.
    public var batchSeconds: [Int: Double]
    /// `batchSeconds[n] / batchSeconds[1]`.
    public var batchCost: [Int: Double]
    public var peakResidentBytes: Int
    public var kvCacheBytes: Int
}

/// Measures prompt processing, generation and the cost of small batches on `transformer`.
/// Token ids are fixed (cycling through a range of ordinary ids) so runs are comparable.
public func runSpeedBenchmark(
    transformer: inout Transformer, options: SpeedBenchmarkOptions,
    progress: ((String) -> Void)? = nil
) throws -> SpeedReport {
    let config = transformer.config
    let plan = options.plan ?? .full(layerCount: config.layerCount)
    let largestBatch = options.batchSizes.max() ?? 1
    let capacity = max(options.promptTokens, options.generatedTokens, options.batchContext + largestBatch)
    var cache = transformer.makeCache(capacity: capacity)
    // Ordinary tokens spread over the vocabulary, past the byte and special tokens most
    // vocabularies start with (ids 1,000 and up; the last three quarters of a small one).
    let first = min(1000, config.vocabularySize / 4)
    let span = min(20_000, config.vocabularySize - first)
    func tokens(_ count: Int, offset: Int = 0) -> [TokenID] {
        (0..<count).map { TokenID(first + (($0 + offset) * 7919) % span) }
    }
    let clock = ContinuousClock()
    func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = clock.now
        try body()
        let elapsed = clock.now - start
        return elapsed.seconds
    }

    let promptTokens = tokens(options.promptTokens)
    var promptRates: [Double] = []
    for run in 0...options.repetitions {
        cache.truncate(to: 0)
        let elapsed = try seconds {
            _ = try transformer.forward(tokens: promptTokens, startPosition: 0, plan: plan, cache: &cache)
        }
        if run > 0 { promptRates.append(Double(options.promptTokens) / elapsed) }
        progress?("pp\(options.promptTokens) run \(run)/\(options.repetitions)")
    }

    let generated = tokens(options.generatedTokens, offset: 17)
    var generationRates: [Double] = []
    for run in 0...options.repetitions {
        cache.truncate(to: 0)
        let elapsed = try seconds {
            for (position, token) in generated.enumerated() {
                _ = try transformer.forward(tokens: [token], startPosition: position, plan: plan, cache: &cache)
            }
        }
        if run > 0 { generationRates.append(Double(options.generatedTokens) / elapsed) }
        progress?("tg\(options.generatedTokens) run \(run)/\(options.repetitions)")
    }

    var batchSeconds: [Int: Double] = [:]
    cache.truncate(to: 0)
    _ = try transformer.forward(tokens: tokens(options.batchContext), startPosition: 0, plan: plan, cache: &cache, logits: .none)
    for size in options.batchSizes {
        let batch = tokens(size, offset: 31)
        var samples: [Double] = []
        // Small batches take milliseconds: time several per sample to rise above clock noise.
        let inner = max(1, 32 / size)
        for run in 0...options.repetitions {
            let elapsed = try verifyPassSeconds(transformer: &transformer, cache: &cache, batch: batch,
                                                position: options.batchContext, plan: plan, passes: inner)
            if run > 0 { samples.append(elapsed) }
        }
        batchSeconds[size] = Measurement(samples: samples).median
        progress?("batch of \(size)")
    }
    let single = batchSeconds[1] ?? batchSeconds[options.batchSizes.min() ?? 1] ?? 1
    return SpeedReport(
        prompt: Measurement(samples: promptRates), generation: Measurement(samples: generationRates),
        batchSeconds: batchSeconds, batchCost: batchSeconds.mapValues { $0 / single },
        peakResidentBytes: peakResidentBytes(), kvCacheBytes: cache.byteCount)
}

/// Mean seconds of one forward pass of `batch` at `position` with logits for every row (the
/// shape of a speculative verification), over `passes` passes, the cache cut back to `position`
/// before each.
func verifyPassSeconds(
    transformer: inout Transformer, cache: inout KVCache, batch: [TokenID], position: Int, plan: LayerPlan, passes: Int
) throws -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<passes {
        cache.truncate(to: position)
        _ = try transformer.forward(tokens: batch, startPosition: position, plan: plan, cache: &cache, logits: .all)
    }
    return (clock.now - start).seconds / Double(passes)
}

/// The process's peak resident set size so far, in bytes.
public func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    // Linux reports kilobytes.
    return Int(usage.ru_maxrss) * 1024
}
