import StrataEngine

/// How one endpoint shapes its answer, whole or as stream chunks: the chat and the text
/// completion objects differ only here, so the generation and streaming code is shared.
protocol CompletionFormat: Sendable {
    var header: ResponseHeader { get }
    /// Whether the stream ends with the usage chunk (`stream_options.include_usage`).
    var includeUsage: Bool { get }
    /// `chat.completion` or `text_completion`.
    var wholeObject: String { get }
    /// `chat.completion.chunk` or `text_completion`.
    var chunkObject: String { get }
    /// Sent before any text (chat's `{"role": "assistant", "content": ""}` delta), or nil.
    func firstChunkContent() -> Choice.Content?
    /// A chunk's piece of text; `""` with the finish reason.
    func chunkContent(_ text: String) -> Choice.Content
    func wholeContent(_ text: String) -> Choice.Content
}

extension CompletionFormat {
    private var chunkUsage: CompletionObject.UsageField { includeUsage ? .null : .absent }

    private func chunk(_ content: Choice.Content, finishReason: String? = nil, strata: StrataResponseInfo? = nil) -> CompletionObject {
        CompletionObject(header: header, object: chunkObject, choices: [Choice(content: content, finishReason: finishReason)],
                         usage: chunkUsage, strata: strata)
    }

    func firstChunk() -> CompletionObject? { firstChunkContent().map { chunk($0) } }

    func textChunk(_ text: String) -> CompletionObject { chunk(chunkContent(text)) }

    /// The empty chunk that carries the finish reason.
    func finishChunk(_ result: SessionResult) -> CompletionObject {
        chunk(chunkContent(""), finishReason: openAIFinishReason(result.finishReason), strata: StrataResponseInfo(result))
    }

    /// The chunk with `choices: []` and `usage`.
    func usageChunk(_ result: SessionResult) -> CompletionObject {
        CompletionObject(header: header, object: chunkObject, choices: [], usage: .value(Usage(result)), strata: nil)
    }

    func whole(text: String, result: SessionResult) -> CompletionObject {
        CompletionObject(
            header: header, object: wholeObject,
            choices: [Choice(content: wholeContent(text), finishReason: openAIFinishReason(result.finishReason))],
            usage: .value(Usage(result)), strata: StrataResponseInfo(result))
    }
}

/// `chat.completion` and `chat.completion.chunk` objects.
struct ChatFormat: CompletionFormat {
    let header: ResponseHeader
    let includeUsage: Bool
    var wholeObject: String { "chat.completion" }
    var chunkObject: String { "chat.completion.chunk" }

    func firstChunkContent() -> Choice.Content? { .delta(.init(role: "assistant", content: "")) }
    func chunkContent(_ text: String) -> Choice.Content { .delta(.init(content: text.isEmpty ? nil : text)) }
    func wholeContent(_ text: String) -> Choice.Content { .message(.init(content: text)) }
}

/// `text_completion` objects, whole and as chunks (OpenAI streams the same object).
struct TextFormat: CompletionFormat {
    let header: ResponseHeader
    let includeUsage: Bool
    var wholeObject: String { "text_completion" }
    var chunkObject: String { "text_completion" }

    func firstChunkContent() -> Choice.Content? { nil }
    func chunkContent(_ text: String) -> Choice.Content { .text(text) }
    func wholeContent(_ text: String) -> Choice.Content { .text(text) }
}
