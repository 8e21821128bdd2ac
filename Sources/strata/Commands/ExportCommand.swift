import ArgumentParser
import Foundation
import StrataAnalysis
import StrataFormats
import StrataEngine

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a layer plan as a plain GGUF model that any engine runs.",
        discussion: """
            Each plan step that runs a sublayer becomes one block of the new file, numbered in plan \
            order: removed layers are gone, a repeated layer's weights are written again, reordered \
            layers are renumbered, and `<arch>.block_count` and per-layer metadata follow (Gemma 3 gets an \
            explicit sliding-window pattern, so each layer keeps its window kind). A skipped attention or \
            FFN sublayer becomes a zero output projection: the file computes what the plan computes, but \
            other engines still run that sublayer, so it saves no compute there. Tensor bytes are copied \
            in their format, never decoded; --type requantizes the result with a mix of `strata quantize`. \
            The plan is recorded as strata.export.plan.
            """)

    @Option(name: .shortAndLong, help: "A registered model name (see `strata pull --list`) or a path to a .gguf file.")
    var model: String = ModelRegistry.defaultModel

    @OptionGroup var planOptions: PlanOptions

    @Option(help: "Where to write the new .gguf file.")
    var out: String

    @Flag(help: "Overwrite --out if it exists (never the source model).")
    var force = false

    @Option(help: "Requantize the exported weights with a quantization mix (Q4_K_M, Q8_0, ...; see `strata quantize --help`).")
    var type: String?

    @Flag(help: "Print a JSON summary: output, layers kept, tensors, bytes, zeroed sublayers, warnings.")
    var json = false

    /// Files from this size on report their progress on stderr.
    static let progressThreshold = 64 << 20

    func validate() throws {
        if let type, QuantizationPreset(name: type) == nil {
            throw ValidationError("unknown type '\(type)'; known: \(QuantizationPreset.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard planOptions.isSet else {
            throw ValidationError("give --plan FILE (as `strata plan` writes) or --skip-layers/--skip-attention/--skip-ffn")
        }
    }

    func run() throws {
        // every check comes before any work: the output, then the model, then the plan
        let source = try ModelRegistry.resolve(model)
        try failure { try PlanExport.checkOutput(path: out, source: source, overwrite: force) }
        let (model, _) = try ModelOptions.load(path: source)
        let plan = try planOptions.plan(for: model.config)
        let export = try failure { try PlanExport(model: model, plan: plan) }
        for warning in export.summary.warnings { printError("strata: note: \(warning)") }

        // with --type, the plan's file is written beside the output first, then quantized into it
        let preset = type.flatMap(QuantizationPreset.init(name:))
        let exported = preset == nil ? out : out + ".export-\(ProcessInfo.processInfo.processIdentifier).tmp"
        defer { if preset != nil { try? FileManager.default.removeItem(atPath: exported) } }
        var lastPercent = -1
        var summary = try failure {
            try export.write(to: exported, overwrite: force || preset != nil) { written, total in
                guard total >= Self.progressThreshold else { return }
                let percent = written * 100 / total / 5 * 5
                guard percent != lastPercent else { return }
                lastPercent = percent
                printError(String(format: "\r\u{1B}[Kwriting %@: %3d%% of %.0f MiB", out, percent, Double(total) / 1_048_576),
                           terminator: written == total ? "\n" : "")
            }
        }
        if let preset {
            let quantizer = try ModelQuantizer(source: try GGUFFile.open(path: exported))
            let quantized = try quantizer.write(
                formats: quantizer.formats(preset: preset), fileType: preset.fileType,
                notes: [("strata.quantize.method", .string("preset \(preset.rawValue)"))], to: out, overwrite: force)
            summary.output = out
            summary.bytes = quantized.fileBytes
        }
        if json {
            try printJSON(summary)
            return
        }
        let zeroed = summary.zeroedSublayers.map { "\($0.sublayer) of block \($0.block) (layer \($0.sourceLayer))" }
        print("""
            wrote \(summary.output): \(summary.layers.count) blocks from \(summary.sourceLayerCount) layers \
            (layers \(summary.layers.map(String.init).joined(separator: ","))), \(summary.tensors) tensors, \
            \(String(format: "%.1f", Double(summary.bytes) / 1_048_576)) MiB
            """)
        if !zeroed.isEmpty { print("zeroed sublayers: \(zeroed.joined(separator: ", "))") }
    }

    /// Runs `body`, turning an export error into a message for the user.
    private func failure<Value>(_ body: () throws -> Value) throws -> Value {
        do {
            return try body()
        } catch let error as PlanExportError {
            throw CommandFailure(error.description)
        }
    }
}
