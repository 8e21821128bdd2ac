import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

extension ParetoChart.Axis: ExpressibleByArgument {}

/// `strata eval compare`: the full model and several plans, quality and speed side by side.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare the full model with layer plans: compute kept, perplexity, task accuracy, tokens/s.",
        discussion: """
            For the full model and each plan: the fraction of layer compute kept, perplexity on \
            --perplexity-file (default: the opening chapters of Pride and Prejudice, built in), \
            accuracy on each of --tasks (the first --limit documents), and generation tokens/s \
            measured in this run with the plans interleaved, with the ratio to the full model.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .upToNextOption, help: "Plan files (plan.json) to compare with the full model.")
    var plans: [String] = []

    @Option(help: "Comma-separated tasks to score (\(EvaluationTask.allCases.map(\.rawValue).joined(separator: ", "))), or 'none'.")
    var tasks = "lambada,arc-easy"

    @Option(help: "Documents scored per task.")
    var limit = 300

    @Option(name: .customLong("perplexity-file"), help: "Text file for perplexity (default: built-in Pride and Prejudice, chapters 1-3).")
    var perplexityFile: String?

    @Option(name: .customLong("perplexity-windows"), help: "Windows of --perplexity-context tokens scored (0 skips perplexity).")
    var perplexityWindows = 4

    @Option(name: .customLong("perplexity-context"), help: "Tokens per perplexity window.")
    var perplexityContext = 512

    @Option(name: .customLong("speed-tokens"), help: "Tokens generated per timed run (0 skips the speed measurement).")
    var speedTokens = 64

    @Option(name: .customLong("speed-repetitions"), help: "Timed rounds over all plans, after one warm-up round.")
    var speedRepetitions = 3

    @Option(help: "Write the comparison as JSON to this file ('-' for stdout).")
    var json: String?

    @Option(help: "Write an SVG chart of quality against speed or compute to this file.")
    var chart: String?

    @Option(name: .customLong("chart-x"), help: "Horizontal axis of the chart: speed (tokens/s ratio) or compute (fraction kept).")
    var chartX: ParetoChart.Axis = .speed

    @Flag(help: "Overwrite --json and --chart files that exist.")
    var force = false

    func validate() throws {
        if let json, json != "-" { try checkOutputPath(json, option: "--json", force: force) }
        if let chart { try checkOutputPath(chart, option: "--chart", force: force) }
        if let json, json == chart { throw ValidationError("--json and --chart name the same file, \(json)") }
        if limit < 1 { throw ValidationError("--limit must be at least 1, found \(limit)") }
        if perplexityWindows < 0 { throw ValidationError("--perplexity-windows must be 0 or more") }
        if perplexityContext < 2 { throw ValidationError("--perplexity-context must be at least 2") }
        if speedTokens < 0 || speedRepetitions < 1 { throw ValidationError("--speed-tokens must be 0 or more and --speed-repetitions at least 1") }
        _ = try selectedTasks()
    }

    func selectedTasks() throws -> [EvaluationTask] {
        if tasks == "none" || tasks.isEmpty { return [] }
        return try tasks.split(separator: ",").map { name in
            guard let task = EvaluationTask(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown task '\(name)' in --tasks; known: \(EvaluationTask.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return task
        }
    }

    func run() throws {
        let tasks = try selectedTasks()
        let documents = try tasks.map { try TaskData.documents(for: $0, limit: limit) }
        let (model, _) = try modelOptions.load()
        let config = model.config
        var named: [(name: String, plan: LayerPlan)] = [("full", .full(layerCount: config.layerCount))]
        for path in plans {
            let plan: LayerPlan
            do {
                plan = try LayerPlan.load(path: path)
                try plan.validate(layerCount: config.layerCount)
            } catch {
                throw CommandFailure("plan \(path): \(error)")
            }
            named.append((URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, plan))
        }
        let text = try perplexityText()
        let textTokens = model.tokenizer.encode(text.contents, addSpecial: false, parseSpecial: false)
        var transformer = modelOptions.makeTransformer(model)

        var entries: [PlanComparisonEntry] = []
        for (name, plan) in named {
            var entry = PlanComparisonEntry(name: name, method: plan.method, computeFraction: plan.computeFraction(config: config))
            if perplexityWindows > 0 {
                entry.perplexity = try evaluatePerplexity(
                    transformer: &transformer, tokens: textTokens, context: min(perplexityContext, config.contextLength),
                    windows: perplexityWindows, plan: plan, firstToken: windowStartToken(for: model.tokenizer)
                ) { window, total, running in
                    printError(String(format: "\r%@: perplexity window %d/%d, %.3f", name, window, total, running),
                               terminator: window == total ? "\n" : "")
                }
            }
            for (task, taskDocuments) in zip(tasks, documents) {
                entry.tasks.append(try evaluateTask(task, documents: taskDocuments, transformer: &transformer, plan: plan,
                                                    progress: taskProgress(task, label: "\(name): ")))
            }
            entries.append(entry)
        }
        if speedTokens > 0 {
            let speeds = try measureGenerationSpeeds(
                transformer: &transformer, plans: named.map(\.plan), tokens: min(speedTokens, config.contextLength),
                repetitions: speedRepetitions
            ) { round, total in
                printError("\rgeneration speed: round \(round)/\(total) (round 0 is a warm-up)", terminator: round == total ? "\n" : "")
            }
            for index in entries.indices {
                entries[index].generation = speeds[index]
                entries[index].speedRatio = speeds[index].median / speeds[0].median
            }
        }

        let report = PlanComparisonReport(
            model: modelOptions.model, limit: tasks.isEmpty ? nil : limit, perplexityText: text.name,
            generatedTokens: speedTokens, entries: entries)
        // With --json -, stdout carries the JSON alone (a reader parses all of it); the table
        // goes to stderr then.
        if json == "-" { printError(table(report, tasks: tasks)) } else { print(table(report, tasks: tasks)) }
        if let json {
            let data = try JSONEncoder.forReports().encode(report)
            if json == "-" { print(String(decoding: data, as: UTF8.self)) } else { try data.write(to: URL(fileURLWithPath: json)) }
        }
        if let chart {
            try ParetoChart.svg(report, x: chartX).write(toFile: chart, atomically: true, encoding: .utf8)
            printError("chart written to \(chart)")
        }
    }

    private func perplexityText() throws -> (name: String, contents: String) {
        guard let perplexityFile else { return ("built-in: Pride and Prejudice, chapters 1-3", defaultPerplexityText) }
        let data = try InputFiles.read(perplexityFile)
        guard let text = String(data: data, encoding: .utf8) else { throw CommandFailure("\(perplexityFile) is not UTF-8 text") }
        return (perplexityFile, text)
    }

    /// The comparison as an aligned text table.
    private func table(_ report: PlanComparisonReport, tasks: [EvaluationTask]) -> String {
        var header = ["plan", "method", "compute", "perplexity"]
        for task in tasks { header.append(task.kind == .multipleChoice ? "\(task.rawValue) acc/per-char" : "\(task.rawValue) acc") }
        header += ["tokens/s", "× full"]
        let rows = report.entries.map { entry -> [String] in
            var row = [entry.name, entry.method ?? "-", String(format: "%.3f", entry.computeFraction),
                       entry.perplexity.map { String(format: "%.3f", $0.perplexity) } ?? "-"]
            for task in tasks {
                guard let result = entry.report(for: task) else { row.append("-"); continue }
                row.append(result.accuracyPerCharacter.map { String(format: "%.3f / %.3f", result.accuracy, $0) }
                           ?? String(format: "%.3f", result.accuracy))
            }
            row.append(entry.generation.map { String(format: "%.1f", $0.median) } ?? "-")
            row.append(entry.speedRatio.map { String(format: "%.2f", $0) } ?? "-")
            return row
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                // Names read best left-aligned, numbers right-aligned.
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                return index < 2 ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
        var lines = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        lines += rows.map(line)
        if let limit = report.limit { lines.append("tasks: first \(limit) documents each; perplexity: \(report.perplexityText)") }
        return lines.joined(separator: "\n")
    }
}
