import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Measure how much each layer matters.",
        discussion: """
            On non-overlapping calibration windows (BOS first only for models that add it, like Gemma): Block Influence, angular distances \
            d(l, n), LIM, ZD, each sublayer's residual contribution ratio, the logit lens (top-1 \
            agreement and KL to the full model per layer), and perplexity with each layer, each \
            attention and each FFN sublayer removed. The removal perplexities are most of the cost \
            (3 × layers passes per window); --no-ablations skips them. Progress goes to stderr. \
            --from-json redraws the table and HTML report of an earlier run without measuring again.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var calibrationOptions: CalibrationOptions

    @Option(help: ArgumentHelp("Write the report as JSON to this file.", valueName: "file"))
    var json: String?

    @Option(help: ArgumentHelp("Write a self-contained HTML report with charts to this file.", valueName: "file"))
    var report: String?

    @Option(name: .customLong("lens-positions"), help: "Positions per window for the logit lens (0 skips it).")
    var lensPositions = 64

    @Flag(name: .customLong("tuned-lens"), help: ArgumentHelp(
        "Also fit a tuned lens: per layer, a linear map to the last layer's stream (ridge least squares on all windows but the last), and the lens's top-1 agreement and KL with and without it on the last window.",
        discussion: "Needs --windows 2 or more; each map is hidden x hidden, so the fits hold 16·hidden² bytes per layer in memory."))
    var tunedLens = false

    @Flag(name: .customLong("no-ablations"), help: "Skip the removal perplexities (the slow part).")
    var noAblations = false

    @Option(name: .customLong("from-json"), help: ArgumentHelp(
        "Read an earlier `strata analyze --json` file instead of measuring (to redraw --report).", valueName: "file"))
    var fromJSON: String?

    @Flag(help: "Overwrite --json and --report files that exist.")
    var force = false

    func validate() throws {
        if fromJSON != nil, json != nil {
            throw ValidationError("--from-json reads a finished analysis; --json would only copy it")
        }
        if let json { try checkOutputPath(json, option: "--json", force: force) }
        if let report { try checkOutputPath(report, option: "--report", force: force) }
        if let json, json == report { throw ValidationError("--json and --report name the same file, \(json)") }
        if lensPositions < 0 { throw ValidationError("--lens-positions must be 0 or more, found \(lensPositions)") }
    }

    func run() throws {
        let result = try fromJSON.map { try ImportanceReport.load(path: $0) } ?? measure()
        if let json {
            try result.jsonData().write(to: URL(fileURLWithPath: json), options: .atomic)
        }
        if let report {
            try Data(result.html().utf8).write(to: URL(fileURLWithPath: report), options: .atomic)
        }
        print(result.table())
        if fromJSON == nil { printError(String(format: "analysis took %.1f s", result.seconds)) }
    }

    private func measure() throws -> ImportanceReport {
        let (model, _) = try modelOptions.load()
        let (calibration, textName) = try calibrationOptions.calibration(for: model)
        var transformer = modelOptions.makeTransformer(model)
        if tunedLens && calibration.windows.count < 2 {
            throw CommandFailure("--tuned-lens needs at least 2 calibration windows (one is held out); found \(calibration.windows.count)")
        }
        if tunedLens && lensPositions == 0 { throw CommandFailure("--tuned-lens needs --lens-positions above 0") }
        let options = ImportanceOptions(ablations: noAblations ? [] : Ablation.allCases, logitLensPositions: lensPositions,
                                        measuresTunedLens: tunedLens)
        let result = try analyzeImportance(
            transformer: &transformer, calibration: calibration, modelName: modelOptions.model, textName: textName,
            options: options, progress: printProgress)
        printError("")
        return result
    }
}
