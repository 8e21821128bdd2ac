import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine
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
            its layer's importance (from 1/2 to 2, a ratio --importance-range sets; --reverse turns it \
            round), and the types with the least total error that meet B are written. Tensors of one layer may then differ, and bits go where \
            the error drops most (e.g. tensors stored finer in the source).

            --calibration FILE computes importance weights first, as llama.cpp's imatrix: the text runs \
            through the model (--windows windows of --context tokens from its start) and every weight \
            matrix's input is averaged, per column, as a mean square; each matrix is then quantized \
            minimizing its rounding error weighted by those values. It does what `llama-imatrix -f FILE` \
            followed by `llama-quantize --imatrix` does, in one step from the text (Strata reads no \
            imatrix files). The token embedding gets no weights, and neither does an output matrix \
            tied to it. With --allocation tensors the measured errors are weighted the same way. Without \
            --calibration every row is quantized unweighted.

            --kind-sensitivity (with --allocation tensors and --calibration) also measures what each tensor \
            kind's types cost where the mix trades bits: one calibration pass with every layer tensor at the \
            budget's uniform type, then two per kind (attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, \
            ffn_down) with that kind's tensors in every layer one type lower and one type higher (two higher \
            where the uniform type is already its lowest). A tensor's cost at a type is then its kind's \
            measured loss change shared equally among the layers and scaled by the layer's importance \
            weight, and each tensor chooses among those three types; the tensors' own rounding errors are \
            not measured. Measured error does not even order one kind's types reliably \
            (docs/quantization.md). The loss changes are printed and go into the JSON and the file's \
            metadata; each pass takes about as long as the calibration pass.

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

    @Option(name: .customLong("importance-range"), help: "With --allocation tensors: the ratio between the most and the least important layer's error weight (default: 4; 1 ignores importance; wider lets importance outweigh measured error).")
    var importanceRange: Double?

    @Flag(name: .customLong("kind-sensitivity"), help: "With --allocation tensors and --calibration: cost each tensor kind's types by calibration loss measured with the kind one type lower and one higher, instead of by rounding error (two extra calibration passes per kind; see below).")
    var kindSensitivity = false

    @Option(help: ArgumentHelp(
        "Calibration text: quantize every matrix with per-column importance weights measured on it (llama.cpp's imatrix; the text `llama-imatrix -f` reads). Not related to --importance, which ranks layers.",
        valueName: "file"))
    var calibration: String?

    @Option(name: .customLong("context"), help: "With --calibration: tokens per calibration window (default: 512).")
    var contextOption: Int?

    /// Tokens per calibration window.
    var context: Int { contextOption ?? 512 }

    @Option(help: "With --calibration: windows from the start of the text (default: as many as it holds, at most \(Self.defaultWindows)).")
    var windows: Int?

    @Option(help: "With --calibration: the calibration passes' numerics, 'exact', 'fast' or 'fast8' (default: as `strata eval`; the statistics are of each product's float input either way).")
    var numerics: Numerics?

    /// What llama-quantize calls the importance file; Strata takes the text instead.
    @Option(name: .customLong("imatrix"), help: .hidden)
    var imatrixFile: String?

    /// Windows `--calibration` takes when `--windows` is not given: 8,192 tokens at the default
    /// context, enough for stable column statistics.
    static let defaultWindows = 16

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
            if importance != nil || reverse || allocation != .layers || importanceRange != nil || kindSensitivity {
                throw ValidationError("--importance, --reverse, --allocation, --importance-range and --kind-sensitivity belong to --target-bpw")
            }
        case (nil, .some):
            if let budget = targetBitsPerWeight, !(budget > 0 && budget.isFinite) {
                throw ValidationError("--target-bpw must be a positive number, found \(budget)")
            }
            guard importance != nil else { throw ValidationError("--target-bpw needs --importance FILE (an analyze --json report)") }
            if pure { throw ValidationError("--pure belongs to --type") }
            guard (1...2).contains(spread) else { throw ValidationError("--spread must be 1 or 2, found \(spread)") }
            if allocation == .tensors && spread != 1 { throw ValidationError("--spread belongs to --allocation layers") }
            if allocation != .tensors && importanceRange != nil {
                throw ValidationError("--importance-range belongs to --allocation tensors")
            }
            if kindSensitivity && (allocation != .tensors || calibration == nil) {
                throw ValidationError("--kind-sensitivity needs --allocation tensors and --calibration FILE (it measures on that text)")
            }
            if let importanceRange, !(importanceRange >= 1 && importanceRange.isFinite) {
                throw ValidationError("--importance-range is a ratio of at least 1, found \(importanceRange)")
            }
        }
        guard ImportanceScore(rawValue: by) != nil else {
            throw ValidationError("unknown --by '\(by)'; known: \(ImportanceScore.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, found \(threads)") }
        if imatrixFile != nil {
            throw ValidationError("strata does not read llama-imatrix files: give the calibration text itself with --calibration FILE")
        }
        if calibration == nil, windows != nil || contextOption != nil || numerics != nil {
            throw ValidationError("--windows, --context and --numerics belong to --calibration")
        }
        if context < 2 { throw ValidationError("--context must be at least 2, found \(context)") }
        if let windows, windows < 1 { throw ValidationError("--windows must be at least 1, found \(windows)") }
    }

    func run() throws {
        let path = try ModelRegistry.resolve(model)
        guard !PlanExport.isSource(output: out, source: path) else {
            throw ValidationError("--out \(out) is the model itself; write to another file")
        }
        try checkOutputPath(out, option: "--out", force: force)
        let calibrationText = try calibration.map { try CalibrationOptions.text(file: $0).text }
        let source: GGUFFile
        do { source = try GGUFFile.open(path: path) } catch { throw CommandFailure("cannot read \(path): \(error)") }
        let quantizer = try ModelQuantizer(source: source)
        var formats: [String: QuantFormat]
        var fileType: Int?
        var method: String
        var layerFormats: [String]?
        var sensitivity: KindSensitivity?
        let pool = WorkerPool(threadCount: threads)
        let showProgress = isatty(STDERR_FILENO) != 0
        // collected once, before the first use: a per-tensor mix measures with them, then the write
        var collected: (statistics: ActivationStatistics, seconds: Double, windows: CalibrationSet)?
        func activationStatistics() throws -> ActivationStatistics? {
            guard let calibration, let calibrationText else { return nil }
            if collected == nil {
                collected = try collectStatistics(text: calibrationText, name: calibration, modelPath: path, pool: pool,
                                                  showProgress: showProgress)
            }
            return collected?.statistics
        }
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
                let statistics = try activationStatistics()
                let range = importanceRange ?? MeasuredMix.defaultImportanceRange
                try MeasuredMix.checkArguments(quantizer: quantizer, importance: values, range: range)
                // kind sensitivity costs types by measured loss: the tensors' own errors are not needed
                let measurements = kindSensitivity ? MeasuredMix.typeChoices(quantizer: quantizer)
                    : try MeasuredMix.measure(quantizer: quantizer, columnWeights: statistics?.meanSquares ?? [:],
                                              pool: pool) { index, count, name in
                        if showProgress { printError("\rmeasure: tensor \(index + 1)/\(count) \(name)\u{1B}[K", terminator: "") }
                    }
                if showProgress { printError("\r\u{1B}[K", terminator: "") }
                if !kindSensitivity {
                    printError(String(format: "measured every layer tensor at %@ in %.0f s", MeasuredMix.candidates.map(\.description)
                        .joined(separator: ", "), Date().timeIntervalSince(started)))
                }
                if kindSensitivity, let windows = collected?.windows {
                    // the uniform type the budget reaches: where the mix trades bits
                    let around = targetFormat ?? MeasuredMix.candidates.last {
                        LayerWiseMix.bitsPerWeight(quantizer: quantizer, uniform: $0) <= budget + 1e-9
                    } ?? MeasuredMix.candidates[0]
                    let measured = try KindSensitivity.measure(
                        quantizer: quantizer, measurements: measurements, around: around, statistics: statistics,
                        calibration: windows, numerics: numerics, pool: pool) { index, count, name in
                        if showProgress { printError("\rkind sensitivity: pass \(index + 1)/\(count) \(name)\u{1B}[K", terminator: "") }
                    }
                    if showProgress { printError("\r\u{1B}[K", terminator: "") }
                    printError(String(format: "kind sensitivity: %d passes in %.0f s (loss %.4f with every layer tensor at %@)",
                                      measured.trials.count + 1, measured.seconds, measured.baselineLoss, measured.baseline))
                    for trial in measured.trials {
                        printError(String(format: "  %@ %@ to %@: loss %+.5f", trial.kind, trial.from, trial.to, trial.lossChange))
                    }
                    sensitivity = measured
                }
                let mix = try MeasuredMix(quantizer: quantizer, measurements: measurements, importance: values, budget: budget,
                                          reverse: reverse, range: range, sensitivity: sensitivity)
                formats = mix.formats
                method = String(format: "per-tensor %.2f bits per layer weight by %@, %@ weighted by %@ "
                                + "(range %g)", mix.bitsPerWeight,
                                kindSensitivity ? "measured loss changes (kind sensitivity)" : "measured error",
                                reverse ? "least important layers" : "most important layers", score.rawValue, range)
            }
        }
        var notes: [(String, GGUFValue)] = [
            ("strata.quantize.source", .string(URL(fileURLWithPath: path).lastPathComponent)),
            ("strata.quantize.method", .string(method)),
        ]
        if let layerFormats { notes.append(("strata.quantize.layer_types", .array(layerFormats.map { .string($0) }))) }
        if let sensitivity {
            notes.append(("strata.quantize.kind_trials", .array(sensitivity.trials.map { .string("\($0.kind) \($0.to)") })))
            notes.append(("strata.quantize.kind_loss_changes", .array(sensitivity.trials.map { .float64($0.lossChange) })))
        }
        let statistics = try activationStatistics()
        var calibrationSummary: CalibrationSummary?
        if let calibration, let statistics, let seconds = collected?.seconds {
            let name = URL(fileURLWithPath: calibration).lastPathComponent
            calibrationSummary = CalibrationSummary(text: name, statistics: statistics, seconds: seconds)
            notes += [
                ("strata.quantize.calibration", .string(name)),
                ("strata.quantize.calibration_windows", .uint32(UInt32(statistics.windows))),
                ("strata.quantize.calibration_context", .uint32(UInt32(statistics.context))),
                ("strata.quantize.calibration_tokens", .uint32(UInt32(statistics.tokens))),
            ]
        }
        var summary = try quantizer.write(
            formats: formats, fileType: fileType, notes: notes, to: out, overwrite: force, statistics: statistics, pool: pool
        ) { index, count, name in
            if showProgress { printError("\rquantize: tensor \(index + 1)/\(count) \(name)\u{1B}[K", terminator: "") }
        }
        if showProgress { printError("\r\u{1B}[K", terminator: "") }
        summary.layerFormats = layerFormats
        summary.calibration = calibrationSummary
        summary.kindSensitivity = sensitivity
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
        if let calibrationSummary {
            print(String(format: "  importance weights for %d tensors from %@: %d windows of %d tokens, %.1f s",
                         summary.tensorsWithImportance ?? 0, calibrationSummary.text, calibrationSummary.windows,
                         calibrationSummary.context, calibrationSummary.seconds))
        }
    }

    /// The activation statistics of the model at `modelPath` over `text` (called `name` in
    /// errors), with the seconds they took; a text too short is refused before any pass runs.
    private func collectStatistics(
        text: String, name: String, modelPath: String, pool: WorkerPool, showProgress: Bool
    ) throws -> (ActivationStatistics, Double, CalibrationSet) {
        let (model, _) = try ModelOptions.load(path: modelPath)
        guard context <= model.config.contextLength else {
            throw CommandFailure("--context \(context) exceeds the model's context length \(model.config.contextLength)")
        }
        let tokens = model.tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let available = tokens.count / context
        guard available >= 1 else {
            throw CommandFailure("\(name) has \(tokens.count) tokens, fewer than one window of --context \(context)")
        }
        if let windows, windows > available {
            throw CommandFailure("\(name) has \(tokens.count) tokens, fewer than --windows \(windows) × --context \(context)")
        }
        let set = try CalibrationSet(tokens: tokens, context: context, windows: windows ?? min(Self.defaultWindows, available),
                                     firstToken: windowStartToken(for: model.tokenizer))
        let start = Date()
        var transformer = Transformer(model: model, pool: pool, numerics: numerics)
        let statistics = try ActivationStatistics.collect(transformer: &transformer, calibration: set) { done, total in
            if showProgress {
                printError(String(format: "\rcalibration: window %d/%d, %.0f s\u{1B}[K", done, total, Date().timeIntervalSince(start)),
                           terminator: "")
            }
        }
        let seconds = Date().timeIntervalSince(start)
        if showProgress { printError("\r\u{1B}[K", terminator: "") }
        printError(String(format: "calibration: %d windows of %d tokens in %.1f s (perplexity %.2f on them)",
                          statistics.windows, statistics.context, seconds, statistics.perplexity))
        return (statistics, seconds, set)
    }
}

/// How `strata quantize --target-bpw` spends its bits.
enum MixAllocation: String, ExpressibleByArgument, CaseIterable {
    case layers, tensors
}
