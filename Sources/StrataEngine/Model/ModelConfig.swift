import StrataFormats
import StrataKernels

/// Typed hyper-parameters of a model, read once from GGUF metadata.
public struct ModelConfig: Sendable, Codable, Equatable {
    /// The family's name (`general.architecture`); `LanguageModel.architecture` is the family.
    public var architecture: String
    public var name: String
    /// Width of the residual stream.
    public var hiddenSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDimensions: Int
    /// Dimensions of each head that RoPE rotates (usually all of them).
    public var rotaryDimensions: Int
    public var feedForwardSize: Int
    public var vocabularySize: Int
    /// Longest sequence the model was trained for.
    public var contextLength: Int
    public var ropeBase: Float
    public var rmsNormEpsilon: Float
    /// Whether the LM head reuses the token embedding matrix.
    public var tiedOutput: Bool
    /// Divisors of RoPE's rotation speeds, one per rotated pair (`rope_freqs.weight`: Llama
    /// 3.1's frequency scaling), or nil.
    public var rotaryFrequencyFactors: [Float]?
    /// How many positions a sliding-window layer attends to, itself included
    /// (`attention.sliding_window`), or nil when every layer attends to the whole context.
    public var slidingWindow: Int?
    /// Which layers attend through the window (from `attention.sliding_window_pattern`, a bool
    /// per layer or a period, else the family's period); nil without a window.
    public var slidingWindowLayers: [Bool]?
    /// RoPE's base in sliding-window layers (`rope.freq_base_swa`, else the family's), nil
    /// without a window.
    public var slidingWindowRopeBase: Float?

    /// The window of layer `layer`'s attention, or nil for attention over the whole context.
    public func attentionWindow(layer: Int) -> Int? {
        guard let slidingWindow, let layers = slidingWindowLayers, layers.indices.contains(layer), layers[layer] else {
            return nil
        }
        return slidingWindow
    }

    enum CodingKeys: String, CodingKey {
        case architecture, name
        case hiddenSize = "hidden_size"
        case layerCount = "layer_count"
        case headCount = "head_count"
        case kvHeadCount = "kv_head_count"
        case headDimensions = "head_dimensions"
        case rotaryDimensions = "rotary_dimensions"
        case feedForwardSize = "feed_forward_size"
        case vocabularySize = "vocabulary_size"
        case contextLength = "context_length"
        case ropeBase = "rope_base"
        case rmsNormEpsilon = "rms_norm_epsilon"
        case tiedOutput = "tied_output"
        case rotaryFrequencyFactors = "rotary_frequency_factors"
        case slidingWindow = "sliding_window"
        case slidingWindowLayers = "sliding_window_layers"
        case slidingWindowRopeBase = "sliding_window_rope_base"
    }

    /// Reads the hyper-parameters of `architecture`'s family from `file`'s metadata.
    public init(gguf file: GGUFFile, architecture: any ModelArchitecture) throws {
        let metadata = file.metadata
        let prefix = architecture.metadataPrefix
        self.architecture = architecture.name
        self.name = try metadata.optionalString("general.name") ?? architecture.name
        hiddenSize = try metadata.integer("\(prefix).embedding_length")
        layerCount = try metadata.integer("\(prefix).block_count")
        headCount = try metadata.integer("\(prefix).attention.head_count")
        kvHeadCount = try metadata.optionalInteger("\(prefix).attention.head_count_kv") ?? headCount
        feedForwardSize = try metadata.integer("\(prefix).feed_forward_length")
        contextLength = try metadata.optionalInteger("\(prefix).context_length") ?? 2048
        ropeBase = try metadata.optionalFloat("\(prefix).rope.freq_base") ?? 10_000
        rmsNormEpsilon = try metadata.optionalFloat("\(prefix).attention.layer_norm_rms_epsilon") ?? 1e-5
        guard headCount > 0 else {
            throw ModelLoadError.invalidHyperParameter(file: file.path, key: "\(prefix).attention.head_count", reason: "must be positive, found \(headCount)")
        }
        headDimensions = try metadata.optionalInteger("\(prefix).attention.key_length") ?? hiddenSize / headCount
        rotaryDimensions = try metadata.optionalInteger("\(prefix).rope.dimension_count") ?? headDimensions
        let tokens = try metadata.optionalStrings("tokenizer.ggml.tokens")
        vocabularySize = try metadata.optionalInteger("\(prefix).vocab_size") ?? tokens?.count ?? 0
        tiedOutput = file.tensor(named: architecture.tensorNames.output) == nil
        try validate(file: file.path, prefix: prefix)
        let factorsName = architecture.tensorNames.rotaryFrequencyFactors
        rotaryFrequencyFactors = file.tensor(named: factorsName) == nil
            ? nil : try TensorBinder(file: file).vector(factorsName, count: rotaryDimensions / 2)
        try readSlidingWindow(metadata, prefix: prefix, architecture: architecture, file: file.path)
        if let factors = rotaryFrequencyFactors, let bad = factors.first(where: { !($0 > 0 && $0.isFinite) }) {
            throw ModelLoadError.invalidHyperParameter(file: file.path, key: factorsName, reason: "factors must be positive, found \(bad)")
        }
    }

    /// llama.cpp's rules: a window of 0 means none; the pattern key holds a bool per layer
    /// (true: sliding) or a period n (layer i slides unless i % n == n - 1; 0: every layer).
    private mutating func readSlidingWindow(
        _ metadata: GGUFMetadata, prefix: String, architecture: any ModelArchitecture, file: String
    ) throws {
        guard let period = architecture.slidingWindowPeriod,
              let window = try metadata.optionalInteger("\(prefix).attention.sliding_window"), window > 0 else { return }
        let patternKey = "\(prefix).attention.sliding_window_pattern"
        let layers: [Bool]
        if let flags = try? metadata.optionalBools(patternKey) {
            guard flags.count == layerCount else {
                throw ModelLoadError.invalidHyperParameter(
                    file: file, key: patternKey, reason: "expected a flag for each of \(layerCount) layers, found \(flags.count)")
            }
            layers = flags
        } else {
            let period = try metadata.optionalInteger(patternKey) ?? period
            guard period >= 0 else {
                throw ModelLoadError.invalidHyperParameter(file: file, key: patternKey, reason: "expected a period >= 0, found \(period)")
            }
            layers = (0..<layerCount).map { period == 0 || $0 % period < period - 1 }
        }
        let baseKey = "\(prefix).rope.freq_base_swa"
        let base = try metadata.optionalFloat(baseKey) ?? architecture.slidingWindowRopeBase
        guard base > 0 && base.isFinite else {
            throw ModelLoadError.invalidHyperParameter(file: file, key: baseKey, reason: "must be positive, found \(base)")
        }
        slidingWindow = window
        slidingWindowLayers = layers
        slidingWindowRopeBase = base
    }

    func validate(file: String, prefix: String) throws {
        func check(_ condition: Bool, _ key: String, _ reason: String) throws {
            if !condition { throw ModelLoadError.invalidHyperParameter(file: file, key: key, reason: reason) }
        }
        try check(hiddenSize > 0 && hiddenSize <= 1 << 16, "\(prefix).embedding_length", "expected 1...65536, found \(hiddenSize)")
        try check(layerCount > 0 && layerCount <= 1024, "\(prefix).block_count", "expected 1...1024, found \(layerCount)")
        try check(kvHeadCount > 0 && headCount % kvHeadCount == 0, "\(prefix).attention.head_count_kv",
                  "must divide head_count \(headCount), found \(kvHeadCount)")
        try check(headDimensions > 0 && headDimensions % 2 == 0 && headDimensions <= 1024, "\(prefix).attention.key_length",
                  "expected an even size up to 1024, found \(headDimensions)")
        try check(rotaryDimensions > 0 && rotaryDimensions <= headDimensions && rotaryDimensions % 2 == 0,
                  "\(prefix).rope.dimension_count", "expected an even size up to \(headDimensions), found \(rotaryDimensions)")
        try check(feedForwardSize > 0 && feedForwardSize <= 1 << 20, "\(prefix).feed_forward_length", "found \(feedForwardSize)")
        try check(vocabularySize > 0, "tokenizer.ggml.tokens", "the vocabulary is empty or missing")
        try check(contextLength > 0, "\(prefix).context_length", "must be positive, found \(contextLength)")
        try check(ropeBase > 0 && ropeBase.isFinite, "\(prefix).rope.freq_base", "must be positive, found \(ropeBase)")
        try check(rmsNormEpsilon > 0 && rmsNormEpsilon.isFinite, "\(prefix).attention.layer_norm_rms_epsilon",
                  "must be positive, found \(rmsNormEpsilon)")
    }
}

/// Why a model could not be loaded. Messages name the file, the tensor or key, and what was
/// expected against what was found.
public enum ModelLoadError: Error, CustomStringConvertible, Sendable {
    case unsupportedArchitecture(file: String, found: String, supported: [String])
    case invalidHyperParameter(file: String, key: String, reason: String)
    case missingTensor(file: String, name: String)
    case tensorShape(file: String, name: String, expected: [Int], found: [Int])
    case tensorFormat(file: String, name: String, found: QuantFormat, reason: String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let file, let found, let supported):
            "\(file): architecture '\(found)' is not supported (supported: \(supported.joined(separator: ", ")))"
        case .invalidHyperParameter(let file, let key, let reason):
            "\(file): metadata '\(key)': \(reason)"
        case .missingTensor(let file, let name):
            "\(file): required tensor '\(name)' is missing"
        case .tensorShape(let file, let name, let expected, let found):
            "\(file): tensor '\(name)': expected shape \(expected), found \(found)"
        case .tensorFormat(let file, let name, let found, let reason):
            "\(file): tensor '\(name)' has format \(found): \(reason)"
        }
    }
}
