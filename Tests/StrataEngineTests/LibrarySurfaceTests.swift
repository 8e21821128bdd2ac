// This file imports StrataEngine alone (and the test library): it compiles only if every
// type below is reachable from the StrataEngine product, as a user of the library sees it.
import StrataEngine
import Testing

@Suite("What `import StrataEngine` alone provides")
struct LibrarySurfaceTests {
    @Test func typesOfPublicSignaturesAreReachable() {
        let pool = WorkerPool(threadCount: 1)
        #expect(pool.threadCount == 1)
        #expect(throws: WorkerPool.InvalidThreadCount.self) { try WorkerPool(exactly: 0) }
        let token: TokenID = 7
        let message = ChatMessage(role: "user", content: "hi")
        #expect(token == 7 && message.role == "user")
        // named only as types: each appears in a public signature of the engine
        let types: [Any.Type] = [Tokenizer.self, Vocabulary.self, StreamingDecoder.self, GGUFFile.self, FormatError.self,
                                 ActivationPrecision.self, RotaryStyle.self]
        #expect(types.count == 7)
    }

    @Test func aMissingModelFileThrowsAFormatError() {
        #expect(throws: FormatError.self) { try LanguageModel(path: "/nonexistent/model.gguf") }
    }

    @Test func planChecksAreTheEngines() throws {
        let full = LayerPlan.full(layerCount: 4)
        let layers = try LayerPlan.parseLayerList("1-2")
        #expect(try full.skipping(layers: layers).steps.map(\.layer) == [0, 3])
        #expect(throws: PlanError.layerNotInModel(layer: 4, layerCount: 4)) { try full.skipping(layers: [4]) }
        #expect(throws: PlanError.reversedLayerRange(list: "2-1", first: 2, last: 1)) { try LayerPlan.parseLayerList("2-1") }
    }
}
