import StrataKernels

/// Phi-3 (mini, medium): Llama's computation with split-half RoPE, stored with fused
/// projections: one `attn_qkv` matrix holding the query, key and value rows in that order, and
/// one `ffn_up` matrix holding the gate rows, then the up rows.
public struct Phi3Architecture: ModelArchitecture {
    public init() {}
    public var name: String { "phi3" }
    public var rotaryStyle: RotaryStyle { .splitHalves }
    public var fusesProjections: Bool { true }
}
