import Prometheus
import StrataEngine
import Synchronization

/// The `/metrics` registry: the server's own counts (requests by endpoint and status, time to
/// first token) recorded as they happen, and the session's counters copied in at each scrape.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let timeToFirstToken: ValueHistogram
    private let sessionCounters: [(value: @Sendable (SessionMetrics) -> Int, counter: Counter)]
    private let sessionGauges: [(value: @Sendable (SessionMetrics) -> Double, gauge: Gauge)]
    /// The session counters at the previous scrape: Prometheus counters only grow, so each
    /// scrape adds the difference.
    private let lastSnapshot = Mutex(SessionMetrics())

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        timeToFirstToken = registry.makeValueHistogram(
            descriptor: Self.name("time_to_first_token", unit: "seconds", help: "From admission to the first generated token, per request."),
            buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
        let counters: [(String, String, @Sendable (SessionMetrics) -> Int)] = [
            ("session_requests_started", "Requests admitted to a sequence.", { $0.requestsStarted }),
            ("session_requests_finished", "Requests that finished generating.", { $0.requestsFinished }),
            ("session_requests_refused", "Requests the session refused.", { $0.requestsRefused }),
            ("prompt_tokens", "Prompt tokens of admitted requests.", { $0.promptTokens }),
            ("cached_prompt_tokens", "Prompt tokens reused from the prompt cache.", { $0.cachedPromptTokens }),
            ("completion_tokens", "Tokens generated.", { $0.generatedTokens }),
            ("forward_passes", "Batched forward passes.", { $0.forwardPasses }),
            ("speculation_drafted", "Draft tokens proposed.", { $0.drafted }),
            ("speculation_accepted", "Draft tokens the full model confirmed.", { $0.accepted }),
        ]
        sessionCounters = counters.map { name, help, value in
            (value, registry.makeCounter(descriptor: Self.name(name, unit: "total", help: help)))
        }
        let gauges: [(String, String, @Sendable (SessionMetrics) -> Double)] = [
            ("queue_length", "Requests waiting for a sequence.", { Double($0.queueLength) }),
            ("active_sequences", "Sequences decoding now.", { Double($0.activeSequences) }),
            ("cached_sequences", "Finished sequences kept for prompt reuse.", { Double($0.cachedSequences) }),
            ("decode_tokens_per_second", "Tokens decided per second of decode steps, all sequences together, since start.",
             { $0.decodeSeconds > 0 ? Double($0.decodeTokens) / $0.decodeSeconds : 0 }),
            ("speculation_acceptance_rate", "Accepted over drafted tokens since start.",
             { $0.drafted > 0 ? Double($0.accepted) / Double($0.drafted) : 0 }),
        ]
        sessionGauges = gauges.map { name, help, value in
            (value, registry.makeGauge(descriptor: Self.name(name, unit: "", help: help)))
        }
    }

    /// `strata_<name>_<unit>` with its help text.
    private static func name(_ name: String, unit: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "strata", metricName: name, unitName: unit, helpText: help)
    }

    /// Counts one answered request.
    func recordRequest(endpoint: String, status: Int) {
        registry.makeCounter(
            descriptor: Self.name("http_requests", unit: "total", help: "HTTP requests answered, by endpoint and status."),
            labels: [("endpoint", endpoint), ("status", String(status))]
        ).increment()
    }

    /// Records a finished generation.
    func recordGeneration(_ result: SessionResult) {
        if result.completionTokens > 0 { timeToFirstToken.record(result.timeToFirstTokenSeconds) }
    }

    /// The Prometheus text with the session's counters as of now.
    func scrape(_ snapshot: SessionMetrics) -> String {
        lastSnapshot.withLock { last in
            for entry in sessionCounters {
                let added = entry.value(snapshot) - entry.value(last)
                if added > 0 { entry.counter.increment(by: Int64(added)) }
            }
            last = snapshot
        }
        for entry in sessionGauges { entry.gauge.set(entry.value(snapshot)) }
        return registry.emitToString()
    }
}
