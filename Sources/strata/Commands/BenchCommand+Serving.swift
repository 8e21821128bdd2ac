import Foundation
import StrataAnalysis
import StrataEngine

extension BenchCommand {
    /// `strata bench --serving`: concurrent clients of one `ModelSession` and the prompt cache.
    func runServing() async throws {
        let (model, _) = try modelOptions.load()
        let transformer = modelOptions.makeTransformer(model)
        var options = ServingBenchmarkOptions()
        options.clients = try parsedClients()
        options.generatedTokens = generatedTokens
        options.repetitions = repetitions ?? 2
        let report = try await runServingBenchmark(
            transformer: transformer, prompts: BenchmarkPrompts.bundled, options: options, progress: Self.showProgress)
        printError("")
        let run = BenchRun(name: modelOptions.model, model: model, transformer: transformer)
        if json {
            try printJSON(BenchReportOutput(run: run, report: report))
            return
        }
        print(run.headline)
        print("  clients  tokens/s  vs 1   decode tokens/s  vs 1   mean TTFT  max TTFT  outputs = alone")
        let single = report.rounds.first { $0.clients == 1 }
        for round in report.rounds {
            func ratio(_ value: Double, _ base: Double?) -> String {
                base.map { String(format: "%5.2fx", value / $0) } ?? "    - "
            }
            print(String(format: "  %7d  %8.1f  %@  %15.1f  %@  %7.0f ms  %6.0f ms  %@", round.clients, round.tokensPerSecond,
                         ratio(round.tokensPerSecond, single?.tokensPerSecond), round.decodeTokensPerSecond,
                         ratio(round.decodeTokensPerSecond, single?.decodeTokensPerSecond),
                         round.meanTimeToFirstTokenSeconds * 1000, round.maxTimeToFirstTokenSeconds * 1000,
                         round.outputsMatchAlone ? "yes" : "NO"))
        }
        let cache = report.promptCache
        print(String(format: "  prompt cache: turn 2 (%d prompt tokens, %d cached) first token after %.0f ms cached, %.0f ms uncached: %.1fx; outputs %@",
                     cache.secondTurnPromptTokens, cache.cachedTokens, cache.cachedTimeToFirstTokenSeconds * 1000,
                     cache.uncachedTimeToFirstTokenSeconds * 1000, cache.speedup, cache.outputsIdentical ? "identical" : "DIFFER"))
    }

    /// `strata bench --trace FILE --speculative`: a request trace, plain against speculative.
    func runTrace() async throws {
        guard let path = trace else { return }
        let loaded = try RequestTrace.load(path: path)
        let (model, _) = try modelOptions.load()
        let transformer = modelOptions.makeTransformer(model)
        guard let speculation = try speculationOptions.parameters(for: transformer, name: modelOptions.model) else { return }
        let report = try await runTraceBenchmark(
            transformer: transformer, trace: loaded, speculation: speculation, maxTokens: generatedTokens,
            repetitions: repetitions ?? 1, progress: Self.showProgress)
        printError("")
        let run = BenchRun(name: modelOptions.model, model: model, transformer: transformer)
        if json {
            try printJSON(BenchReportOutput(run: run, report: report))
            return
        }
        print(run.headline)
        print("  trace \(report.trace), draft \(report.draft); outputs \(report.outputsIdentical ? "identical" : "DIFFER")")
        print("  type        requests  tokens  plain t/s  speculative t/s  speedup  accepted/drafted")
        for row in report.byType + [report.overall] {
            print(String(format: "  %@  %8d  %6d  %9.1f  %15.1f  %6.2fx  %d/%d",
                         row.type.padding(toLength: 10, withPad: " ", startingAt: 0), row.requests, row.generatedTokens,
                         row.plainTokensPerSecond, row.speculativeTokensPerSecond, row.speedup, row.accepted, row.drafted))
        }
    }

    /// The current step of a long benchmark, rewritten in place on stderr.
    static func showProgress(_ step: String) {
        printError("\rbench: \(step)".padding(toLength: 60, withPad: " ", startingAt: 0), terminator: "")
    }

    func parsedClients() throws -> [Int] {
        let counts = clients.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 && ($0 ?? 0) <= 64 }) else {
            throw CommandFailure("--clients must be counts from 1 to 64 separated by commas, found '\(clients)'")
        }
        return Array(Set(counts.compactMap { $0 })).sorted()
    }
}

/// `strata bench --serving --json` and `--trace --json` output: the run's description and the
/// report's fields in one object.
struct BenchReportOutput<Report: Encodable>: Encodable {
    var run: BenchRun
    var report: Report

    func encode(to encoder: any Encoder) throws {
        try run.encode(to: encoder)
        try report.encode(to: encoder)
    }
}

