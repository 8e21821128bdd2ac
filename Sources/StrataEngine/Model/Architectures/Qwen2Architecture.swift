import StrataKernels

/// Qwen2 and Qwen2.5: Llama's layers with q/k/v biases and split-half (NeoX) RoPE on unpermuted
/// q/k rows.
public struct Qwen2Architecture: ModelArchitecture {
    public init() {}
    public var name: String { "qwen2" }
    public var rotaryStyle: RotaryStyle { .splitHalves }
    public var hasAttentionBiases: Bool { true }
}
