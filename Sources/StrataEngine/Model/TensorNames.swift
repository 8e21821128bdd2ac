/// Where a family keeps each model part in a GGUF file. The defaults are llama.cpp's names,
/// which every family it converts shares for the parts they have in common; an architecture
/// that names a part differently changes that one field.
public struct TensorNames: Sendable, Equatable {
    public var tokenEmbedding = "token_embd.weight"
    public var outputNorm = "output_norm.weight"
    public var output = "output.weight"

    // Layer tensors, named `blk.<layer>.<suffix>` (`layer(_:_:)`).
    public var attentionNorm = "attn_norm.weight"
    public var query = "attn_q.weight"
    public var key = "attn_k.weight"
    public var value = "attn_v.weight"
    public var attentionOutput = "attn_output.weight"
    public var queryBias = "attn_q.bias"
    public var keyBias = "attn_k.bias"
    public var valueBias = "attn_v.bias"
    /// Per-head RMSNorm of the queries (Qwen3, Gemma 3).
    public var queryNorm = "attn_q_norm.weight"
    /// Per-head RMSNorm of the keys (Qwen3, Gemma 3).
    public var keyNorm = "attn_k_norm.weight"
    /// RMSNorm of the attention output before the residual add (Gemma 2 and 3).
    public var postAttentionNorm = "post_attention_norm.weight"
    public var feedForwardNorm = "ffn_norm.weight"
    public var gate = "ffn_gate.weight"
    public var up = "ffn_up.weight"
    public var down = "ffn_down.weight"
    /// RMSNorm of the feed-forward output before the residual add (Gemma 2 and 3).
    public var postFeedForwardNorm = "post_ffw_norm.weight"
    /// Query, key and value rows in one matrix (Phi-3).
    public var fusedQueryKeyValue = "attn_qkv.weight"
    /// Per-frequency divisors of RoPE's rotation speeds (Llama 3.1's frequency scaling).
    public var rotaryFrequencyFactors = "rope_freqs.weight"

    /// llama.cpp's names.
    public init() {}

    /// The name of layer `index`'s tensor `suffix` (one of the layer fields).
    public func layer(_ index: Int, _ suffix: String) -> String { "blk.\(index).\(suffix)" }
}
