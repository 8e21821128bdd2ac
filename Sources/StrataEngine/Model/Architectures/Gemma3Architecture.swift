import StrataKernels

/// Gemma 3 (text): token embeddings scaled by √hidden; RMSNorm before and after both
/// sublayers; per-head RMSNorm of queries and keys; GeGLU with tanh-approximated GELU;
/// split-half RoPE; five sliding-window layers (RoPE base 10,000) to each global one (the
/// file's `rope.freq_base`); tied output.
///
/// llama.cpp's converter stores the norms as `1 + w` (Gemma's RMSNorm multiplies by `1 + w`),
/// so the weights are used as they are. The file carries the window but not the layer
/// pattern; llama.cpp and transformers both make every sixth layer global, as here.
public struct Gemma3Architecture: ModelArchitecture {
    public init() {}
    public var name: String { "gemma3" }
    public var rotaryStyle: RotaryStyle { .splitHalves }
    public var hasQueryKeyNorms: Bool { true }
    public var hasSublayerOutputNorms: Bool { true }
    public var activation: GatedActivation { .geluTanh }
    /// Five sliding-window layers to a global one; settable to check what the window does.
    public var slidingWindowPeriod: Int? = 6

    public func embeddingScale(config: ModelConfig) -> Float? { Float(config.hiddenSize).squareRoot() }

    /// Gemma scales by `query_pre_attn_scalar^-1/2`, which GGUF files do not carry: it is the
    /// head size in every Gemma 3 but the 27B (62 layers), where it is hidden / heads (the rule
    /// llama.cpp follows).
    public func attentionScale(config: ModelConfig) -> Float {
        let scalar = config.layerCount == 62 ? config.hiddenSize / config.headCount : config.headDimensions
        return 1 / Float(scalar).squareRoot()
    }
}
