/// Keys and values of every layer for the positions processed so far, in float32.
///
/// Storage for `capacity` positions is allocated once; `truncate(to:)` rolls back positions
/// (e.g. rejected draft tokens) without freeing anything.
public struct KVCache: Sendable {
    /// Positions stored (the next token goes at position `count`).
    public private(set) var count: Int = 0
    /// Positions that fit.
    public var capacity: Int { capacityStorage }
    private var capacityStorage: Int
    /// Floats per position per layer (`kvHeads × headDimensions`).
    public let rowWidth: Int
    /// Per slot (one per layer, plus one per repeated step of a looping plan):
    /// [capacity × kvHeads × headDimensions]
    public internal(set) var keys: [[Float]]
    /// Per slot: [capacity × kvHeads × headDimensions]
    public internal(set) var values: [[Float]]

    /// A cache for `config` holding up to `capacity` positions (default: the model's context).
    public init(config: ModelConfig, capacity: Int? = nil) {
        let capacity = max(1, capacity ?? config.contextLength)
        capacityStorage = capacity
        rowWidth = config.kvHeadCount * config.headDimensions
        keys = Array(repeating: [Float](repeating: 0, count: capacity * rowWidth), count: config.layerCount)
        values = keys
    }

    /// Holds no storage: stands in for a cache while the real one is swapped elsewhere.
    static var placeholder: KVCache { KVCache() }

    private init() {
        capacityStorage = 0
        rowWidth = 0
        keys = []
        values = []
    }

    /// Forgets every position from `newCount` on.
    public mutating func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count, "cannot truncate a cache of \(count) positions to \(newCount)")
        count = newCount
    }

    /// Makes sure slots `0..<count` exist (plans that repeat layers need more than one per layer).
    mutating func reserveSlots(_ count: Int) {
        while keys.count < count {
            keys.append([Float](repeating: 0, count: capacity * rowWidth))
            values.append([Float](repeating: 0, count: capacity * rowWidth))
        }
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
        let kept = count * rowWidth
        let size = newCapacity * rowWidth
        result.keys = keys.map { Array($0[0..<kept]) + [Float](repeating: 0, count: size - kept) }
        result.values = values.map { Array($0[0..<kept]) + [Float](repeating: 0, count: size - kept) }
        result.capacityStorage = newCapacity
        return result
    }

    /// Keys and values of some positions of every slot, as `snapshot(_:)` copied them.
    public struct Snapshot: Sendable {
        let positions: Range<Int>
        let keys: [[Float]]
        let values: [[Float]]
    }

    /// Copies positions `positions` of every slot, so that a pass which overwrites them (a
    /// draft plan scored on text the full model already processed) can be undone.
    public func snapshot(_ positions: Range<Int>) -> Snapshot {
        let span = (positions.lowerBound * rowWidth)..<(positions.upperBound * rowWidth)
        return Snapshot(positions: positions, keys: keys.map { Array($0[span]) }, values: values.map { Array($0[span]) })
    }

    /// Puts back what `snapshot(_:)` copied (slots added since then are left as they are).
    public mutating func restore(_ snapshot: Snapshot) {
        let span = (snapshot.positions.lowerBound * rowWidth)..<(snapshot.positions.upperBound * rowWidth)
        for slot in 0..<min(keys.count, snapshot.keys.count) {
            keys[slot].replaceSubrange(span, with: snapshot.keys[slot])
            values[slot].replaceSubrange(span, with: snapshot.values[slot])
        }
    }

    /// Bytes of key/value storage.
    public var byteCount: Int { 2 * keys.count * capacity * rowWidth * MemoryLayout<Float>.size }
}
