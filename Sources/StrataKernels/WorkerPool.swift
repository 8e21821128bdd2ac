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
/// on a condition variable, and nothing is allocated per region. A region ends when its chunks
/// are done, whoever ran them: a worker that did not get a core in time is not waited for.
/// Each index is handled whole by one thread, so results never depend on the thread count.
public final class WorkerPool: @unchecked Sendable {
    /// Threads that run work concurrently, the caller's included (at least 1).
    public let threadCount: Int
    private let core: PoolCore
    private var threads: [pthread_t] = []

    /// The most threads a pool runs. Far more threads than cores only slows every region down,
    /// and tens of thousands take minutes to start.
    public static let maximumThreadCount = 256

    /// A thread count a pool refuses: below 1 or above `maximumThreadCount`.
    public struct InvalidThreadCount: Error, CustomStringConvertible {
        /// The count asked for.
        public let threadCount: Int

        public var description: String {
            threadCount < 1
                ? "a worker pool needs at least 1 thread, found \(threadCount)"
                : "a worker pool runs at most \(WorkerPool.maximumThreadCount) threads, found \(threadCount)"
        }
    }

    /// Returns `threadCount` if a pool runs that many threads (`1...maximumThreadCount`), else
    /// throws `InvalidThreadCount`: for callers that take the count from a user.
    public static func checked(threadCount: Int) throws(InvalidThreadCount) -> Int {
        guard (1...maximumThreadCount).contains(threadCount) else { throw InvalidThreadCount(threadCount: threadCount) }
        return threadCount
    }

    /// A pool of exactly `threadCount` threads; throws `InvalidThreadCount` when the count is
    /// below 1 or above `maximumThreadCount` instead of adjusting it.
    public convenience init(exactly threadCount: Int) throws(InvalidThreadCount) {
        self.init(threadCount: try Self.checked(threadCount: threadCount))
    }

    /// A pool of `threadCount` threads (default: every core the system reports), clamped to
    /// `1...maximumThreadCount`; `init(exactly:)` refuses such counts instead.
    public init(threadCount: Int? = nil) {
        self.threadCount = min(max(1, threadCount ?? WorkerPool.coreCount), WorkerPool.maximumThreadCount)
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
    /// Chunks of the current region whose body has returned.
    private let finishedChunks = Atomic<Int>(0)
    /// Whether workers may still join the current region.
    private let open = Atomic<Bool>(false)
    /// Workers between joining a region and leaving it; the caller clears the region only
    /// when this is 0, so no worker reads a region that is being replaced.
    private let active = Atomic<Int>(0)
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
                finishedChunks.store(0, ordering: .relaxed)
                open.store(true, ordering: .sequentiallyConsistent)
                generation.add(1, ordering: .sequentiallyConsistent)
                if sleepers.load(ordering: .sequentiallyConsistent) > 0 { sleep.wakeAll() }
                runChunks()
                // Wait only for chunks being run, not for workers that have not woken up: on a
                // busy machine a worker may not get a core for milliseconds, and the caller has
                // then run its share already.
                waitUntil { finishedChunks.load(ordering: .acquiring) >= chunkCount }
                // A worker that joins after this finds the region closed and reads nothing;
                // one that joined before holds `active` until it has stopped reading `job`.
                open.store(false, ordering: .sequentiallyConsistent)
                waitUntil { active.load(ordering: .sequentiallyConsistent) == 0 }
                job.body = nil
            }
        }
    }

    /// Spins, then yields the core (the thread being waited for may need it), until `done()`.
    private func waitUntil(_ done: () -> Bool) {
        var spins = 0
        while !done() {
            spins += 1
            if spins < Self.spinsBeforeYielding { spinPause() } else { sched_yield() }
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
            finishedChunks.add(1, ordering: .releasing)
        }
    }

    func workerLoop() {
        // Regions are counted from 0 when the pool is made, so a worker that starts late still
        // sees region 1 as new (it joins it if it is still open).
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
                    sleep.wait {
                        self.generation.load(ordering: .sequentiallyConsistent) != seen
                            || self.stopping.load(ordering: .sequentiallyConsistent)
                    }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    spins = 0
                }
            }
            if stopping.load(ordering: .relaxed) { return }
            seen = generation.load(ordering: .acquiring)
            // Join, then check the region is still the one seen and still open: if the caller
            // closed it in the meantime, it may already be writing the next one. (Seeing the
            // next region open early is harmless: its job is written before it opens.)
            active.add(1, ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent),
               generation.load(ordering: .sequentiallyConsistent) == seen {
                runChunks()
            }
            active.subtract(1, ordering: .sequentiallyConsistent)
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
