import StrataKernels

/// The per-row state of one pass under a plan's `DepthPolicy`, in buffers kept across passes so
/// a decoding step allocates nothing.
struct DepthRun {
    var policy: DepthPolicy?
    /// Rows of the current pass (the buffers may be longer).
    var rows = 0
    /// Dynamic exit: rows still running (the others exited).
    var running: [Bool] = []
    var runningCount = 0
    /// FFN skip: rows whose stream has saturated.
    var saturated: [Bool] = []
    /// The rows that add the current sublayer's output.
    var adds: [Bool] = []
    /// `[rows × hidden]`: FFN skip, the stream before the FFN; dynamic exit, the mapped stream
    /// of each exited row.
    var streams: [Float] = []
    /// Rows scored by the current exit check, and their logits over the check head.
    var checked: [Int] = []
    var checkLogits: [Float] = []

    mutating func start(policy: DepthPolicy, rows: Int, hiddenSize: Int) {
        self.policy = policy
        self.rows = rows
        func reset(_ flags: inout [Bool], to value: Bool) {
            if flags.count < rows { flags = [Bool](repeating: value, count: rows) }
            for index in 0..<rows { flags[index] = value }
        }
        reset(&running, to: true)
        reset(&saturated, to: false)
        reset(&adds, to: true)
        runningCount = rows
        if streams.count < rows * hiddenSize { streams = [Float](repeating: 0, count: rows * hiddenSize) }
    }
}

extension Transformer {
    mutating func startDepthRun(_ policy: DepthPolicy, rows: Int) {
        depthRun.start(policy: policy, rows: rows, hiddenSize: config.hiddenSize)
        depthUsage.tokens += rows
    }

    /// Marks the rows that add this step's attention output; returns how many.
    mutating func attentionRows() -> Int {
        guard case .dynamicExit = depthRun.policy else { return depthRun.rows }
        let rows = depthRun.rows
        for index in 0..<rows { depthRun.adds[index] = depthRun.running[index] }
        return depthRun.runningCount
    }

    mutating func countAttention(rows: Int, adding: Int) {
        depthUsage.attentionRuns += adding
        depthUsage.keyValueFills += rows - adding
    }

    /// Marks the rows that run this step's FFN; returns how many. FFN skip: the rows not yet
    /// saturated (all rows outside the skippable layers), whose stream is kept to measure the
    /// turn; dynamic exit: the running rows.
    mutating func feedForwardRows(layer: Int) -> Int {
        let rows = depthRun.rows
        switch depthRun.policy {
        case .dynamicExit:
            for index in 0..<rows { depthRun.adds[index] = depthRun.running[index] }
            return depthRun.runningCount
        case .feedForwardSkip(let skip) where skip.layers.contains(layer):
            var adding = 0
            for index in 0..<rows {
                depthRun.adds[index] = !depthRun.saturated[index]
                if depthRun.adds[index] { adding += 1 }
            }
            if adding > 0 {
                FloatKernels.copy(scratch.hidden, count: rows * config.hiddenSize, into: &depthRun.streams, at: 0)
            }
            return adding
        case .feedForwardSkip, nil:
            return rows
        }
    }

    /// Counts the FFN rows and, for FFN skip in a skippable layer, marks the rows whose stream
    /// turned less than the threshold allows as saturated.
    mutating func finishFeedForward(layer: Int, adding: Int) {
        depthUsage.feedForwardRuns += adding
        guard case .feedForwardSkip(let skip) = depthRun.policy, skip.layers.contains(layer), adding > 0 else { return }
        let width = config.hiddenSize
        for row in 0..<depthRun.rows where depthRun.adds[row] {
            var dot = 0.0, before = 0.0, after = 0.0
            for index in (row * width)..<((row + 1) * width) {
                let x = Double(depthRun.streams[index]), y = Double(scratch.hidden[index])
                dot += x * y
                before += x * x
                after += y * y
            }
            let cosine = before > 0 && after > 0 ? dot / (before.squareRoot() * after.squareRoot()) : 1
            if cosine >= Double(skip.threshold) { depthRun.saturated[row] = true }
        }
    }

    /// Zeroes the rows of `scratch.projection` that do not add it, so the residual add (and a
    /// post-sublayer norm or map, which keep zero at zero) leaves their stream bitwise unchanged.
    mutating func clearProjectionRows(tokens: Int) {
        let width = config.hiddenSize
        for row in 0..<tokens where !depthRun.adds[row] {
            for index in (row * width)..<((row + 1) * width) { scratch.projection[index] = 0 }
        }
    }

    /// Scores every running row after `exit`'s map and lets the confident ones leave: their
    /// mapped stream is kept for the output head, their own stream stays as it is for the key
    /// and value projections of the remaining layers.
    mutating func checkExits(_ exit: DynamicExit, map: LinearMap, rows: Int) {
        guard depthRun.runningCount > 0, let matrix = map.matrix else { return }
        let width = config.hiddenSize
        depthRun.checked.removeAll(keepingCapacity: true)
        for row in 0..<rows where depthRun.running[row] {
            FloatKernels.copy(scratch.hidden, from: row * width, count: width, into: &scratch.projection,
                              at: depthRun.checked.count * width)
            depthRun.checked.append(row)
        }
        let count = depthRun.checked.count
        depthUsage.exitChecks += count
        let vocabulary = exit.head.tokens.count
        // taken out of `depthRun` for the product (which mutates self), and put back
        var checkLogits: [Float] = []
        swap(&checkLogits, &depthRun.checkLogits)
        defer { swap(&checkLogits, &depthRun.checkLogits) }
        if checkLogits.count < count * vocabulary { checkLogits = [Float](repeating: 0, count: count * vocabulary) }
        headProduct(rows: count, map: matrix, output: exit.head.rows, into: &checkLogits)
        for (slot, row) in depthRun.checked.enumerated() {
            let logits = checkLogits[(slot * vocabulary)..<((slot + 1) * vocabulary)]
            guard Self.topProbability(logits) >= Double(exit.threshold) else { continue }
            depthRun.running[row] = false
            depthRun.runningCount -= 1
            depthUsage.exits += 1
            FloatKernels.copy(scratch.projection, from: slot * width, count: width, into: &depthRun.streams, at: row * width)
        }
    }

    /// Puts each exited row's mapped stream where the output head reads the stream.
    mutating func restoreExitStreams() {
        defer { depthRun.policy = nil }
        guard case .dynamicExit = depthRun.policy else { return }
        let width = config.hiddenSize
        for row in 0..<depthRun.rows where !depthRun.running[row] {
            FloatKernels.copy(depthRun.streams, from: row * width, count: width, into: &scratch.hidden, at: row * width)
        }
    }

    /// The largest probability of softmax(`logits`), in double precision.
    static func topProbability(_ logits: ArraySlice<Float>) -> Double {
        guard let largest = logits.max() else { return 0 }
        var sum = 0.0
        for value in logits { sum += exp(Double(value - largest)) }
        return 1 / sum
    }
}

#if canImport(Glibc)
import Glibc
#endif
