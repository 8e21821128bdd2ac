import ArgumentParser
import Foundation
import StrataEngine
import StrataTokenizer

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt.",
        discussion: """
            The prompt is tokenized exactly as given (a BOS token is added only if the model's \
            metadata asks for one). With --chat it is sent as a user message through the model's \
            own chat template; the message text is always text (a control token's spelling inside \
            it, such as <|im_end|>, does not become a control token). Text streams to stdout; \
            --json prints one object at the end instead. Generation runs on a ModelSession, as \
            `strata serve` does.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var generation: GenerationOptions
    @OptionGroup var planOptions: PlanOptions
    @OptionGroup var speculationOptions: SpeculationOptions

    @Option(name: .shortAndLong, help: "The prompt text.")
    var prompt: String

    @Flag(help: "Wrap the prompt in the model's chat template as a user message.")
    var chat = false

    @Option(help: "With --chat: a system message to put first.")
    var system: String?

    @Flag(help: "Print one JSON object with ids, text, stop reason and speed.")
    var json = false

    func validate() throws {
        if system != nil, !chat { throw ValidationError("--system only applies with --chat (the system message goes through the chat template)") }
    }

    func run() async throws {
        let (model, loadSeconds) = try modelOptions.load()
        let promptTokens = try tokenize(model: model)
        guard !promptTokens.isEmpty else { throw CommandFailure("the prompt tokenizes to nothing; give some text") }
        let contextLength = model.config.contextLength
        guard promptTokens.count < contextLength else {
            throw GenerationError.promptExceedsContext(promptTokens: promptTokens.count, contextLength: contextLength)
        }
        // as many tokens as asked, or as the context holds ("context" is then why it stopped)
        let maxTokens = min(generation.maxTokens, contextLength - promptTokens.count)
        var result = SessionResult(finishReason: .length, promptTokens: promptTokens.count, cachedPromptTokens: 0,
                                   completionTokens: 0, tokens: [], timeToFirstTokenSeconds: 0, queueSeconds: 0,
                                   decodeSeconds: 0, speculation: nil)
        if maxTokens > 0 {
            let session: ModelSession
            let transformer = modelOptions.makeTransformer(model)
            do {
                session = try ModelSession(transformer: transformer, options: SessionOptions(
                    parallel: 1, contextLength: promptTokens.count + maxTokens, plan: try planOptions.plan(for: model.config),
                    speculation: try speculationOptions.parameters(for: transformer, name: modelOptions.model),
                    promptCacheEntries: 0, historyTokens: 0, timeLimit: nil))
            } catch let error as SessionError {
                throw CommandFailure("\(error)")
            }
            let request = SessionRequest(prompt: .tokens(promptTokens), maxTokens: maxTokens, sampling: generation.sampling)
            defer { Task { await session.shutdown(cancelRunning: true) } }
            var finished: SessionResult?
            for try await event in try session.generate(request) {
                switch event {
                case .text(let text, _) where !json: try StandardOutput.write(text)
                case .finished(let last): finished = last
                default: break
                }
            }
            guard let finished else { throw CommandFailure("generation ended without a result") }
            result = finished
        }
        if let found = result.searchedDraftPlan {
            try speculationOptions.saveSearchedPlan(found, model: modelOptions.model)
        }
        let stopReason = switch result.finishReason {
        case .stop: "eos"
        case .length where result.completionTokens < generation.maxTokens: "context"
        case .context: "context"
        default: "length"
        }
        let promptTokensPerSecond = result.timeToFirstTokenSeconds > 0
            ? Double(result.promptTokens) / result.timeToFirstTokenSeconds : 0
        let tokensPerSecond = result.decodeSeconds > 0 ? Double(result.completionTokens) / result.decodeSeconds : 0
        if json {
            try printJSON(GenerateOutput(
                model: modelOptions.model, promptTokens: promptTokens, tokens: result.tokens,
                text: model.tokenizer.decode(result.tokens), stopReason: stopReason,
                stats: .init(promptTokensPerSecond: promptTokensPerSecond, tokensPerSecond: tokensPerSecond,
                             loadSeconds: loadSeconds),
                speculation: speculationOptions.speculative ? result.speculation ?? SpeculationStats() : nil))
        } else {
            try StandardOutput.write("\n")
            printError(String(format: "[%d prompt tokens at %.1f t/s, %d generated at %.1f t/s, stop: %@, load %.2f s]",
                              result.promptTokens, promptTokensPerSecond, result.completionTokens,
                              tokensPerSecond, stopReason, loadSeconds))
            if speculationOptions.speculative, let speculation = result.speculation {
                printError(String(format: "[speculation %@: %d drafted, %d accepted (%.0f%%), %.2f accepted per verify, %d verify passes]",
                                  speculation.draftPlan, speculation.drafted, speculation.accepted,
                                  100 * speculation.acceptanceRate, speculation.meanAcceptedPerVerify, speculation.verifyPasses))
            }
        }
    }

    private func tokenize(model: LanguageModel) throws -> [TokenID] {
        do {
            return try model.promptTokens(prompt, chat: chat, system: system)
        } catch let error as ChatPromptError {
            throw CommandFailure("--chat: \(error)")
        }
    }
}

/// `strata generate --json` output.
struct GenerateOutput: Encodable {
    struct Stats: Encodable {
        var promptTokensPerSecond: Double
        var tokensPerSecond: Double
        var loadSeconds: Double
        enum CodingKeys: String, CodingKey {
            case promptTokensPerSecond = "prompt_tokens_per_second"
            case tokensPerSecond = "tokens_per_second"
            case loadSeconds = "load_seconds"
        }
    }
    var model: String
    var promptTokens: [TokenID]
    var tokens: [TokenID]
    var text: String
    var stopReason: String
    var stats: Stats
    var speculation: SpeculationStats?
    enum CodingKeys: String, CodingKey {
        case model, tokens, text, stats, speculation
        case promptTokens = "prompt_tokens"
        case stopReason = "stop_reason"
    }
}
