import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Measure model quality.",
        subcommands: [PerplexityCommand.self, CompareCommand.self] + taskCommands)
}

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a model on a text file.",
        discussion: """
            The whole file is tokenized (without BOS) and cut into non-overlapping windows of --context \
            tokens from the start; each window is evaluated on its own. For a model whose tokenizer \
            adds BOS (Gemma), each window's first token is replaced by BOS, as llama-perplexity does. \
            By default every prediction \
            after a window's first token is scored (as transformers-based scripts do). --llama-cpp \
            scores only the second half of each window, reproducing llama.cpp's llama-perplexity.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var planOptions: PlanOptions

    @Option(name: .shortAndLong, help: "The text file to score.")
    var file: String

    @Option(help: "Tokens per window.")
    var context: Int = 512

    @Option(help: "Score only the first N windows (default: all whole windows in the file).")
    var windows: Int?

    @Flag(name: .customLong("llama-cpp"), help: "Score like llama-perplexity: only the second half of each window.")
    var llamaCpp = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if context < 2 { throw ValidationError("--context must be at least 2, found \(context)") }
        if llamaCpp, context < 4 {
            throw ValidationError("--llama-cpp scores only the second half of each window: --context must be at least 4, found \(context)")
        }
        if let windows, windows < 1 { throw ValidationError("--windows must be at least 1, found \(windows)") }
    }

    func run() throws {
        let data = try InputFiles.read(file)
        guard let text = String(data: data, encoding: .utf8) else { throw CommandFailure("\(file) is not UTF-8 text") }
        let (model, _) = try modelOptions.load()
        guard context <= model.config.contextLength else {
            throw CommandFailure("--context \(context) exceeds the model's context length \(model.config.contextLength)")
        }
        let tokens = model.tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        var transformer = modelOptions.makeTransformer(model)
        let report = try evaluatePerplexity(
            transformer: &transformer, tokens: tokens, context: context, windows: windows,
            scoring: llamaCpp ? .secondHalf : .allPredictions, plan: try planOptions.plan(for: model.config),
            firstToken: windowStartToken(for: model.tokenizer)
        ) { window, total, running in
            printError(String(format: "\rwindow %d/%d  perplexity so far %.4f", window, total, running),
                       terminator: window == total ? "\n" : "")
        }
        if json {
            try printJSON(report)
        } else {
            print(String(format: "perplexity %.4f over %d tokens (%d windows of %d, %@ scoring, %d tokens in the file) in %.1f s",
                         report.perplexity, report.tokensScored, report.windows, report.context,
                         llamaCpp ? "llama.cpp second-half" : "every-prediction", tokens.count, report.seconds))
        }
    }
}
