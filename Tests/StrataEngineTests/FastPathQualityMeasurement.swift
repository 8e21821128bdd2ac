import Foundation
import StrataEngine
import StrataTestSupport
import Testing

/// The quality bounds of `FastPathQualityTests` for a model without a transformers reference,
/// measured against Strata's own exact path (which matches transformers to ~1e-5 on the
/// models that have one): each fast numerics' perplexity on the same windows within 1% of the
/// exact path's, argmax agreement >= 97%, flips only at near-ties. The exact pass of the 1.5B
/// model takes minutes, so this runs in the full tier only
/// (`STRATA_TEST_TIER=full swift test -c release -Xswiftc -enable-testing --filter FastPathQualityMeasurement`,
/// after `scripts/fetch-models.sh qwen2.5-coder-1.5b`).
@Suite(.enabled(if: TestTier.isFull, "full tier only: set STRATA_TEST_TIER=full"), .serialized)
struct FastPathQualityMeasurement {
    @Test("fast numerics keep the quality bounds against the exact path on Qwen2.5-Coder-1.5B",
          arguments: [Numerics.fast, .fast8])
    func qualityAgainstExact(numerics: Numerics) throws {
        let name = "qwen2.5-coder-1.5b"
        let comparison = try FastPathComparison(model: try LoadedModels.model(name), numerics: numerics)
        for flip in comparison.flips {
            #expect(flip.margin < FastPathQualityTests.nearTieMargin, "\(name) \(numerics): position \(flip.position) flipped with margin \(flip.margin)")
        }
        print("\(name) \(numerics): argmax agreement \(comparison.agreement) over \(comparison.positions) positions; "
              + "perplexity \(comparison.fastPerplexity), exact \(comparison.exactPerplexity)")
        #expect(comparison.agreement >= 0.97)
        #expect(abs(comparison.fastPerplexity / comparison.exactPerplexity - 1) < 0.01)
    }
}
