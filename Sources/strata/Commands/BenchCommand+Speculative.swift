import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

extension BenchCommand {
    /// `strata bench --speculative`: plain against self-speculative decoding on the same prompts.
    func runSpeculative() throws {
        let benchmarkPrompts: [BenchmarkPrompt]
        do {
            benchmarkPrompts = try prompts.map { try BenchmarkPrompts.load(path: $0) } ?? BenchmarkPrompts.bundled
        } catch {
            throw CommandFailure("--prompts \(error)")
        }
        let (model, _) = try modelOptions.load()
        let transformer = modelOptions.makeTransformer(model)
        guard let speculation = try speculationOptions.parameters(for: transformer, name: modelOptions.model) else { return }
        var options = SpeculativeBenchmarkOptions(speculation: speculation)
        options.generatedTokens = generatedTokens
        options.repetitions = repetitions ?? 2
        options.plan = try planOptions.plan(for: model.config)
        options.measuresCopyCeiling = !skipsCopyCeiling
        let report: SpeculativeBenchmarkReport
        do {
            report = try runSpeculativeBenchmark(transformer: transformer, prompts: benchmarkPrompts, options: options) { step in
                printError("\r\u{1B}[Kbench --speculative: \(step)", terminator: "")
            }
        } catch let error as SpeculativeBenchmarkError {
            printError("")
            throw CommandFailure("\(error)")
        }
        printError("\r\u{1B}[K", terminator: "")

        let run = BenchRun(name: modelOptions.model, model: model, transformer: transformer)
        if json {
            try printJSON(SpeculativeBenchOutput(run: run, draft: speculationOptions.draft, draftMax: speculation.maxDraft, report: report))
        } else {
            print(run.headline)
            print(Self.table(report, draftMax: speculation.maxDraft))
        }
        warnIfOutputsDiffer(report)
    }

    /// The by-type table and the cost-model line.
    static func table(_ report: SpeculativeBenchmarkReport, draftMax: Int) -> String {
        var lines = [
            "  draft \(report.draftSource), up to \(draftMax) per round; greedy, \(report.generatedTokens) tokens per run, "
                + "\(report.repetitions) run\(report.repetitions == 1 ? "" : "s") of \(report.prompts.count) prompts in each mode",
            "  type   prompts  plain t/s   spec t/s  speedup  accepted  accepted/verify  identical",
        ]
        let rows = report.byType.sorted { $0.key < $1.key }.map { ($0.key.rawValue, $0.value) } + [("all", report.overall)]
        for (name, summary) in rows {
            lines.append(String(
                format: "  %@ %7d %10.1f %10.1f %7.2fx %8.0f%% %16.2f  %@",
                name.padding(toLength: 6, withPad: " ", startingAt: 0), summary.prompts, summary.plainTokensPerSecond,
                summary.speculativeTokensPerSecond, summary.speedup, 100 * summary.speculation.acceptanceRate,
                summary.speculation.meanAcceptedPerVerify, summary.identicalOutputs ? "yes" : "NO"))
        }
        let cost = report.overall.costModel
        let verify = cost.verifyCost.keys.sorted().map { String(format: "v(%d) %.2f", $0, cost.verifyCost[$0]!) }.joined(separator: ", ")
        lines.append(String(
            format: "  cost model: T %.2f ms per plain step; draft step c %.2f; %@; α %.2f, γ %.2f over %d verify passes"
                + " → predicted %@, measured %.2fx",
            cost.plainStepSeconds * 1000, cost.draftStepCost, verify.isEmpty ? "no verify passes" : verify, cost.acceptanceRate,
            cost.meanDraftLength, report.overall.speculation.verifyPasses,
            cost.predictedSpeedup.map { String(format: "%.2fx", $0) } ?? "-", cost.measuredSpeedup))
        if report.overall.copyDraftCeiling != nil {
            let ceilings = rows.compactMap { name, summary in
                summary.copyDraftCeiling.map { String(format: "%@ %.2fx", name, $0) }
            }
            let sizes = report.verifyCurve.keys.sorted()
            let curve = sizes.dropFirst().compactMap { report.verifyCurve[$0].map { String(format: "%.2f", $0) } }
            lines.append("  copy-draft ceiling: \(ceilings.joined(separator: ", "))")
            lines.append("    (n-gram drafting at its best: copies from any earlier occurrence of the last token, exactly as many as "
                + "will be accepted, at verify costs measured apart: v(\(sizes.dropFirst().first ?? 2)...\(sizes.last ?? 2)) "
                + curve.joined(separator: ", ") + ")")
        }
        return lines.joined(separator: "\n")
    }

    /// Greedy speculation is lossless, so a difference is a bug: say so where it cannot be missed.
    private func warnIfOutputsDiffer(_ report: SpeculativeBenchmarkReport) {
        let differing = report.differingPrompts
        guard !differing.isEmpty else { return }
        let names = differing.map { result in
            let number = (report.prompts.firstIndex(of: result) ?? 0) + 1
            return "prompt \(number) (\(result.type.rawValue)) from token \(result.firstDifference ?? 0)"
        }
        printError("""
            WARNING: speculative output differed from plain output on \(differing.count) of \(report.prompts.count) prompts: \
            \(names.joined(separator: ", ")).
            WARNING: greedy speculative decoding must reproduce plain greedy decoding token for token; this is a bug.
            """)
    }
}

/// `strata bench --speculative --json` output: the report's keys plus what was run where.
struct SpeculativeBenchOutput: Encodable {
    var run: BenchRun
    /// The `--draft` argument as given.
    var draft: String
    var draftMax: Int
    var report: SpeculativeBenchmarkReport

    enum CodingKeys: String, CodingKey {
        case draft
        case draftMax = "draft_max"
    }

    func encode(to encoder: any Encoder) throws {
        try run.encode(to: encoder)
        try report.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(draft, forKey: .draft)
        try container.encode(draftMax, forKey: .draftMax)
    }
}
