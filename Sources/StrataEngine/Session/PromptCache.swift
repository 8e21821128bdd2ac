import StrataTokenizer

/// KV caches of finished sequences, kept so that a request beginning with the same tokens (a
/// chat's earlier turns, a regenerated answer) skips their forward passes. Bounded by a count
/// of entries; the least recently used goes first.
struct PromptCache: Sendable {
    struct Entry: Sendable {
        /// The tokens whose keys and values the cache holds, in order.
        var tokens: [TokenID]
        var plan: LayerPlan
        var cache: KVCache
        var lastUse: Int
    }

    let limit: Int
    private(set) var entries: [Entry] = []
    private var uses = 0

    init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Removes and returns the entry sharing the longest prefix with `prompt` under `plan`,
    /// with how many positions of it are reusable: at most all but the prompt's last token,
    /// whose logits decide the first generated token, and no further back than the cache can
    /// be cut (sliding-window layers keep recent positions only). Nil when nothing is shared.
    mutating func take(longestPrefixOf prompt: [TokenID], plan: LayerPlan) -> (cache: KVCache, reusable: Int)? {
        var best: (index: Int, reusable: Int)?
        for (index, entry) in entries.enumerated() where entry.plan == plan {
            let reusable = min(Self.commonPrefix(entry.tokens, prompt), prompt.count - 1)
            // a cache whose sliding-window layers dropped the positions a cut there needs is of no use
            guard entry.cache.canTruncate(to: reusable) else { continue }
            if reusable > (best?.reusable ?? 0) { best = (index, reusable) }
        }
        guard let best else { return nil }
        let entry = entries.remove(at: best.index)
        return (entry.cache, best.reusable)
    }

    /// Keeps `cache`, which holds `tokens`, evicting the least recently used entry when full.
    mutating func insert(tokens: [TokenID], plan: LayerPlan, cache: KVCache) {
        guard limit > 0, !tokens.isEmpty else { return }
        uses += 1
        entries.append(Entry(tokens: tokens, plan: plan, cache: cache, lastUse: uses))
        while entries.count > limit {
            let oldest = entries.indices.min { entries[$0].lastUse < entries[$1].lastUse } ?? 0
            entries.remove(at: oldest)
        }
    }

    private static func commonPrefix(_ first: [TokenID], _ second: [TokenID]) -> Int {
        var length = 0
        while length < first.count && length < second.count && first[length] == second[length] { length += 1 }
        return length
    }
}
