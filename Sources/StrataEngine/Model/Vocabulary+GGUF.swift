import StrataFormats
import StrataTokenizer

extension Vocabulary {
    /// Reads the tokenizer metadata (`tokenizer.ggml.*`) of a GGUF file.
    ///
    /// Defaults follow llama.cpp where a key is absent: the pre-tokenizer is `"default"`,
    /// token types are normal, BOS is added only for SentencePiece (`llama`) vocabularies and
    /// the Llama 3 family of byte-level ones, and the end-of-turn token is found by name
    /// (`<|eot_id|>`, `<|im_end|>`, ...). Unlike llama.cpp, a missing BOS/EOS id stays nil
    /// instead of becoming id 11.
    /// - Throws: `FormatError` naming the key when a key is missing, has the wrong type, or
    ///   holds a token id that does not fit in `TokenID`.
    public init(gguf: GGUFFile) throws {
        let metadata = gguf.metadata
        let model = try metadata.string("tokenizer.ggml.model")
        let preTokenizer = try metadata.optionalString("tokenizer.ggml.pre") ?? ""
        let tokens = try metadata.strings("tokenizer.ggml.tokens")
        let rawTypes = try metadata.optionalIntegers("tokenizer.ggml.token_type") ?? []
        // an unknown role would silently turn, say, a control token into text
        let tokenTypes = try rawTypes.enumerated().map { index, value in
            guard let type = Int32(exactly: value).flatMap(TokenType.init(rawValue:)) else {
                throw FormatError(path: gguf.path, "tokenizer.ggml.token_type[\(index)] = \(value) is not a token type (0...6)")
            }
            return type
        }
        guard rawTypes.isEmpty || rawTypes.count == tokens.count else {
            throw FormatError(
                path: gguf.path, "tokenizer.ggml.token_type has \(rawTypes.count) entries for \(tokens.count) tokens")
        }

        func tokenID(_ key: String) throws -> TokenID? {
            guard let value = try metadata.optionalInteger(key) else { return nil }
            guard let id = TokenID(exactly: value) else {
                throw FormatError(path: gguf.path, "\(key) = \(value) is not a valid token id")
            }
            return id
        }

        let usesBOSByDefault = model == "llama" || (model == "gpt2" && Self.llama3Family.contains(preTokenizer))
        self.init(
            tokens: tokens,
            tokenTypes: tokenTypes,
            merges: try metadata.optionalStrings("tokenizer.ggml.merges") ?? [],
            scores: try Self.scores(in: gguf, tokenCount: tokens.count),
            // llama.cpp's default for SentencePiece vocabularies; Gemma's files say false
            addSpacePrefix: try metadata.optionalBool("tokenizer.ggml.add_space_prefix") ?? (model == "llama"),
            model: model,
            // llama.cpp treats a byte-level vocabulary without a pre-tokenizer name as "default".
            preTokenizer: preTokenizer.isEmpty ? "default" : preTokenizer,
            bosID: try tokenID("tokenizer.ggml.bos_token_id"),
            eosID: try tokenID("tokenizer.ggml.eos_token_id"),
            endOfTurnID: try tokenID("tokenizer.ggml.eot_token_id") ?? Self.endOfTurnByName(in: tokens),
            paddingID: try tokenID("tokenizer.ggml.padding_token_id"),
            unknownID: try tokenID("tokenizer.ggml.unknown_token_id"),
            addBOS: try metadata.optionalBool("tokenizer.ggml.add_bos_token") ?? usesBOSByDefault,
            addEOS: try metadata.optionalBool("tokenizer.ggml.add_eos_token") ?? false)
    }

    /// `tokenizer.ggml.scores`, one per token when present.
    private static func scores(in gguf: GGUFFile, tokenCount: Int) throws -> [Float] {
        guard let scores = try gguf.metadata.optionalFloats("tokenizer.ggml.scores") else { return [] }
        guard scores.count == tokenCount else {
            throw FormatError(path: gguf.path, "tokenizer.ggml.scores has \(scores.count) entries for \(tokenCount) tokens")
        }
        return scores
    }

    /// Pre-tokenizer names for which llama.cpp adds BOS unless the file says otherwise.
    private static let llama3Family: Set<String> = [
        "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
        "jina-v5-nano", "tekken", "chameleon",
    ]

    /// The end-of-turn token when the file does not name one: the first of llama.cpp's EOT
    /// names the vocabulary has. (llama.cpp takes whichever its hash map yields first, which
    /// for ChatML vocabularies holding both `<|im_end|>` and `<|endoftext|>` is arbitrary;
    /// the list order prefers the chat marker.)
    private static func endOfTurnByName(in tokens: [String]) -> TokenID? {
        let names = [
            "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
            "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
        ]
        var firstIndex: [String: Int] = [:]
        for (index, text) in tokens.enumerated() where text.hasPrefix("<") || text.hasPrefix("_") || text.hasPrefix("[") {
            if firstIndex[text] == nil { firstIndex[text] = index }
        }
        return names.lazy.compactMap { firstIndex[$0] }.first.map { TokenID($0) }
    }
}
