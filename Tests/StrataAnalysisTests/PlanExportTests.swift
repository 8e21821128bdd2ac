#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import StrataAnalysis
import StrataEngine
import StrataFormats
import StrataKernels
import StrataTestSupport
import Testing

/// `PlanExport` on tiny generated models, the Gemma 3 architecture fixture and SmolLM2: the
/// exported file, run whole on Strata's exact path, gives bitwise the logits of the plan run on
/// the source (the same weights in the same order, zero projections adding zeros).
@Suite("Plan export")
struct PlanExportTests {
    /// The Gemma 3 fixture of the architecture tests: 6 layers, windows of 8 positions, no pattern key.
    static let gemma3Tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("StrataEngineTests/Fixtures/architectures/gemma3-tiny.gguf").path

    /// Removes layer 1, repeats layers 2 and 0, reorders, skips one attention and one FFN
    /// sublayer, and has one step that runs nothing (left out of the file).
    static let fourLayerPlan = LayerPlan(layerCount: 4, steps: [
        LayerStep(layer: 3), LayerStep(layer: 0, runsFFN: false), LayerStep(layer: 2),
        LayerStep(layer: 1, runsAttention: false, runsFFN: false), LayerStep(layer: 2, runsAttention: false),
        LayerStep(layer: 0),
    ], method: "manual")

    /// A fresh folder for one test's files.
    static func folder() throws -> String {
        let path = NSTemporaryDirectory() + "strata-export-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Exports `plan` over `model`, then compares the exported model's logits over `tokens`
    /// (every row) with the plan's on the source, bit for bit; returns the summary.
    @discardableResult
    static func exportMatchesPlan(_ model: LanguageModel, plan: LayerPlan, tokens: [TokenID]) throws -> PlanExportSummary {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/exported.gguf"
        let summary = try PlanExport(model: model, plan: plan).write(to: path)
        let exported = try LanguageModel(path: path)
        #expect(exported.config.layerCount == summary.layers.count)
        #expect(exported.config.slidingWindowLayers == summary.slidingWindowLayers)

        let (expected, found) = try logits(of: plan, on: model, andWholeOf: exported, tokens: tokens)
        #expect(found.rows == tokens.count && found.values.count == expected.values.count)
        let differing = zip(expected.values, found.values).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differing == 0, "\(differing) of \(expected.values.count) logits differ")
        // a plan that changed nothing would make the comparison vacuous
        let unplanned = try logits(of: .full(layerCount: model.config.layerCount), on: model, andWholeOf: exported, tokens: tokens)
        #expect(unplanned.expected.values != expected.values)
        return summary
    }

    static func tokens(_ count: Int, vocabulary: Int) -> [TokenID] {
        (0..<count).map { TokenID(($0 * 7_919 + 11) % vocabulary) }
    }

    @Test(arguments: [TinyModelSpec.llama, .qwen2, TinyModelSpec(architecture: "llama", format: .q4_K, seed: 3)])
    func tinyModelExportRunsThePlan(spec: TinyModelSpec) throws {
        let model = try TinyModels.model(spec)
        let summary = try Self.exportMatchesPlan(model, plan: Self.fourLayerPlan, tokens: Self.tokens(24, vocabulary: model.config.vocabularySize))
        #expect(summary.layers == [3, 0, 2, 2, 0])
        #expect(summary.droppedSteps == [3])
        #expect(summary.zeroedSublayers.map(\.sublayer) == ["ffn", "attention"])
        #expect(summary.zeroedSublayers.map(\.block) == [1, 3])
        #expect(summary.zeroedSublayers[0].tensors == ["blk.1.ffn_down.weight"])
        #expect(summary.warnings.contains { $0.contains("save no compute") })
    }

    @Test func exportedFileCarriesRenumberedTensorsAndMetadata() throws {
        let model = try TinyModels.model(.qwen2)
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/exported.gguf"
        let summary = try PlanExport(model: model, plan: Self.fourLayerPlan, sourceName: "tiny.gguf").write(to: path)
        let file = try GGUFFile.open(path: path)
        #expect(try file.metadata.integer("qwen2.block_count") == 5)
        #expect(try file.metadata.string("strata.export.source") == "tiny.gguf")
        #expect(try file.metadata.string("strata.export.method") == "manual")
        let recorded = try LayerPlan.decode(Data(file.metadata.string("strata.export.plan").utf8), path: "strata.export.plan")
        #expect(recorded == Self.fourLayerPlan)
        #expect(file.tensors.count == summary.tensors && file.fileSize == summary.bytes)
        // block 4 is layer 0 again: the same bytes under a new name, q/k/v biases included
        let source = model.file
        for suffix in ["attn_q.weight", "attn_q.bias", "ffn_down.weight"] {
            let copy = try #require(file.tensor(named: "blk.4.\(suffix)"))
            let original = try #require(source.tensor(named: "blk.0.\(suffix)"))
            #expect(file.data(for: copy).bytes(at: 0, count: copy.byteCount)
                    == source.data(for: original).bytes(at: 0, count: original.byteCount))
        }
        let zero = try #require(file.tensor(named: "blk.3.attn_output.weight"))
        #expect(file.data(for: zero).bytes(at: 0, count: zero.byteCount).allSatisfy { $0 == 0 })
        #expect(file.tensor(named: "blk.5.attn_q.weight") == nil)
    }

    /// The exact-path logits of `plan` on `model`, and of the whole of `exported`, over `tokens`.
    static func logits(of plan: LayerPlan, on model: LanguageModel, andWholeOf exported: LanguageModel, tokens: [TokenID])
        throws -> (expected: Logits, found: Logits) {
        let pool = WorkerPool(threadCount: 2)
        var source = Transformer(model: model, pool: pool, numerics: .exact)
        var sourceCache = source.makeCache(capacity: tokens.count)
        let expected = try source.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &sourceCache, logits: .all)
        var copy = Transformer(model: exported, pool: pool, numerics: .exact)
        var copyCache = copy.makeCache(capacity: tokens.count)
        let found = try copy.forward(tokens: tokens, startPosition: 0, plan: .full(layerCount: exported.config.layerCount),
                                     cache: &copyCache, logits: .all)
        return (expected, found)
    }

    /// Gemma 3 RMSNorms each sublayer's output before adding it; a zero projection still adds
    /// zero, and removing, reordering and repeating layers keeps each one's window kind.
    @Test func gemma3ExportKeepsWindowKindsAndZeroBranches() throws {
        let model = try LanguageModel(path: Self.gemma3Tiny)
        #expect(model.config.slidingWindowLayers == [true, true, true, true, true, false])
        let plan = LayerPlan(layerCount: 6, steps: [
            LayerStep(layer: 0), LayerStep(layer: 5, runsAttention: false), LayerStep(layer: 2),
            LayerStep(layer: 5), LayerStep(layer: 3, runsFFN: false), LayerStep(layer: 1),
        ], method: "manual")
        // 20 positions: past the window of 8, so window kinds matter to these logits
        let summary = try Self.exportMatchesPlan(model, plan: plan, tokens: Self.tokens(20, vocabulary: model.config.vocabularySize))
        #expect(summary.slidingWindowLayers == [true, false, true, false, true, true])
        // the default period would make block 5 global and 1, 3 sliding: other engines are warned about
        #expect(summary.warnings.contains { $0.contains("blocks 1, 3, 5 ") && $0.contains("transformers") })
    }

    /// Removing layers shifts the later ones onto other positions of the default period; only
    /// skipping sublayers (or removing whole periods) keeps every kind where the default puts it.
    @Test func gemma3WarningOnlyWhenKindsMove() throws {
        let model = try LanguageModel(path: Self.gemma3Tiny)
        let sublayers = try PlanExport(model: model, plan: LayerPlan.full(layerCount: 6).skipping(attention: [2], ffn: [4]))
        #expect(sublayers.summary.slidingWindowLayers == [true, true, true, true, true, false])
        #expect(sublayers.summary.warnings.allSatisfy { !$0.contains("attention kind") })
        let removal = try PlanExport(model: model, plan: LayerPlan.full(layerCount: 6).skipping(layers: [1, 2]))
        #expect(removal.summary.slidingWindowLayers == [true, true, true, false])
        #expect(removal.summary.warnings.contains { $0.contains("blocks 3 ") })
    }

    /// What the Gemma 3 argument rests on: RMSNorm of a zero row is zero (0 / sqrt(eps) = 0).
    @Test func rmsNormOfZeroIsZero() {
        let columns = 64
        var output = [Float](repeating: .nan, count: columns)
        let weight = (0..<columns).map { Float($0) - 20 }
        FloatKernels.rmsNorm([Float](repeating: 0, count: columns), rows: 1, columns: columns, weight: weight,
                             epsilon: 1e-6, into: &output)
        #expect(output.allSatisfy { $0 == 0 })
    }

    @Test func realModelExportRunsThePlan() throws {
        let model = try LoadedModels.model("smollm2-135m")
        let plan = LayerPlan(layerCount: 30, steps: (0..<30).flatMap { layer -> [LayerStep] in
            switch layer {
            case 20...24: []
            case 10: [LayerStep(layer: 10), LayerStep(layer: 10, runsFFN: false)]
            case 27: [LayerStep(layer: 27, runsAttention: false)]
            default: [LayerStep(layer: layer)]
            }
        }, method: "manual")
        let tokens = model.tokenizer.encode("The capital of France is Paris, and")
        let summary = try Self.exportMatchesPlan(model, plan: plan, tokens: tokens)
        #expect(summary.layers.count == 26 && summary.zeroedSublayers.count == 2)
    }

    // MARK: Errors, each before any file is written

    @Test func planForAnotherModelIsRefused() throws {
        let model = try TinyModels.model(.llama)
        #expect(throws: PlanExportError.plan(.layerCountMismatch(plan: 30, model: 4))) {
            try PlanExport(model: model, plan: .full(layerCount: 30))
        }
        let error = try #require(throws: PlanExportError.self) { try PlanExport(model: model, plan: .full(layerCount: 30)) }
        #expect(error.description.contains("30 layers") && error.description.contains("has 4"))
    }

    @Test func outputChecksComeFirst() throws {
        let model = try TinyModels.model(.llama)
        let source = try TinyModels.path(.llama)
        let export = try PlanExport(model: model, plan: Self.fourLayerPlan)
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }

        // the source is never overwritten, also through a link and with overwrite
        #expect(throws: PlanExportError.outputIsSource(path: source)) { try export.write(to: source, overwrite: true) }
        let link = folder + "/link.gguf"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: source)
        #expect(throws: PlanExportError.outputIsSource(path: link)) { try export.write(to: link, overwrite: true) }

        let existing = folder + "/existing.gguf"
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: existing))
        #expect(throws: PlanExportError.outputExists(path: existing)) { try export.write(to: existing) }
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me")
        _ = try export.write(to: existing, overwrite: true)
        #expect(try GGUFFile.open(path: existing).tensors.count == export.summary.tensors)

        #expect(throws: PlanExportError.outputIsFolder(path: folder)) { try export.write(to: folder, overwrite: true) }
        let missing = folder + "/no/such/folder/out.gguf"
        #expect(throws: PlanExportError.outputFolderMissing(path: missing, folder: folder + "/no/such/folder")) {
            try export.write(to: missing)
        }
        // permission bits do not stop root; sysfs refuses new files to everyone
        let locked = folder + "/locked"
        try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
        try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: locked)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: locked) }
        let unwritable = getuid() == 0 ? "/sys/strata-export.gguf" : locked + "/out.gguf"
        let error = try #require(throws: PlanExportError.self) { try export.write(to: unwritable) }
        guard case .outputNotWritable(let path, let reason) = error else {
            Issue.record("expected outputNotWritable, got \(error)")
            return
        }
        #expect(path == unwritable && reason.contains("cannot create files"))
        #expect(!FileManager.default.fileExists(atPath: unwritable))
    }

    @Test func unknownPerLayerArrayIsRefused() throws {
        var writer = try TinyModels.writer(.llama)
        writer.set("llama.custom_per_layer", .array((0..<4).map { .float32(Float($0)) }))
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/custom.gguf"
        try writer.write(to: path)
        let model = try LanguageModel(path: path)
        let error = try #require(throws: PlanExportError.self) { try PlanExport(model: model, plan: Self.fourLayerPlan) }
        #expect(error.description.contains("'llama.custom_per_layer'") && error.description.contains("renumber"))
    }

    @Test func notAGGUFFileIsNamed() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/plan.json"
        try Data("{\"layer_count\": 4}".utf8).write(to: URL(fileURLWithPath: path))
        let error = try #require(throws: FormatError.self) { try LanguageModel(path: path) }
        #expect(error.description.contains(path) && error.description.contains("not a GGUF file"))
    }
}

/// Healed plans: an FFN-output map folds into the down projection; other maps are refused.
@Suite("Plan export of healed plans")
struct HealedPlanExportTests {
    /// A near-identity map of `width` features.
    static func map(width: Int, site: LinearMap.Site) -> LinearMap {
        var generator = SeededGenerator(seed: 5)
        var values = [Float](repeating: 0, count: width * width)
        for i in 0..<width { values[i * width + i] = 1 }
        for index in values.indices { values[index] += Float.random(in: -0.05...0.05, using: &generator) }
        return LinearMap(name: "heal.1", site: site, map: values, width: width)
    }

    @Test("an FFN-output map folded into an f32 down projection computes what the healed plan computes")
    func foldsIntoDownProjection() throws {
        let model = try TinyModels.model(TinyModelSpec(format: .f32, seed: 3))
        let width = model.config.hiddenSize
        let plan = LayerPlan(layerCount: 4, steps: [LayerStep(layer: 0), LayerStep(layer: 1, map: Self.map(width: width, site: .feedForwardOutput)),
                                                    LayerStep(layer: 3)], method: "test+heal")
        let folder = try PlanExportTests.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let export = try PlanExport(model: model, plan: plan)
        #expect(export.summary.warnings.contains { $0.contains("folded") })
        _ = try export.write(to: folder + "/healed.gguf")
        let exported = try LanguageModel(path: folder + "/healed.gguf")
        let tokens = PlanExportTests.tokens(12, vocabulary: model.config.vocabularySize)
        let (expected, found) = try PlanExportTests.logits(of: plan, on: model, andWholeOf: exported, tokens: tokens)
        // the same products in another order: float rounding only
        let worst = zip(expected.values, found.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-3, "largest logit difference \(worst)")
        // and the fold is not a no-op: without the map the logits differ clearly
        var unhealedPlan = plan
        unhealedPlan.steps[1].map = nil
        let unhealed = try PlanExportTests.logits(of: unhealedPlan, on: model, andWholeOf: exported, tokens: tokens).expected
        #expect((zip(unhealed.values, found.values).map { abs($0 - $1) }.max() ?? 0) > 100 * worst)
    }

    @Test("a stream map, or an FFN map in a family that normalizes the FFN output, is refused by name")
    func refusesUnfoldableMaps() throws {
        let model = try TinyModels.model(.llama)
        let stream = LayerPlan(layerCount: 4, steps: [LayerStep(layer: 0), LayerStep(layer: 1, map: HealedPlanExportTests.map(
            width: model.config.hiddenSize, site: .stream)), LayerStep(layer: 3)])
        #expect { try PlanExport(model: model, plan: stream) } throws: { "\($0)".contains("heal.1") && "\($0)".contains("--heal-site ffn") }
        let gemma = try LanguageModel(path: PlanExportTests.gemma3Tiny)
        let normalized = LayerPlan(layerCount: 6, steps: [LayerStep(layer: 0, map: HealedPlanExportTests.map(
            width: gemma.config.hiddenSize, site: .feedForwardOutput)), LayerStep(layer: 5)])
        #expect { try PlanExport(model: gemma, plan: normalized) } throws: { "\($0)".contains("normalizes the FFN output") }
    }
}
