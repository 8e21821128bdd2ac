import Foundation
import Hummingbird
import HummingbirdTesting
import StrataEngine
import Synchronization
@testable import StrataServer

/// A backend that answers every request with the same scripted text, for the HTTP mechanics.
final class ScriptedBackend: GenerationBackend {
    let modelName = "scripted"
    let contextLength = 64
    let layerCount = 4
    /// Thrown by `generate` instead of streaming.
    let refusal: SessionError?
    /// Thrown by the stream after the pieces instead of a result.
    let failure: SessionError?
    let pieces: [String]
    let finishReason: FinishReason
    /// Seconds between pieces; a long delay keeps a stream open for the disconnect test.
    let delay: Double
    /// The requests `generate` accepted, to check the mapping of fields.
    let requests = Mutex<[SessionRequest]>([])
    /// Streams whose consumer went away before the end.
    let cancelledStreams = Mutex(0)
    let shutdowns = Mutex(0)

    init(pieces: [String] = ["Hello", ",", " world"], finishReason: FinishReason = .stop, refusal: SessionError? = nil,
         failure: SessionError? = nil, delay: Double = 0) {
        self.failure = failure
        self.pieces = pieces
        self.finishReason = finishReason
        self.refusal = refusal
        self.delay = delay
    }

    func generate(_ request: SessionRequest) throws(SessionError) -> AsyncThrowingStream<SessionEvent, any Error> {
        if let refusal { throw refusal }
        requests.withLock { $0.append(request) }
        let (stream, continuation) = AsyncThrowingStream<SessionEvent, any Error>.makeStream()
        let task = Task { [pieces, finishReason, delay, failure] in
            continuation.yield(.started(promptTokens: 5, cachedTokens: 2))
            for piece in pieces {
                if delay > 0 { try? await Task.sleep(for: .seconds(delay)) }
                if Task.isCancelled { return }
                continuation.yield(.text(piece, tokens: 1))
            }
            if let failure {
                continuation.finish(throwing: failure)
                return
            }
            continuation.yield(.finished(SessionResult(
                finishReason: finishReason, promptTokens: 5, cachedPromptTokens: 2, completionTokens: pieces.count,
                tokens: pieces.indices.map { TokenID($0) }, timeToFirstTokenSeconds: 0.01, queueSeconds: 0,
                decodeSeconds: 0.02, speculation: nil)))
            continuation.finish()
        }
        continuation.onTermination = { termination in
            if case .cancelled = termination {
                self.cancelledStreams.withLock { $0 += 1 }
                task.cancel()
            }
        }
        return stream
    }

    func metrics() -> SessionMetrics {
        var metrics = SessionMetrics()
        metrics.promptTokens = 5 * requests.withLock { $0.count }
        return metrics
    }

    func shutdown(cancelRunning: Bool) async { shutdowns.withLock { $0 += 1 } }
}

/// A test client call: the status, the headers and the body as text.
struct Answer {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: String

    /// The body as a JSON object, or an empty one.
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
}

extension TestClientProtocol {
    func post(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> Answer {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            Answer(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> Answer {
        try await execute(uri: uri, method: .get, headers: headers) { response in
            Answer(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }
}

/// Runs `test` against the server over `backend` through Hummingbird's in-process router client.
func withServer<Value: Sendable>(
    _ backend: any GenerationBackend, configuration: ServerConfiguration = .init(),
    _ test: @Sendable (any TestClientProtocol) async throws -> Value
) async throws -> Value {
    let server = OpenAIServer(backend: backend, configuration: configuration)
    let application = Application(router: server.makeRouter())
    return try await application.test(.router, test)
}

/// The JSON objects of a server-sent-event body, checking the framing on the way: every event
/// is `data: <json>\n\n` and the last is `data: [DONE]\n\n`.
func sseEvents(_ body: String) throws -> [[String: Any]] {
    struct FramingError: Error, CustomStringConvertible { var description: String }
    guard body.hasSuffix("data: [DONE]\n\n") else { throw FramingError(description: "no [DONE] at the end: \(body.suffix(80))") }
    var events: [[String: Any]] = []
    let parts = body.components(separatedBy: "\n\n").dropLast()  // the empty text after the last separator
    for (index, part) in parts.enumerated() {
        guard part.hasPrefix("data: "), !part.dropFirst(6).contains("\n") else {
            throw FramingError(description: "event \(index) is not one data line: \(part)")
        }
        if index == parts.count - 1 { break }
        guard let object = try JSONSerialization.jsonObject(with: Data(part.dropFirst(6).utf8)) as? [String: Any] else {
            throw FramingError(description: "event \(index) is not a JSON object")
        }
        events.append(object)
    }
    return events
}
