import StrataKernels

/// Qwen3: Qwen2's layers without the q/k/v biases and with a per-head RMSNorm of queries and
/// keys before RoPE. Its attention width (heads × `attention.key_length`) need not be the
/// hidden size (Qwen3-0.6B: 16 × 128 against 1,024).
public struct Qwen3Architecture: ModelArchitecture {
    public init() {}
    public var name: String { "qwen3" }
    public var rotaryStyle: RotaryStyle { .splitHalves }
    public var hasQueryKeyNorms: Bool { true }
}
