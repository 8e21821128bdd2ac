import ArgumentParser
import Foundation
import StrataAnalysis
import StrataFormats
import StrataKernels

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Write a model with other tensor types: a llama.cpp mix, or one type per layer from measured importance.",
        discussion: """
            --type T writes a named mix of llama-quantize (\(QuantizationPreset.allCases.map(\.rawValue).joined(separator: ", "))): \
            the mix's type for most matrices, more bits for the value projection and the FFN down \
            projection of the first and last eighth of the layers and every third layer between (the _M \
            mixes), Q6_K or Q8_0 for the output matrix, and a block-32 type (Q4_0, Q5_0, Q5_1, Q8_0) where a \
            row is not a whole number of 256-element blocks, exactly as llama.cpp chooses them. --pure gives \
            every matrix the mix's type (with the same row-width fallback).

            --target-bpw B --importance FILE writes a layer-wise mix: every layer gets the largest of Q2_K, \
            Q3_K, Q4_K, Q5_K, Q6_K, Q8_0 that the budget allows for all layers, and the layers the \
            importance score (--by) ranks highest get the next type up until the budget of B bits per layer \
            weight is spent (--spread 2: the types one below and one above, so that a mix at a uniform \
            type's size still differs from it); embeddings and the output matrix take Q4_K_M's types and do not count toward B. \
            FILE is a report of `strata analyze --json` for the same model. --reverse gives the extra bits \
            to the least important layers instead (a control).

            --allocation tensors chooses a type per tensor instead: every layer tensor is quantized to \
            Q2_K-Q6_K, its squared error against the source measured, scaled by a weight that rises with \
            its layer's importance (from 1/2 to 2; --reverse turns it round), and the types with the least \
            total error that meet B are written. Tensors of one layer may then differ, and bits go where \
            the error drops most (e.g. tensors stored finer in the source).

            Weights are dequantized to float32 and quantized with llama.cpp's rounding rules (bitwise \
            equal to its reference quantizers); a tensor that keeps its type is copied unchanged. From a \
            quantized source (every registered model is one), the result cannot be more precise than the \
            source: a budget above the source's bits is refused, and quality is bounded by the source's.
            """)

    @Option(name: .shortAndLong, help: "A registered model name (see `strata pull --list`) or a path to a .gguf file.")
    var model: String = ModelRegistry.defaultModel

    @Option(name: .customLong("type"), help: "A quantization mix, e.g. Q4_K_M, Q8_0, Q3_K_M.")
    var typeName: String?

    @Flag(help: "With --type: every matrix gets the mix's type (no per-tensor rules).")
    var pure = false

    @Option(name: .customLong("target-bpw"), help: "Bits per layer weight for a layer-wise mix (needs --importance), or a type (Q4_K) for the size of that type on every layer.")
    var target: String?

    /// `--target-bpw` as a number, when it is one.
    var targetBitsPerWeight: Double? { target.flatMap(Double.init) }

    /// `--target-bpw` as a ladder type (the size of every layer at that type).
    var targetFormat: QuantFormat? {
        target.flatMap { name in LayerWiseMix.ladder.first { $0.description.lowercased() == name.lowercased() } }
    }

    @Option(help: "An importance report (`strata analyze --json`) that orders the layers of a layer-wise mix.")
    var importance: String?

    @Option(help: "The score that ranks layers: removal (perplexity without the layer), block-influence, lim or zd.")
    var by: String = ImportanceScore.removal.rawValue

    @Flag(help: "Give the extra bits to the least important layers (the control for a layer-wise mix).")
    var reverse = false

    @Option(help: "Ladder steps between a layer-wise mix's two types: 1 (adjacent, the default) or 2 (one below and one above the budget's uniform type, e.g. Q3_K and Q5_K at Q4_K's size).")
    var spread: Int = 1

    @Option(help: "How a --target-bpw mix spends its bits: layers (one type per layer, ordered by importance) or tensors (a type per tensor that minimises its measured quantization error, weighted by its layer's importance; slower: every tensor is quantized to Q2_K-Q6_K first).")
    var allocation: MixAllocation = .layers

    @Option(help: "The GGUF file to write.")
    var out: String

    @Flag(help: "Overwrite --out if it exists.")
    var force = false

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Print one JSON object with the result.")
    var json = false

    func validate() throws {
        if let target, targetBitsPerWeight == nil && targetFormat == nil {
            throw ValidationError("--target-bpw takes bits per weight or one of \(LayerWiseMix.ladder.map(\.description).joined(separator: ", ")), found '\(target)'")
        }
        switch (typeName, target) {
        case (nil, nil): throw ValidationError("give --type T (a mix such as Q4_K_M) or --target-bpw B with --importance FILE")
        case (.some, .some): throw ValidationError("--type and --target-bpw exclude each other; give one")
        case (.some(let name), nil):
            guard QuantizationPreset(name: name) != nil else {
                throw ValidationError("unknown type '\(name)'; known: \(QuantizationPreset.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if importance != nil || reverse || allocation != .layers {
                throw ValidationError("--importance, --reverse and --allocation belong to --target-bpw")
            }
        case (nil, .some):
            if let budget = targetBitsPerWeight, !(budget > 0 && budget.isFinite) {
                throw ValidationError("--target-bpw must be a positive number, found \(budget)")
            }
            guard importance != nil else { throw ValidationError("--target-bpw needs --importance FILE (an analyze --json report)") }
            if pure { throw ValidationError("--pure belongs to --type") }
            guard (1...2).contains(spread) else { throw ValidationError("--spread must be 1 or 2, found \(spread)") }
            if allocation == .tensors && spread != 1 { throw ValidationError("--spread belongs to --allocation layers") }
        }
        guard ImportanceScore(rawValue: by) != nil else {
            throw ValidationError("unknown --by '\(by)'; known: \(ImportanceScore.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, found \(threads)") }
    }

    func run() throws {
        let path = try ModelRegistry.resolve(model)
        guard !PlanExport.isSource(output: out, source: path) else {
            throw ValidationError("--out \(out) is the model itself; write to another file")
        }
        try checkOutputPath(out, option: "--out", force: force)
        let source: GGUFFile
        do { source = try GGUFFile.open(path: path) } catch { throw CommandFailure("cannot read \(path): \(error)") }
        let quantizer = try ModelQuantizer(source: source)
        var formats: [String: QuantFormat]
        var fileType: Int?
        var method: String
        var layerFormats: [String]?
        if let typeName, let preset = QuantizationPreset(name: typeName) {
            if pure {
                formats = quantizer.uniformFormats(preset.defaultFormat)
                method = "uniform \(preset.defaultFormat)"
            } else {
                formats = quantizer.formats(preset: preset)
                method = "preset \(preset.rawValue)"
            }
            fileType = preset.fileType
        } else {
            let report = try ImportanceReport.load(path: importance ?? "")
            let score = ImportanceScore(rawValue: by) ?? .removal
            let values = score.values(in: report)
            guard !values.isEmpty else {
                throw ValidationError("\(importance ?? ""): the report has no \(score.rawValue) scores; run analyze with them")
            }
            let budget = targetFormat.map { LayerWiseMix.bitsPerWeight(quantizer: quantizer, uniform: $0) } ?? targetBitsPerWeight ?? 0
            switch allocation {
            case .layers:
                let mix = try LayerWiseMix(quantizer: quantizer, importance: values, budget: budget, reverse: reverse, spread: spread)
                formats = mix.formats
                layerFormats = mix.layerFormats.map(\.description)
                method = String(format: "layer-wise %.2f bits per layer weight, %@ by %@", mix.bitsPerWeight,
                                reverse ? "least important first" : "most important first", score.rawValue)
            case .tensors:
                let started = Date()
                let mix = try MeasuredMix(quantizer: quantizer, importance: values, budget: budget, reverse: reverse,
                                          pool: WorkerPool(threadCount: threads)) { index, count, name in
                    if isatty(STDERR_FILENO) != 0 { printError("\rmeasure: tensor \(index + 1)/\(count) \(name)\u{1B}[K", terminator: "") }
                }
                if isatty(STDERR_FILENO) != 0 { printError("\r\u{1B}[K", terminator: "") }
                printError(String(format: "measured every layer tensor at %@ in %.0f s", MeasuredMix.candidates.map(\.description)
                    .joined(separator: ", "), Date().timeIntervalSince(started)))
                formats = mix.formats
                method = String(format: "per-tensor %.2f bits per layer weight by measured error, %@ weighted by %@",
                                mix.bitsPerWeight, reverse ? "least important layers" : "most important layers",
                                score.rawValue)
            }
        }
        var notes: [(String, GGUFValue)] = [
            ("strata.quantize.source", .string(URL(fileURLWithPath: path).lastPathComponent)),
            ("strata.quantize.method", .string(method)),
        ]
        if let layerFormats { notes.append(("strata.quantize.layer_types", .array(layerFormats.map { .string($0) }))) }
        let pool = WorkerPool(threadCount: threads)
        let showProgress = isatty(STDERR_FILENO) != 0
        var summary = try quantizer.write(
            formats: formats, fileType: fileType, notes: notes, to: out, overwrite: force, pool: pool
        ) { index, count, name in
            if showProgress { printError("\rquantize: tensor \(index + 1)/\(count) \(name)\u{1B}[K", terminator: "") }
        }
        if showProgress { printError("\r\u{1B}[K", terminator: "") }
        summary.layerFormats = layerFormats
        if json {
            try printJSON(summary)
            return
        }
        print("\(out): \(method)")
        print(String(format: "  %.1f MiB (source %.1f MiB), %.2f bits per layer weight (source %.2f)",
                     Double(summary.fileBytes) / 1_048_576, Double(summary.sourceBytes) / 1_048_576,
                     summary.layerBitsPerWeight, summary.sourceLayerBitsPerWeight))
        print("  tensors by type: " + summary.tensorsByFormat.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        if let layerFormats {
            print("  layer types: " + layerFormats.enumerated().map { "\($0.offset):\($0.element)" }.joined(separator: " "))
        }
    }
}

/// How `strata quantize --target-bpw` spends its bits.
enum MixAllocation: String, ExpressibleByArgument, CaseIterable {
    case layers, tensors
}
