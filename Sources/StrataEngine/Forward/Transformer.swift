import StrataKernels
import StrataTokenizer

/// Why a forward pass was refused.
public enum ForwardError: Error, CustomStringConvertible, Sendable, Equatable {
    case contextFull(needed: Int, capacity: Int)
    case tokenOutOfRange(token: TokenID, vocabularySize: Int)
    case invalidPlan(String)
    case invalidStart(startPosition: Int, cached: Int)
    case invalidHidden(String)
    case positionsDropped(startPosition: Int, earliest: Int)

    public var description: String {
        switch self {
        case .contextFull(let needed, let capacity):
            "the sequence needs \(needed) positions but the KV cache holds \(capacity); use a larger context"
        case .tokenOutOfRange(let token, let size):
            "token id \(token) is outside the vocabulary (0..<\(size))"
        case .invalidPlan(let reason):
            "invalid layer plan: \(reason)"
        case .invalidStart(let start, let cached):
            "cannot start at position \(start): the cache holds \(cached) positions"
        case .invalidHidden(let reason):
            "invalid hidden-state input: \(reason)"
        case .positionsDropped(let start, let earliest):
            "cannot start at position \(start): the sliding-window layers no longer hold the positions its window "
                + "reaches (start at \(earliest) or later, or at 0 on an emptied cache)"
        }
    }
}

/// How matrix products are computed.
public enum Numerics: String, Sendable, Codable, CaseIterable {
    /// Weights dequantized to float32, activations in float32: matches transformers on the
    /// dequantized GGUF weights (to ~1e-5 in the logits). Used by the reference tests.
    case exact
    /// Activations quantized to 16-bit blocks once per matrix input and multiplied with integer
    /// dot products: several times faster than exact, within the quality bounds the tests
    /// check (perplexity within 1%, top-1 agreement except at near-ties) on every model tried.
    case fast
    /// Activations quantized to 8-bit blocks, as llama.cpp does: half the per-token integer
    /// arithmetic of `fast`, so batches (prefill, speculative verification) cost about half as
    /// much, at 256 times the rounding error. Within the quality bounds on Qwen2.5-Coder 0.5B
    /// and 1.5B; not on SmolLM2-135M, whose activation outliers flip next-token choices.
    case fast8

    /// Whether activations are quantized, and how finely.
    public var activationPrecision: ActivationPrecision? {
        switch self {
        case .exact: nil
        case .fast: .sixteenBit
        case .fast8: .eightBit
        }
    }

    /// What front ends use unless told otherwise: 8-bit activations for models with a hidden
    /// size of at least `eightBitMinimumHiddenSize`, 16-bit below. The line is measured, not
    /// derived: 8-bit activations keep the quality bounds on Qwen2.5-Coder-1.5B (hidden size
    /// 1,536) and break them on SmolLM2-135M (576), where per-block rounding of its large
    /// activation outliers flips next-token choices, and on Qwen2.5-Coder-0.5B (896), which
    /// held them by a hair until a last-bit change in attention moved one flip to a top-2
    /// margin of 0.30 (FastPathQualityTests, FastPathQualityMeasurement).
    public static func recommended(for config: ModelConfig) -> Numerics {
        config.hiddenSize >= eightBitMinimumHiddenSize ? .fast8 : .fast
    }

    /// The smallest hidden size that gets 8-bit activations by default.
    public static let eightBitMinimumHiddenSize = 1_536
}

/// Runs a model: ONE forward pass, parameterised by a `LayerPlan`, over a `KVCache`.
public struct Transformer: Sendable {
    public let model: LanguageModel
    public let pool: WorkerPool
    public let numerics: Numerics
    /// What the forward pass reads: `model.weights`, with the matrices the fast paths' kernels
    /// read faster repacked (`ModelWeights.prepared(for:pool:)`).
    let weights: ModelWeights
    var scratch = Scratch()
    /// Per-row state of a pass under a plan's `DepthPolicy`.
    var depthRun = DepthRun()
    /// What the plans' per-token depth rules ran, summed over passes since it was last reset
    /// (passes of plans without a rule add nothing).
    public var depthUsage = DepthUsage()
    /// The KV-cache slot of each step of `slotPlan`, kept so a decoding step does not rebuild it.
    private var slots: [Int] = []
    private var slotPlan: LayerPlan?
    /// Reused by single-sequence passes to hold their cache while the batched core runs.
    private var cacheHolder: [KVCache] = []
    private let inverseFrequencies: [Float]
    /// RoPE's frequencies in sliding-window layers, when the model has them.
    private let slidingInverseFrequencies: [Float]?
    /// Each layer's attention window (nil: the whole context).
    private let layerWindows: [Int?]
    // What the architecture says, asked once here rather than per pass.
    private let rotaryStyle: RotaryStyle
    private let attentionScale: Float
    private let embeddingScale: Float?
    private let activation: GatedActivation

    public var config: ModelConfig { model.config }

    /// `numerics` defaults to `Numerics.recommended(for:)` the model.
    public init(model: LanguageModel, pool: WorkerPool = WorkerPool(), numerics: Numerics? = nil) {
        self.model = model
        self.pool = pool
        let numerics = numerics ?? .recommended(for: model.config)
        self.numerics = numerics
        weights = numerics.activationPrecision.map { model.weights.prepared(for: $0, pool: pool) } ?? model.weights
        let architecture = model.architecture
        inverseFrequencies = architecture.rotaryInverseFrequencies(config: model.config)
        slidingInverseFrequencies = model.config.slidingWindowRopeBase.map {
            RotaryEmbedding.inverseFrequencies(dimensions: model.config.rotaryDimensions, base: $0)
        }
        layerWindows = (0..<model.config.layerCount).map { model.config.attentionWindow(layer: $0) }
        rotaryStyle = architecture.rotaryStyle
        attentionScale = architecture.attentionScale(config: model.config)
        embeddingScale = architecture.embeddingScale(config: model.config)
        activation = architecture.activation
    }

    /// A cache sized for this model (`capacity` positions, default the model's context length).
    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(config: config, capacity: capacity)
    }

    /// Processes `tokens` at positions `startPosition...`, writing their keys and values into
    /// `cache`, and returns next-token logits for the selected rows.
    ///
    /// `startPosition` may be below `cache.count` (re-processing positions overwrites them).
    ///
    /// `head`, when given, replaces the model's output head (`outputHead(tokens:map:)`): the
    /// logits then have one column per token of its vocabulary.
    public mutating func forward(
        tokens: [TokenID], startPosition: Int, plan: LayerPlan, cache: inout KVCache,
        observer: (any HiddenStateObserver)? = nil, logits selection: LogitsSelection = .last, head: OutputHead? = nil
    ) throws(ForwardError) -> Logits {
        let count = tokens.count
        let width = head?.tokens.count ?? config.vocabularySize
        guard count > 0 else { return Logits(values: [], rows: 0, vocabularySize: width) }
        try check(count: count, startPosition: startPosition, plan: plan, cache: cache)
        try checkVocabulary(tokens)
        if observer == nil && count > Self.promptSlice {
            return try forwardInSlices(tokens: tokens, startPosition: startPosition, plan: plan, cache: &cache, selection: selection,
                                       head: head)
        }
        scratch.reserve(tokens: count, config: config, precision: numerics.activationPrecision ?? .sixteenBit)
        embed(tokens, firstRow: 0)
        scaleEmbeddings(rows: count)
        return runAlone(count: count, startPosition: startPosition, plan: plan, firstStep: 0, cache: &cache,
                        observer: observer, selection: selection, head: head)
    }

    /// Runs several independent sequences in ONE pass: segment `i` processes its tokens at its
    /// positions over `caches[i]`. The matrix products take every segment's rows at once; the
    /// rotary positions, cache writes and attention are per segment. The kernels are batch
    /// invariant, so each segment's logits are bitwise what `forward(tokens:...)` gives it alone.
    /// Returns one `Logits` per segment, with the rows its selection asks for.
    ///
    /// Segments are not sliced: the caller bounds the total tokens (a server's step budget).
    public mutating func forward(
        batch segments: [BatchSegment], plan: LayerPlan, caches: inout [KVCache]
    ) throws(ForwardError) -> [Logits] {
        precondition(caches.count == segments.count, "one cache per segment")
        var rows: [SegmentRows] = []
        rows.reserveCapacity(segments.count)
        var total = 0
        for (index, segment) in segments.enumerated() {
            try check(count: segment.tokens.count, startPosition: segment.startPosition, plan: plan, cache: caches[index])
            try checkVocabulary(segment.tokens)
            rows.append(SegmentRows(firstRow: total, count: segment.tokens.count, startPosition: segment.startPosition,
                                    selection: segment.logits))
            total += segment.tokens.count
        }
        guard total > 0 else {
            return segments.map { _ in Logits(values: [], rows: 0, vocabularySize: config.vocabularySize) }
        }
        scratch.reserve(tokens: total, config: config, precision: numerics.activationPrecision ?? .sixteenBit)
        for (segment, rows) in zip(segments, rows) { embed(segment.tokens, firstRow: rows.firstRow) }
        scaleEmbeddings(rows: total)
        return run(segments: rows, plan: plan, firstStep: 0, caches: &caches, observer: nil)
    }

    private func checkVocabulary(_ tokens: [TokenID]) throws(ForwardError) {
        for token in tokens where token < 0 || Int(token) >= config.vocabularySize {
            throw .tokenOutOfRange(token: token, vocabularySize: config.vocabularySize)
        }
    }

    /// Puts the embedding rows of `tokens` into the residual stream from row `firstRow` on.
    private mutating func embed(_ tokens: [TokenID], firstRow: Int) {
        let hiddenSize = config.hiddenSize
        for (offset, token) in tokens.enumerated() {
            weights.tokenEmbedding.copyRow(Int(token), into: &scratch.hidden, at: (firstRow + offset) * hiddenSize)
        }
    }

    private mutating func scaleEmbeddings(rows: Int) {
        guard let embeddingScale else { return }
        for index in 0..<(rows * config.hiddenSize) { scratch.hidden[index] *= embeddingScale }
    }

    /// Longest run of tokens one pass processes when nobody observes hidden states: a longer
    /// prompt goes through in slices of this many, so the activation buffers stay the size of
    /// one slice (for a 512-token prompt of Qwen2.5-Coder-1.5B, 15 MB instead of 60). The
    /// matrix kernels already stream weights in passes of at most ~136 tokens, so slicing costs
    /// no speed, and their batch invariance keeps every logit bitwise the same.
    static let promptSlice = 128

    private mutating func forwardInSlices(
        tokens: [TokenID], startPosition: Int, plan: LayerPlan, cache: inout KVCache, selection: LogitsSelection,
        head: OutputHead?
    ) throws(ForwardError) -> Logits {
        let width = head?.tokens.count ?? config.vocabularySize
        var logits = Logits(values: [], rows: 0, vocabularySize: width)
        // all rows' logits are kept: one allocation, not one regrowth per slice
        if case .all = selection { logits.values.reserveCapacity(tokens.count * width) }
        for start in stride(from: 0, to: tokens.count, by: Self.promptSlice) {
            let end = min(start + Self.promptSlice, tokens.count)
            let sliceSelection: LogitsSelection = switch selection {
            case .all: .all
            case .last: end == tokens.count ? .last : .none
            case .none: .none
            }
            let slice = try forward(tokens: Array(tokens[start..<end]), startPosition: startPosition + start, plan: plan,
                                    cache: &cache, logits: sliceSelection, head: head)
            logits.values += slice.values
            logits.rows += slice.rows
        }
        return logits
    }

    /// Continues a forward pass from the middle: `hidden` (`[tokens × hidden]`) is the residual
    /// stream entering step `firstStep` of `plan` for positions `startPosition...`; the steps from
    /// `firstStep` on run exactly as in `forward(tokens:...)`, so given the hidden state that
    /// pass had there, the logits are bitwise the same. `firstStep == plan.steps.count` runs no
    /// layer: only the final norm and the output matrix (a logit lens).
    ///
    /// Why: every plan that differs from another only from step k on shares its first k steps,
    /// so analysis (layer ablation, greedy sublayer removal) computes them once and seeds here.
    /// Steps before `firstStep` write no cache entries for these positions.
    public mutating func forward(
        hidden: [Float], firstStep: Int, startPosition: Int, plan: LayerPlan, cache: inout KVCache,
        observer: (any HiddenStateObserver)? = nil, logits selection: LogitsSelection = .last
    ) throws(ForwardError) -> Logits {
        let hiddenSize = config.hiddenSize
        guard hidden.count % hiddenSize == 0 else {
            throw .invalidHidden("\(hidden.count) values are not whole rows of \(hiddenSize)")
        }
        let count = hidden.count / hiddenSize
        guard count > 0 else { return Logits(values: [], rows: 0, vocabularySize: config.vocabularySize) }
        guard (0...plan.steps.count).contains(firstStep) else {
            throw .invalidHidden("first step \(firstStep) is outside 0...\(plan.steps.count)")
        }
        guard plan.depth == nil || firstStep == 0 else {
            throw .invalidHidden("a plan with a per-token depth rule runs from its first step, not from step \(firstStep)")
        }
        try check(count: count, startPosition: startPosition, plan: plan, cache: cache)
        scratch.reserve(tokens: count, config: config, precision: numerics.activationPrecision ?? .sixteenBit)
        FloatKernels.copy(hidden, count: hidden.count, into: &scratch.hidden, at: 0)
        return runAlone(count: count, startPosition: startPosition, plan: plan, firstStep: firstStep, cache: &cache,
                        observer: observer, selection: selection)
    }

    private func check(count: Int, startPosition: Int, plan: LayerPlan, cache: KVCache) throws(ForwardError) {
        guard startPosition >= 0, startPosition <= cache.count else {
            throw .invalidStart(startPosition: startPosition, cached: cache.count)
        }
        if cache.windowStart > 0 && (startPosition == 0 ? cache.count > count : startPosition < cache.earliestRestart) {
            throw .positionsDropped(startPosition: startPosition, earliest: cache.earliestRestart)
        }
        guard startPosition + count <= cache.capacity else {
            throw .contextFull(needed: startPosition + count, capacity: cache.capacity)
        }
        do throws(PlanError) {
            try plan.validate(layerCount: config.layerCount)
            for map in plan.linearMaps { try map.checkWidth(config.hiddenSize) }
        } catch {
            throw .invalidPlan(error.description)
        }
        if case .dynamicExit(let exit) = plan.depth { try check(exit, plan: plan) }
    }

    private func check(_ exit: DynamicExit, plan: LayerPlan) throws(ForwardError) {
        guard plan.linearMaps.isEmpty else {
            throw .invalidPlan("a dynamic exit runs on plans without linear maps (its exits carry their own)")
        }
        guard exit.head.map == nil else {
            throw .invalidPlan("the exit head must have no map of its own: each exit applies its depth's map")
        }
        guard exit.head.rows.columns == config.hiddenSize else {
            throw .invalidPlan("the exit head reads \(exit.head.rows.columns) features; this model has \(config.hiddenSize)")
        }
        for (depth, map) in exit.maps {
            guard (1..<plan.steps.count).contains(depth) else {
                throw .invalidPlan("an exit after \(depth) steps is outside 1..<\(plan.steps.count)")
            }
            do throws(PlanError) { try map.checkWidth(config.hiddenSize) } catch { throw .invalidPlan(error.description) }
        }
    }

    /// One sequence: a batch of one segment. Its cache is swapped into the holder array and
    /// back, so no key or value storage is copied.
    private mutating func runAlone(
        count: Int, startPosition: Int, plan: LayerPlan, firstStep: Int, cache: inout KVCache,
        observer: (any HiddenStateObserver)?, selection: LogitsSelection, head: OutputHead? = nil
    ) -> Logits {
        var caches = cacheHolder
        cacheHolder = []
        if caches.isEmpty { caches.append(KVCache.placeholder) }
        swap(&caches[0], &cache)
        let segment = SegmentRows(firstRow: 0, count: count, startPosition: startPosition, selection: selection)
        let logits = run(segments: [segment], plan: plan, firstStep: firstStep, caches: &caches, observer: observer, head: head)
        swap(&caches[0], &cache)
        cacheHolder = caches
        return logits[0]
    }

    /// The layers and the output head, on `scratch.hidden` already holding the stream that
    /// enters step `firstStep` for every segment's rows.
    private mutating func run(
        segments: [SegmentRows], plan: LayerPlan, firstStep: Int, caches: inout [KVCache],
        observer: (any HiddenStateObserver)?, head: OutputHead? = nil
    ) -> [Logits] {
        let hiddenSize = config.hiddenSize
        let weights = weights
        let count = segments.reduce(0) { $0 + $1.count }
        for segment in segments {
            RotaryEmbedding.table(
                positions: segment.startPosition..<(segment.startPosition + segment.count),
                inverseFrequencies: inverseFrequencies, cosines: &scratch.cosines, sines: &scratch.sines,
                firstRow: segment.firstRow)
            if let slidingInverseFrequencies {
                RotaryEmbedding.table(
                    positions: segment.startPosition..<(segment.startPosition + segment.count),
                    inverseFrequencies: slidingInverseFrequencies, cosines: &scratch.slidingCosines,
                    sines: &scratch.slidingSines, firstRow: segment.firstRow)
            }
        }

        if plan != slotPlan {
            slots = plan.cacheSlots
            slotPlan = plan
        }
        let slotCount = (slots.max() ?? 0) + 1
        for index in caches.indices { caches[index].reserveSlots(slotCount) }
        for (index, segment) in segments.enumerated() {
            caches[index].prepareWindows(start: segment.startPosition, tokens: segment.count)
        }
        let depth = plan.depth
        if let depth { startDepthRun(depth, rows: count) }
        for (stepIndex, step) in plan.steps.enumerated().dropFirst(firstStep) {
            let layer = weights.layers[step.layer]
            let watcher = observer.map { ObservedStep(observer: $0, step: stepIndex, layer: step.layer) }
            observer?.observe(step: stepIndex, layer: step.layer, boundary: .layerInput,
                              hidden: scratch.hidden, tokens: count, hiddenSize: hiddenSize)
            if step.runsAttention {
                let adding = depth == nil ? count : attentionRows()
                attention(layer: layer, window: layerWindows[step.layer], slot: slots[stepIndex], tokens: count,
                          segments: segments, caches: &caches, queries: adding > 0, masked: adding < count,
                          watcher: watcher)
                if depth != nil { countAttention(rows: count, adding: adding) }
            }
            observer?.observe(step: stepIndex, layer: step.layer, boundary: .afterAttention,
                              hidden: scratch.hidden, tokens: count, hiddenSize: hiddenSize)
            let map = step.map?.matrix
            if step.runsFFN {
                let adding = depth == nil ? count : feedForwardRows(layer: step.layer)
                if adding > 0 {
                    feedForward(layer: layer, tokens: count, map: step.map?.site == .feedForwardOutput ? map : nil,
                                masked: adding < count, watcher: watcher)
                }
                if depth != nil { finishFeedForward(layer: step.layer, adding: adding) }
            }
            if let map, step.map?.site == .stream {
                Self.multiply(map, scratch.hidden, .float(tokens: count), scratch.quantized, into: &scratch.projection, pool: pool)
                FloatKernels.copy(scratch.projection, count: count * hiddenSize, into: &scratch.hidden, at: 0)
            }
            if case .dynamicExit(let exit) = depth, let exitMap = exit.maps[stepIndex + 1] {
                checkExits(exit, map: exitMap, rows: count)
            }
            observer?.observe(step: stepIndex, layer: step.layer, boundary: .layerOutput,
                              hidden: scratch.hidden, tokens: count, hiddenSize: hiddenSize)
        }
        if depth != nil { restoreExitStreams() }
        for (index, segment) in segments.enumerated() {
            caches[index].advance(to: segment.startPosition + segment.count)
        }
        if let head { return [headLogits(segments[0], head: head)] }
        let outputWatcher = observer.map { ObservedStep(observer: $0, step: plan.steps.count, layer: config.layerCount) }
        return outputLogits(segments: segments, watcher: outputWatcher)
    }

    /// The logits of a single segment's selected rows through a replacement head: the rows are
    /// gathered, mapped when the head has a map, normalized and multiplied by its rows.
    private mutating func headLogits(_ segment: SegmentRows, head: OutputHead) -> Logits {
        let hiddenSize = config.hiddenSize
        let selected = segment.selectedRows
        let rows = selected.count
        let width = head.tokens.count
        guard rows > 0 else { return Logits(values: [], rows: 0, vocabularySize: width) }
        FloatKernels.copy(scratch.hidden, from: selected.lowerBound * hiddenSize, count: rows * hiddenSize,
                          into: &scratch.projection, at: 0)
        var values = [Float](repeating: 0, count: rows * width)
        headProduct(rows: rows, map: head.map, output: head.rows, into: &values)
        return Logits(values: values, rows: rows, vocabularySize: width)
    }

    /// The logits of the `rows` streams gathered at the start of `scratch.projection` through the
    /// output rows `output`: mapped by `map` first when given (the mapped rows are left in
    /// `scratch.projection`), normalized by the final norm, multiplied.
    mutating func headProduct(rows: Int, map: WeightMatrix?, output: WeightMatrix, into values: inout [Float]) {
        let hiddenSize = config.hiddenSize
        if let map {
            Self.multiply(map, scratch.projection, .float(tokens: rows), scratch.quantized, into: &scratch.normalized, pool: pool)
            swap(&scratch.projection, &scratch.normalized)
        }
        FloatKernels.rmsNorm(scratch.projection, rows: rows, columns: hiddenSize, weight: weights.outputNorm,
                             epsilon: config.rmsNormEpsilon, into: &scratch.normalized)
        let input = prepareInput(scratch.normalized, tokens: rows, columns: hiddenSize)
        Self.multiply(output, scratch.normalized, input, scratch.quantized, into: &values, pool: pool)
    }

    /// `queries: false` runs only the key and value projections into the cache (state
    /// propagation for tokens that exited); `masked` adds the output only for the rows
    /// `depthRun.adds` marks.
    private mutating func attention(
        layer: LayerWeights, window: Int?, slot index: Int, tokens: Int, segments: [SegmentRows], caches: inout [KVCache],
        queries: Bool = true, masked: Bool = false, watcher: ObservedStep? = nil
    ) {
        let config = config
        FloatKernels.rmsNorm(scratch.hidden, rows: tokens, columns: config.hiddenSize, weight: layer.attentionNorm,
                             epsilon: config.rmsNormEpsilon, into: &scratch.normalized)
        watcher?.show(.attention, scratch.normalized, tokens: tokens, columns: config.hiddenSize)
        let input = prepareInput(scratch.normalized, tokens: tokens, columns: config.hiddenSize)
        if queries { Self.multiply(layer.query, scratch.normalized, input, scratch.quantized, into: &scratch.query, pool: pool) }
        Self.multiply(layer.key, scratch.normalized, input, scratch.quantized, into: &scratch.key, pool: pool)
        Self.multiply(layer.value, scratch.normalized, input, scratch.quantized, into: &scratch.value, pool: pool)
        if queries, let bias = layer.queryBias { FloatKernels.addBias(bias, into: &scratch.query, rows: tokens, columns: bias.count) }
        if let bias = layer.keyBias { FloatKernels.addBias(bias, into: &scratch.key, rows: tokens, columns: bias.count) }
        if let bias = layer.valueBias { FloatKernels.addBias(bias, into: &scratch.value, rows: tokens, columns: bias.count) }
        if queries, let norm = layer.queryNorm {
            // the attention buffer is free until attention writes it
            FloatKernels.rmsNorm(scratch.query, rows: tokens * config.headCount, columns: config.headDimensions, weight: norm,
                                 epsilon: config.rmsNormEpsilon, into: &scratch.attention)
            FloatKernels.copy(scratch.attention, count: tokens * config.headCount * config.headDimensions, into: &scratch.query, at: 0)
        }
        if let norm = layer.keyNorm {
            FloatKernels.rmsNorm(scratch.key, rows: tokens * config.kvHeadCount, columns: config.headDimensions, weight: norm,
                                 epsilon: config.rmsNormEpsilon, into: &scratch.attention)
            FloatKernels.copy(scratch.attention, count: tokens * config.kvHeadCount * config.headDimensions, into: &scratch.key, at: 0)
        }
        let sliding = window != nil && slidingInverseFrequencies != nil
        if queries {
            RotaryEmbedding.apply(&scratch.query, tokens: tokens, heads: config.headCount, headDimensions: config.headDimensions,
                                  rotaryDimensions: config.rotaryDimensions, style: rotaryStyle,
                                  cosines: sliding ? scratch.slidingCosines : scratch.cosines,
                                  sines: sliding ? scratch.slidingSines : scratch.sines)
        }
        RotaryEmbedding.apply(&scratch.key, tokens: tokens, heads: config.kvHeadCount, headDimensions: config.headDimensions,
                              rotaryDimensions: config.rotaryDimensions, style: rotaryStyle,
                              cosines: sliding ? scratch.slidingCosines : scratch.cosines,
                              sines: sliding ? scratch.slidingSines : scratch.sines)
        let shape = Attention.Shape(heads: config.headCount, kvHeads: config.kvHeadCount, headDimensions: config.headDimensions)
        for (cacheIndex, segment) in segments.enumerated() {
            let rowWidth = caches[cacheIndex].rowWidth
            let firstStored = caches[cacheIndex].firstStoredPosition(slot: index)
            let row = segment.startPosition - firstStored
            FloatKernels.copy(scratch.key, from: segment.firstRow * rowWidth, count: segment.count * rowWidth,
                              into: &caches[cacheIndex].keys[index], at: row * rowWidth)
            FloatKernels.copy(scratch.value, from: segment.firstRow * rowWidth, count: segment.count * rowWidth,
                              into: &caches[cacheIndex].values[index], at: row * rowWidth)
            guard queries else { continue }
            Attention.causal(
                queries: scratch.query, keys: caches[cacheIndex].keys[index], values: caches[cacheIndex].values[index],
                tokens: segment.count, startPosition: segment.startPosition, shape: shape, scale: attentionScale,
                window: window, firstStoredPosition: firstStored, into: &scratch.attention, firstRow: segment.firstRow,
                pool: pool)
        }
        guard queries else { return }
        watcher?.show(.attentionOutput, scratch.attention, tokens: tokens, columns: config.headCount * config.headDimensions)
        let attended = prepareInput(scratch.attention, tokens: tokens, columns: config.headCount * config.headDimensions)
        Self.multiply(layer.attentionOutput, scratch.attention, attended, scratch.quantized, into: &scratch.projection, pool: pool)
        if masked { clearProjectionRows(tokens: tokens) }
        addProjection(tokens: tokens, norm: layer.postAttentionNorm)
    }

    /// `masked` adds the output only for the rows `depthRun.adds` marks.
    private mutating func feedForward(
        layer: LayerWeights, tokens: Int, map: WeightMatrix?, masked: Bool = false, watcher: ObservedStep? = nil
    ) {
        let config = config
        FloatKernels.rmsNorm(scratch.hidden, rows: tokens, columns: config.hiddenSize, weight: layer.feedForwardNorm,
                             epsilon: config.rmsNormEpsilon, into: &scratch.normalized)
        watcher?.show(.feedForward, scratch.normalized, tokens: tokens, columns: config.hiddenSize)
        let input = prepareInput(scratch.normalized, tokens: tokens, columns: config.hiddenSize)
        Self.multiply(layer.gate, scratch.normalized, input, scratch.quantized, into: &scratch.gate, pool: pool)
        Self.multiply(layer.up, scratch.normalized, input, scratch.quantized, into: &scratch.up, pool: pool)
        switch activation {
        case .silu: FloatKernels.swiGLU(gate: &scratch.gate, up: scratch.up, count: tokens * config.feedForwardSize)
        case .geluTanh: FloatKernels.geluTanhGLU(gate: &scratch.gate, up: scratch.up, count: tokens * config.feedForwardSize)
        }
        watcher?.show(.feedForwardDown, scratch.gate, tokens: tokens, columns: config.feedForwardSize)
        let gated = prepareInput(scratch.gate, tokens: tokens, columns: config.feedForwardSize)
        Self.multiply(layer.down, scratch.gate, gated, scratch.quantized, into: &scratch.projection, pool: pool)
        if masked { clearProjectionRows(tokens: tokens) }
        addProjection(tokens: tokens, norm: layer.postFeedForwardNorm, map: map)
    }

    /// Adds the sublayer output in `scratch.projection` to the residual stream, RMSNorm'd first
    /// when the family normalizes sublayer outputs, and times `map` when a plan step heals with
    /// one at the FFN's output (`LinearMap.Site.feedForwardOutput`).
    private mutating func addProjection(tokens: Int, norm: [Float]?, map: WeightMatrix? = nil) {
        let count = tokens * config.hiddenSize
        if let map {
            if let norm {
                FloatKernels.rmsNorm(scratch.projection, rows: tokens, columns: config.hiddenSize, weight: norm,
                                     epsilon: config.rmsNormEpsilon, into: &scratch.normalized)
                FloatKernels.copy(scratch.normalized, count: count, into: &scratch.projection, at: 0)
            }
            Self.multiply(map, scratch.projection, .float(tokens: tokens), scratch.quantized, into: &scratch.normalized, pool: pool)
            FloatKernels.add(scratch.normalized, into: &scratch.hidden, count: count)
            return
        }
        guard let norm else {
            FloatKernels.add(scratch.projection, into: &scratch.hidden, count: count)
            return
        }
        // the normalized input was read by this sublayer's products already
        FloatKernels.rmsNorm(scratch.projection, rows: tokens, columns: config.hiddenSize, weight: norm,
                             epsilon: config.rmsNormEpsilon, into: &scratch.normalized)
        FloatKernels.add(scratch.normalized, into: &scratch.hidden, count: count)
    }

    /// The logits of the rows each segment selects, computed in one product. Rows that do not
    /// form one run are gathered first; the norm and the product treat each row alone, so a row's
    /// logits do not depend on which others share the call.
    private mutating func outputLogits(segments: [SegmentRows], watcher: ObservedStep? = nil) -> [Logits] {
        let config = config
        let hiddenSize = config.hiddenSize
        let vocabularySize = config.vocabularySize
        let selected = segments.map(\.selectedRows)
        let rows = selected.reduce(0) { $0 + $1.count }
        guard rows > 0 else {
            return segments.map { _ in Logits(values: [], rows: 0, vocabularySize: vocabularySize) }
        }
        let nonEmpty = selected.filter { !$0.isEmpty }
        let contiguous = zip(nonEmpty, nonEmpty.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound }
        let firstRow = nonEmpty.first?.lowerBound ?? 0
        if contiguous {
            FloatKernels.rmsNorm(scratch.hidden, firstRow: firstRow, rows: rows, columns: hiddenSize, weight: weights.outputNorm,
                                 epsilon: config.rmsNormEpsilon, into: &scratch.normalized)
        } else {
            // the projection buffer is free after the last sublayer
            var gathered = 0
            for range in selected where !range.isEmpty {
                FloatKernels.copy(scratch.hidden, from: range.lowerBound * hiddenSize, count: range.count * hiddenSize,
                                  into: &scratch.projection, at: gathered * hiddenSize)
                gathered += range.count
            }
            FloatKernels.rmsNorm(scratch.projection, rows: rows, columns: hiddenSize, weight: weights.outputNorm,
                                 epsilon: config.rmsNormEpsilon, into: &scratch.normalized)
        }
        watcher?.show(.output, scratch.normalized, tokens: rows, columns: hiddenSize)
        var values = [Float](repeating: 0, count: rows * vocabularySize)
        let input = prepareInput(scratch.normalized, tokens: rows, columns: hiddenSize)
        Self.multiply(weights.output, scratch.normalized, input, scratch.quantized, into: &values, pool: pool)
        if segments.count == 1 { return [Logits(values: values, rows: rows, vocabularySize: vocabularySize)] }
        var result: [Logits] = []
        result.reserveCapacity(segments.count)
        var offset = 0
        for range in selected {
            let span = (offset * vocabularySize)..<((offset + range.count) * vocabularySize)
            result.append(Logits(values: Array(values[span]), rows: range.count, vocabularySize: vocabularySize))
            offset += range.count
        }
        return result
    }

    /// Makes `input` (`[tokens × columns]`) ready for every matrix product that reads it next:
    /// in the fast paths, quantizes it once into `scratch.quantized`.
    mutating func prepareInput(_ input: [Float], tokens: Int, columns: Int) -> PreparedInput {
        guard numerics != .exact && columns % 32 == 0 else { return .float(tokens: tokens) }
        scratch.quantized.quantize(input, tokens: tokens, columns: columns)
        return .quantized(tokens: tokens, columns: columns)
    }

    /// `output = matrix × input`, from the quantized form of `input` in `quantized` when
    /// `prepared` says it holds it and `matrix` has kernels for it.
    ///
    /// Static on purpose: a method call would borrow a copy of `self` while `output` (a scratch
    /// buffer inside it) is written, forcing a copy-on-write of the buffer on every call.
    static func multiply(
        _ matrix: WeightMatrix, _ input: [Float], _ prepared: PreparedInput, _ quantized: QuantizedActivations,
        into output: inout [Float], pool: WorkerPool
    ) {
        switch prepared {
        case .quantized(let tokens, let columns) where matrix.supportsQuantizedMultiply:
            precondition(columns == matrix.columns && quantized.columns == columns && quantized.tokens == tokens,
                         "the quantized input is not the one prepared for this product")
            matrix.multiply(quantized, into: &output, pool: pool)
        case .quantized(let tokens, _), .float(let tokens):
            matrix.multiply(input, tokens: tokens, into: &output, pool: pool)
        }
    }
}

/// The observer of a pass with the step it is at, handed to the sublayers so that only a pass
/// with an observer builds one.
struct ObservedStep {
    let observer: any HiddenStateObserver
    let step: Int
    let layer: Int

    func show(_ input: MatrixInput, _ values: [Float], tokens: Int, columns: Int) {
        observer.observe(step: step, layer: layer, input: input, values: values, tokens: tokens, columns: columns)
    }
}

/// What `Transformer.prepareInput` made of a matrix input, for the products that read it.
enum PreparedInput {
    /// Float rows only: exact numerics, or rows the quantizer's 32-element blocks do not divide.
    case float(tokens: Int)
    /// Float rows and, in `Scratch.quantized`, their quantized form of `tokens × columns`.
    case quantized(tokens: Int, columns: Int)
}

/// One sequence's part of a batched forward pass (`Transformer.forward(batch:plan:caches:)`).
public struct BatchSegment: Sendable {
    /// Tokens to process, at positions `startPosition...` of the segment's cache.
    public var tokens: [TokenID]
    public var startPosition: Int
    /// Which of the segment's rows get logits.
    public var logits: LogitsSelection

    public init(tokens: [TokenID], startPosition: Int, logits: LogitsSelection) {
        self.tokens = tokens
        self.startPosition = startPosition
        self.logits = logits
    }
}

/// Where a segment's rows sit in the pass's activation buffers.
private struct SegmentRows {
    var firstRow: Int
    var count: Int
    var startPosition: Int
    var selection: LogitsSelection

    /// The rows (of the whole pass) whose logits the segment asks for.
    var selectedRows: Range<Int> {
        if count == 0 { return firstRow..<firstRow }
        return switch selection {
        case .last: (firstRow + count - 1)..<(firstRow + count)
        case .all: firstRow..<(firstRow + count)
        case .none: firstRow..<firstRow
        }
    }
}
