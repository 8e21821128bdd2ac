import Foundation
import StrataEngine

/// A completion request body as the session will run it: decoded, checked and refused where it
/// asks for what the server does not do, before any model work.
package struct ParsedRequest: Sendable {
    package var session: SessionRequest
    package var stream: Bool
    package var includeUsage: Bool
    /// The request field a prompt-too-long error names.
    package var promptParam: String
}

/// Turns request bodies into session requests. Both routes go through here, and so does the
/// request fuzzer, so fuzzing reaches exactly the code a client's bytes reach.
package enum RequestParser {
    /// `POST /v1/chat/completions`; `modelName` is the one model served (checked right after
    /// decoding, as OpenAI does), `layerCount` bounds the `strata.draft` early-exit depth.
    package static func chat(_ body: Data, modelName: String, layerCount: Int) throws(APIError) -> ParsedRequest {
        let chat = try RequestDecoding.decode(ChatCompletionRequest.self, from: body)
        guard chat.common.model == modelName else { throw .modelNotFound(chat.common.model) }
        let session = try chat.common.sessionRequest(
            prompt: .chat(try chat.chatMessages()), defaultMaxTokens: nil, layerCount: layerCount)
        return ParsedRequest(
            session: session, stream: chat.common.stream == true,
            includeUsage: chat.common.streamOptions?.includeUsage == true, promptParam: "messages")
    }

    /// `POST /v1/completions`.
    package static func completion(_ body: Data, modelName: String, layerCount: Int) throws(APIError) -> ParsedRequest {
        let completion = try RequestDecoding.decode(CompletionRequest.self, from: body)
        guard completion.common.model == modelName else { throw .modelNotFound(completion.common.model) }
        let session = try completion.common.sessionRequest(
            prompt: .text(completion.prompt), defaultMaxTokens: CompletionRequest.defaultMaxTokens, layerCount: layerCount)
        return ParsedRequest(
            session: session, stream: completion.common.stream == true,
            includeUsage: completion.common.streamOptions?.includeUsage == true, promptParam: "prompt")
    }

    /// The JSON body an error response carries.
    package static func errorBody(_ error: APIError) -> Data {
        (try? responseEncoder.encode(error.body)) ?? Data()
    }
}
