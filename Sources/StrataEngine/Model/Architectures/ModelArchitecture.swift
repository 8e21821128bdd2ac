import StrataFormats
import StrataKernels

/// What one transformer family does differently from the others: everything the loader and
/// `Transformer` ask about instead of branching on the family's name.
///
/// Every family the engine runs is a pre-norm decoder: token embedding, then per layer an
/// RMSNorm'd attention sublayer and an RMSNorm'd gated feed-forward sublayer, each added to
/// the residual stream, then a final RMSNorm and the output matrix. The requirements say where
/// a family departs from plain Llama; each has a default for the Llama behaviour, so a family
/// states only its differences. A new family is one type conforming to this protocol, added to
/// an `ArchitectureRegistry` (`ArchitectureRegistry.standard` for the built-in ones).
///
/// Sliding-window attention (Gemma 3) is read into `ModelConfig` (`slidingWindow`, which layers
/// use it, their RoPE base) when the family names a `slidingWindowPeriod`; the forward pass
/// then asks the config, not the family, per layer.
public protocol ModelArchitecture: Sendable {
    /// The `general.architecture` value of the family's GGUF files.
    var name: String { get }
    /// The prefix of the family's hyper-parameter keys (`<prefix>.block_count`, ...).
    var metadataPrefix: String { get }
    /// Where the family keeps each tensor.
    var tensorNames: TensorNames { get }
    /// How RoPE pairs the dimensions of a head.
    var rotaryStyle: RotaryStyle { get }
    /// Whether the q, k and v projections have biases (`TensorNames.queryBias`, ...).
    var hasAttentionBiases: Bool { get }
    /// Whether queries and keys get a per-head RMSNorm before RoPE (`TensorNames.queryNorm`,
    /// `keyNorm`).
    var hasQueryKeyNorms: Bool { get }
    /// Whether each sublayer's output is RMSNorm'd before the residual add
    /// (`TensorNames.postAttentionNorm`, `postFeedForwardNorm`).
    var hasSublayerOutputNorms: Bool { get }
    /// Whether the file stores q, k and v as one matrix (`TensorNames.fusedQueryKeyValue`) and
    /// the gate and up projections as one (`TensorNames.up`, gate rows first), as Phi-3 does.
    var fusesProjections: Bool { get }
    /// The gate's nonlinearity in the feed-forward sublayer.
    var activation: GatedActivation { get }
    /// What the token embedding rows are multiplied by before the first layer, or nil for
    /// nothing (not even a multiplication by one).
    func embeddingScale(config: ModelConfig) -> Float?
    /// What attention multiplies query-key dot products by.
    func attentionScale(config: ModelConfig) -> Float
    /// RoPE's inverse frequencies (the place for frequency scaling schemes).
    func rotaryInverseFrequencies(config: ModelConfig) -> [Float]
    /// Whether the family has sliding-window layers, and if so which by default: layer i
    /// slides unless `i % period == period - 1` (0: every layer slides); the file's
    /// `attention.sliding_window_pattern` overrides it. nil: the family ignores
    /// `attention.sliding_window`.
    var slidingWindowPeriod: Int? { get }
    /// RoPE's base in sliding-window layers when the file has no `rope.freq_base_swa`.
    var slidingWindowRopeBase: Float { get }
}

extension ModelArchitecture {
    public var metadataPrefix: String { name }
    public var tensorNames: TensorNames { TensorNames() }
    public var hasAttentionBiases: Bool { false }
    public var hasQueryKeyNorms: Bool { false }
    public var hasSublayerOutputNorms: Bool { false }
    public var fusesProjections: Bool { false }
    public var activation: GatedActivation { .silu }
    public var slidingWindowPeriod: Int? { nil }
    public var slidingWindowRopeBase: Float { 10_000 }
    public func embeddingScale(config: ModelConfig) -> Float? { nil }
    public func attentionScale(config: ModelConfig) -> Float { 1 / Float(config.headDimensions).squareRoot() }
    /// The plain RoPE frequencies, each divided by its factor when the file has
    /// `rope_freqs.weight` (Llama 3.1's "llama3" scaling, written so by llama.cpp's converter).
    public func rotaryInverseFrequencies(config: ModelConfig) -> [Float] {
        let plain = RotaryEmbedding.inverseFrequencies(dimensions: config.rotaryDimensions, base: config.ropeBase)
        guard let factors = config.rotaryFrequencyFactors else { return plain }
        return zip(plain, factors).map { $0 / $1 }
    }
}

/// The nonlinearity applied to the gate projection before it multiplies the up projection.
public enum GatedActivation: String, Sendable {
    /// SiLU, `x / (1 + exp(-x))`: SwiGLU (Llama, Qwen).
    case silu
    /// GELU with the tanh approximation: GeGLU (Gemma).
    case geluTanh
}

/// The model families a loader accepts, looked up by `general.architecture`.
public struct ArchitectureRegistry: Sendable {
    /// In the order `ModelLoadError.unsupportedArchitecture` lists them.
    public private(set) var architectures: [any ModelArchitecture]

    public init(_ architectures: [any ModelArchitecture]) {
        self.architectures = []
        for architecture in architectures { add(architecture) }
    }

    /// The families built into the engine.
    public static let standard = ArchitectureRegistry([
        LlamaArchitecture(), Qwen2Architecture(), Qwen3Architecture(), Phi3Architecture(), Gemma3Architecture(),
    ])

    /// This registry with `architecture` added, replacing a family of the same name.
    public func adding(_ architecture: any ModelArchitecture) -> ArchitectureRegistry {
        var result = self
        result.add(architecture)
        return result
    }

    private mutating func add(_ architecture: any ModelArchitecture) {
        if let index = architectures.firstIndex(where: { $0.name == architecture.name }) {
            architectures[index] = architecture
        } else {
            architectures.append(architecture)
        }
    }

    /// The family called `name`, if registered.
    public func architecture(named name: String) -> (any ModelArchitecture)? {
        architectures.first { $0.name == name }
    }

    /// The family of `file`, from its `general.architecture`.
    /// - Throws: `ModelLoadError.unsupportedArchitecture` naming the file, the name found and
    ///   the registered ones.
    public func architecture(of file: GGUFFile) throws -> any ModelArchitecture {
        let name = try file.metadata.string("general.architecture")
        guard let architecture = architecture(named: name) else {
            throw ModelLoadError.unsupportedArchitecture(file: file.path, found: name, supported: architectures.map(\.name))
        }
        return architecture
    }
}
