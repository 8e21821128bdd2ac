import Foundation
import Hummingbird
import StrataEngine

/// The OpenAI-compatible HTTP API over one `GenerationBackend`: the routes, their validation and
/// the streaming of answers. `run` (in `OpenAIServer+Run.swift`) serves it until a signal.
public struct OpenAIServer: Sendable {
    public let backend: any GenerationBackend
    public let configuration: ServerConfiguration
    let metrics = ServerMetrics()
    /// When the server started, for `created` in `/v1/models`.
    let started = Int(Date().timeIntervalSince1970)

    public init(backend: any GenerationBackend, configuration: ServerConfiguration = .init()) {
        self.backend = backend
        self.configuration = configuration
    }

    /// The routes with their middleware (error shaping outermost, then the API key).
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorMiddleware(metrics: metrics))
        if let key = configuration.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
        router.get("/health") { _, _ in jsonResponse(["status": "ok"]) }
        router.get("/v1/models") { _, _ in jsonResponse(ModelList(data: [modelObject])) }
        router.get("/v1/models/{model}") { _, context in
            let name = context.parameters.get("model") ?? ""
            try checkModel(name)
            return jsonResponse(modelObject)
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.scrape(backend.metrics()))))
        }
        router.post("/v1/chat/completions") { request, _ in try await chatCompletion(request) }
        router.post("/v1/completions") { request, _ in try await textCompletion(request) }
        return router
    }

    func chatCompletion(_ request: Request) async throws(APIError) -> Response {
        let parsed = try RequestParser.chat(
            try await readBody(request), modelName: backend.modelName, layerCount: backend.layerCount)
        let format = ChatFormat(header: ResponseHeader(prefix: "chatcmpl-", model: backend.modelName),
                                includeUsage: parsed.includeUsage)
        return try await respond(parsed.session, format: format, stream: parsed.stream, promptParam: parsed.promptParam)
    }

    func textCompletion(_ request: Request) async throws(APIError) -> Response {
        let parsed = try RequestParser.completion(
            try await readBody(request), modelName: backend.modelName, layerCount: backend.layerCount)
        let format = TextFormat(header: ResponseHeader(prefix: "cmpl-", model: backend.modelName),
                                includeUsage: parsed.includeUsage)
        return try await respond(parsed.session, format: format, stream: parsed.stream, promptParam: parsed.promptParam)
    }

    /// The body, refused with 413 past the limit without reading further.
    func readBody(_ request: Request) async throws(APIError) -> Data {
        let limit = configuration.maxBodyBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw .bodyTooLarge(limit: limit)
        }
        var collected = Data()
        do {
            for try await part in request.body {
                guard collected.count + part.readableBytes <= limit else { throw APIError.bodyTooLarge(limit: limit) }
                collected.append(contentsOf: part.readableBytesView)
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw .invalid("The request body could not be read: \(error)", param: nil)
        }
        return collected
    }

    /// The one model, as `/v1/models` lists it.
    var modelObject: ModelList.Model { ModelList.Model(id: backend.modelName, created: started) }

    func checkModel(_ name: String) throws(APIError) {
        guard name == backend.modelName else { throw .modelNotFound(name) }
    }

    /// Starts the generation (refusals become their HTTP errors) and answers whole or as a stream.
    func respond<Format: CompletionFormat>(
        _ request: SessionRequest, format: Format, stream: Bool, promptParam: String
    ) async throws(APIError) -> Response {
        let events: AsyncThrowingStream<SessionEvent, any Error>
        do {
            events = try backend.generate(request)
        } catch {
            var apiError = APIError(error)
            if case .promptTooLong = error { apiError.param = promptParam }
            throw apiError
        }
        if stream { return streamingResponse(events, format: format) }
        var text = ""
        do {
            for try await event in events {
                switch event {
                case .started: break
                case .text(let piece, _): text += piece
                case .finished(let result):
                    metrics.recordGeneration(result)
                    if result.finishReason == .cancelled { throw APIError(SessionError.shutDown) }
                    return jsonResponse(format.whole(text: text, result: result))
                }
            }
        } catch {
            throw APIError.generationFailure(error)
        }
        throw APIError(status: .internalServerError, message: "generation ended without a result", type: "server_error")
    }

    /// Server-sent events: each chunk `data: <json>\n\n`, then `data: [DONE]\n\n`. When the
    /// client goes away the write throws, the loop ends and the dropped stream cancels its
    /// generation in the session.
    func streamingResponse<Format: CompletionFormat>(
        _ events: AsyncThrowingStream<SessionEvent, any Error>, format: Format
    ) -> Response {
        let metrics = metrics
        let body = ResponseBody { writer in
            if let first = format.firstChunk() { try await writer.write(ServerSentEvents.event(first)) }
            // Only the stream's errors are caught here: a failed write (the client went away)
            // propagates and ends the response.
            var iterator = events.makeAsyncIterator()
            while true {
                let next: SessionEvent?
                do {
                    next = try await iterator.next()
                } catch {
                    // the headers are out: an error event is the only way left to say what happened
                    try await writer.write(ServerSentEvents.event(APIError.generationFailure(error).body))
                    break
                }
                guard let event = next else { break }
                switch event {
                case .started: break
                case .text(let piece, _):
                    if !piece.isEmpty { try await writer.write(ServerSentEvents.event(format.textChunk(piece))) }
                case .finished(let result):
                    metrics.recordGeneration(result)
                    if result.finishReason == .cancelled {
                        try await writer.write(ServerSentEvents.event(APIError(SessionError.shutDown).body))
                    } else {
                        try await writer.write(ServerSentEvents.event(format.finishChunk(result)))
                        if format.includeUsage { try await writer.write(ServerSentEvents.event(format.usageChunk(result))) }
                    }
                }
            }
            try await writer.write(ServerSentEvents.done)
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: body)
    }
}

/// The framing of a streamed answer.
enum ServerSentEvents {
    static func event(_ value: some Encodable) -> ByteBuffer {
        var buffer = ByteBuffer(string: "data: ")
        // encoding fails only on non-finite floats, which no chunk holds
        buffer.writeBytes((try? responseEncoder.encode(value)) ?? Data("{}".utf8))
        buffer.writeString("\n\n")
        return buffer
    }

    static let done = ByteBuffer(string: "data: [DONE]\n\n")
}
