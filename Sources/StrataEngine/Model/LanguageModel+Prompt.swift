import StrataTokenizer

/// Why a chat prompt could not be built.
public enum ChatPromptError: Error, CustomStringConvertible, Equatable {
    /// The model's metadata has no `tokenizer.chat_template`.
    case noTemplate
    /// The template failed to render; the message says where and why.
    case render(String)

    public var description: String {
        switch self {
        case .noTemplate: "the model has no tokenizer.chat_template in its metadata"
        case .render(let message): "cannot render the model's chat template: \(message)"
        }
    }
}

extension LanguageModel {
    /// The prompt tokens of `text` as `strata generate` builds them: the text tokenized as given
    /// (a BOS token only if the metadata asks for one; special-token text is parsed), or, with
    /// `chat`, the text as a user message (after an optional system message) rendered by the
    /// model's own chat template with the generation prompt appended (`chatPromptTokens`).
    public func promptTokens(_ text: String, chat: Bool = false, system: String? = nil) throws -> [TokenID] {
        guard chat else { return tokenizer.encode(text, addSpecial: true, parseSpecial: true) }
        var messages: [ChatMessage] = []
        if let system { messages.append(ChatMessage(role: "system", content: system)) }
        messages.append(ChatMessage(role: "user", content: text))
        return try chatPromptTokens(messages)
    }

    /// `messages` rendered by the model's chat template with the generation prompt appended,
    /// tokenized. Message content is always text: a control token's spelling inside it (such as
    /// `<|im_end|>`) is tokenized as ordinary text, so a message cannot end its own turn and
    /// speak as another role; only the template's own markup becomes control tokens.
    public func chatPromptTokens(_ messages: [ChatMessage]) throws -> [TokenID] {
        guard let chatTemplateSource else { throw ChatPromptError.noTemplate }
        let tokenizer = tokenizer
        func spelling(_ id: TokenID?) -> String { id.map { String(decoding: tokenizer.bytes(of: $0), as: UTF8.self) } ?? "" }
        let literalMessages = messages.map { ChatMessage(role: $0.role, content: tokenizer.literal($0.content)) }
        let rendered: String
        do {
            rendered = try ChatTemplate(source: chatTemplateSource).render(
                messages: literalMessages, addGenerationPrompt: true,
                bosToken: spelling(tokenizer.vocabulary.bosID), eosToken: spelling(tokenizer.vocabulary.eosID))
        } catch {
            throw ChatPromptError.render("\(error)")
        }
        return tokenizer.encode(rendered, addSpecial: false, parseSpecial: true)
    }
}
