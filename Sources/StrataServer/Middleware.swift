import Hummingbird

/// Turns every failure into OpenAI's error shape and counts answered requests by endpoint and
/// status. Outermost, so 401 and 404 for unknown routes are counted and shaped too.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response()
        } catch let error as HTTPError {
            response = APIError(status: error.status, message: error.body ?? error.status.reasonPhrase,
                                type: error.status == .notFound ? "not_found_error" : "invalid_request_error").response()
        } catch {
            response = APIError(status: .internalServerError, message: "internal error: \(error)", type: "server_error").response()
        }
        metrics.recordRequest(endpoint: Self.endpoint(request.uri.path), status: response.status.code)
        return response
    }

    /// The path for the label, or `other`: labels from arbitrary paths would grow without bound.
    static func endpoint(_ path: String) -> String {
        ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"].contains(path) ? path : "other"
    }
}

/// Lets in only requests with `Authorization: Bearer <key>`; `/health` stays open for probes.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: [UInt8]

    init(key: String) { self.key = Array(key.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path == "/health" || isAuthorized(request.headers[.authorization]) else { throw APIError.unauthorized }
        return try await next(request, context)
    }

    private func isAuthorized(_ header: String?) -> Bool {
        guard let header else { return false }
        let prefix = "Bearer "
        let given = Array(header.utf8)
        guard given.count >= prefix.utf8.count, given.prefix(prefix.utf8.count).elementsEqual(prefix.utf8) else { return false }
        return constantTimeEqual(Array(given.dropFirst(prefix.utf8.count)), key)
    }
}

/// Whether two byte strings are equal, in a time that depends only on their lengths: a key
/// compared byte by byte with an early exit leaks how many leading bytes a guess got right.
func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
    var difference = UInt8(truncatingIfNeeded: left.count ^ right.count)
    difference |= left.count == right.count ? 0 : 1
    // compare against the key's length either way, so the time does not reveal a length match
    for index in 0..<right.count {
        let byte = index < left.count ? left[index] : 0
        difference |= byte ^ right[index]
    }
    return difference == 0
}
