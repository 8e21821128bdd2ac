/// A piece of the input after special tokens are cut out: either text still to be
/// pre-tokenized (a byte range of the input) or a special token found verbatim.
enum Fragment: Equatable {
    case text(Range<Int>)
    case token(TokenID)
}

/// Finds control, user-defined and unknown tokens written literally in the text, before any
/// pre-tokenization, the way llama.cpp does: tokens are taken longest text first, and each one
/// splits every remaining text fragment at all its leftmost non-overlapping occurrences.
/// (So with `<a>` and `<a>b` both special, `<a>b` wins wherever it occurs.)
struct SpecialTokenSplitter: Sendable {
    private struct Entry: Sendable {
        let bytes: [UInt8]
        let id: TokenID
        /// Control and unknown tokens are matched only when the caller asks for special
        /// parsing; user-defined tokens always are (as in Hugging Face tokenizers).
        let needsSpecialParsing: Bool
    }

    private let entries: [Entry]
    /// Bytes that start some entry: only positions holding one need checking.
    private let isFirstByte: [Bool]

    init(tokens: [String], types: [TokenType]) {
        var entries: [Entry] = []
        for (index, text) in tokens.enumerated() where !text.isEmpty {
            let type = index < types.count ? types[index] : .normal
            switch type {
            case .control, .unknown:
                entries.append(Entry(bytes: Array(text.utf8), id: TokenID(index), needsSpecialParsing: true))
            case .userDefined:
                entries.append(Entry(bytes: Array(text.utf8), id: TokenID(index), needsSpecialParsing: false))
            default:
                break
            }
        }
        // Longest first; equal lengths by id so the order does not depend on a sort's stability.
        entries.sort { ($0.bytes.count, -$0.id) > ($1.bytes.count, -$1.id) }
        self.entries = entries
        var isFirstByte = [Bool](repeating: false, count: 256)
        for entry in entries { isFirstByte[Int(entry.bytes[0])] = true }
        self.isFirstByte = isFirstByte
    }

    /// Cuts `bytes` into text ranges and special tokens, in order.
    func split(_ bytes: [UInt8], parseSpecial: Bool) -> [Fragment] {
        guard !bytes.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(0..<bytes.count)]
        let active = entries.filter { parseSpecial || !$0.needsSpecialParsing }
        guard !active.isEmpty else { return fragments }

        // Where any special token could start, in ascending order; usually very few.
        let candidates = bytes.indices.filter { isFirstByte[Int(bytes[$0])] }
        guard !candidates.isEmpty else { return fragments }

        var nextFragments: [Fragment] = []
        for entry in active {
            nextFragments.removeAll(keepingCapacity: true)
            var candidate = 0
            for fragment in fragments {
                guard case .text(let range) = fragment else {
                    nextFragments.append(fragment)
                    continue
                }
                var textStart = range.lowerBound
                while candidate < candidates.count && candidates[candidate] < range.lowerBound {
                    candidate += 1
                }
                while candidate < candidates.count && candidates[candidate] < range.upperBound {
                    let position = candidates[candidate]
                    candidate += 1
                    guard position >= textStart,
                        position + entry.bytes.count <= range.upperBound,
                        matches(entry.bytes, in: bytes, at: position)
                    else { continue }
                    if position > textStart { nextFragments.append(.text(textStart..<position)) }
                    nextFragments.append(.token(entry.id))
                    textStart = position + entry.bytes.count
                }
                if range.upperBound > textStart { nextFragments.append(.text(textStart..<range.upperBound)) }
            }
            swap(&fragments, &nextFragments)
        }
        return fragments
    }

    /// `bytes` with every control or unknown token's spelling broken by `Tokenizer.literalMarker`
    /// after its first character, so that `split` with special parsing leaves it as text; marker
    /// bytes already in `bytes` are dropped first, so every marker left is one this inserted.
    func protect(_ input: [UInt8]) -> [UInt8] {
        let marker = Tokenizer.literalMarkerBytes
        let bytes = Tokenizer.removingLiteralMarkers(input)
        let special = entries.filter(\.needsSpecialParsing)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var position = 0
        outer: while position < bytes.count {
            if isFirstByte[Int(bytes[position])] {
                for entry in special where position + entry.bytes.count <= bytes.count && matches(entry.bytes, in: bytes, at: position) {
                    let firstCharacter = Self.firstCharacterLength(entry.bytes)
                    output += entry.bytes[0..<firstCharacter]
                    output += marker
                    output += entry.bytes[firstCharacter...]
                    position += entry.bytes.count
                    continue outer
                }
            }
            output.append(bytes[position])
            position += 1
        }
        return output
    }

    /// Bytes of the first UTF-8 character (1 for a stray continuation byte).
    private static func firstCharacterLength(_ bytes: [UInt8]) -> Int {
        let lead = bytes[0]
        let length = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        return min(length, bytes.count)
    }

    @inline(__always)
    private func matches(_ needle: [UInt8], in bytes: [UInt8], at position: Int) -> Bool {
        for offset in 0..<needle.count where bytes[position + offset] != needle[offset] {
            return false
        }
        return true
    }
}
