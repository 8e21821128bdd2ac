import Foundation
import Hummingbird
import StrataEngine

/// An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with its
/// HTTP status. Every failure the server reports goes through this type, so clients written for
/// OpenAI parse all of them.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    /// `invalid_request_error`, `authentication_error`, `not_found_error`, `rate_limit_error`,
    /// `server_error`.
    public var type: String
    /// The request field at fault, as a path such as `messages[1].content`.
    public var param: String?
    public var code: String?
    /// Extra response headers (`Retry-After` on 429).
    public var headers: HTTPFields = [:]

    public init(
        status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
    }

    public var description: String { "\(status.code) \(type): \(message)" }

    /// A 400 about one field of the request.
    static func invalid(_ message: String, param: String?, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    /// A 400 for a field that would change the output but is not implemented: refused rather
    /// than ignored, so a client never gets an answer to a question it did not ask.
    static func unsupported(_ param: String, _ detail: String = "") -> APIError {
        invalid("'\(param)' is not supported by this server\(detail.isEmpty ? "" : ": " + detail)",
                param: param, code: "unsupported_parameter")
    }

    static func modelNotFound(_ name: String) -> APIError {
        APIError(status: .notFound, message: "The model '\(name)' does not exist; see GET /v1/models",
                 type: "not_found_error", param: "model", code: "model_not_found")
    }

    static let unauthorized = APIError(
        status: .unauthorized, message: "Incorrect or missing API key; send 'Authorization: Bearer <key>'",
        type: "authentication_error", code: "invalid_api_key")

    static func bodyTooLarge(limit: Int) -> APIError {
        APIError(status: .contentTooLarge, message: "The request body is larger than the limit of \(limit) bytes",
                 type: "invalid_request_error", code: "request_too_large")
    }

    /// The API error for a session's refusal.
    init(_ error: SessionError) {
        switch error {
        case .queueFull:
            self.init(status: .tooManyRequests, message: error.description, type: "rate_limit_error",
                      code: "rate_limit_exceeded", headers: [.retryAfter: "1"])
        case .shutDown:
            self.init(status: .serviceUnavailable, message: error.description, type: "server_error", code: "shutting_down")
        case .promptTooLong:
            self.init(status: .badRequest, message: error.description, type: "invalid_request_error",
                      param: "messages", code: "context_length_exceeded")
        case .maxTokensBeyondContext:
            self.init(status: .badRequest, message: error.description, type: "invalid_request_error",
                      param: "max_tokens", code: "context_length_exceeded")
        case .invalidMaxTokens:
            self.init(status: .badRequest, message: error.description, type: "invalid_request_error", param: "max_tokens")
        case .emptyPrompt, .chatPrompt, .tokenOutOfRange:
            self.init(status: .badRequest, message: error.description, type: "invalid_request_error", param: "messages")
        case .invalidPlan:
            self.init(status: .badRequest, message: error.description, type: "invalid_request_error", param: "strata.plan")
        case .invalidSpeculation:
            self.init(status: .badRequest, message: error.description, type: "invalid_request_error", param: "strata.draft")
        }
    }

    /// The API error for a failure while a generation streams: a session error keeps its
    /// meaning (a request still queued at shutdown ends with `.shutDown`: 503), anything else
    /// is the server's fault.
    static func generationFailure(_ error: any Error) -> APIError {
        if let error = error as? APIError { return error }
        if let error = error as? SessionError { return APIError(error) }
        return APIError(status: .internalServerError, message: "generation failed: \(error)", type: "server_error")
    }

    /// The body `{"error": {...}}`; `param` and `code` are `null` when absent, as OpenAI's are.
    var body: ErrorBody { ErrorBody(error: .init(message: message, type: type, param: param, code: code)) }

    /// The JSON response.
    func response() -> Response {
        var response = jsonResponse(body, status: status)
        for field in headers { response.headers.append(field) }
        return response
    }
}

/// `{"error": {...}}`.
struct ErrorBody: Encodable {
    struct Detail: Encodable {
        var message: String
        var type: String
        var param: String?
        var code: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(message, forKey: .message)
            try container.encode(type, forKey: .type)
            try container.encode(param, forKey: .param)
            try container.encode(code, forKey: .code)
        }

        enum CodingKeys: String, CodingKey { case message, type, param, code }
    }
    var error: Detail
}

/// The one JSON encoder of responses: sorted keys keep bodies stable for tests and caches.
let responseEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

/// Encodes `value` as a JSON response.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
    let data: Data
    do {
        data = try responseEncoder.encode(value)
    } catch {
        // only non-finite floats can fail; say so rather than send half a body
        data = Data(#"{"error":{"message":"the response could not be encoded","type":"server_error","param":null,"code":null}}"#.utf8)
        return Response(status: .internalServerError, headers: [.contentType: "application/json"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
    return Response(status: status, headers: [.contentType: "application/json"],
                    body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}
