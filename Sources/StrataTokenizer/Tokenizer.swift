/// Text ⇄ token ids, reproducing llama.cpp's tokenization exactly, for byte-level BPE
/// vocabularies (`gpt2`: GPT-2, SmolLM, Qwen2, Llama 3 families) and SentencePiece-style ones
/// (`llama`: Llama 2, Mistral, Phi-3, Gemma).
///
/// Build one per model and share it: it is immutable, and `encode`/`decode` are safe to call
/// from several threads at once.
public final class Tokenizer: Sendable {
    /// The vocabulary this tokenizer was built from, unchanged.
    public let vocabulary: Vocabulary

    private let algorithm: Algorithm
    private let specialTokens: SpecialTokenSplitter
    /// Token roles after llama.cpp's corrections (end-of-generation names become control).
    private let types: [TokenType]
    /// The bytes each token decodes to, all tokens back to back; `pieceStarts[id]..<pieceStarts[id + 1]`.
    private let pieceBytes: [UInt8]
    private let pieceStarts: [Int]
    private let endOfGeneration: Set<TokenID>

    /// Builds the lookup tables (about 0.1-0.3 s for a 150k-token vocabulary).
    /// - Throws: `TokenizerError` if the tokenizer family or pre-tokenizer is not supported,
    ///   or a special-token id is out of range.
    public init(vocabulary: Vocabulary) throws(TokenizerError) {
        guard Self.supportedModels.contains(vocabulary.model) else { throw .unsupportedModel(vocabulary.model) }
        guard !vocabulary.tokens.isEmpty else { throw .emptyVocabulary }
        let count = vocabulary.tokens.count
        let roles: [(String, TokenID?)] = [
            ("BOS", vocabulary.bosID), ("EOS", vocabulary.eosID), ("end-of-turn", vocabulary.endOfTurnID),
            ("padding", vocabulary.paddingID), ("unknown", vocabulary.unknownID),
        ]
        for case (let role, let id?) in roles where id < 0 || Int(id) >= count {
            throw .tokenOutOfRange(role: role, id: id, count: count)
        }
        self.vocabulary = vocabulary

        var tokenIDs: [String: TokenID] = [:]
        tokenIDs.reserveCapacity(count)
        for (index, text) in vocabulary.tokens.enumerated() {
            tokenIDs[text] = TokenID(index)
        }
        let sentencePiece = vocabulary.model == "llama"
        if sentencePiece {
            algorithm = .sentencePiece(
                SentencePieceEncoder(tokens: vocabulary.tokens, scores: vocabulary.scores, unknownID: vocabulary.unknownID),
                addSpacePrefix: vocabulary.addSpacePrefix)
        } else {
            let preTokenizer = try PreTokenizer(name: vocabulary.preTokenizer)
            algorithm = .bytePairs(
                preTokenizer,
                BytePairEncoder(
                    tokens: vocabulary.tokens, tokenIDs: tokenIDs, merges: vocabulary.merges,
                    wholeWords: preTokenizer.wholeWordsSkipMerges))
        }

        var types = (0..<count).map { vocabulary.type(of: TokenID($0)) }
        let endOfGeneration = EndOfGeneration.tokens(in: vocabulary, tokenIDs: tokenIDs)
        for id in endOfGeneration.recognisedByName { types[Int(id)] = .control }
        self.types = types
        self.endOfGeneration = endOfGeneration.all
        specialTokens = SpecialTokenSplitter(tokens: vocabulary.tokens, types: types)

        var pieceBytes: [UInt8] = []
        var pieceStarts: [Int] = [0]
        pieceStarts.reserveCapacity(count + 1)
        for (index, text) in vocabulary.tokens.enumerated() {
            pieceBytes.append(contentsOf: Self.piece(of: text, type: types[index], sentencePiece: sentencePiece))
            pieceStarts.append(pieceBytes.count)
        }
        self.pieceBytes = pieceBytes
        self.pieceStarts = pieceStarts
    }

    /// `tokenizer.ggml.model` values this tokenizer implements.
    public static let supportedModels: [String] = ["gpt2", "llama"]

    /// How text fragments between special tokens become ids.
    private enum Algorithm: Sendable {
        case bytePairs(PreTokenizer, BytePairEncoder)
        /// `addSpacePrefix`: a space goes before the text at the start and after each special
        /// token (`tokenizer.ggml.add_space_prefix`).
        case sentencePiece(SentencePieceEncoder, addSpacePrefix: Bool)
    }

    /// Number of tokens in the vocabulary.
    public var count: Int { vocabulary.tokens.count }

    /// Converts text to token ids.
    /// - Parameters:
    ///   - addSpecial: add BOS and/or EOS, but only where the vocabulary asks for them
    ///     (`addBOS`, `addEOS`); most byte-level models ask for neither.
    ///   - parseSpecial: recognise control tokens such as `<|im_start|>` written in the text;
    ///     when false they are tokenized as ordinary text. User-defined tokens are always recognised.
    public func encode(_ text: String, addSpecial: Bool = false, parseSpecial: Bool = true) -> [TokenID] {
        var output: [TokenID] = []
        if addSpecial, vocabulary.addBOS, let bos = vocabulary.bosID {
            output.append(bos)
        }
        let bytes = Array(text.utf8)
        output.reserveCapacity(output.count + bytes.count / 3)

        let hasMarkers = parseSpecial && Self.containsLiteralMarker(bytes)
        switch algorithm {
        case .bytePairs(let preTokenizer, let encoder):
            var classified = ClassifiedText()
            var ends: [Int] = []
            var scratch: [Int] = []
            var workspace = BytePairEncoder.Workspace()
            for fragment in specialTokens.split(bytes, parseSpecial: parseSpecial) {
                switch fragment {
                case .token(let id):
                    output.append(id)
                case .text(let range) where hasMarkers:
                    let text = Self.removingLiteralMarkers(Array(bytes[range]))
                    classified.load(text, 0..<text.count)
                    preTokenizer.split(classified, into: &ends, scratch: &scratch)
                    var start = 0
                    for end in ends {
                        encoder.encode(text[classified.byteOffsets[start]..<classified.byteOffsets[end]], into: &output, workspace: &workspace)
                        start = end
                    }
                case .text(let range):
                    classified.load(bytes, range)
                    preTokenizer.split(classified, into: &ends, scratch: &scratch)
                    var start = 0
                    for end in ends {
                        let word = bytes[classified.byteOffsets[start]..<classified.byteOffsets[end]]
                        encoder.encode(word, into: &output, workspace: &workspace)
                        start = end
                    }
                }
            }
        case .sentencePiece(let encoder, let addSpacePrefix):
            // llama.cpp: the first fragment, and each one after a special token, gets the prefix
            var afterSpecial = true
            for fragment in specialTokens.split(bytes, parseSpecial: parseSpecial) {
                switch fragment {
                case .token(let id):
                    output.append(id)
                    afterSpecial = true
                case .text(let range):
                    var text: [UInt8] = addSpacePrefix && afterSpecial ? [UInt8(ascii: " ")] : []
                    text.append(contentsOf: hasMarkers ? Self.removingLiteralMarkers(Array(bytes[range])) : Array(bytes[range]))
                    encoder.encode(text[...], into: &output)
                    afterSpecial = false
                }
            }
        }

        if addSpecial, vocabulary.addEOS, let eos = vocabulary.eosID {
            output.append(eos)
        }
        return output
    }

    /// Marks `text` as literal for a chat template: after rendering, `encode` with special
    /// parsing tokenizes it as text even where it spells a control token such as `<|im_end|>`,
    /// so message content cannot close its own turn; only the template's own markup becomes
    /// control tokens. (A marker, U+FDD0, is inserted into each such spelling and dropped by
    /// `encode`; U+FDD0 already in `text`, a Unicode noncharacter, is dropped.)
    public func literal(_ text: String) -> String {
        String(decoding: specialTokens.protect(Array(text.utf8)), as: UTF8.self)
    }

    /// U+FDD0, a noncharacter: what `literal(_:)` inserts and `encode` drops.
    static let literalMarkerBytes: [UInt8] = [0xEF, 0xB7, 0x90]

    static func containsLiteralMarker(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 3 else { return false }
        for index in 0..<(bytes.count - 2) where bytes[index] == 0xEF && bytes[index + 1] == 0xB7 && bytes[index + 2] == 0x90 {
            return true
        }
        return false
    }

    static func removingLiteralMarkers(_ bytes: [UInt8]) -> [UInt8] {
        guard containsLiteralMarker(bytes) else { return bytes }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if index + 2 < bytes.count && bytes[index] == 0xEF && bytes[index + 1] == 0xB7 && bytes[index + 2] == 0x90 {
                index += 3
                continue
            }
            output.append(bytes[index])
            index += 1
        }
        return output
    }

    /// Converts token ids to text. Byte sequences that are not valid UTF-8 (a token sequence
    /// cut inside a character) become U+FFFD.
    /// - Parameter skipSpecial: leave out control and unknown tokens such as `<|im_end|>`.
    public func decode(_ ids: [TokenID], skipSpecial: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            appendBytes(of: id, skipSpecial: skipSpecial, to: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The raw bytes token `id` stands for (a control token's own text); empty for ids outside
    /// the vocabulary and for unused or undefined tokens.
    public func bytes(of id: TokenID) -> [UInt8] {
        var bytes: [UInt8] = []
        appendBytes(of: id, skipSpecial: false, to: &bytes)
        return bytes
    }

    /// Appends the bytes of `id` to `bytes`; the one place decoding rules live.
    func appendBytes(of id: TokenID, skipSpecial: Bool, to bytes: inout [UInt8]) {
        let index = Int(id)
        guard index >= 0 && index < count else { return }
        if skipSpecial && (types[index] == .control || types[index] == .unknown) { return }
        bytes.append(contentsOf: pieceBytes[pieceStarts[index]..<pieceStarts[index + 1]])
    }

    /// Whether generating `id` should end the reply: EOS, end-of-turn, and the control tokens
    /// llama.cpp treats as such by name (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, FIM
    /// padding/repository/file-separator tokens, ...).
    public func isEndOfGeneration(_ id: TokenID) -> Bool {
        endOfGeneration.contains(id)
    }

    /// All end-of-generation tokens, in ascending order.
    public var endOfGenerationTokens: [TokenID] { endOfGeneration.sorted() }

    /// The role of `id` after llama.cpp's corrections (ids outside the vocabulary are undefined).
    public func type(of id: TokenID) -> TokenType {
        let index = Int(id)
        return index >= 0 && index < count ? types[index] : .undefined
    }

    /// What a token's text decodes to, following llama.cpp's `token_to_piece`.
    private static func piece(of text: String, type: TokenType, sentencePiece: Bool) -> [UInt8] {
        switch type {
        case .normal where sentencePiece:
            // `▁` stands for a space
            var bytes: [UInt8] = []
            var rest = Array(text.utf8)[...]
            while let first = rest.first {
                if rest.starts(with: SentencePieceEncoder.spaceMarker) {
                    bytes.append(UInt8(ascii: " "))
                    rest = rest.dropFirst(SentencePieceEncoder.spaceMarker.count)
                } else {
                    bytes.append(first)
                    rest = rest.dropFirst()
                }
            }
            return bytes
        case .normal:
            return ByteAlphabet.decode(text)
        case .control, .unknown, .userDefined:
            return Array(text.utf8)
        case .byte:
            // `<0xAB>`
            let utf8 = Array(text.utf8)
            guard utf8.count == 6, let value = UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
            else { return [] }
            return [value]
        case .undefined, .unused:
            return []
        }
    }
}
