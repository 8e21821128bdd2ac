import StrataTokenizer
import Synchronization

/// An index over the token sequences of earlier requests (each finished request's prompt and
/// output, added as one document), from which a drafter copies the continuation most often seen
/// after the current text's longest matching suffix (SuffixDecoding; methods.md section 10).
///
/// One history is shared by the concurrent sequences of a server: every method may be called
/// from any thread, and each holds one lock for a few microseconds.
///
/// Bounded: the documents hold at most `budget` tokens, each document counting its length plus
/// one (the separator that ends it). Adding a document evicts the oldest documents first until it
/// fits, and an evicted document is never proposed from again; a document longer than the budget
/// keeps its last `budget - 1` tokens. Memory: about 44 bytes per token of the budget rounded up
/// to a power of two (4 for the token, and 8 for each of the 5 indexed n-gram lengths: a hash
/// bucket and a chain link), so 11.5 MB for the default 262,144 tokens, allocated at `init`.
///
/// Lookup costs microseconds whatever the budget: the last n tokens of the text are hashed
/// (n = 32, 16, 8, 4, 2, longest first) and only the chain of earlier occurrences of that n-gram
/// is walked, newest first, up to `occurrenceLimit` occurrences.
public final class TokenHistory: Sendable {
    /// The default budget: room for about a hundred requests of a few thousand tokens.
    public static let defaultBudget = 262_144

    /// Most tokens the documents hold, separators included.
    public let budget: Int
    private let index: Mutex<TokenHistoryIndex>

    /// An empty history holding at most `budget` (at least 2) tokens.
    public convenience init(budget: Int = TokenHistory.defaultBudget) {
        self.init(budget: budget, positionLimit: Int(UInt32.max))
    }

    /// `positionLimit` is where positions start again from the first (tests make it small).
    init(budget: Int, positionLimit: Int) {
        precondition(budget >= 2, "a history holds at least one token and its separator")
        self.budget = budget
        index = Mutex(TokenHistoryIndex(budget: budget, positionLimit: positionLimit))
    }

    /// Adds one finished request's text (its prompt followed by its output) as a document,
    /// evicting the oldest documents as the budget requires.
    public func add(_ tokens: [TokenID]) {
        index.withLock { $0.add(tokens) }
    }

    /// Up to `maximum` tokens to follow `history`: the continuation seen most often after the
    /// longest suffix of `history` (up to 32 tokens, at least 2) that occurs in the documents,
    /// and that suffix's length (0 when nothing matches). The draft is at most as long as the
    /// match (a longer match is likelier to be continued alike) and stops where fewer than a
    /// tenth of the occurrences continue that way. Ties go to the most recent occurrence.
    public func proposal(for history: [TokenID], maximum: Int) -> (tokens: [TokenID], matchLength: Int) {
        index.withLock { $0.proposal(for: history, maximum: maximum) }
    }

    /// Tokens held, separators included (at most `budget`).
    public var count: Int { index.withLock { $0.liveCount } }

    /// Documents held.
    public var documentCount: Int { index.withLock { $0.documents.count - $0.firstDocument } }
}

/// The state behind `TokenHistory`'s lock: the documents in a ring of tokens, and per indexed
/// n-gram length a hash table of chains through the positions where such n-grams end (as zlib
/// finds earlier matches). Positions are absolute (never reused until `positionLimit`), so an
/// evicted position is recognised by being older than `oldest`, and chains run from new to old:
/// eviction is a single assignment and leaves nothing reachable behind.
struct TokenHistoryIndex: Sendable {
    // MARK: constants

    /// The n-gram lengths indexed. Powers of two keep the memory at 5 links per token, and a
    /// match found at one length is extended token by token up to the next one.
    static let levels = [2, 4, 8, 16, 32]
    /// The longest match looked for: beyond it, a longer match hardly predicts better.
    static let longestMatch = 32
    /// Most occurrences of a suffix whose continuations are counted, newest first: enough for
    /// the frequencies to mean something, few enough that lookup stays in microseconds.
    static let occurrenceLimit = 256
    /// Most chain links walked per n-gram length, hash collisions included.
    static let chainLimit = 1024
    /// Draft length per matched token (SuffixDecoding's α in max_spec = α · match_length).
    static let draftPerMatchedToken = 1.0
    /// A draft stops where fewer than this share of the occurrences continue it (SuffixDecoding).
    static let frequencyFloor = 0.1
    /// Ends each document in the ring: no token equals it, so no match or continuation crosses it.
    static let separator: TokenID = -1
    /// Position 0 marks an empty bucket; documents start at 1.
    static let firstPosition = 1

    // MARK: state

    let budget: Int
    let positionLimit: Int
    /// The ring's size: the budget rounded up to a power of two, also the bucket count per level.
    let capacity: Int
    private let mask: Int
    private let bucketShift: UInt64
    private var tokens: [TokenID]
    /// Per level, `capacity` buckets: the newest position where an n-gram of that hash ends.
    private var heads: [UInt32]
    /// Per level, by ring slot: the previous position in the same bucket.
    private var links: [UInt32]
    /// Live documents from `firstDocument` on: their first position and token count.
    private(set) var documents: [(start: Int, count: Int)] = []
    private(set) var firstDocument = 0
    /// The next position to write, the oldest live one, and the tokens between them.
    private var next = Self.firstPosition
    private var oldest = Self.firstPosition
    var liveCount: Int { next - oldest }

    /// Scratch of one lookup, kept to avoid allocating per round: candidate occurrences (the
    /// position each continues from) and the distinct next tokens with their counts.
    private var occurrences: [Int] = []
    private var candidates: [(token: TokenID, count: Int)] = []

    init(budget: Int, positionLimit: Int) {
        self.budget = budget
        self.positionLimit = positionLimit
        var capacity = 2
        while capacity < budget { capacity *= 2 }
        self.capacity = capacity
        mask = capacity - 1
        bucketShift = UInt64(64 - capacity.trailingZeroBitCount)
        tokens = Array(repeating: Self.separator, count: capacity)
        heads = Array(repeating: 0, count: capacity * Self.levels.count)
        links = Array(repeating: 0, count: capacity * Self.levels.count)
        occurrences.reserveCapacity(Self.occurrenceLimit)
        candidates.reserveCapacity(Self.occurrenceLimit)
    }

    // MARK: adding

    mutating func add(_ document: [TokenID]) {
        let kept = document.suffix(budget - 1)
        guard !kept.isEmpty else { return }
        let size = kept.count + 1
        if next + size > positionLimit { restartPositions() }
        while liveCount + size > budget { evictOldest() }
        let start = next
        for (offset, token) in kept.enumerated() { tokens[(start + offset) & mask] = token }
        tokens[(start + kept.count) & mask] = Self.separator
        for (level, length) in Self.levels.enumerated() where length <= kept.count {
            for end in (start + length - 1)..<(start + kept.count) {
                let bucket = level * capacity + self.bucket(hash: hashOfRing(endingAt: end, length: length))
                links[level * capacity + (end & mask)] = heads[bucket]
                heads[bucket] = UInt32(end)
            }
        }
        documents.append((start, kept.count))
        next += size
    }

    private mutating func evictOldest() {
        firstDocument += 1
        oldest = firstDocument < documents.count ? documents[firstDocument].start : next
        // Keep the list short without shifting it on every eviction.
        if firstDocument > 64 && firstDocument * 2 > documents.count {
            documents.removeFirst(firstDocument)
            firstDocument = 0
        }
    }

    /// Re-adds the live documents from the first position, so positions fit in 32 bits: once per
    /// four billion tokens added.
    private mutating func restartPositions() {
        let live = documents[firstDocument...].map { document in
            (document.start..<(document.start + document.count)).map { tokens[$0 & mask] }
        }
        for index in heads.indices { heads[index] = 0 }
        documents = []
        firstDocument = 0
        next = Self.firstPosition
        oldest = Self.firstPosition
        for document in live { add(document) }
    }

    // MARK: lookup

    mutating func proposal(for history: [TokenID], maximum: Int) -> (tokens: [TokenID], matchLength: Int) {
        guard maximum > 0, liveCount > 0 else { return ([], 0) }
        // The longest indexed length with an occurrence that has a continuation.
        var level = Self.levels.count - 1
        occurrences.removeAll(keepingCapacity: true)
        while level >= 0 {
            if Self.levels[level] <= history.count { collectOccurrences(of: history, level: level) }
            if !occurrences.isEmpty { break }
            level -= 1
        }
        guard level >= 0 else { return ([], 0) }
        let matchLength = keepLongestMatches(of: history, level: level)
        let limit = min(maximum, max(1, Int(Self.draftPerMatchedToken * Double(matchLength))))
        return (draft(limit: limit), matchLength)
    }

    /// Fills `occurrences` with the positions following the newest occurrences of the last
    /// `levels[level]` tokens of `history` that the documents continue.
    private mutating func collectOccurrences(of history: [TokenID], level: Int) {
        occurrences.removeAll(keepingCapacity: true)
        let length = Self.levels[level]
        var hash = Self.hashSeed
        for token in history[(history.count - length)...] { hash = Self.mix(hash, token) }
        var position = Int(heads[level * capacity + bucket(hash: hash)])
        var steps = 0
        while position >= oldest && steps < Self.chainLimit && occurrences.count < Self.occurrenceLimit {
            if tokens[(position + 1) & mask] != Self.separator && matches(history, endingAt: position, length: length) {
                occurrences.append(position + 1)
            }
            position = Int(links[level * capacity + (position & mask)])
            steps += 1
        }
    }

    /// Measures each occurrence's match with `history` beyond the level's length (up to the next
    /// level's, which found none), keeps those of the longest match, and returns its length.
    private mutating func keepLongestMatches(of history: [TokenID], level: Int) -> Int {
        let bound = min(level + 1 < Self.levels.count ? Self.levels[level + 1] - 1 : Self.longestMatch, history.count)
        var longest = 0
        var kept = 0
        for index in occurrences.indices {
            let continuation = occurrences[index]
            var length = Self.levels[level]
            // A separator (the previous document's end) stops the extension; so does `oldest`,
            // before which the ring holds evicted text.
            while length < bound && continuation - 1 - length >= oldest
                && tokens[(continuation - 1 - length) & mask] == history[history.count - 1 - length] {
                length += 1
            }
            if length > longest {
                longest = length
                kept = 0
            }
            if length == longest {
                occurrences[kept] = continuation
                kept += 1
            }
        }
        occurrences.removeLast(occurrences.count - kept)
        return longest
    }

    /// Follows the occurrences token by token, taking the next token most of them agree on
    /// (ties: the newest occurrence's), while at least `frequencyFloor` of them still agree.
    private mutating func draft(limit: Int) -> [TokenID] {
        let total = Double(occurrences.count)
        var draft: [TokenID] = []
        while draft.count < limit && !occurrences.isEmpty {
            candidates.removeAll(keepingCapacity: true)
            for continuation in occurrences {
                let token = tokens[continuation & mask]
                guard token != Self.separator else { continue }
                if let index = candidates.firstIndex(where: { $0.token == token }) {
                    candidates[index].count += 1
                } else {
                    candidates.append((token, 1))
                }
            }
            var best = -1
            for index in candidates.indices where best < 0 || candidates[index].count > candidates[best].count {
                best = index
            }
            guard best >= 0, Double(candidates[best].count) >= Self.frequencyFloor * total else { break }
            let token = candidates[best].token
            draft.append(token)
            // Keep (in order) the occurrences that continue with the chosen token, one step on;
            // by index, as iterating the array while writing it would copy it.
            var kept = 0
            for index in occurrences.indices where tokens[occurrences[index] & mask] == token {
                occurrences[kept] = occurrences[index] + 1
                kept += 1
            }
            occurrences.removeLast(occurrences.count - kept)
        }
        return draft
    }

    private func matches(_ history: [TokenID], endingAt end: Int, length: Int) -> Bool {
        guard end - length + 1 >= oldest else { return false }
        for offset in 0..<length where tokens[(end - offset) & mask] != history[history.count - 1 - offset] {
            return false
        }
        return true
    }

    // MARK: hashing

    /// A fixed hash (Swift's `Hasher` is seeded per process), so lookups are reproducible.
    private static let hashSeed: UInt64 = 0x9E37_79B9_7F4A_7C15

    private static func mix(_ hash: UInt64, _ token: TokenID) -> UInt64 {
        let mixed = (hash ^ UInt64(UInt32(bitPattern: token))) &* 0xFF51_AFD7_ED55_8CCD
        return mixed ^ (mixed >> 29)
    }

    private func hashOfRing(endingAt end: Int, length: Int) -> UInt64 {
        var hash = Self.hashSeed
        for position in (end - length + 1)...end { hash = Self.mix(hash, tokens[position & mask]) }
        return hash
    }

    /// The top bits, the best mixed ones.
    private func bucket(hash: UInt64) -> Int { Int(truncatingIfNeeded: (hash &* 0x9E37_79B9_7F4A_7C15) >> bucketShift) }
}
