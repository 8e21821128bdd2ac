import StrataTokenizer

/// The most that drafts copied from the text itself (n-gram or prompt-lookup drafting) could
/// gain on one greedy output, given what verification costs.
///
/// It answers "would a better n-gram drafter pay here?" before anyone writes one. The drafter it
/// bounds may copy, at every round, the continuation of ANY earlier occurrence of the last token
/// in the prompt and the text so far (so every n-gram length and every choice among matches is
/// covered), and it knows in advance how many of the copied tokens the model will accept and
/// drafts exactly the number that makes the whole text cheapest. No real drafter knows that, so
/// real n-gram speculation on the same output and costs is at most this fast.
public enum CopyDraftCeiling {
    /// The longest run of `future` that the text after some earlier occurrence of `history`'s
    /// last token reproduces, at most `maximum` tokens.
    static func longestCopy(history: [TokenID], future: ArraySlice<TokenID>, maximum: Int) -> Int {
        guard let last = history.last, maximum > 0, !future.isEmpty else { return 0 }
        var best = 0
        // `start` is where a copy would begin: just after an earlier occurrence of `last`.
        for start in 1..<history.count where history[start - 1] == last {
            var length = 0
            while length < maximum, start + length < history.count, length < future.count,
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
        let history = prompt + output
        // copyable[i]: drafts that could be accepted when output[0..<i] is known.
        var copyable = [Int](repeating: 0, count: output.count)
        for position in 1..<output.count {
            copyable[position] = longestCopy(history: Array(history[0..<(prompt.count + position)]),
                                             future: output[position...], maximum: maximumDraft)
        }
        var cheapest = [Double](repeating: 0, count: output.count + 1)
        for position in stride(from: output.count - 1, through: 1, by: -1) {
            let drafts = min(copyable[position], output.count - 1 - position)
            cheapest[position] = (0...drafts).map { verifyCost($0 + 1) + cheapest[position + $0 + 1] }.min()!
        }
        return cheapest[1]
    }

    /// Plain steps over `cost`: the speedup the best copied drafts would give on `output`.
    public static func speedup(prompt: [TokenID], output: [TokenID], maximumDraft: Int, verifyCost: (Int) -> Double) -> Double {
        let steps = cost(prompt: prompt, output: output, maximumDraft: maximumDraft, verifyCost: verifyCost)
        return steps > 0 ? Double(output.count - 1) * verifyCost(1) / steps : 1
    }
}
