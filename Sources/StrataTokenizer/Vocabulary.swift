/// Index of a token in a model's vocabulary (GGUF stores these as 32-bit integers).
public typealias TokenID = Int32

/// The role of a vocabulary entry, with GGUF's `tokenizer.ggml.token_type` numbering.
public enum TokenType: Int32, Sendable {
    case undefined = 0
    /// Ordinary text; for byte-level BPE its text is written in the GPT-2 byte alphabet.
    case normal = 1
    case unknown = 2
    /// Markers such as `<|im_start|>`: matched in text only when special parsing is on,
    /// and left out of decoded text when special tokens are skipped.
    case control = 3
    /// Added tokens such as `<tool_call>`: always matched in text, decoded as their raw text.
    case userDefined = 4
    case unused = 5
    /// A single raw byte written as `<0xXX>` (SentencePiece-style byte fallback).
    case byte = 6
}

/// Everything a tokenizer needs from a model file, as plain values.
///
/// The field names follow the GGUF keys under `tokenizer.ggml.*`; the engine fills this from a
/// GGUF file (`Vocabulary(gguf:)` in StrataEngine) and tests can build one by hand.
public struct Vocabulary: Sendable {
    /// Token texts indexed by id (`tokenizer.ggml.tokens`).
    public var tokens: [String]
    /// Token roles indexed by id (`tokenizer.ggml.token_type`); missing entries count as normal.
    public var tokenTypes: [TokenType]
    /// BPE merges in rank order, each written as `"left right"` (`tokenizer.ggml.merges`).
    public var merges: [String]
    /// Token scores indexed by id (`tokenizer.ggml.scores`): SentencePiece merges the pair
    /// that makes the highest-scoring token first. Missing entries count as 0.
    public var scores: [Float]
    /// Whether SentencePiece encoding puts a space before the text and after each special
    /// token (`tokenizer.ggml.add_space_prefix`; Llama 2 does, Gemma does not).
    public var addSpacePrefix: Bool
    /// Tokenizer family (`tokenizer.ggml.model`): `"gpt2"` is byte-level BPE, `"llama"` is
    /// SentencePiece-style (scores, byte fallback, `▁` for spaces).
    public var model: String
    /// Pre-tokenizer name (`tokenizer.ggml.pre`), e.g. `"gpt-2"`, `"smollm"`, `"qwen2"`, `"llama-bpe"`.
    public var preTokenizer: String
    /// Beginning-of-sequence token (`tokenizer.ggml.bos_token_id`).
    public var bosID: TokenID?
    /// End-of-sequence token (`tokenizer.ggml.eos_token_id`).
    public var eosID: TokenID?
    /// End-of-turn token (`tokenizer.ggml.eot_token_id`), e.g. `<|im_end|>` for ChatML models.
    public var endOfTurnID: TokenID?
    /// Padding token (`tokenizer.ggml.padding_token_id`).
    public var paddingID: TokenID?
    /// Unknown-text token (`tokenizer.ggml.unknown_token_id`).
    public var unknownID: TokenID?
    /// Whether encoding with special tokens prepends BOS (`tokenizer.ggml.add_bos_token`).
    public var addBOS: Bool
    /// Whether encoding with special tokens appends EOS (`tokenizer.ggml.add_eos_token`).
    public var addEOS: Bool

    /// Creates a vocabulary; only the token list is required.
    public init(
        tokens: [String],
        tokenTypes: [TokenType] = [],
        merges: [String] = [],
        scores: [Float] = [],
        addSpacePrefix: Bool = false,
        model: String = "gpt2",
        preTokenizer: String = "default",
        bosID: TokenID? = nil,
        eosID: TokenID? = nil,
        endOfTurnID: TokenID? = nil,
        paddingID: TokenID? = nil,
        unknownID: TokenID? = nil,
        addBOS: Bool = false,
        addEOS: Bool = false
    ) {
        self.tokens = tokens
        self.tokenTypes = tokenTypes
        self.merges = merges
        self.scores = scores
        self.addSpacePrefix = addSpacePrefix
        self.model = model
        self.preTokenizer = preTokenizer
        self.bosID = bosID
        self.eosID = eosID
        self.endOfTurnID = endOfTurnID
        self.paddingID = paddingID
        self.unknownID = unknownID
        self.addBOS = addBOS
        self.addEOS = addEOS
    }

    /// The role of `id`, treating ids past the end of `tokenTypes` as normal.
    public func type(of id: TokenID) -> TokenType {
        let index = Int(id)
        return index >= 0 && index < tokenTypes.count ? tokenTypes[index] : .normal
    }
}

/// Why a tokenizer could not be built from a vocabulary.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// `tokenizer.ggml.model` names a tokenizer family this module does not implement.
    case unsupportedModel(String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer this module does not implement.
    case unsupportedPreTokenizer(String)
    /// The vocabulary has no tokens.
    case emptyVocabulary
    /// A special-token id points outside the vocabulary.
    case tokenOutOfRange(role: String, id: TokenID, count: Int)

    public var description: String {
        switch self {
        case .unsupportedModel(let name):
            return "unsupported tokenizer model '\(name)' (tokenizer.ggml.model); supported: 'gpt2' (byte-level BPE), 'llama' (SentencePiece-style)"
        case .unsupportedPreTokenizer(let name):
            return "unsupported pre-tokenizer '\(name)' (tokenizer.ggml.pre); supported: "
                + PreTokenizer.supportedNames.joined(separator: ", ")
        case .emptyVocabulary:
            return "the vocabulary has no tokens (tokenizer.ggml.tokens is empty)"
        case .tokenOutOfRange(let role, let id, let count):
            return "\(role) token id \(id) is outside the vocabulary of \(count) tokens"
        }
    }
}
