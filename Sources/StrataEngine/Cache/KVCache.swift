/// Keys and values of every layer for the positions processed so far, in float32.
///
/// Storage for `capacity` positions is allocated once; `truncate(to:)` rolls back positions
/// (e.g. rejected draft tokens) without freeing anything.
///
/// Layers that attend over a sliding window (Gemma 3) keep only recent positions: their slots
/// hold `windowRows` positions from `windowStart` on, and when a pass would run past the end
/// the positions no query can reach any more are dropped (the slot's contents move to its
/// front). Enough history before the window is kept that speculation, the layer-skip search
/// and continuation scoring can roll back `rollbackMargin` positions behind their last pass.
public struct KVCache: Sendable {
    /// Positions stored (the next token goes at position `count`).
    public private(set) var count: Int = 0
    /// Positions that fit.
    public var capacity: Int { capacityStorage }
    private var capacityStorage: Int
    /// Floats per position per layer (`kvHeads × headDimensions`).
    public let rowWidth: Int
    /// Per slot (one per layer, plus one per repeated step of a looping plan):
    /// [stored positions × kvHeads × headDimensions]; a windowed slot's row 0 is position
    /// `windowStart`, every other slot's is position 0.
    public internal(set) var keys: [[Float]]
    /// Per slot: laid out as `keys`.
    public internal(set) var values: [[Float]]
    /// The sliding window of the windowed slots; nil when every slot keeps every position.
    let window: Int?
    /// Per layer slot: whether it keeps only recent positions. Extra slots (repeated layers)
    /// keep every position.
    let windowedSlots: [Bool]
    /// Positions each windowed slot stores.
    private(set) var windowRows: Int
    /// The first position a windowed slot still holds.
    public private(set) var windowStart: Int = 0

    /// Positions kept before a pass's window, so a rollback of at most this many positions
    /// behind the last pass's start (drafts, searches, continuations) finds its keys.
    public static let rollbackMargin = 256
    /// Positions a windowed slot stores beyond its window: room for the rollback margin and
    /// one prompt slice, so a slot's contents move at most once per slice.
    static let windowSlack = 512

    /// A cache for `config` holding up to `capacity` positions (default: the model's context).
    /// `boundedWindows: false` makes sliding-window layers keep every position too (tests
    /// compare the two).
    public init(config: ModelConfig, capacity: Int? = nil, boundedWindows: Bool = true) {
        let capacity = max(1, capacity ?? config.contextLength)
        capacityStorage = capacity
        rowWidth = config.kvHeadCount * config.headDimensions
        let windowed = (0..<config.layerCount).map { boundedWindows && config.attentionWindow(layer: $0) != nil }
        windowedSlots = windowed
        window = windowed.contains(true) ? config.slidingWindow : nil
        windowRows = window.map { min(capacity, $0 + Self.windowSlack) } ?? capacity
        let full = [Float](repeating: 0, count: capacity * rowWidth)
        let bounded = [Float](repeating: 0, count: windowRows * rowWidth)
        keys = windowed.map { $0 ? bounded : full }
        values = keys
    }

    /// Holds no storage: stands in for a cache while the real one is swapped elsewhere.
    static var placeholder: KVCache { KVCache() }

    private init() {
        capacityStorage = 0
        rowWidth = 0
        keys = []
        values = []
        window = nil
        windowedSlots = []
        windowRows = 0
    }

    /// Whether slot `slot` keeps only recent positions (extra slots never do).
    private func isWindowed(_ slot: Int) -> Bool {
        slot < windowedSlots.count && windowedSlots[slot]
    }

    /// The first position slot `slot` holds (row 0 of its storage).
    func firstStoredPosition(slot: Int) -> Int {
        isWindowed(slot) ? windowStart : 0
    }

    /// The lowest position a pass may start at, or the cache be cut back to, other than 0:
    /// the window of a token there must still be stored.
    public var earliestRestart: Int {
        guard let window, windowStart > 0 else { return 0 }
        return windowStart + window - 1
    }

    /// Whether `truncate(to: newCount)` keeps what later passes need (always for 0: the cache
    /// starts over).
    public func canTruncate(to newCount: Int) -> Bool {
        newCount >= 0 && newCount <= count && (newCount == 0 || newCount >= earliestRestart)
    }

    /// Forgets every position from `newCount` on.
    public mutating func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count, "cannot truncate a cache of \(count) positions to \(newCount)")
        precondition(canTruncate(to: newCount),
                     "cannot truncate to \(newCount): sliding-window layers hold positions from \(windowStart) only")
        count = newCount
        if newCount == 0 { windowStart = 0 }
    }

    /// Makes sure slots `0..<count` exist (plans that repeat layers need more than one per layer).
    mutating func reserveSlots(_ count: Int) {
        while keys.count < count {
            keys.append([Float](repeating: 0, count: capacity * rowWidth))
            values.append([Float](repeating: 0, count: capacity * rowWidth))
        }
    }

    /// Makes room in the windowed slots for a pass writing `tokens` positions from `start`:
    /// drops the positions before `start`'s window (less the rollback margin) when the pass
    /// would run past the stored rows, and grows the rows when even that is not enough.
    mutating func prepareWindows(start: Int, tokens: Int) {
        guard let window else { return }
        if start == 0 { windowStart = 0 }
        let end = max(start + tokens, count)
        guard end - windowStart > windowRows else { return }
        let newStart = max(windowStart, start - window + 1 - Self.rollbackMargin)
        let kept = max(0, count - newStart)
        let rows = max(windowRows, min(capacity, end - newStart))
        let shift = (newStart - windowStart) * rowWidth
        for slot in windowedSlots.indices where isWindowed(slot) {
            keys[slot] = Self.moved(keys[slot], from: shift, count: kept * rowWidth, rows: rows * rowWidth)
            values[slot] = Self.moved(values[slot], from: shift, count: kept * rowWidth, rows: rows * rowWidth)
        }
        windowRows = rows
        windowStart = newStart
    }

    /// `storage[from..<from + count]` at the front of an array of `rows` floats.
    private static func moved(_ storage: [Float], from: Int, count: Int, rows: Int) -> [Float] {
        if rows == storage.count {
            var result = storage
            result.replaceSubrange(0..<count, with: storage[from..<(from + count)])
            return result
        }
        var result = [Float](repeating: 0, count: rows)
        result.replaceSubrange(0..<count, with: storage[from..<(from + count)])
        return result
    }

    /// Marks positions up to `newCount` as filled (called by the forward pass once every layer wrote them).
    mutating func advance(to newCount: Int) {
        precondition(newCount <= capacity)
        count = max(count, newCount)
    }

    /// The same positions in a cache of another capacity (at least `count`).
    func resized(capacity newCapacity: Int) -> KVCache {
        precondition(newCapacity >= count)
        var result = self
        let size = newCapacity * rowWidth
        let newRows = window.map { max(windowRows, min(newCapacity, $0 + Self.windowSlack)) } ?? windowRows
        let keptWindowed = (count - windowStart) * rowWidth
        func resizedSlot(_ slot: Int, _ storage: [Float]) -> [Float] {
            if isWindowed(slot) {
                return Self.moved(storage, from: 0, count: keptWindowed, rows: newRows * rowWidth)
            }
            return Self.moved(storage, from: 0, count: count * rowWidth, rows: size)
        }
        result.keys = keys.enumerated().map { resizedSlot($0.offset, $0.element) }
        result.values = values.enumerated().map { resizedSlot($0.offset, $0.element) }
        result.windowRows = newRows
        result.capacityStorage = newCapacity
        return result
    }

    /// Keys and values of some positions of every slot, as `snapshot(_:)` copied them.
    public struct Snapshot: Sendable {
        let positions: Range<Int>
        let keys: [[Float]]
        let values: [[Float]]
    }

    /// The storage range of `positions` in slot `slot`.
    private func span(_ positions: Range<Int>, slot: Int) -> Range<Int> {
        let first = firstStoredPosition(slot: slot)
        precondition(positions.lowerBound >= first, "positions from \(positions.lowerBound) are no longer stored")
        return ((positions.lowerBound - first) * rowWidth)..<((positions.upperBound - first) * rowWidth)
    }

    /// Copies positions `positions` of every slot, so that a pass which overwrites them (a
    /// draft plan scored on text the full model already processed) can be undone.
    public func snapshot(_ positions: Range<Int>) -> Snapshot {
        Snapshot(positions: positions,
                 keys: keys.indices.map { Array(keys[$0][span(positions, slot: $0)]) },
                 values: values.indices.map { Array(values[$0][span(positions, slot: $0)]) })
    }

    /// Puts back what `snapshot(_:)` copied (slots added since then are left as they are).
    public mutating func restore(_ snapshot: Snapshot) {
        for slot in 0..<min(keys.count, snapshot.keys.count) {
            let range = span(snapshot.positions, slot: slot)
            keys[slot].replaceSubrange(range, with: snapshot.keys[slot])
            values[slot].replaceSubrange(range, with: snapshot.values[slot])
        }
    }

    /// Bytes of key/value storage.
    public var byteCount: Int { 2 * keys.reduce(0) { $0 + $1.count } * MemoryLayout<Float>.size }
}
