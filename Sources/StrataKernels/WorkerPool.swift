#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import StrataKernelsC
import Synchronization

/// The one source of parallelism: a fixed set of threads, created once, that split index
/// ranges between them.
///
/// A decode step runs a few hundred small parallel regions (one per matrix), so handing out
/// work must cost microseconds: workers spin briefly on a generation counter before sleeping
/// on a condition variable, and nothing is allocated per region. Each index is handled whole by
/// one thread, so results never depend on the thread count.
public final class WorkerPool: @unchecked Sendable {
    /// Threads that run work concurrently, the caller's included (at least 1).
    public let threadCount: Int
    private let core: PoolCore
    private var threads: [pthread_t] = []

    /// A pool of `threadCount` threads (default: every core the system reports).
    public init(threadCount: Int? = nil) {
        self.threadCount = max(1, threadCount ?? WorkerPool.coreCount)
        core = PoolCore(threadCount: self.threadCount)
        for _ in 1..<self.threadCount {
            // Workers retain only the core, so dropping the pool stops them.
            let context = Unmanaged.passRetained(core).toOpaque()
            var thread = pthread_t()
            let status = pthread_create(&thread, nil, { raw in
                Unmanaged<PoolCore>.fromOpaque(raw!).takeRetainedValue().workerLoop()
                return nil
            }, context)
            precondition(status == 0, "cannot start a worker thread (pthread_create returned \(status))")
            threads.append(thread)
        }
    }

    deinit {
        core.stop()
        for thread in threads { pthread_join(thread, nil) }
    }

    /// Cores available to this process.
    public static var coreCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Calls `body(range)` over disjoint ranges covering `0..<count`, in parallel, and returns
    /// when all are done. Each range is a multiple of `granularity` long (but the last), so
    /// callers can keep work aligned. `body` must not call `parallelFor` itself.
    public func parallelFor(count: Int, granularity: Int = 1, _ body: (Range<Int>) -> Void) {
        core.parallelFor(count: count, granularity: granularity, body)
    }
}

/// The state workers share: the current region and the counters that hand it out.
private final class PoolCore: @unchecked Sendable {
    let threadCount: Int

    private let generation = Atomic<Int>(0)
    private let nextChunk = Atomic<Int>(0)
    private let running = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let callers = Mutex<Void>(())
    private let sleep = SleepState()
    /// The current region; written by the caller before `generation` is bumped (release) and
    /// read by workers after they see the bump (acquire).
    nonisolated(unsafe) private var job = Job()

    private struct Job {
        var body: ((Range<Int>) -> Void)?
        var count = 0
        var granularity = 1
        var chunkCount = 0
    }

    init(threadCount: Int) { self.threadCount = threadCount }

    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        sleep.wakeAll()
    }

    func parallelFor(count: Int, granularity: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let units = (count + granularity - 1) / granularity
        // A few chunks per thread balance uneven work (causal attention) at little cost.
        let chunkCount = min(units, threadCount * 4)
        if threadCount == 1 || chunkCount <= 1 {
            body(0..<count)
            return
        }
        callers.withLock { _ in
            withoutActuallyEscaping(body) { body in
                job = Job(body: body, count: count, granularity: granularity, chunkCount: chunkCount)
                nextChunk.store(0, ordering: .relaxed)
                running.store(threadCount - 1, ordering: .relaxed)
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 { sleep.wakeAll() }
                runChunks()
                while running.load(ordering: .acquiring) > 0 { spinPause() }
                job.body = nil
            }
        }
    }

    private func runChunks() {
        let job = job
        guard let body = job.body else { return }
        let units = (job.count + job.granularity - 1) / job.granularity
        while true {
            let chunk = nextChunk.add(1, ordering: .relaxed).oldValue
            if chunk >= job.chunkCount { return }
            let start = units * chunk / job.chunkCount * job.granularity
            let end = min(job.count, units * (chunk + 1) / job.chunkCount * job.granularity)
            if start < end { body(start..<end) }
        }
    }

    func workerLoop() {
        // Regions are counted from 0 when the pool is made; a worker that starts late must still
        // take part in region 1, so it must not read the current count as "seen".
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                if stopping.load(ordering: .relaxed) { return }
                spins += 1
                // A decode step issues a region every few microseconds, and waking a sleeping
                // thread costs tens of microseconds, so spin for about a millisecond first.
                if spins < Self.spinsBeforeYielding {
                    spinPause()
                } else if spins < Self.spinsBeforeSleeping {
                    // On a busy machine the thread that will hand out work may be waiting for
                    // this core: give it up rather than burn it.
                    sched_yield()
                } else {
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    sleep.wait { self.generation.load(ordering: .sequentiallyConsistent) != seen || self.stopping.load(ordering: .sequentiallyConsistent) }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    spins = 0
                }
            }
            if stopping.load(ordering: .relaxed) { return }
            seen = generation.load(ordering: .acquiring)
            runChunks()
            running.subtract(1, ordering: .releasing)
        }
    }

    /// PAUSE spins (a few microseconds) before a waiting worker starts yielding its core, and
    /// spins plus yields (about a millisecond when idle) before it sleeps.
    static let spinsBeforeYielding = 2_000
    static let spinsBeforeSleeping = 20_000

    @inline(__always)
    private func spinPause() { strata_spin_pause() }
}

/// A mutex and condition variable for workers that have spun long enough.
private final class SleepState: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    /// Blocks until `ready()` holds; `ready` is re-checked under the mutex, so a wake-up that
    /// happens between the caller's last check and the wait is not lost.
    func wait(until ready: () -> Bool) {
        pthread_mutex_lock(&mutex)
        while !ready() { pthread_cond_wait(&condition, &mutex) }
        pthread_mutex_unlock(&mutex)
    }

    func wakeAll() {
        pthread_mutex_lock(&mutex)
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
    }
}
