@testable import StrataEngine
import StrataTestSupport
import StrataTokenizer
import Testing

/// The shared index of earlier requests' text: what it proposes, what it forgets, and that it
/// proposes what a plain scan of its documents would.
@Suite("TokenHistory")
struct TokenHistoryTests {
    @Test("proposes what followed the longest match, as long as the match")
    func findsContinuations() {
        let history = TokenHistory(budget: 64)
        history.add([1, 2, 3, 4, 5, 6, 7, 8])
        // A 3-token match drafts 3 tokens (α = 1), a 4-token one 4.
        #expect(history.proposal(for: [9, 2, 3, 4], maximum: 8) == ([5, 6, 7], 3))
        #expect(history.proposal(for: [1, 2, 3, 4], maximum: 8) == ([5, 6, 7, 8], 4))
        #expect(history.proposal(for: [1, 2, 3, 4], maximum: 2) == ([5, 6], 4))
        // A document's end is not continued into the next one.
        history.add([40, 41])
        #expect(history.proposal(for: [5, 6, 7, 8], maximum: 8) == ([], 0))
        // Nothing below two tokens matches; unknown text proposes nothing.
        #expect(history.proposal(for: [9, 4], maximum: 8) == ([], 0))
        #expect(history.proposal(for: [3], maximum: 8) == ([], 0))
        #expect(history.proposal(for: [], maximum: 8) == ([], 0))
        #expect(history.proposal(for: [1, 2], maximum: 0) == ([], 0))
    }

    @Test("the continuation seen most often wins, ties go to the newest, rare ones stop the draft")
    func mostFrequentContinuation() {
        let history = TokenHistory(budget: 256)
        history.add([1, 2, 3, 8, 9])
        history.add([1, 2, 3, 8, 9])
        history.add([1, 2, 3, 7, 6])
        #expect(history.proposal(for: [0, 1, 2, 3], maximum: 8).tokens == [8, 9])
        history.add([5, 6, 1])
        history.add([5, 6, 2])
        #expect(history.proposal(for: [5, 6], maximum: 8).tokens == [2])
        // Eleven occurrences agree on 30, then each goes its own way: 1/11 is below the floor.
        for token in 100..<111 { history.add([20, 21, 30, TokenID(token)]) }
        #expect(history.proposal(for: [20, 21], maximum: 8).tokens == [30])
        // The longest match decides which occurrences count, however frequent shorter ones are.
        history.add([70, 20, 21, 31, 32])
        #expect(history.proposal(for: [70, 20, 21], maximum: 8) == ([31, 32], 3))
    }

    @Test("the budget holds, the oldest documents go first, and evicted text is never proposed")
    func budgetAndEviction() {
        let history = TokenHistory(budget: 20)
        history.add([1, 2, 5])
        history.add([1, 2, 5])
        history.add([1, 2, 6, 7, 8, 9, 10])
        #expect(history.count == 16 && history.documentCount == 3)
        // Two of three occurrences continue with 5.
        #expect(history.proposal(for: [1, 2], maximum: 2).tokens == [5])
        history.add(Array(11...20))
        // 16 + 11 > 20, and still 12 + 11 after the oldest went: both old documents go.
        #expect(history.count == 19 && history.documentCount == 2)
        #expect(history.proposal(for: [1, 2], maximum: 2).tokens == [6, 7])
        history.add(Array(100..<130))
        // A document over the budget keeps its tail, alone.
        #expect(history.count == 20 && history.documentCount == 1)
        #expect(history.proposal(for: [1, 2], maximum: 2) == ([], 0))
        #expect(history.proposal(for: [110, 111], maximum: 2) == ([], 0))
        #expect(history.proposal(for: [111, 112], maximum: 2) == ([113, 114], 2))
    }

    @Test("proposals are those of a plain scan of the documents, across evictions and position restarts",
          arguments: [UInt64(1), 2, 3])
    func matchesPlainScan(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        let budget = 120
        // Positions start again every few documents, so restarts happen often.
        let history = TokenHistory(budget: budget, positionLimit: 400)
        let twin = TokenHistory(budget: budget, positionLimit: 400)
        var documents: [[TokenID]] = []
        for _ in 0..<60 {
            // Four token values: matches of every length, continuations that disagree.
            let document = (0..<Int.random(in: 0...45, using: &random)).map { _ in TokenID.random(in: 0..<4, using: &random) }
            history.add(document)
            twin.add(document)
            Self.add(document, to: &documents, budget: budget)
            #expect(history.count <= budget && history.documentCount == documents.count)
            for _ in 0..<8 {
                var text = (0..<Int.random(in: 0...40, using: &random)).map { _ in TokenID.random(in: 0..<4, using: &random) }
                if let quoted = documents.randomElement(using: &random), !quoted.isEmpty {
                    text += quoted.prefix(Int.random(in: 0...quoted.count, using: &random))
                }
                let maximum = Int.random(in: 0...10, using: &random)
                let proposal = history.proposal(for: text, maximum: maximum)
                let expected = Self.scan(documents, for: text, maximum: maximum)
                #expect(proposal == expected, "\(text) in \(documents)")
                #expect(twin.proposal(for: text, maximum: maximum) == proposal, "deterministic")
            }
        }
    }

    /// The live documents after adding `document` as the history does.
    static func add(_ document: [TokenID], to documents: inout [[TokenID]], budget: Int) {
        let kept = Array(document.suffix(budget - 1))
        guard !kept.isEmpty else { return }
        while documents.map({ $0.count + 1 }).reduce(0, +) + kept.count + 1 > budget { documents.removeFirst() }
        documents.append(kept)
    }

    /// The proposal by definition: every occurrence of the longest suffix (2...32 tokens) that is
    /// continued, newest first, then the most frequent next token while a tenth still agree.
    static func scan(_ documents: [[TokenID]], for text: [TokenID], maximum: Int) -> (tokens: [TokenID], matchLength: Int) {
        guard maximum > 0 else { return ([], 0) }
        for length in stride(from: min(32, text.count), through: 2, by: -1) {
            let suffix = Array(text.suffix(length))
            var occurrences: [ArraySlice<TokenID>] = []
            for document in documents.reversed() where document.count > length {
                for end in stride(from: document.count - 2, through: length - 1, by: -1)
                where Array(document[(end - length + 1)...end]) == suffix {
                    occurrences.append(document[(end + 1)...])
                }
            }
            guard !occurrences.isEmpty else { continue }
            let total = occurrences.count
            var draft: [TokenID] = []
            while draft.count < min(maximum, length) {
                var counts: [(token: TokenID, count: Int)] = []
                for continuation in occurrences where continuation.count > draft.count {
                    let token = continuation[continuation.startIndex + draft.count]
                    if let index = counts.firstIndex(where: { $0.token == token }) { counts[index].count += 1 } else { counts.append((token, 1)) }
                }
                // The first of the most frequent is the newest occurrence's.
                guard let most = counts.map(\.count).max(), let best = counts.first(where: { $0.count == most }),
                      Double(best.count) >= 0.1 * Double(total) else { break }
                draft.append(best.token)
                occurrences = occurrences.filter { $0.count >= draft.count && $0[$0.startIndex + draft.count - 1] == best.token }
            }
            return (draft, length)
        }
        return ([], 0)
    }
}
