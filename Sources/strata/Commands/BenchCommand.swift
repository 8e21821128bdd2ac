import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prompt processing and generation speed, the cost of small batches, and peak memory; or (--speculative) plain against speculative decoding.",
        discussion: """
            Like llama-bench: pp (one forward pass over --prompt-tokens tokens) and tg (--gen-tokens \
            tokens decoded one at a time from an empty cache), each repeated after a warm-up; the \
            median and spread are reported. The batch-cost curve times one forward pass of n tokens \
            on top of 128 cached ones (the shape of a speculative verification) relative to n = 1. \
            Machines here are shared and noisy: compare figures measured side by side in one run.

            With --speculative: greedy plain and self-speculative decoding (--draft, default auto) \
            of --gen-tokens tokens alternate on the same prompts (bundled code, prose and chat \
            prompts, chat ones rendered with the model's chat template; or --prompts FILE, JSONL or \
            a JSON array of {"type": "code|prose|chat", "prompt": "..."}). Only decoding is timed; \
            tokens/s is total decoded tokens over total decoding time per mode, overall and by \
            type. Also reported: acceptance rate, accepted tokens per verify pass, whether the \
            outputs were identical (they must be), and the cost model's inputs as measured (draft \
            step cost c and verify cost v(k) relative to one plain step) with its predicted speedup. \
            Last, the copy-draft ceiling: the speedup the best possible n-gram drafting could reach \
            on the plain outputs (copying from any earlier occurrence of the last token, exactly as \
            many tokens as the model will accept), at verify costs for 1 to --draft-max + 1 tokens \
            measured apart; if it is low, no better n-gram drafter would pay on these prompts.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var planOptions: PlanOptions
    @OptionGroup var speculationOptions: SpeculationOptions

    @Option(help: "With --speculative: a prompts file (JSONL, or a JSON array) of {\"type\": \"code|prose|chat\", \"prompt\": \"...\"} instead of the bundled prompts.")
    var prompts: String?

    @Flag(name: .customLong("no-copy-ceiling"),
          help: "With --speculative: skip the verify-cost samples and the copy-draft ceiling (saves a few seconds per prompt and run).")
    var skipsCopyCeiling = false

    @Option(name: .customLong("prompt-tokens"), help: "Tokens in the prompt-processing test.")
    var promptTokens = 512

    @Option(name: .customLong("gen-tokens"), help: "Tokens in the generation test (with --speculative: generated per prompt in each mode).")
    var generatedTokens = 128

    @Option(name: .customLong("batch-sizes"), help: "Comma-separated batch sizes for the batch-cost curve.")
    var batchSizes = "1,2,4,8,16"

    @Option(help: "Timed runs of each test after one warm-up (default 5; with --speculative 2, each run covering every prompt in both modes).")
    var repetitions: Int?

    @Flag(help: "Serving: rounds of --clients concurrent greedy requests (bundled prompts, --gen-tokens each) to one in-process session that decodes them together, against one client alone; then a chat's second turn after 1,000 tokens of history with the prompt cache and without.")
    var serving = false

    @Option(help: "With --serving: comma-separated counts of concurrent clients.")
    var clients = "1,2,4,8"

    @Option(help: "With --speculative: replay a request trace (JSON; Benchmarks/traces/code-edits.json is bundled) greedily on a session, plainly and speculatively (the drafter also sees the session's earlier prompts and outputs), and report decode speed by request type. --gen-tokens caps each answer.")
    var trace: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if promptTokens < 1 || generatedTokens < 1 { throw ValidationError("--prompt-tokens and --gen-tokens must be at least 1") }
        if let repetitions, repetitions < 1 { throw ValidationError("--repetitions must be at least 1, found \(repetitions)") }
        if prompts != nil && !speculationOptions.speculative { throw ValidationError("--prompts needs --speculative") }
        if trace != nil && !speculationOptions.speculative { throw ValidationError("--trace needs --speculative (it compares plain and speculative decoding)") }
        if trace != nil && serving { throw ValidationError("--trace and --serving are separate benchmarks: give one") }
        _ = try parsedBatchSizes()
    }

    func parsedBatchSizes() throws -> [Int] {
        let sizes = batchSizes.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--batch-sizes must be positive integers separated by commas, found '\(batchSizes)'")
        }
        return Array(Set(sizes.compactMap { $0 } + [1])).sorted()
    }

    func run() async throws {
        if serving { return try await runServing() }
        if trace != nil { return try await runTrace() }
        if speculationOptions.speculative { return try runSpeculative() }
        let (model, _) = try modelOptions.load()
        var transformer = modelOptions.makeTransformer(model)
        var options = SpeedBenchmarkOptions()
        options.promptTokens = promptTokens
        options.generatedTokens = generatedTokens
        options.batchSizes = try parsedBatchSizes()
        options.repetitions = repetitions ?? 5
        options.plan = try planOptions.plan(for: model.config)
        // each term alone first: a batch size near Int.max must not overflow the sum
        let largestBatch = options.batchSizes.max() ?? 1
        let needed = largestBatch > model.config.contextLength
            ? largestBatch : max(promptTokens, generatedTokens, options.batchContext + largestBatch)
        guard needed <= model.config.contextLength else {
            throw CommandFailure("the benchmark needs \(needed) positions; the model's context is \(model.config.contextLength)")
        }
        let report = try runSpeedBenchmark(transformer: &transformer, options: options) { step in
            printError("\rbench: \(step)".padding(toLength: 40, withPad: " ", startingAt: 0), terminator: "")
        }
        printError("")
        let run = BenchRun(name: modelOptions.model, model: model, transformer: transformer)
        if json {
            try printJSON(BenchOutput(run: run, promptTokens: promptTokens, generatedTokens: generatedTokens, report: report))
            return
        }
        print(run.headline)
        print(String(format: "  pp%-4d %8.1f tokens/s  (min %.1f, max %.1f, sd %.1f)", promptTokens, report.prompt.median,
                     report.prompt.minimum, report.prompt.maximum, report.prompt.standardDeviation))
        print(String(format: "  tg%-4d %8.1f tokens/s  (min %.1f, max %.1f, sd %.1f)", generatedTokens, report.generation.median,
                     report.generation.minimum, report.generation.maximum, report.generation.standardDeviation))
        print("  batch cost (time of n tokens / time of 1):")
        for size in report.batchCost.keys.sorted() {
            print(String(format: "    n=%-3d %6.2fx  (%.2f ms)", size, report.batchCost[size]!, report.batchSeconds[size]! * 1000))
        }
        print(String(format: "  peak RSS %.1f MiB (model file %.1f MiB, KV cache %.1f MiB)",
                     Double(report.peakResidentBytes) / 1_048_576, Double(model.file.fileSize) / 1_048_576,
                     Double(report.kvCacheBytes) / 1_048_576))
    }
}

/// What a benchmark ran, and where: the part of every `strata bench --json` output that is not
/// a measurement.
struct BenchRun: Encodable {
    var model: String
    var modelFile: String
    var architecture: String
    var numerics: String
    var threads: Int
    var commit: String
    var machine: MachineInfo

    init(name: String, model: LanguageModel, transformer: Transformer) {
        self.model = name
        modelFile = model.file.path
        architecture = model.config.architecture
        numerics = transformer.numerics.rawValue
        threads = transformer.pool.threadCount
        commit = SourceInfo.commit
        machine = MachineInfo.current()
    }

    /// The first line of the human-readable output.
    var headline: String {
        String(format: "%@ (%@, %d threads, %@ numerics) on %@", model, architecture, threads, numerics, machine.cpu)
    }

    enum CodingKeys: String, CodingKey {
        case model, architecture, numerics, threads, commit, machine
        case modelFile = "model_file"
    }
}

/// `strata bench --json` output.
struct BenchOutput: Encodable {
    var run: BenchRun
    var promptTokens: Int
    var generatedTokens: Int
    var report: SpeedReport

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case generatedTokens = "gen_tokens"
        case promptTokensPerSecond = "prompt_tokens_per_second"
        case promptSpread = "prompt_tokens_per_second_spread"
        case tokensPerSecond = "tokens_per_second"
        case generationSpread = "tokens_per_second_spread"
        case batchCost = "batch_cost"
        case batchMilliseconds = "batch_milliseconds"
        case peakResidentBytes = "peak_rss_bytes"
        case kvCacheBytes = "kv_cache_bytes"
    }

    func encode(to encoder: any Encoder) throws {
        try run.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(promptTokens, forKey: .promptTokens)
        try container.encode(generatedTokens, forKey: .generatedTokens)
        try container.encode(report.prompt.median, forKey: .promptTokensPerSecond)
        try container.encode(report.prompt, forKey: .promptSpread)
        try container.encode(report.generation.median, forKey: .tokensPerSecond)
        try container.encode(report.generation, forKey: .generationSpread)
        try container.encode(Dictionary(uniqueKeysWithValues: report.batchCost.map { (String($0.key), $0.value) }), forKey: .batchCost)
        try container.encode(Dictionary(uniqueKeysWithValues: report.batchSeconds.map { (String($0.key), $0.value * 1000) }),
                             forKey: .batchMilliseconds)
        try container.encode(report.peakResidentBytes, forKey: .peakResidentBytes)
        try container.encode(report.kvCacheBytes, forKey: .kvCacheBytes)
    }
}

/// The machine a measurement ran on.
struct MachineInfo: Encodable {
    var cpu: String
    var cores: Int
    var flags: [String]
    var memoryBytes: Int

    enum CodingKeys: String, CodingKey {
        case cpu, cores, flags
        case memoryBytes = "memory_bytes"
    }

    static func current() -> MachineInfo {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        func field(_ name: String) -> String? {
            cpuinfo.split(separator: "\n").first { $0.hasPrefix(name) }
                .flatMap { $0.split(separator: ":", maxSplits: 1).last }
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let interesting: Set<String> = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avxvnni"]
        let flags = (field("flags") ?? "").split(separator: " ").map(String.init).filter(interesting.contains).sorted()
        return MachineInfo(cpu: field("model name") ?? "unknown", cores: ProcessInfo.processInfo.activeProcessorCount,
                           flags: flags, memoryBytes: Int(ProcessInfo.processInfo.physicalMemory))
    }
}

/// The source revision this binary was built from, read from the source tree's git.
enum SourceInfo {
    static var commit: String {
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", sourceRoot, "describe", "--always", "--dirty"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "unknown" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && !text.isEmpty ? text : "unknown"
    }
}
