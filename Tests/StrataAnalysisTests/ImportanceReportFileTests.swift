import Foundation
@testable import StrataAnalysis
import Testing

@Suite("Analysis report files")
struct ImportanceReportFileTests {
    @Test("infinite and NaN measurements survive a JSON round trip as named strings")
    func nonFiniteValuesRoundTrip() throws {
        // a model without one of its layers can have infinite perplexity; encoding it failed
        let report = ImportanceReport(
            model: "m", layerCount: 2, windows: 1, context: 8, text: "t", blockInfluence: [0.5, .nan],
            angularDistance: [[0.1], [nil]], lim: [], zd: [], attentionContribution: [], ffnContribution: [],
            logitLensAgreement: [], logitLensKL: [.infinity, 1], logitLensPositions: 4, perplexityFull: 12,
            perplexityWithoutLayer: [.infinity, 20], perplexityWithoutAttention: [-.infinity, 3],
            perplexityWithoutFFN: [], seconds: 1)
        let data = try report.jsonData()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains(#""Infinity""#) && text.contains(#""-Infinity""#) && text.contains(#""NaN""#))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("strata-report-\(UUID()).json").path
        try data.write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loaded = try ImportanceReport.load(path: path)
        #expect(loaded.perplexityWithoutLayer == [.infinity, 20])
        #expect(loaded.perplexityWithoutAttention == [-.infinity, 3])
        #expect(loaded.logitLensKL == [.infinity, 1])
        #expect(loaded.blockInfluence[0] == 0.5 && loaded.blockInfluence[1].isNaN)
    }
}
