import StrataAnalysis
import StrataEngine
import StrataTestSupport
import StrataKernels
import StrataTokenizer
import Testing

@Suite("Continuation scoring on a real model")
struct ContinuationScoringTests {
    let model: LanguageModel

    init() throws {
        model = try LoadedModels.model("smollm2-135m")
    }

    @Test("the continuation is what follows the context's ids in context + continuation")
    func tokenization() throws {
        let request = TaskRequest(context: "The capital of France is", continuation: " Paris.")
        let tokens = try TokenizedRequest(request, tokenizer: model.tokenizer, maximumLength: 64)
        let context = model.tokenizer.encode(request.context, addSpecial: false, parseSpecial: false)
        let whole = model.tokenizer.encode(request.context + request.continuation, addSpecial: false, parseSpecial: false)
        #expect(tokens.tokens == context + whole.dropFirst(context.count))
        #expect(tokens.continuationStart == context.count)
        #expect(tokens.continuationCharacters == 7)
        // Too long for the model: context is dropped from the left, the continuation kept.
        let short = try TokenizedRequest(request, tokenizer: model.tokenizer, maximumLength: tokens.tokens.count - 2)
        #expect(short.tokens == Array(tokens.tokens.dropFirst(2)))
        #expect(short.continuationStart == tokens.continuationStart - 2)
    }

    /// A tiny model by default; SmolLM2 too in the full tier.
    @Test("sharing a document's prefix gives exactly the scores of running each request whole",
          arguments: TestModel.mechanics(), Numerics.allCases)
    func prefixSharing(testModel: TestModel, numerics: Numerics) throws {
        let model = try testModel.load()
        var transformer = try testModel.transformer(numerics: numerics)
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        func tokenized(_ document: TaskDocument) throws -> [TokenizedRequest] {
            try document.requests.map {
                try TokenizedRequest($0, tokenizer: model.tokenizer, maximumLength: model.config.contextLength)
            }
        }
        for (file, kind) in [("arc-easy-first-3.jsonl", EvaluationTask.Kind.multipleChoice),
                             ("winogrande-first-3.jsonl", .multipleChoice), ("lambada-first-4.jsonl", .greedyContinuation)] {
            for document in try TaskDataset.load(path: Fixture.path(file), kind: kind) {
                let requests = try tokenized(document)
                var cache = transformer.makeCache(capacity: requests.map(\.tokens.count).max() ?? 1)
                let shared = try scoreContinuations(requests, transformer: &transformer, plan: plan, cache: &cache, sharesPrefix: true)
                let whole = try scoreContinuations(requests, transformer: &transformer, plan: plan, cache: &cache, sharesPrefix: false)
                #expect(shared.scores == whole.scores, "\(file) doc \(document.id)")
                #expect(shared.tokensRun < whole.tokensRun || requests.count == 1, "\(file) doc \(document.id): sharing saves work")
            }
        }
    }

    @Test("a whole request's score is the sum of per-token log-probabilities of one full forward pass")
    func scoreMatchesOneForwardPass() throws {
        var transformer = try PreparedModels.transformer("smollm2-135m")
        let plan = LayerPlan.full(layerCount: model.config.layerCount)
        let request = try TokenizedRequest(TaskRequest(context: "Once upon a time there was a", continuation: " little girl"),
                                           tokenizer: model.tokenizer, maximumLength: 64)
        var cache = transformer.makeCache(capacity: 64)
        let logits = try transformer.forward(tokens: request.tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
        var expected = 0.0
        var greedy = true
        for position in request.continuationStart..<request.tokens.count {
            let row = logits.row(position - 1)
            expected += logProbability(of: request.tokens[position], in: row)
            greedy = greedy && row.indices.max { row[$0] < row[$1] } == row.startIndex + Int(request.tokens[position])
        }
        let scored = try scoreContinuations([request], transformer: &transformer, plan: plan, cache: &cache)
        #expect(scored.scores == [ContinuationScore(logProbability: expected, isGreedy: greedy)])
    }
}
