/// Byte-level BPE over one pre-tokenized word: start from one token per byte, then repeatedly
/// merge the adjacent pair with the lowest merge rank (the leftmost pair on ties) until no
/// adjacent pair has a merge.
///
/// Merges are stored by token id, `(left, right) -> (rank, merged)`, so merging never builds
/// strings. A min-heap of candidate pairs keeps long words (a line of 500 `=`) near
/// n log n instead of n².
struct BytePairEncoder: Sendable {
    /// The token spelling each single byte, or -1 if the vocabulary lacks it.
    private let byteTokens: [TokenID]
    /// `left << 32 | right` → `rank << 32 | merged`.
    private let merges: [UInt64: UInt64]
    /// Raw bytes of every token whose text is spelled in the byte alphabet; used to emit a word
    /// that is itself a token without merging (`PreTokenizer.wholeWordsSkipMerges`).
    private let wholeWordTokens: [[UInt8]: TokenID]?

    /// Merges whose parts or result are not tokens; such merges can never apply and are dropped.
    let unusableMergeCount: Int

    /// - Parameter tokenIDs: token text (in the byte alphabet) → id, the last id winning for
    ///   duplicate texts as in llama.cpp.
    init(tokens: [String], tokenIDs: [String: TokenID], merges mergeTexts: [String], wholeWords: Bool) {
        byteTokens = ByteAlphabet.scalarForByte.map { tokenIDs[String($0)] ?? -1 }

        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(mergeTexts.count)
        var unusable = 0
        for (rank, text) in mergeTexts.enumerated() {
            // The separator is the first space after the first character: a merge's left part
            // is never empty, but it can start with a literal space in hand-made vocabularies.
            guard let space = text.utf8.dropFirst().firstIndex(of: UInt8(ascii: " ")) else {
                unusable += 1
                continue
            }
            let left = String(text[..<space])
            let right = String(text[text.index(after: space)...])
            guard let leftID = tokenIDs[left], let rightID = tokenIDs[right],
                let mergedID = tokenIDs[left + right]
            else {
                unusable += 1
                continue
            }
            let key = UInt64(UInt32(bitPattern: leftID)) << 32 | UInt64(UInt32(bitPattern: rightID))
            // A repeated pair keeps its first (lowest) rank.
            if merges[key] == nil {
                merges[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: mergedID))
            }
        }
        self.merges = merges
        unusableMergeCount = unusable

        if wholeWords {
            var byBytes: [[UInt8]: TokenID] = [:]
            byBytes.reserveCapacity(tokens.count)
            for (text, id) in tokenIDs {
                if let bytes = ByteAlphabet.decodeStrictly(text) { byBytes[bytes] = id }
            }
            wholeWordTokens = byBytes
        } else {
            wholeWordTokens = nil
        }
    }

    /// Scratch space reused across words so encoding a word does not allocate.
    struct Workspace {
        fileprivate var ids: [TokenID] = []
        fileprivate var next: [Int32] = []
        fileprivate var previous: [Int32] = []
        fileprivate var heap = PairHeap()
    }

    /// Appends the tokens of one word (raw UTF-8 bytes) to `output`.
    func encode(_ word: ArraySlice<UInt8>, into output: inout [TokenID], workspace: inout Workspace) {
        if word.count == 1 {
            appendIfKnown(byteTokens[Int(word[word.startIndex])], to: &output)
            return
        }
        if let wholeWordTokens, let id = wholeWordTokens[Array(word)] {
            output.append(id)
            return
        }

        // A doubly linked list of symbols; merging absorbs the right symbol into the left one.
        workspace.ids.removeAll(keepingCapacity: true)
        workspace.next.removeAll(keepingCapacity: true)
        workspace.previous.removeAll(keepingCapacity: true)
        for (index, byte) in word.enumerated() {
            workspace.ids.append(byteTokens[Int(byte)])
            workspace.previous.append(Int32(index - 1))
            workspace.next.append(index + 1 < word.count ? Int32(index + 1) : -1)
        }
        workspace.heap.removeAll()
        for left in 0..<(word.count - 1) {
            pushPair(left: Int32(left), workspace: &workspace)
        }

        while let candidate = workspace.heap.popMinimum() {
            let left = Int(candidate.left)
            let right = Int(workspace.next[left])
            // Stale entries: either side has merged since the pair was queued.
            guard right >= 0, workspace.ids[left] == candidate.leftID, workspace.ids[right] == candidate.rightID
            else { continue }
            workspace.ids[left] = candidate.mergedID
            workspace.ids[right] = -1
            let afterRight = workspace.next[right]
            workspace.next[left] = afterRight
            if afterRight >= 0 { workspace.previous[Int(afterRight)] = Int32(left) }
            let beforeLeft = workspace.previous[left]
            if beforeLeft >= 0 { pushPair(left: beforeLeft, workspace: &workspace) }
            if afterRight >= 0 { pushPair(left: Int32(left), workspace: &workspace) }
        }

        var index = 0
        while index >= 0 {
            appendIfKnown(workspace.ids[index], to: &output)
            index = Int(workspace.next[index])
        }
    }

    /// A byte with no token of its own produces nothing, as in llama.cpp.
    @inline(__always)
    private func appendIfKnown(_ id: TokenID, to output: inout [TokenID]) {
        if id >= 0 { output.append(id) }
    }

    /// Queues the pair starting at symbol `left` if the vocabulary has a merge for it.
    @inline(__always)
    private func pushPair(left: Int32, workspace: inout Workspace) {
        let right = workspace.next[Int(left)]
        guard right >= 0 else { return }
        let leftID = workspace.ids[Int(left)]
        let rightID = workspace.ids[Int(right)]
        guard leftID >= 0, rightID >= 0 else { return }
        let key = UInt64(UInt32(bitPattern: leftID)) << 32 | UInt64(UInt32(bitPattern: rightID))
        guard let merge = merges[key] else { return }
        workspace.heap.insert(
            PairCandidate(
                order: (merge >> 32) << 32 | UInt64(UInt32(bitPattern: left)),
                left: left, leftID: leftID, rightID: rightID,
                mergedID: TokenID(truncatingIfNeeded: merge & 0xFFFF_FFFF)))
    }
}

/// A queued merge; `order` is `rank << 32 | left` so the lowest rank, then leftmost, pops first.
struct PairCandidate {
    var order: UInt64
    var left: Int32
    var leftID: TokenID
    var rightID: TokenID
    var mergedID: TokenID
}

/// A binary min-heap on `PairCandidate.order`.
struct PairHeap {
    private var items: [PairCandidate] = []

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    mutating func insert(_ item: PairCandidate) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child].order < items[parent].order else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMinimum() -> PairCandidate? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let minimum = items[0]
        items[0] = last
        var parent = 0
        while true {
            let leftChild = 2 * parent + 1
            guard leftChild < items.count else { break }
            let rightChild = leftChild + 1
            let smaller = rightChild < items.count && items[rightChild].order < items[leftChild].order
                ? rightChild : leftChild
            guard items[smaller].order < items[parent].order else { break }
            items.swapAt(smaller, parent)
            parent = smaller
        }
        return minimum
    }
}
