import Foundation
import StrataFormats
import StrataTestSupport
import Testing

@Suite("strata quantize --calibration", .serialized)
struct QuantizeCalibrationTests {
    /// FNV-1a (64-bit) of `data`: a fingerprint of a whole file.
    static func fingerprint(_ data: Data) -> UInt64 {
        data.reduce(0xCBF2_9CE4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }

    /// What `quantize --type Q3_K_M` wrote for the tiny float model below before `--calibration`
    /// existed (the binary of commit 65408e7): without the option, not one byte may change.
    static let fingerprintBeforeCalibration: UInt64 = 839_431_141_358_899_719

    func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("strata-quantize-calibration-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test("statistics from a text go into the tensors, the metadata and the JSON; without them the file is as before")
    func calibratedQuantization() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try TinyModels.path(TinyModelSpec(format: .f32, seed: 7))
        let text = folder.appendingPathComponent("calibration.txt").path
        try String(repeating: TinyVocabulary.corpus + "\n", count: 4).write(toFile: text, atomically: true, encoding: .utf8)
        let plain = folder.appendingPathComponent("plain.gguf").path
        let weighted = folder.appendingPathComponent("weighted.gguf").path
        let plainRun = try StrataRun(["quantize", "--model", model, "--type", "Q3_K_M", "--out", plain])
        try #require(plainRun.status == 0, "\(plainRun.error)")
        let plainBytes = try Data(contentsOf: URL(fileURLWithPath: plain))
        #expect(Self.fingerprint(plainBytes) == Self.fingerprintBeforeCalibration,
                "fingerprint \(Self.fingerprint(plainBytes)) of \(plainBytes.count) bytes")

        let run = try StrataRun(["quantize", "--model", model, "--type", "Q3_K_M", "--out", weighted, "--calibration", text,
                                 "--context", "32", "--windows", "3", "--json"])
        try #require(run.status == 0, "\(run.error)")
        #expect(run.error.contains("calibration: 3 windows of 32 tokens in"), "\(run.error)")
        let summary = try run.json()
        let calibration = try #require(summary["calibration"] as? [String: Any], "\(summary)")
        #expect(calibration["text"] as? String == "calibration.txt")
        #expect(calibration["windows"] as? Int == 3 && calibration["context"] as? Int == 32 && calibration["tokens"] as? Int == 96)
        #expect((calibration["seconds"] as? Double).map { $0 >= 0 } == true)
        // the tiny llama model ties its output to the embedding: q, k, v, output, gate, up, down per layer
        #expect(summary["tensors_with_importance"] as? Int == 7 * 4, "\(summary)")

        let file = try GGUFFile.open(path: weighted)
        #expect(try file.metadata.string("strata.quantize.calibration") == "calibration.txt")
        #expect(try file.metadata.integer("strata.quantize.calibration_windows") == 3)
        #expect(try file.metadata.integer("strata.quantize.calibration_context") == 32)
        #expect(try file.metadata.integer("strata.quantize.calibration_tokens") == 96)
        let before = try GGUFFile.open(path: plain)
        #expect(try before.metadata.optionalString("strata.quantize.calibration") == nil)
        for tensor in file.tensors {
            let other = try #require(before.tensor(named: tensor.name))
            let same = file.data(for: tensor).bytes(at: 0, count: tensor.byteCount)
                == before.data(for: other).bytes(at: 0, count: other.byteCount)
            // the embedding and the norms have no statistics; every other matrix was reweighted
            let weightedTensor = tensor.name.hasPrefix("blk.") && tensor.shape.count == 2
            #expect(same != weightedTensor, "\(tensor.name): \(same ? "unchanged" : "changed")")
        }
        let plainJSON = try StrataRun(["quantize", "--model", model, "--type", "Q3_K_M", "--out", plain, "--force", "--json"])
        #expect(plainJSON.status == 0, "\(plainJSON.error)")
        let plainSummary = try plainJSON.json()
        #expect(plainSummary["tensors_by_format"] != nil)
        #expect(plainSummary["calibration"] == nil && plainSummary["tensors_with_importance"] == nil, "\(plainSummary)")
    }

    @Test("bad calibration requests are refused with a clear error before any work")
    func refusals() throws {
        let folder = try folder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try TinyModels.path(TinyModelSpec(format: .f32, seed: 7))
        let short = folder.appendingPathComponent("short.txt").path
        try TinyVocabulary.corpus.write(toFile: short, atomically: true, encoding: .utf8)
        let missing = folder.appendingPathComponent("missing.txt").path
        let out = folder.appendingPathComponent("out.gguf").path
        let failures: [([String], String)] = [
            (["--calibration", missing], "cannot read \(missing): no such file"),
            (["--calibration", short], "short.txt has"),
            (["--calibration", short], "fewer than one window of --context 512"),
            (["--calibration", short, "--context", "32", "--windows", "40"], "fewer than --windows 40 × --context 32"),
            (["--calibration", short, "--windows", "0"], "--windows must be at least 1, found 0"),
            (["--calibration", short, "--context", "1"], "--context must be at least 2"),
            (["--windows", "4"], "--windows, --context and --numerics belong to --calibration"),
            (["--imatrix", "imatrix.dat"], "give the calibration text itself with --calibration FILE"),
        ]
        for (arguments, message) in failures {
            let failed = try StrataRun(["quantize", "--model", model, "--type", "Q3_K_M", "--out", out] + arguments)
            #expect(failed.status != 0 && failed.error.contains(message), "\(arguments): \(failed.error)")
            #expect(!failed.error.contains("calibration: "), "\(arguments): a pass ran before the refusal")
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
