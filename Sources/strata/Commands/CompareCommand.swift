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
            (feeding the perplexity text's first --speed-tokens tokens one at a time) \
            measured in this run with the plans interleaved, with the ratio to the full model.

            Per-token depth (lossy) adds rows beside the plans: --dynamic-exit ends each token's \
            pass at the first layer (from --exit-min-layer on) whose shortcut prediction (a map \
            fitted on --calibration text, the final norm, a head over the --exit-vocabulary most \
            frequent tokens) has a top probability of at least the threshold; its later layers \
            get keys and values from the exit state (CALM's state propagation). --ffn-skip skips \
            a token's remaining middle FFNs once the stream's cosine across one reaches the \
            threshold (FFN-SkipLLM). Their compute is measured on the tokens scored: layer \
            compute per token, exit checks reported apart. 'match' in place of (or beside) the \
            thresholds adds a row per --plans file at the threshold whose compute on two \
            calibration windows is nearest that plan's (a bisection of 12 passes over them; one \
            row per distinct compute).
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .upToNextOption, help: "Plan files (plan.json) to compare with the full model.")
    var plans: [String] = []

    @Option(name: .customLong("dynamic-exit"),
            help: "Comma-separated confidence thresholds (0-1), one dynamic-exit row each; 'match': one per plan, at its compute.")
    var dynamicExit: String?

    @Option(name: .customLong("exit-min-layer"), help: "Layers every token runs before its first exit check (default: half the model).")
    var exitMinimumLayer: Int?

    @Option(name: .customLong("exit-interval"), help: "Layers between exit checks (each check costs a map and a head over --exit-vocabulary tokens).")
    var exitInterval = 2

    @Option(name: .customLong("exit-vocabulary"), help: "Tokens the exit checks score (the most frequent in the calibration text).")
    var exitVocabulary = 4096

    @Option(name: .customLong("calibration"),
            help: "Text the exit maps are fitted on (default: the bundled opening of Pride and Prejudice, which overlaps the default perplexity text).")
    var calibrationFile: String?

    @Option(name: .customLong("exit-windows"), help: "Calibration windows of 512 tokens for the exit maps (at most what the text holds).")
    var exitWindows = 16

    @Option(name: .customLong("ffn-skip"), help: "Comma-separated cosine thresholds (0-1), one FFN-skip row each; 'match': one per plan, at its compute.")
    var ffnSkip: String?

    @Option(name: .customLong("ffn-skip-layers"), help: "Layers whose FFN may be skipped, as A-B (default: all but the first quarter and last eighth).")
    var ffnSkipLayers: String?

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
        for (text, option) in [(dynamicExit, "--dynamic-exit"), (ffnSkip, "--ffn-skip")]
        where try Self.thresholds(text, option: option).matchesPlans && plans.isEmpty {
            throw ValidationError("\(option) match needs --plans: it matches each plan's compute")
        }
        if exitVocabulary < 1 { throw ValidationError("--exit-vocabulary must be at least 1, found \(exitVocabulary)") }
        if exitInterval < 1 { throw ValidationError("--exit-interval must be at least 1, found \(exitInterval)") }
        if exitWindows < 1 { throw ValidationError("--exit-windows must be at least 1, found \(exitWindows)") }
        if let ffnSkipLayers { _ = try Self.layerRange(ffnSkipLayers) }
        if let exitMinimumLayer, exitMinimumLayer < 1 {
            throw ValidationError("--exit-min-layer must be at least 1, found \(exitMinimumLayer)")
        }
        if dynamicExit == nil, exitMinimumLayer != nil {
            throw ValidationError("--exit-min-layer applies to --dynamic-exit only")
        }
        if ffnSkip == nil, ffnSkipLayers != nil { throw ValidationError("--ffn-skip-layers applies to --ffn-skip only") }
        if dynamicExit == nil, ffnSkip == nil, calibrationFile != nil {
            throw ValidationError("--calibration applies to --dynamic-exit and --ffn-skip only")
        }
        if let calibrationFile { _ = try InputFiles.read(calibrationFile) }
    }

    /// What `--dynamic-exit` / `--ffn-skip` ask for: thresholds, and `match` (a threshold per
    /// plan file, searched so the rule runs that plan's compute).
    struct Thresholds {
        var values: [Float] = []
        var matchesPlans = false
        var isEmpty: Bool { values.isEmpty && !matchesPlans }
    }

    /// Thresholds given as `0.9,0.95` (each in 0...1) or `match`.
    static func thresholds(_ text: String?, option: String) throws -> Thresholds {
        var result = Thresholds()
        guard let text else { return result }
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed == "match" {
                result.matchesPlans = true
                continue
            }
            guard let value = Float(trimmed), value.isFinite, (0...1).contains(value) else {
                throw ValidationError("\(option) takes thresholds between 0 and 1 (or 'match') separated by commas, found '\(trimmed)' in '\(text)'")
            }
            if !result.values.contains(value) { result.values.append(value) }
        }
        return result
    }

    /// `A-B` (inclusive) as a range of layers.
    static func layerRange(_ text: String) throws -> Range<Int> {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard bounds.count == 2, let first = bounds[0], let last = bounds[1], first >= 0, first <= last else {
            throw ValidationError("--ffn-skip-layers takes a range of layers such as 6-20, found '\(text)'")
        }
        return first..<(last + 1)
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
        named += try depthPlans(model: model, transformer: &transformer, staticPlans: named)

        var entries: [PlanComparisonEntry] = []
        for (name, plan) in named {
            var entry = PlanComparisonEntry(name: name, method: plan.method, computeFraction: plan.computeFraction(config: config))
            transformer.depthUsage = DepthUsage()
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
            if plan.depth != nil {
                if transformer.depthUsage.tokens == 0 {
                    // nothing scored: measure what it runs on the opening of the perplexity text
                    let tokens = Array(textTokens.prefix(min(256, config.contextLength)))
                    var cache = transformer.makeCache(capacity: tokens.count)
                    _ = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .none)
                }
                let vocabulary = if case .dynamicExit(let exit) = plan.depth { exit.head.tokens.count } else { 0 }
                let report = DepthReport(usage: transformer.depthUsage, config: config, checkVocabulary: vocabulary)
                entry.computeFraction = transformer.depthUsage.computeFraction(config: config)
                entry.depth = report
            }
            entries.append(entry)
        }
        if speedTokens > 0 {
            let speeds = try measureGenerationSpeeds(
                transformer: &transformer, plans: named.map(\.plan), tokens: min(speedTokens, config.contextLength),
                repetitions: speedRepetitions, text: textTokens
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

    /// The dynamic-exit and FFN-skip rows asked for, the exit maps fitted first. `match` rows get
    /// the threshold at which the rule runs a static plan's compute on calibration windows.
    private func depthPlans(
        model: LanguageModel, transformer: inout Transformer, staticPlans: [(name: String, plan: LayerPlan)]
    ) throws -> [(name: String, plan: LayerPlan)] {
        let config = model.config
        var named: [(name: String, plan: LayerPlan)] = []
        let exitThresholds = try Self.thresholds(dynamicExit, option: "--dynamic-exit")
        let skipThresholds = try Self.thresholds(ffnSkip, option: "--ffn-skip")
        let layers = try ffnSkipLayers.map(Self.layerRange)
        if let layers, layers.upperBound > config.layerCount {
            throw CommandFailure("--ffn-skip-layers \(ffnSkipLayers ?? "") names layers beyond the model's 0-\(config.layerCount - 1)")
        }
        let minimum = exitMinimumLayer ?? config.layerCount / 2
        if !exitThresholds.isEmpty && !(1..<config.layerCount).contains(minimum) {
            throw CommandFailure("--exit-min-layer must be in 1...\(config.layerCount - 1) for this model, found \(minimum)")
        }
        // read and tokenized only when an exit fit or a match needs it
        var calibration: (set: CalibrationSet, name: String)?
        func calibrationSet() throws -> (set: CalibrationSet, name: String) {
            if let calibration { return calibration }
            let loaded = try CalibrationOptions.calibration(file: calibrationFile, context: min(512, config.contextLength),
                                                            windows: exitWindows, for: model, takesWhatFits: true)
            calibration = loaded
            return loaded
        }

        func add(_ thresholds: Thresholds, label: String, plan: (Float) -> LayerPlan) throws {
            for threshold in thresholds.values { named.append(("\(label)@\(threshold)", plan(threshold))) }
            guard thresholds.matchesPlans else { return }
            var matched: Set<Double> = []
            for (name, staticPlan) in staticPlans where !staticPlan.isFull {
                let target = staticPlan.computeFraction(config: config)
                // a healed plan runs its unhealed plan's compute: one row serves both
                guard matched.insert(target).inserted else { continue }
                printError("[\(label): searching the threshold that runs \(name)'s compute, \(String(format: "%.3f", target))]")
                // Compute is measured on two windows (the rules' rates are per token). For exits they
                // are windows the maps were fitted on, where the maps are a little more confident than
                // on new text; the compute each row reports is measured again on what it scores.
                let windows = Array(try calibrationSet().set.windows.prefix(2))
                let found = try thresholdMatching(computeFraction: target, transformer: &transformer, windows: windows,
                                                  plan: plan)
                named.append((String(format: "%@@%.4g~%@", label, found.threshold, name), plan(found.threshold)))
            }
        }

        if !exitThresholds.isEmpty {
            if calibrationFile == nil && perplexityFile == nil {
                printError("warning: the exit maps are fitted on the bundled text, which overlaps the perplexity text; "
                           + "give --calibration other text for figures that are not optimistic")
            }
            let (set, calibrationName) = try calibrationSet()
            printError("[dynamic exit: fitting maps after \(minimum) to \(config.layerCount - 1) layers (every \(exitInterval)) on "
                       + "\(set.windows.count) windows of \(calibrationName)]")
            let fit = try fitDynamicExits(transformer: &transformer, windows: set.windows, minimumDepth: minimum,
                                          interval: exitInterval, vocabulary: exitVocabulary, progress: printProgress)
            printError(String(format: "\r\u{1B}[K[dynamic exit: %d maps fitted on %d rows in %.1f s]", fit.maps.count, fit.rows, fit.seconds))
            try add(exitThresholds, label: "exit", plan: fit.plan(threshold:))
        }
        try add(skipThresholds, label: "ffn-skip") {
            feedForwardSkipPlan(layerCount: config.layerCount, threshold: $0, layers: layers)
        }
        return named
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
        for entry in report.entries {
            guard let depth = entry.depth else { continue }
            var note = String(format: "%@: %.2f layers per token (measured on %d tokens)", entry.name, depth.layersPerToken, depth.usage.tokens)
            if depth.usage.exitChecks > 0 {
                note += String(format: "; %.0f%% of tokens exited early; exit checks cost %.3f of layer compute more",
                               100 * depth.exitedFraction, depth.checkFraction)
            }
            lines.append(note)
        }
        if let limit = report.limit { lines.append("tasks: first \(limit) documents each; perplexity: \(report.perplexityText)") }
        return lines.joined(separator: "\n")
    }
}
