/// The one table from model parts to GGUF tensor names (llama.cpp's naming).
public enum TensorNames {
    public static let tokenEmbedding = "token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    public static let output = "output.weight"

    /// The tensors of one transformer layer.
    public struct Layer: Sendable {
        public let index: Int
        public var attentionNorm: String { name("attn_norm.weight") }
        public var query: String { name("attn_q.weight") }
        public var key: String { name("attn_k.weight") }
        public var value: String { name("attn_v.weight") }
        public var attentionOutput: String { name("attn_output.weight") }
        public var queryBias: String { name("attn_q.bias") }
        public var keyBias: String { name("attn_k.bias") }
        public var valueBias: String { name("attn_v.bias") }
        public var feedForwardNorm: String { name("ffn_norm.weight") }
        public var gate: String { name("ffn_gate.weight") }
        public var up: String { name("ffn_up.weight") }
        public var down: String { name("ffn_down.weight") }

        private func name(_ suffix: String) -> String { "blk.\(index).\(suffix)" }
    }

    public static func layer(_ index: Int) -> Layer { Layer(index: index) }
}
