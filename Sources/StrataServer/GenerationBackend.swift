import StrataEngine

/// What the HTTP layer needs of the engine: one model that generates.
///
/// `ModelSession` is the real one (`SessionBackend`); tests script their own to check the HTTP
/// mechanics (errors, streaming, validation) without running a model.
public protocol GenerationBackend: Sendable {
    /// The model's id in `/v1/models`; requests must name it.
    var modelName: String { get }
    /// Positions per sequence (prompt and generated tokens).
    var contextLength: Int { get }
    /// Layers of the model, to check early-exit drafts a request asks for.
    var layerCount: Int { get }
    /// Validates the request and enqueues it, or throws before anything streams.
    func generate(_ request: SessionRequest) throws(SessionError) -> AsyncThrowingStream<SessionEvent, any Error>
    /// Counters since the backend opened, read at scrape time.
    func metrics() -> SessionMetrics
    /// Stops admitting requests, then finishes (or cancels) the running ones.
    func shutdown(cancelRunning: Bool) async
}

/// A `ModelSession` served under a name.
public struct SessionBackend: GenerationBackend {
    public let session: ModelSession
    public let modelName: String

    /// Serves `session` as the model `name` (a registered name or the file name).
    public init(session: ModelSession, name: String) {
        self.session = session
        self.modelName = name
    }

    public var contextLength: Int { session.contextLength }
    public var layerCount: Int { session.model.config.layerCount }

    public func generate(_ request: SessionRequest) throws(SessionError) -> AsyncThrowingStream<SessionEvent, any Error> {
        try session.generate(request)
    }

    public func metrics() -> SessionMetrics { session.metrics() }

    public func shutdown(cancelRunning: Bool) async { await session.shutdown(cancelRunning: cancelRunning) }
}
