import Foundation
import StrataEngine
import StrataKernels
import StrataTestSupport
import Testing

/// Per-token depth rules (dynamic exit with state propagation, FFN skipping): at their extreme
/// thresholds they equal the static plans they reduce to, the keys and values an exited token
/// leaves are its exit state's, and a batched pass gives every row what token-by-token
/// decoding gives it.
@Suite("Per-token depth")
struct DepthPolicyTests {
    static let tokens: [TokenID] = [5, 17, 42, 99, 7, 3, 64, 12, 250, 31, 8, 77, 140, 9, 56, 23]
    static let models: [TestModel] = [.tiny(.llama), .tiny(.qwen2)]

    static func logits(_ transformer: inout Transformer, plan: LayerPlan) throws -> [Float] {
        var cache = transformer.makeCache(capacity: 64)
        return try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all).values
    }

    /// The same tokens one pass per token, every row's logits.
    static func decodedLogits(_ transformer: inout Transformer, plan: LayerPlan) throws -> [Float] {
        var cache = transformer.makeCache(capacity: 64)
        var values: [Float] = []
        for (position, token) in tokens.enumerated() {
            values += try transformer.forward(tokens: [token], startPosition: position, plan: plan, cache: &cache).values
        }
        return values
    }

    /// A near-identity map of `width` features, seeded.
    static func map(width: Int, seed: UInt64) -> LinearMap {
        var generator = SeededGenerator(seed: seed)
        var values = [Float](repeating: 0, count: width * width)
        for i in 0..<width { values[i * width + i] = 1 }
        for index in values.indices { values[index] += Float.random(in: -0.03...0.03, using: &generator) }
        return LinearMap(name: "exit.\(seed)", site: .stream, map: values, width: width)
    }

    static func exitPlan(_ transformer: Transformer, threshold: Float, depths: [Int], vocabulary: Int = 64) throws -> LayerPlan {
        let config = transformer.config
        var maps: [Int: LinearMap] = [:]
        for depth in depths { maps[depth] = map(width: config.hiddenSize, seed: UInt64(depth)) }
        let head = try transformer.outputHead(tokens: (0..<vocabulary).map { TokenID($0) })
        var plan = LayerPlan.full(layerCount: config.layerCount)
        plan.depth = .dynamicExit(DynamicExit(threshold: threshold, maps: maps, head: head))
        return plan
    }

    static func skipPlan(_ config: ModelConfig, threshold: Float, layers: Range<Int>) -> LayerPlan {
        var plan = LayerPlan.full(layerCount: config.layerCount)
        plan.depth = .feedForwardSkip(FeedForwardSkip(threshold: threshold, layers: layers))
        return plan
    }

    @Test("a threshold never reached runs the full model, bitwise", arguments: models, [Numerics.exact, .fast])
    func unreachedThresholdsChangeNothing(model: TestModel, numerics: Numerics) throws {
        var transformer = try model.transformer(numerics: numerics)
        let config = transformer.config
        let full = try Self.logits(&transformer, plan: .full(layerCount: config.layerCount))
        transformer.depthUsage = DepthUsage()
        let exit = try Self.exitPlan(transformer, threshold: 2, depths: [1, 2])
        let exited = try Self.logits(&transformer, plan: exit)
        #expect(firstBitwiseDifference(full, exited) == nil)
        #expect(transformer.depthUsage.exits == 0)
        #expect(transformer.depthUsage.exitChecks == 2 * Self.tokens.count)
        #expect(transformer.depthUsage.computeFraction(config: config) == 1)

        transformer.depthUsage = DepthUsage()
        let skip = Self.skipPlan(config, threshold: 2, layers: 1..<3)
        let skipped = try Self.logits(&transformer, plan: skip)
        #expect(firstBitwiseDifference(full, skipped) == nil)
        #expect(transformer.depthUsage.feedForwardRuns == config.layerCount * Self.tokens.count)
    }

    @Test("FFN skip that always saturates equals the static plan without the later FFNs", arguments: models, [Numerics.exact, .fast])
    func saturatedSkipIsTheStaticPlan(model: TestModel, numerics: Numerics) throws {
        var transformer = try model.transformer(numerics: numerics)
        let config = transformer.config
        let full = LayerPlan.full(layerCount: config.layerCount)
        // the first skippable FFN runs (and measures), every later one in the range is skipped
        let expected = try Self.logits(&transformer, plan: try full.skipping(ffn: [2]))
        transformer.depthUsage = DepthUsage()
        let skipped = try Self.logits(&transformer, plan: Self.skipPlan(config, threshold: -2, layers: 1..<3))
        #expect(firstBitwiseDifference(expected, skipped) == nil)
        #expect(transformer.depthUsage.feedForwardRuns == (config.layerCount - 1) * Self.tokens.count)
        let fraction = transformer.depthUsage.computeFraction(config: config)
        let staticFraction = try full.skipping(ffn: [2]).computeFraction(config: config)
        #expect(abs(fraction - staticFraction) < 1e-12)
    }

    @Test("every token exiting at one depth equals the truncated plan with the exit's map", arguments: models, [Numerics.exact, .fast])
    func exitAtOneDepthIsTheTruncatedPlan(model: TestModel, numerics: Numerics) throws {
        var transformer = try model.transformer(numerics: numerics)
        let config = transformer.config
        let plan = try Self.exitPlan(transformer, threshold: 0, depths: [2])
        guard case .dynamicExit(let exit) = plan.depth, let map = exit.maps[2] else { Issue.record("no exit"); return }
        let truncated = LayerPlan(layerCount: config.layerCount,
                                  steps: [LayerStep(layer: 0), LayerStep(layer: 1, map: map)], method: "test")
        let expected = try Self.logits(&transformer, plan: truncated)
        transformer.depthUsage = DepthUsage()
        let exited = try Self.logits(&transformer, plan: plan)
        #expect(firstBitwiseDifference(expected, exited) == nil)
        let usage = transformer.depthUsage
        #expect(usage.exits == Self.tokens.count)
        #expect(usage.attentionRuns == 2 * Self.tokens.count && usage.feedForwardRuns == 2 * Self.tokens.count)
        #expect(usage.keyValueFills == (config.layerCount - 2) * Self.tokens.count)
    }

    @Test("an exited token's keys and values in later layers are its exit state's (state propagation)")
    func exitedTokensFillLaterLayersFromTheirExitState() throws {
        var transformer = try PreparedModels.transformer(.qwen2, numerics: .exact)
        let config = transformer.config
        let full = LayerPlan.full(layerCount: config.layerCount)
        let plan = try Self.exitPlan(transformer, threshold: 0, depths: [1])
        var exited = transformer.makeCache(capacity: 64)
        _ = try transformer.forward(tokens: Self.tokens, startPosition: 0, plan: plan, cache: &exited, logits: .none)

        let recorder = StepOutputRecorder(step: 0)
        var observed = transformer.makeCache(capacity: 64)
        _ = try transformer.forward(tokens: Self.tokens, startPosition: 0, plan: full, cache: &observed, observer: recorder,
                                    logits: .none)
        let count = Self.tokens.count * exited.rowWidth
        for layer in 1..<config.layerCount {
            // the exit state entering `layer` alone: that step writes its keys and values
            var byHand = transformer.makeCache(capacity: 64)
            _ = try transformer.forward(hidden: recorder.hidden, firstStep: layer, startPosition: 0,
                                        plan: LayerPlan(layerCount: config.layerCount,
                                                        steps: (0...layer).map { LayerStep(layer: $0) }),
                                        cache: &byHand, logits: .none)
            #expect(firstBitwiseDifference(Array(exited.keys[layer].prefix(count)), Array(byHand.keys[layer].prefix(count))) == nil,
                    "keys of layer \(layer)")
            #expect(firstBitwiseDifference(Array(exited.values[layer].prefix(count)), Array(byHand.values[layer].prefix(count))) == nil,
                    "values of layer \(layer)")
        }
        // the full model's entries differ there: the fill is not the full pass's
        #expect(firstBitwiseDifference(Array(exited.keys[2].prefix(count)), Array(observed.keys[2].prefix(count))) != nil)
    }

    @Test("a batched pass gives every row what decoding token by token gives it", arguments: models, [Numerics.exact, .fast])
    func batchedEqualsDecoded(model: TestModel, numerics: Numerics) throws {
        var transformer = try model.transformer(numerics: numerics)
        let config = transformer.config
        let prepared = transformer
        // thresholds that let some tokens exit (or saturate) and not others
        let exit = try Self.mixedThreshold(&transformer, candidates: [0.5, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.02]) {
            try Self.exitPlan(prepared, threshold: $0, depths: [1, 2])
        } partly: { usage in usage.exits > 0 && usage.exits < Self.tokens.count }
        let skip = try Self.mixedThreshold(&transformer, candidates: [0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99]) {
            Self.skipPlan(config, threshold: $0, layers: 0..<config.layerCount)
        } partly: { usage in
            let skipped = config.layerCount * Self.tokens.count - usage.feedForwardRuns
            return skipped > 0 && usage.feedForwardRuns > Self.tokens.count
        }
        for plan in [exit, skip] {
            let batched = try Self.logits(&transformer, plan: plan)
            let decoded = try Self.decodedLogits(&transformer, plan: plan)
            #expect(firstBitwiseDifference(batched, decoded) == nil, "\(String(describing: plan.depth))")
            let full = try Self.logits(&transformer, plan: .full(layerCount: config.layerCount))
            #expect(firstBitwiseDifference(batched, full) != nil, "the rule must change some row")
        }
    }

    /// The first plan of `candidates` whose usage `partly` accepts.
    static func mixedThreshold(
        _ transformer: inout Transformer, candidates: [Float], plan: (Float) throws -> LayerPlan,
        partly: (DepthUsage) -> Bool
    ) throws -> LayerPlan {
        for threshold in candidates {
            let candidate = try plan(threshold)
            transformer.depthUsage = DepthUsage()
            _ = try Self.logits(&transformer, plan: candidate)
            if partly(transformer.depthUsage) { return candidate }
        }
        Issue.record("no threshold of \(candidates) splits the tokens")
        return try plan(candidates[0])
    }

    @Test("a dynamic exit is refused on plans with maps, and for exits outside the plan")
    func invalidExitsAreRefused() throws {
        var transformer = try PreparedModels.transformer(.llama, numerics: .fast)
        let config = transformer.config
        var cache = transformer.makeCache(capacity: 64)
        let outside = try Self.exitPlan(transformer, threshold: 0.5, depths: [config.layerCount])
        #expect(throws: ForwardError.self) {
            try transformer.forward(tokens: Self.tokens, startPosition: 0, plan: outside, cache: &cache)
        }
        var withMap = try Self.exitPlan(transformer, threshold: 0.5, depths: [1])
        withMap.steps[0].map = LinearMap.identity(name: "heal", site: .stream, width: config.hiddenSize)
        #expect(throws: ForwardError.self) {
            try transformer.forward(tokens: Self.tokens, startPosition: 0, plan: withMap, cache: &cache)
        }
        let unreached = try Self.exitPlan(transformer, threshold: 2, depths: [1])
        #expect(!unreached.isFull, "a plan with a rule is not the full model, whatever its steps")
        // a rule decides from the first step: a pass seeded midway is refused
        var seeded = transformer.makeCache(capacity: 64)
        let hidden = [Float](repeating: 0.1, count: 2 * config.hiddenSize)
        #expect(throws: ForwardError.self) {
            try transformer.forward(hidden: hidden, firstStep: 1, startPosition: 0, plan: unreached, cache: &seeded)
        }
        // the exit head takes no map of its own
        guard case .dynamicExit(var exit) = unreached.depth else { return }
        exit.head = try transformer.outputHead(tokens: [1, 2, 3], map: LinearMap.identity(name: "m", site: .stream,
                                                                                         width: config.hiddenSize))
        var mapped = unreached
        mapped.depth = .dynamicExit(exit)
        #expect(throws: ForwardError.self) {
            try transformer.forward(tokens: Self.tokens, startPosition: 0, plan: mapped, cache: &cache)
        }
    }

    @Test("segments of one batch, and prompts longer than a slice, get what they get alone", arguments: [Numerics.exact, .fast])
    func batchesAndSlicesKeepEveryRowsRule(numerics: Numerics) throws {
        var transformer = try PreparedModels.transformer(.qwen2, numerics: numerics)
        let config = transformer.config
        let exit = try Self.exitPlan(transformer, threshold: 0.05, depths: [1, 2])
        let skip = Self.skipPlan(config, threshold: 0.9, layers: 0..<config.layerCount)
        let long = (0..<150).map { TokenID(($0 * 37 + 11) % 250) }
        for plan in [exit, skip] {
            // two segments in one pass against each alone
            let first = Array(Self.tokens.prefix(9)), second = Array(Self.tokens.suffix(7))
            var caches = [transformer.makeCache(capacity: 64), transformer.makeCache(capacity: 64)]
            let together = try transformer.forward(batch: [BatchSegment(tokens: first, startPosition: 0, logits: .all),
                                                           BatchSegment(tokens: second, startPosition: 0, logits: .all)],
                                                   plan: plan, caches: &caches)
            for (segment, tokens) in [first, second].enumerated() {
                var cache = transformer.makeCache(capacity: 64)
                let alone = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
                #expect(firstBitwiseDifference(together[segment].values, alone.values) == nil, "segment \(segment)")
            }
            // a prompt past one slice (128 tokens) against token-by-token decoding
            var sliced = transformer.makeCache(capacity: 256)
            let whole = try transformer.forward(tokens: long, startPosition: 0, plan: plan, cache: &sliced, logits: .all)
            var decoded = transformer.makeCache(capacity: 256)
            var rows: [Float] = []
            for (position, token) in long.enumerated() {
                rows += try transformer.forward(tokens: [token], startPosition: position, plan: plan, cache: &decoded).values
            }
            #expect(firstBitwiseDifference(whole.values, rows) == nil, "\(String(describing: plan.depth))")
        }
    }
}
