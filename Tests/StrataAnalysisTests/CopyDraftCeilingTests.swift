import StrataAnalysis
import StrataEngine
import StrataTestSupport
import StrataTokenizer
import Testing

@Suite("Copy-draft ceiling: the best n-gram drafting could do on an output")
struct CopyDraftCeilingTests {
    /// Verification of k tokens costs as much as one plain step, whatever k.
    static let flat: @Sendable (Int) -> Double = { _ in 1 }
    /// A prompt of five tokens and an output of 21 that repeats it: 20 decoded tokens, each of
    /// which the text before it can copy.
    static let repeatingPrompt: [TokenID] = [1, 2, 3, 4, 5]
    static let repeatingOutput: [TokenID] = (0..<21).map { TokenID(1 + $0 % 5) }

    @Test("text that never repeats a token gives nothing to copy: every token is a plain step")
    func nothingToCopy() {
        let prompt: [TokenID] = [1, 2, 3]
        let output: [TokenID] = Array(10..<30)
        #expect(CopyDraftCeiling.cost(prompt: prompt, output: output, maximumDraft: 8, verifyCost: Self.flat) == 19)
        #expect(CopyDraftCeiling.speedup(prompt: prompt, output: output, maximumDraft: 8, verifyCost: Self.flat) == 1)
    }

    @Test("a copy stops at the end of the known text: a run of one token is copied one more token per round")
    func copiesOnlyKnownText() {
        // After [9, 5] nothing earlier follows a 5: plain. After [9, 5, 5] the earlier 5 is
        // followed by one known 5: one draft, two tokens. At the last token: plain. 3 rounds.
        #expect(CopyDraftCeiling.cost(prompt: [9], output: [5, 5, 5, 5, 5], maximumDraft: 8, verifyCost: Self.flat) == 3)
    }

    @Test("a verify cost that dips with size is charged to smaller rounds too, as a drafter could over-draft")
    func dippingCosts() {
        // Verifying 4 tokens is measured cheaper than 2 or 3: a round that needs 2 can draft 3
        // (the third wrong) and pay v(4). Twenty tokens in rounds of 5 at v(5) = 1.
        let dipping: (Int) -> Double = { [1: 1, 2: 1.5, 3: 1.5, 4: 1.2, 5: 1][$0] ?? 9 }
        #expect(CopyDraftCeiling.cost(prompt: Self.repeatingPrompt, output: Self.repeatingOutput, maximumDraft: 4,
                                      verifyCost: dipping) == 4)
        // Nothing to copy: a plain step could still be replaced by a wrongly drafted round of 5.
        let overDrafted = CopyDraftCeiling.cost(prompt: [1], output: Array(10..<20), maximumDraft: 4, verifyCost: { $0 == 1 ? 1 : 0.9 })
        #expect(abs(overDrafted - 9 * 0.9) < 1e-12)
    }

    @Test("no finite costs give no speedup figure; an output of one token needs no decoding")
    func degenerateCosts() {
        #expect(CopyDraftCeiling.speedup(prompt: [1], output: [1, 2, 3], maximumDraft: 2, verifyCost: { _ in .infinity }) == nil)
        #expect(CopyDraftCeiling.speedup(prompt: [1], output: [1], maximumDraft: 2, verifyCost: Self.flat) == 1)
        #expect(CopyDraftCeiling.cost(prompt: [1, 2], output: [1, 2, 1, 2], maximumDraft: 0, verifyCost: Self.flat) == 3)
    }

    @Test("a text that repeats its prompt is copied in rounds of the draft limit plus one")
    func periodicText() {
        func cost(maximumDraft: Int) -> Double {
            CopyDraftCeiling.cost(prompt: Self.repeatingPrompt, output: Self.repeatingOutput, maximumDraft: maximumDraft,
                                  verifyCost: Self.flat)
        }
        // Each round verifying the pending token plus 3 drafts yields 4 of the 20 tokens.
        #expect(cost(maximumDraft: 3) == 5)
        // With 4 drafts: 20 = 5 + 5 + 5 + 5.
        #expect(cost(maximumDraft: 4) == 4)
    }

    @Test("when verifying more tokens costs more than it yields, the ceiling is plain decoding")
    func expensiveVerification() {
        func cost(_ verifyCost: (Int) -> Double) -> Double {
            CopyDraftCeiling.cost(prompt: Self.repeatingPrompt, output: Self.repeatingOutput, maximumDraft: 8, verifyCost: verifyCost)
        }
        #expect(cost { $0 == 1 ? 1 : Double($0) + 0.1 } == 20)
        // A cost curve that makes two drafts pay but not three: six rounds of three tokens, one of two.
        #expect(cost { $0 <= 3 ? 1 : 10 } == 7)
    }

    @Test("copies may start after any earlier occurrence of the last token, not only the latest")
    func anyOccurrence() {
        // After the prompt's last 7, the latest earlier 7 is followed by 9 and the first by 8, 8, 8;
        // the output continues 8, 8, 8, so the first occurrence is the one to copy.
        let prompt: [TokenID] = [7, 8, 8, 8, 1, 7, 9, 2, 7]
        let output: [TokenID] = [7, 8, 8, 8, 5]
        // Output[0] comes from the prompt pass; one round verifies the drafts 8, 8, 8 and yields
        // them with the model's own next token, 5.
        #expect(CopyDraftCeiling.cost(prompt: prompt, output: output, maximumDraft: 8, verifyCost: Self.flat) == 1)
        // The latest-match drafter copies what follows a later 7 (the prompt's last one) and
        // gets nothing accepted.
        #expect(Self.ngramCost(prompt: prompt, output: output, draftLength: 3, verifyCost: Self.flat) > 1)
    }

    @Test("the ceiling is never slower than the n-gram drafter with any fixed draft length on the same text")
    func boundsTheDrafter() {
        var generator = SeededGenerator(seed: 0x5EED)
        // Flat, rising, kneed, and dipping (noise in a measured curve: v(4) below v(3)).
        let costs: [(Int) -> Double] = [
            Self.flat, { 1 + 0.15 * Double($0 - 1) }, { $0 <= 3 ? 1 + 0.05 * Double($0) : Double($0) / 2 },
            { [1: 1, 2: 1.1, 3: 1.4, 4: 1.2, 5: 2, 6: 1.9, 7: 2.5][$0] ?? 9 },
        ]
        for trial in 0..<30 {
            // A small alphabet makes repeats, and so drafts, common.
            let alphabet = TokenID(2 + trial % 5)
            let prompt = (0..<12).map { _ in TokenID.random(in: 0..<alphabet, using: &generator) }
            let output = (0..<40).map { _ in TokenID.random(in: 0..<alphabet, using: &generator) }
            for verifyCost in costs {
                let ceiling = CopyDraftCeiling.cost(prompt: prompt, output: output, maximumDraft: 6, verifyCost: verifyCost)
                for length in 1...6 {
                    let drafted = Self.ngramCost(prompt: prompt, output: output, draftLength: length, verifyCost: verifyCost)
                    #expect(ceiling <= drafted + 1e-9, "trial \(trial), draft length \(length): ceiling \(ceiling), drafter \(drafted)")
                }
                #expect(ceiling <= Double(output.count - 1) * verifyCost(1) + 1e-9)
                // Not trivially small either: each round yields at most seven tokens at the least cost.
                let cheapestRound = (1...7).map(verifyCost).min() ?? 1
                #expect(ceiling >= Double(output.count - 1) / 7 * cheapestRound - 1e-9)
            }
        }
    }

    /// Decoding `output` with `NGramDrafter` proposals of up to `draftLength` tokens, greedy
    /// acceptance: the plain steps it costs.
    static func ngramCost(prompt: [TokenID], output: [TokenID], draftLength: Int, verifyCost: (Int) -> Double) -> Double {
        var position = 1
        var cost = 0.0
        while position < output.count {
            let history = prompt + output[0..<position]
            let drafts = NGramDrafter.propose(history: history, maximum: min(draftLength, output.count - 1 - position))
            var accepted = 0
            while accepted < drafts.count, drafts[accepted] == output[position + accepted] { accepted += 1 }
            cost += verifyCost(drafts.count + 1)
            position += accepted + 1
        }
        return cost
    }
}
