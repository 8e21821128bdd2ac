import Testing
@testable import StrataKernels

@Suite struct LeastSquaresTests {
    /// Deterministic pseudo-random values in [-1, 1).
    private static func values(count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2_000_000 - 1_000_000) / 1_000_000
        }
    }

    @Test("the chunked float64 sums equal their definition", arguments: [(1, 5, 3), (63, 17, 9), (64, 8, 8), (130, 33, 20)])
    func sumsMatchReference(rows: Int, inputWidth: Int, outputWidth: Int) throws {
        let inputs = Self.values(count: rows * inputWidth, seed: 1)
        let outputs = Self.values(count: rows * outputWidth, seed: 2)
        var regression = RidgeRegression(inputWidth: inputWidth, outputWidth: outputWidth)
        // two calls, so the running sums are exercised as well as one chunked pass
        let split = rows / 2
        regression.add(inputs: inputs, outputs: outputs, rows: split, pool: WorkerPool(threadCount: 2))
        regression.add(inputs: Array(inputs[(split * inputWidth)...]), outputs: Array(outputs[(split * outputWidth)...]),
                       rows: rows - split, pool: WorkerPool(threadCount: 2))
        let reference = RidgeRegression.referenceSums(inputs: inputs, outputs: outputs, rows: rows,
                                                      inputWidth: inputWidth, outputWidth: outputWidth)
        #expect(regression.rows == rows)
        for (got, want) in zip(regression.gram, reference.gram) { #expect(abs(got - want) <= 1e-9 * max(1, abs(want))) }
        for (got, want) in zip(regression.cross, reference.cross) { #expect(abs(got - want) <= 1e-9 * max(1, abs(want))) }
    }

    @Test("sums and solution are bitwise the same with one thread or two")
    func threadCountInvariant() throws {
        let (rows, width) = (300, 40)
        let inputs = Self.values(count: rows * width, seed: 3)
        let outputs = Self.values(count: rows * width, seed: 4)
        var one = RidgeRegression(inputWidth: width, outputWidth: width)
        var two = one
        one.add(inputs: inputs, outputs: outputs, rows: rows, pool: WorkerPool(threadCount: 1))
        two.add(inputs: inputs, outputs: outputs, rows: rows, pool: WorkerPool(threadCount: 2))
        #expect(one.gramUpper == two.gramUpper && one.cross == two.cross)
        #expect(try one.solve(ridge: 1e-3, pool: WorkerPool(threadCount: 1)) == two.solve(ridge: 1e-3, pool: WorkerPool(threadCount: 2)))
    }

    @Test("a known linear map is recovered from noisy synthetic pairs")
    func recoversKnownMap() throws {
        let (rows, inputWidth, outputWidth) = (600, 48, 32)
        let inputs = Self.values(count: rows * inputWidth, seed: 5)
        let map = Self.values(count: inputWidth * outputWidth, seed: 6).map(Double.init)
        let noise = Self.values(count: rows * outputWidth, seed: 7)
        var outputs = [Float](repeating: 0, count: rows * outputWidth)
        for row in 0..<rows {
            for j in 0..<outputWidth {
                var sum = 0.0
                for i in 0..<inputWidth { sum += Double(inputs[row * inputWidth + i]) * map[i * outputWidth + j] }
                outputs[row * outputWidth + j] = Float(sum) + 1e-4 * noise[row * outputWidth + j]
            }
        }
        var regression = RidgeRegression(inputWidth: inputWidth, outputWidth: outputWidth)
        regression.add(inputs: inputs, outputs: outputs, rows: rows, pool: WorkerPool(threadCount: 2))
        let fitted = try regression.solve(ridge: 1e-9 * regression.meanDiagonal, pool: WorkerPool(threadCount: 2))
        let worst = zip(fitted, map).map { abs($0 - $1) }.max() ?? .infinity
        // noise of 1e-4 over 600 rows of unit-scale inputs moves the estimate by about 1e-5
        #expect(worst < 1e-4, "largest error \(worst)")
        // and a ridge pulls the map toward zero (a smaller L2 norm), as it should
        let shrunk = try regression.solve(ridge: 10 * regression.meanDiagonal, pool: WorkerPool(threadCount: 2))
        func squaredNorm(_ values: [Double]) -> Double { values.reduce(0) { $0 + $1 * $1 } }
        #expect(squaredNorm(shrunk) < squaredNorm(fitted) / 4)
    }

    @Test("fewer rows than inputs with no ridge, and non-finite rows, are refused")
    func refusesSingularAndNonFinite() throws {
        var regression = RidgeRegression(inputWidth: 16, outputWidth: 4)
        regression.add(inputs: Self.values(count: 8 * 16, seed: 8), outputs: Self.values(count: 8 * 4, seed: 9), rows: 8,
                       pool: WorkerPool(threadCount: 1))
        #expect(throws: LeastSquaresError.self) { try regression.solve(ridge: 0, pool: WorkerPool(threadCount: 1)) }
        #expect((try? regression.solve(ridge: 1e-3, pool: WorkerPool(threadCount: 1))) != nil)
        var broken = RidgeRegression(inputWidth: 2, outputWidth: 1)
        broken.add(inputs: [.nan, 1], outputs: [1], rows: 1, pool: WorkerPool(threadCount: 1))
        #expect(throws: LeastSquaresError.notFinite) { try broken.solve(ridge: 1, pool: WorkerPool(threadCount: 1)) }
    }
}
