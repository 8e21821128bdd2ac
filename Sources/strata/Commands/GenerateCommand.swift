import ArgumentParser
import Foundation
import StrataEngine
import StrataTokenizer

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt.",
        discussion: """
            The prompt is tokenized exactly as given (a BOS token is added only if the model's \
            metadata asks for one). With --chat it is sent as a user message through the model's \
            own chat template. Text streams to stdout; --json prints one object at the end instead.
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

    func run() throws {
        let (model, loadSeconds) = try modelOptions.load()
        let promptTokens = try tokenize(model: model)
        guard !promptTokens.isEmpty else { throw CommandFailure("the prompt tokenizes to nothing; give some text") }
        // A prompt longer than the context is refused by the generator's first step.
        let transformer = modelOptions.makeTransformer(model)
        var generator = Generator(
            transformer: transformer, prompt: promptTokens,
            parameters: GenerationParameters(
                maxTokens: generation.maxTokens, sampling: generation.sampling, plan: try planOptions.plan(for: model.config),
                speculation: try speculationOptions.parameters(for: model.config, model: modelOptions.model)))
        var generated: [TokenID] = []
        var stats = GenerationStats()
        while let event = try generator.next() {
            switch event {
            case .token(let token, let text):
                generated.append(token)
                if !json {
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            case .text(let text):
                if !json {
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            case .finished(let finalStats):
                stats = finalStats
            }
        }
        if let found = generator.searchedDraftPlan {
            try speculationOptions.saveSearchedPlan(found, model: modelOptions.model)
        }
        if json {
            try printJSON(GenerateOutput(
                model: modelOptions.model, promptTokens: promptTokens, tokens: generated,
                text: model.tokenizer.decode(generated), stopReason: stats.stopReason.rawValue,
                stats: .init(promptTokensPerSecond: stats.promptTokensPerSecond, tokensPerSecond: stats.tokensPerSecond,
                             loadSeconds: loadSeconds),
                speculation: speculationOptions.speculative ? generator.speculationStats : nil))
        } else {
            print("")
            printError(String(format: "[%d prompt tokens at %.1f t/s, %d generated at %.1f t/s, stop: %@, load %.2f s]",
                              stats.promptTokens, stats.promptTokensPerSecond, stats.generatedTokens,
                              stats.tokensPerSecond, stats.stopReason.rawValue, loadSeconds))
            if speculationOptions.speculative {
                let speculation = generator.speculationStats
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
