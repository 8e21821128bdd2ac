/// SentencePiece-style encoding of one text fragment, as llama.cpp's SPM tokenizer does it
/// (`tokenizer.ggml.model = llama`: Llama 1/2, Mistral, Phi-3, Gemma).
///
/// Spaces become `▁` (U+2581); the text starts as one symbol per UTF-8 character; then, over
/// and over, the adjacent pair whose concatenation is the highest-scoring token (by
/// `tokenizer.ggml.scores`; on ties the leftmost) merges. A symbol left that is not a token is
/// written as byte tokens `<0xXX>` (byte fallback). Unlike byte-level BPE there are no merge
/// ranks and no pre-tokenizer: the scores decide everything.
///
/// Tokens are looked up by their UTF-8 bytes, as llama.cpp's `std::string` map does: a Swift
/// `String` key would also match a canonically equivalent spelling (text "ή" U+03AE found
/// the token "ή" U+1F75, and decoding gave back other bytes than were encoded).
struct SentencePieceEncoder: Sendable {
    private let tokenIDs: [[UInt8]: TokenID]
    private let scores: [Float]
    /// The id of each byte's `<0xXX>` token (or of the byte as a one-character token); nil
    /// when the vocabulary has neither, and the byte is then left out.
    private let byteTokens: [TokenID?]

    /// `▁`, the space marker.
    static let spaceMarker: [UInt8] = [0xE2, 0x96, 0x81]

    init(tokens: [String], scores: [Float], unknownID: TokenID?) {
        var tokenIDs: [[UInt8]: TokenID] = [:]
        tokenIDs.reserveCapacity(tokens.count)
        // the last of duplicate texts wins, as in llama.cpp's token_to_id
        for (index, text) in tokens.enumerated() { tokenIDs[Array(text.utf8)] = TokenID(index) }
        self.tokenIDs = tokenIDs
        self.scores = tokens.indices.map { $0 < scores.count ? scores[$0] : 0 }
        let hexDigits = Array("0123456789ABCDEF")
        byteTokens = (0..<256).map { byte in
            let name = "<0x\(hexDigits[byte >> 4])\(hexDigits[byte & 15])>"
            if let id = tokenIDs[Array(name.utf8)] { return id }
            if byte < 0x80, let id = tokenIDs[[UInt8(byte)]] { return id }
            return unknownID
        }
    }

    private struct Symbol {
        var start: Int
        var length: Int
        var previous: Int
        var next: Int
    }

    private struct Candidate: Comparable {
        var left: Int
        var right: Int
        var score: Float
        var length: Int

        /// Higher scores first, then the leftmost: `<` means "comes out of the queue later".
        static func < (a: Candidate, b: Candidate) -> Bool {
            a.score < b.score || (a.score == b.score && a.left > b.left)
        }
    }

    /// Escapes spaces in `text` (already prefixed with a space where the caller wants one)
    /// and appends its tokens to `output`.
    func encode(_ text: ArraySlice<UInt8>, into output: inout [TokenID]) {
        var escaped: [UInt8] = []
        escaped.reserveCapacity(text.count + text.count / 2)
        for byte in text {
            if byte == UInt8(ascii: " ") { escaped.append(contentsOf: Self.spaceMarker) } else { escaped.append(byte) }
        }
        guard !escaped.isEmpty else { return }

        var symbols: [Symbol] = []
        var offset = 0
        while offset < escaped.count {
            let length = min(Self.characterLength(leadByte: escaped[offset]), escaped.count - offset)
            let index = symbols.count
            symbols.append(Symbol(start: offset, length: length, previous: index - 1,
                                  next: offset + length == escaped.count ? -1 : index + 1))
            offset += length
        }

        var queue = MaxHeap<Candidate>()
        func consider(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let start = symbols[left].start
            let length = symbols[left].length + symbols[right].length
            guard let id = tokenIDs[Array(escaped[start..<(start + length)])] else { return }
            queue.push(Candidate(left: left, right: right, score: scores[Int(id)], length: length))
        }
        for index in 1..<max(symbols.count, 1) { consider(index - 1, index) }

        while let best = queue.pop() {
            let left = symbols[best.left]
            let right = symbols[best.right]
            // a stale candidate: one side has merged with something else since
            guard left.length > 0, right.length > 0, left.length + right.length == best.length else { continue }
            symbols[best.left].length += right.length
            symbols[best.right].length = 0
            symbols[best.left].next = right.next
            if right.next >= 0 { symbols[right.next].previous = best.left }
            consider(symbols[best.left].previous, best.left)
            consider(best.left, symbols[best.left].next)
        }

        var index = 0
        while index != -1 {
            let symbol = symbols[index]
            let bytes = escaped[symbol.start..<(symbol.start + symbol.length)]
            if let id = tokenIDs[Array(bytes)] {
                output.append(id)
            } else {
                for byte in bytes { if let id = byteTokens[Int(byte)] { output.append(id) } }
            }
            index = symbol.next
        }
    }

    /// The length of the UTF-8 sequence a lead byte announces (1 for a stray continuation
    /// byte), as llama.cpp's `unicode_len_utf8` counts it.
    static func characterLength(leadByte: UInt8) -> Int {
        switch leadByte >> 4 {
        case 0xC, 0xD: return 2
        case 0xE: return 3
        case 0xF: return 4
        default: return 1
        }
    }
}

/// A binary max-heap: llama.cpp's merge loop is a priority queue, and its order (including
/// ties, broken by `Comparable`) decides the tokens.
struct MaxHeap<Element: Comparable> {
    private var elements: [Element] = []

    mutating func push(_ element: Element) {
        elements.append(element)
        var child = elements.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[parent] < elements[child] else { break }
            elements.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let top = elements.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var largest = parent
            if left < elements.count && elements[largest] < elements[left] { largest = left }
            if right < elements.count && elements[largest] < elements[right] { largest = right }
            guard largest != parent else { break }
            elements.swapAt(parent, largest)
            parent = largest
        }
        return top
    }
}
