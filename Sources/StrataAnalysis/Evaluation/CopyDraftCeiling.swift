import StrataTokenizer

/// The most that drafts copied from the text itself (n-gram or prompt-lookup drafting) could
/// gain on one greedy output, given what verification costs.
///
/// It answers "would a better n-gram drafter pay here?" before anyone writes one. The drafter it
/// bounds may copy, at every round, the continuation of ANY earlier occurrence of the last token
/// in the prompt and the text so far (so every n-gram length and every choice among matches is
/// covered), and it knows in advance how many of the copied tokens the model will accept and
/// drafts exactly the number that makes the whole text cheapest. No real drafter knows that, so
/// real n-gram speculation on the same output and costs is at most this fast. A real drafter may
/// also draft more tokens than get accepted, paying for a larger verification; where measured
/// costs dip with size (noise), that could be cheaper, so a round is charged the least cost of
/// any verification at least as large as the one it needs.
public enum CopyDraftCeiling {
    /// The longest run of `future` that the text after some earlier occurrence of `history`'s
    /// last token reproduces, at most `maximum` tokens.
    static func longestCopy(history: ArraySlice<TokenID>, future: ArraySlice<TokenID>, maximum: Int) -> Int {
        guard let last = history.last, maximum > 0, !future.isEmpty else { return 0 }
        var best = 0
        // `start` is where a copy would begin: just after an earlier occurrence of `last`. A copy
        // stops at the end of the known text: the drafter cannot copy what is not written yet.
        for start in (history.startIndex + 1)..<history.endIndex where history[start - 1] == last {
            var length = 0
            while length < maximum, start + length < history.endIndex, length < future.count,
                  history[start + length] == future[future.startIndex + length] {
                length += 1
            }
            best = max(best, length)
            if best == maximum { break }
        }
        return best
    }

    /// The cost, in plain decoding steps, of decoding `output` after `prompt` with the best
    /// copied drafts (see the type's description): the first output token comes from the prompt
    /// pass and is free, as in the benchmark's timing; every later one is decided by a round that
    /// verifies the pending token plus k ≤ `maximumDraft` drafts at `verifyCost(k + 1)` and
    /// yields k + 1 tokens. `verifyCost(1)` is one plain step (normally 1).
    ///
    /// Found by dynamic programming from the end: the cheapest way on from each position is the
    /// best of a plain step and of every draft length the copies allow there.
    public static func cost(prompt: [TokenID], output: [TokenID], maximumDraft: Int, verifyCost: (Int) -> Double) -> Double {
        guard output.count > 1 else { return 0 }
        let maximumDraft = max(0, maximumDraft)
        // roundCost[k]: the least cost of a verification of k or more tokens (up to the limit).
        var roundCost = [Double](repeating: .infinity, count: maximumDraft + 3)
        for size in stride(from: maximumDraft + 1, through: 1, by: -1) {
            roundCost[size] = min(verifyCost(size), roundCost[size + 1])
        }
        let history = prompt + output
        var cheapest = [Double](repeating: 0, count: output.count + 1)
        for position in stride(from: output.count - 1, through: 1, by: -1) {
            let copyable = longestCopy(history: history[0..<(prompt.count + position)], future: output[position...],
                                       maximum: min(maximumDraft, output.count - 1 - position))
            var best = Double.infinity
            for drafts in 0...copyable { best = min(best, roundCost[drafts + 1] + cheapest[position + drafts + 1]) }
            cheapest[position] = best
        }
        return cheapest[1]
    }

    /// Plain steps over `cost`: the speedup the best copied drafts would give on `output`; 1 when
    /// there is nothing to decode, nil when the costs give no finite figure.
    public static func speedup(prompt: [TokenID], output: [TokenID], maximumDraft: Int, verifyCost: (Int) -> Double) -> Double? {
        let steps = cost(prompt: prompt, output: output, maximumDraft: maximumDraft, verifyCost: verifyCost)
        guard output.count > 1 else { return 1 }
        let plain = Double(output.count - 1) * verifyCost(1)
        guard steps.isFinite, plain.isFinite, steps > 0 else { return nil }
        return plain / steps
    }
}
