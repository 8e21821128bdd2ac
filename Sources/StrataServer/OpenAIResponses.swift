import Foundation
import StrataEngine

/// `usage` of a response.
struct Usage: Encodable, Sendable, Equatable {
    struct PromptDetails: Encodable, Sendable, Equatable {
        var cachedTokens: Int
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }
    var promptTokens: Int
    var completionTokens: Int
    var totalTokens: Int
    var promptTokensDetails: PromptDetails

    init(_ result: SessionResult) {
        promptTokens = result.promptTokens
        completionTokens = result.completionTokens
        totalTokens = result.promptTokens + result.completionTokens
        promptTokensDetails = PromptDetails(cachedTokens: result.cachedPromptTokens)
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details"
    }
}

/// The Strata extension object of a response.
struct StrataResponseInfo: Encodable, Sendable {
    var speculation: SpeculationStats?
    var cachedPromptTokens: Int

    init(_ result: SessionResult) {
        speculation = result.speculation
        cachedPromptTokens = result.cachedPromptTokens
    }

    enum CodingKeys: String, CodingKey {
        case speculation
        case cachedPromptTokens = "cached_prompt_tokens"
    }
}

/// OpenAI's `finish_reason` for how a generation ended. OpenAI knows only `stop` and `length`
/// for plain text: a full context and a time limit both cut the text short, so they are `length`.
func openAIFinishReason(_ reason: FinishReason) -> String {
    switch reason {
    case .stop, .cancelled: "stop"
    case .length, .context, .timeLimit: "length"
    }
}

/// The fields every completion object starts with.
struct ResponseHeader: Sendable {
    var id: String
    var created: Int
    var model: String

    /// A new id with `prefix` (`chatcmpl-`, `cmpl-`) and the current time.
    init(prefix: String, model: String) {
        id = prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        created = Int(Date().timeIntervalSince1970)
        self.model = model
    }
}

/// One choice of a completion object: OpenAI's three kinds differ only in the field that holds
/// the text.
struct Choice: Encodable {
    /// A chat message (`{"role": "assistant", "content": ...}`).
    struct Message: Encodable {
        var role = "assistant"
        var content: String
    }
    /// A chat chunk's delta: `{"role": "assistant", "content": ""}` first, then
    /// `{"content": "..."}`, then `{}` with the finish reason.
    struct Delta: Encodable {
        var role: String?
        var content: String?
    }
    enum Content {
        case message(Message)
        case delta(Delta)
        case text(String)
    }
    var content: Content
    /// `null` until the last chunk, as OpenAI sends.
    var finishReason: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ChoiceKeys.self)
        try container.encode(0, forKey: .index)
        switch content {
        case .message(let message): try container.encode(message, forKey: .message)
        case .delta(let delta): try container.encode(delta, forKey: .delta)
        case .text(let text): try container.encode(text, forKey: .text)
        }
        try container.encodeNil(forKey: .logprobs)
        try container.encode(finishReason, forKey: .finishReason)
    }
}

/// A `chat.completion`, `chat.completion.chunk` or `text_completion` object.
struct CompletionObject: Encodable {
    /// Whole answers always carry `usage`; stream chunks carry `"usage": null` with
    /// `include_usage` (the numbers only on the last chunk) and no field without it.
    enum UsageField {
        case absent
        case null
        case value(Usage)
    }
    var header: ResponseHeader
    var object: String
    var choices: [Choice]
    var usage: UsageField
    var strata: StrataResponseInfo?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ObjectKeys.self)
        try container.encode(header.id, forKey: .id)
        try container.encode(object, forKey: .object)
        try container.encode(header.created, forKey: .created)
        try container.encode(header.model, forKey: .model)
        try container.encode(choices, forKey: .choices)
        switch usage {
        case .absent: break
        case .null: try container.encodeNil(forKey: .usage)
        case .value(let usage): try container.encode(usage, forKey: .usage)
        }
        try container.encodeIfPresent(strata, forKey: .strata)
    }
}

/// `GET /v1/models`.
struct ModelList: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var ownedBy = "strata"
        enum CodingKeys: String, CodingKey {
            case id, object, created
            case ownedBy = "owned_by"
        }
    }
    var object = "list"
    var data: [Model]
}

enum ObjectKeys: String, CodingKey { case id, object, created, model, choices, usage, strata }
enum ChoiceKeys: String, CodingKey {
    case index, message, delta, text, logprobs
    case finishReason = "finish_reason"
}
