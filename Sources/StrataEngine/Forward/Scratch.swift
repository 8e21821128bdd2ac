import StrataKernels

/// Activation buffers for one forward pass, sized for a number of tokens and reused, so a
/// decoding step allocates nothing. Grows only when a larger batch arrives.
struct Scratch {
    private(set) var tokenCapacity = 0
    /// [tokens × hidden] residual stream
    var hidden: [Float] = []
    /// [tokens × hidden] normalized residual stream
    var normalized: [Float] = []
    /// [tokens × heads × headDimensions]
    var query: [Float] = []
    /// [tokens × kvHeads × headDimensions]
    var key: [Float] = []
    /// [tokens × kvHeads × headDimensions]
    var value: [Float] = []
    /// [tokens × heads × headDimensions]
    var attention: [Float] = []
    /// [tokens × hidden] a sublayer's output before the residual add
    var projection: [Float] = []
    /// [tokens × feedForward]
    var gate: [Float] = []
    /// [tokens × feedForward]
    var up: [Float] = []
    /// [tokens × rotaryDimensions/2]
    var cosines: [Float] = []
    /// [tokens × rotaryDimensions/2]
    var sines: [Float] = []
    /// [tokens × rotaryDimensions/2] of sliding-window layers (their own RoPE base); empty
    /// for models without them
    var slidingCosines: [Float] = []
    /// [tokens × rotaryDimensions/2]
    var slidingSines: [Float] = []
    /// The current sublayer input quantized to 16- or 8-bit blocks (fast paths), shared by the
    /// matrices that read it (q/k/v, gate/up).
    var quantized = QuantizedActivations(capacity: 0)

    mutating func reserve(tokens: Int, config: ModelConfig, precision: ActivationPrecision) {
        guard tokens > tokenCapacity || quantized.precision != precision else { return }
        let queryWidth = config.headCount * config.headDimensions
        let kvWidth = config.kvHeadCount * config.headDimensions
        func buffer(_ width: Int) -> [Float] { [Float](repeating: 0, count: tokens * width) }
        hidden = buffer(config.hiddenSize)
        normalized = buffer(config.hiddenSize)
        query = buffer(queryWidth)
        key = buffer(kvWidth)
        value = buffer(kvWidth)
        attention = buffer(queryWidth)
        projection = buffer(config.hiddenSize)
        gate = buffer(config.feedForwardSize)
        up = buffer(config.feedForwardSize)
        cosines = buffer(config.rotaryDimensions / 2)
        sines = buffer(config.rotaryDimensions / 2)
        if config.slidingWindowRopeBase != nil {
            slidingCosines = buffer(config.rotaryDimensions / 2)
            slidingSines = buffer(config.rotaryDimensions / 2)
        }
        let widest = max(config.hiddenSize, config.feedForwardSize, config.headCount * config.headDimensions)
        quantized = QuantizedActivations(capacity: tokens * widest, precision: precision)
        tokenCapacity = tokens
    }
}
