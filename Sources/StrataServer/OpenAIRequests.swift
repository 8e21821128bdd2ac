import Foundation
import StrataEngine

/// One message of a chat request: `content` is a string or a list of text parts.
struct ChatRequestMessage: Decodable, Sendable {
    var role: String
    var content: String?
    /// Present on assistant turns that called tools; this server runs no tools.
    var toolCalls: JSONValue?

    enum CodingKeys: String, CodingKey {
        case role, content
        case toolCalls = "tool_calls"
    }

    /// A content part; only `{"type": "text", "text": ...}` is understood.
    struct Part: Decodable {
        var type: String
        var text: String?
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(String.self, forKey: .role)
        toolCalls = try container.decodeIfPresent(JSONValue.self, forKey: .toolCalls)
        if (try? container.decodeNil(forKey: .content)) ?? true {
            content = nil
        } else if let text = try? container.decode(String.self, forKey: .content) {
            content = text
        } else if (try? container.decode([JSONValue].self, forKey: .content)) != nil {
            let parts = try container.decode([Part].self, forKey: .content)
            var text = ""
            for (index, part) in parts.enumerated() {
                let path = "messages[\(decoder.codingPath.last?.intValue ?? 0)].content[\(index)]"
                guard part.type == "text" else {
                    throw APIError.unsupported(path + ".type", "only text parts are supported, found '\(part.type)'")
                }
                guard let partText = part.text else {
                    throw APIError.invalid("'\(path).text' is required", param: path + ".text", code: "missing_required_parameter")
                }
                text += partText
            }
            content = text
        } else {
            throw DecodingError.typeMismatch(
                StringOrList.self, .init(codingPath: decoder.codingPath + [CodingKeys.content],
                                         debugDescription: "expected a string or an array of text parts"))
        }
    }
}

/// `stream_options`.
struct StreamOptions: Decodable, Sendable {
    var includeUsage: Bool?
    enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
}

/// `response_format`: only `{"type": "text"}` is accepted.
struct ResponseFormat: Decodable, Sendable {
    var type: String
}

/// The Strata extension object of a request.
struct StrataRequestOptions: Decodable, Sendable {
    /// A layer plan in `plan.json`'s shape.
    var plan: LayerPlan?
    var speculative: Bool?
    /// `auto`, `ngram` or `early-exit:E`.
    var draft: String?
    /// Most tokens drafted per round, 1 to `maximumDraft`.
    var maxDraft: Int?

    enum CodingKeys: String, CodingKey {
        case plan, speculative, draft
        case maxDraft = "max_draft"
    }

    /// The most draft tokens per round a request may ask for (each verify pass costs more).
    static let maximumDraft = 8
}

/// The fields chat and text completions share: sampling, length, stops, streaming, the
/// refused fields, and the Strata extension.
struct CommonRequestFields: Decodable, Sendable {
    var model: String
    var temperature: Double?
    var topP: Double?
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    var stop: StringOrList?
    var seed: Int64?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var strata: StrataRequestOptions?
    // Fields that would change the output and are not implemented: refused when they ask for
    // something (see `refusal`).
    var n: Int?
    var bestOf: Int?
    var logitBias: JSONValue?
    var logprobs: JSONValue?
    var topLogprobs: Int?
    var tools: JSONValue?
    var toolChoice: JSONValue?
    var functions: JSONValue?
    var functionCall: JSONValue?
    var responseFormat: ResponseFormat?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var echo: Bool?
    var suffix: String?

    enum CodingKeys: String, CodingKey {
        case model, temperature, stop, seed, stream, strata, n, tools, functions, logprobs, echo, suffix
        case topP = "top_p"
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case streamOptions = "stream_options"
        case bestOf = "best_of"
        case logitBias = "logit_bias"
        case topLogprobs = "top_logprobs"
        case toolChoice = "tool_choice"
        case functionCall = "function_call"
        case responseFormat = "response_format"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
    }

    /// The first field that asks for something this server does not do, as a 400.
    func refusal() -> APIError? {
        if let n, n != 1 { return n < 1 ? .invalid("'n' must be at least 1", param: "n") : .unsupported("n", "one choice per request") }
        if let bestOf, bestOf != 1 { return .unsupported("best_of") }
        if let logitBias, !logitBias.isEmpty { return .unsupported("logit_bias") }
        if let logprobs, !logprobs.isEmpty { return .unsupported("logprobs") }
        if let topLogprobs, topLogprobs != 0 { return .unsupported("top_logprobs") }
        if let tools, !tools.isEmpty { return .unsupported("tools") }
        if let toolChoice, !toolChoice.isEmpty, toolChoice != .string("none") { return .unsupported("tool_choice") }
        if let functions, !functions.isEmpty { return .unsupported("functions") }
        if let functionCall, !functionCall.isEmpty, functionCall != .string("none") { return .unsupported("function_call") }
        if let responseFormat, responseFormat.type != "text" {
            return .unsupported("response_format", "only {\"type\": \"text\"}")
        }
        if let presencePenalty, presencePenalty != 0 { return .unsupported("presence_penalty") }
        if let frequencyPenalty, frequencyPenalty != 0 { return .unsupported("frequency_penalty") }
        if echo == true { return .unsupported("echo") }
        if let suffix, !suffix.isEmpty { return .unsupported("suffix") }
        return nil
    }

    /// The most stop strings a request may give, as OpenAI allows.
    static let maximumStops = 4

    /// The session request for `prompt`, after checking every value; `defaultMaxTokens` applies
    /// when the request sets no limit.
    func sessionRequest(prompt: SessionPrompt, defaultMaxTokens: Int?, layerCount: Int) throws(APIError) -> SessionRequest {
        if let refusal = refusal() { throw refusal }
        if streamOptions != nil, stream != true {
            throw .invalid("'stream_options' is only allowed when 'stream' is true", param: "stream_options")
        }
        let temperature = temperature ?? 1
        guard temperature >= 0, temperature <= 2 else {
            throw .invalid("'temperature' must be between 0 and 2, found \(temperature)", param: "temperature")
        }
        let topP = topP ?? 1
        guard topP >= 0, topP <= 1 else { throw .invalid("'top_p' must be between 0 and 1, found \(topP)", param: "top_p") }
        let limitField = maxCompletionTokens != nil ? "max_completion_tokens" : "max_tokens"
        let maxTokens = maxCompletionTokens ?? maxTokens ?? defaultMaxTokens
        if let maxTokens, maxTokens < 1 {
            throw .invalid("'\(limitField)' must be at least 1, found \(maxTokens)", param: limitField)
        }
        let stops = stop?.values ?? []
        guard stops.count <= Self.maximumStops else {
            throw .invalid("'stop' holds at most \(Self.maximumStops) strings, found \(stops.count)", param: "stop")
        }
        // OpenAI has neither top-k nor min-p; top_p 0 keeps only the most likely token, which is greedy.
        let sampling = SamplingParameters(
            temperature: topP == 0 ? 0 : Float(temperature), topK: 0, topP: topP == 0 ? 1 : Float(topP), minP: 0,
            seed: seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max))
        var request = SessionRequest(prompt: prompt, maxTokens: maxTokens, sampling: sampling, stop: stops)
        if let strata {
            request.plan = strata.plan
            request.speculation = try Self.speculation(strata, layerCount: layerCount)
        }
        return request
    }

    /// The speculation choice of the extension object.
    static func speculation(_ options: StrataRequestOptions, layerCount: Int) throws(APIError) -> SpeculationChoice {
        guard let speculative = options.speculative else {
            if options.draft != nil || options.maxDraft != nil {
                throw .invalid("'strata.draft' and 'strata.max_draft' need 'strata.speculative': true", param: "strata.speculative")
            }
            return .sessionDefault
        }
        guard speculative else { return .off }
        let maxDraft = options.maxDraft ?? StrataRequestOptions.maximumDraft
        guard maxDraft >= 1, maxDraft <= StrataRequestOptions.maximumDraft else {
            throw .invalid("'strata.max_draft' must be 1 to \(StrataRequestOptions.maximumDraft), found \(maxDraft)",
                           param: "strata.max_draft")
        }
        let source: DraftSource
        switch options.draft ?? "auto" {
        case "auto": source = .auto(fallback: nil)
        case "ngram": source = .ngram
        case let value where value.hasPrefix("early-exit:"):
            guard let layers = Int(value.dropFirst("early-exit:".count)), layers >= 1, layers < layerCount else {
                throw .invalid("'strata.draft' \(value): expected early-exit:E with 1 <= E < \(layerCount)", param: "strata.draft")
            }
            source = .earlyExit(layers: layers)
        case let value:
            throw .invalid("'strata.draft' must be auto, ngram or early-exit:E, found '\(value)'", param: "strata.draft")
        }
        return .on(SpeculationParameters(draft: source, maxDraft: maxDraft))
    }
}

/// `POST /v1/chat/completions`.
struct ChatCompletionRequest: Decodable, Sendable {
    var common: CommonRequestFields
    var messages: [ChatRequestMessage]

    enum CodingKeys: String, CodingKey { case messages }

    init(from decoder: any Decoder) throws {
        common = try CommonRequestFields(from: decoder)
        messages = try decoder.container(keyedBy: CodingKeys.self).decode([ChatRequestMessage].self, forKey: .messages)
    }

    /// The roles a chat template renders; `developer` is OpenAI's newer name for `system`.
    static let roles: Set<String> = ["system", "developer", "user", "assistant"]

    /// The conversation as the engine's messages.
    func chatMessages() throws(APIError) -> [ChatMessage] {
        guard !messages.isEmpty else { throw .invalid("'messages' must hold at least one message", param: "messages") }
        var result: [ChatMessage] = []
        for (index, message) in messages.enumerated() {
            guard Self.roles.contains(message.role) else {
                throw .unsupported("messages[\(index)].role", "the roles are system, user and assistant, found '\(message.role)'")
            }
            if let toolCalls = message.toolCalls, !toolCalls.isEmpty { throw .unsupported("messages[\(index)].tool_calls") }
            guard let content = message.content else {
                throw .invalid("'messages[\(index)].content' is required", param: "messages[\(index)].content",
                               code: "missing_required_parameter")
            }
            result.append(ChatMessage(role: message.role == "developer" ? "system" : message.role, content: content))
        }
        return result
    }
}

/// `POST /v1/completions`.
struct CompletionRequest: Decodable, Sendable {
    var common: CommonRequestFields
    var prompt: String

    enum CodingKeys: String, CodingKey { case prompt }

    init(from decoder: any Decoder) throws {
        common = try CommonRequestFields(from: decoder)
        let prompts = try decoder.container(keyedBy: CodingKeys.self).decode(StringOrList.self, forKey: .prompt).values
        guard prompts.count == 1, let prompt = prompts.first else {
            throw APIError.unsupported("prompt", "one prompt per request, found \(prompts.count)")
        }
        self.prompt = prompt
    }

    /// OpenAI's default length for text completions (chat completions have none).
    static let defaultMaxTokens = 16
}
