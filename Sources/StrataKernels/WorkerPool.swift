import Dispatch

/// The one source of parallelism: splits index ranges over a fixed number of threads.
///
/// Work is split by output rows (or heads), each index handled whole by one thread, so the
/// arithmetic for an element never depends on the thread count (results are bitwise the same
/// with 1 or N threads).
public final class WorkerPool: Sendable {
    /// Threads that run work concurrently (at least 1).
    public let threadCount: Int

    /// A pool of `threadCount` threads (default: every core the system reports).
    public init(threadCount: Int? = nil) {
        self.threadCount = max(1, threadCount ?? WorkerPool.coreCount)
    }

    /// Cores available to this process.
    public static var coreCount: Int {
        #if canImport(Glibc)
        return max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        #else
        return 1
        #endif
    }

    /// Calls `body(range)` over disjoint ranges covering `0..<count`, in parallel. Each range
    /// is a multiple of `granularity` long (but the last), so callers can keep work aligned.
    public func parallelFor(count: Int, granularity: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let units = (count + granularity - 1) / granularity
        let chunks = min(units, threadCount == 1 ? 1 : threadCount * 4)
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            nonisolated(unsafe) let work = body
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let startUnit = units * chunk / chunks
                let endUnit = units * (chunk + 1) / chunks
                let range = (startUnit * granularity)..<min(count, endUnit * granularity)
                if !range.isEmpty { work(range) }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
