import StrataKernels
import Synchronization
import Testing

@Suite("WorkerPool")
struct WorkerPoolTests {
    @Test(arguments: [1, 2, 3, 8])
    func everyIndexRunsExactlyOnce(threads: Int) {
        let pool = WorkerPool(threadCount: threads)
        for count in [1, 2, 7, 64, 1000] {
            for granularity in [1, 3, 16] {
                let hits = Mutex([Int](repeating: 0, count: count))
                pool.parallelFor(count: count, granularity: granularity) { range in
                    #expect(range.lowerBound % granularity == 0)
                    hits.withLock { for index in range { $0[index] += 1 } }
                }
                #expect(hits.withLock { $0.allSatisfy { $0 == 1 } })
            }
        }
    }

    @Test("unreasonable thread counts are refused by init(exactly:) and clamped by init(threadCount:)")
    func threadCountBounds() throws {
        for count in [Int.min, -1, 0, WorkerPool.maximumThreadCount + 1, 100_000, Int.max] {
            #expect(throws: WorkerPool.InvalidThreadCount.self) { try WorkerPool(exactly: count) }
        }
        let tooFew = #expect(throws: WorkerPool.InvalidThreadCount.self) { try WorkerPool.checked(threadCount: 0) }
        #expect(tooFew?.description == "a worker pool needs at least 1 thread, found 0")
        let tooMany = #expect(throws: WorkerPool.InvalidThreadCount.self) { try WorkerPool.checked(threadCount: 300) }
        #expect(tooMany?.description == "a worker pool runs at most 256 threads, found 300")
        #expect(try WorkerPool(exactly: 3).threadCount == 3)
        #expect(try WorkerPool.checked(threadCount: WorkerPool.maximumThreadCount) == WorkerPool.maximumThreadCount)
        #expect(WorkerPool(threadCount: 0).threadCount == 1)
        #expect(WorkerPool(threadCount: -5).threadCount == 1)
        #expect(WorkerPool(threadCount: 100_000).threadCount == WorkerPool.maximumThreadCount)
    }

    @Test func manySmallRegionsInARowAndAfterSleeping() async throws {
        let pool = WorkerPool(threadCount: 2)
        let total = Atomic<Int>(0)
        for _ in 0..<20_000 {
            pool.parallelFor(count: 8) { range in total.add(range.count, ordering: .relaxed) }
        }
        #expect(total.load(ordering: .relaxed) == 160_000)
        // Long enough for workers to stop spinning and sleep; they must wake for new work.
        try await Task.sleep(for: .milliseconds(200))
        pool.parallelFor(count: 8) { range in total.add(range.count, ordering: .relaxed) }
        #expect(total.load(ordering: .relaxed) == 160_008)
    }

    /// More threads than cores: workers often wake after their region has been finished by
    /// others, or while the next one is being set up; every index must still run exactly once
    /// per region, and no region may see another's work.
    @Test func oversubscribedPoolsKeepRegionsApart() async {
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    let pool = WorkerPool(threadCount: 3)
                    var correct = true
                    for region in 0..<20_000 {
                        let count = 2 + region % 37
                        let hits = Mutex([Int](repeating: 0, count: count))
                        pool.parallelFor(count: count) { range in
                            hits.withLock { for index in range { $0[index] += region } }
                        }
                        correct = correct && hits.withLock { $0.allSatisfy { $0 == region } }
                    }
                    return correct
                }
            }
            for await correct in group { #expect(correct) }
        }
    }

    @Test func freeingAPoolStopsItsThreads() {
        for _ in 0..<50 {
            let pool = WorkerPool(threadCount: 3)
            pool.parallelFor(count: 10) { _ in }
        }
    }
}
