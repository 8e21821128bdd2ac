import StrataEngine
import StrataKernels
import StrataTokenizer
import StrataTestSupport
import Testing

/// Keeps the residual stream entering every step of one forward pass.
private final class StreamCapture: HiddenStateObserver {
    var inputs: [[Float]] = []
    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        if boundary == .layerInput { inputs.append(Array(hidden[0..<(tokens * hiddenSize)])) }
        if boundary == .layerOutput { lastOutput = Array(hidden[0..<(tokens * hiddenSize)]) }
    }
    var lastOutput: [Float] = []
}

@Suite("Forward pass seeded with a hidden state")
struct SeededForwardTests {
    let model: LanguageModel
    let tokens: [TokenID]

    init() throws {
        model = try LoadedModels.model("smollm2-135m")
        tokens = model.tokenizer.encode("It is a truth universally acknowledged, that a single man in possession", addSpecial: false)
    }

    @Test("starting at step k from the stream the full pass had there gives bitwise the same logits",
          arguments: Numerics.allCases)
    func seededMatchesFull(numerics: Numerics) throws {
        var transformer = Transformer(model: model, numerics: numerics)
        let full = LayerPlan.full(layerCount: model.config.layerCount)
        var cache = transformer.makeCache(capacity: 64)
        let capture = StreamCapture()
        let reference = try transformer.forward(tokens: tokens, startPosition: 0, plan: full, cache: &cache,
                                                observer: capture, logits: .all)
        for step in [0, 1, 13, full.steps.count - 1] {
            cache.truncate(to: 0)
            let seeded = try transformer.forward(hidden: capture.inputs[step], firstStep: step, startPosition: 0,
                                                 plan: full, cache: &cache, logits: .all)
            #expect(seeded.values == reference.values, "step \(step)")
        }
        // No step at all: the final norm and LM head alone (the logit lens of the last layer).
        let lens = try transformer.forward(hidden: capture.lastOutput, firstStep: full.steps.count, startPosition: 0,
                                           plan: full, cache: &cache, logits: .all)
        #expect(lens.values == reference.values)
    }

    @Test("a plan without layer l, seeded with the full pass's stream entering l, equals running that plan from the tokens")
    func seededAblationMatchesFullRun() throws {
        var transformer = Transformer(model: model, numerics: .exact)
        let full = LayerPlan.full(layerCount: model.config.layerCount)
        var cache = transformer.makeCache(capacity: 64)
        let capture = StreamCapture()
        _ = try transformer.forward(tokens: tokens, startPosition: 0, plan: full, cache: &cache, observer: capture, logits: .none)
        for layer in [0, 8, 29] {
            for plan in try [full.skipping(layers: [layer]), full.skipping(attention: [layer]), full.skipping(ffn: [layer])] {
                cache.truncate(to: 0)
                let direct = try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all)
                cache.truncate(to: 0)
                let seeded = try transformer.forward(hidden: capture.inputs[layer], firstStep: layer, startPosition: 0,
                                                     plan: plan, cache: &cache, logits: .all)
                #expect(seeded.values == direct.values, "layer \(layer)")
            }
        }
    }

    @Test("bad seeds are refused with clear errors")
    func invalidSeeds() throws {
        var transformer = Transformer(model: model)
        let full = LayerPlan.full(layerCount: model.config.layerCount)
        var cache = transformer.makeCache(capacity: 8)
        let width = model.config.hiddenSize
        #expect(throws: ForwardError.invalidHidden("\(width + 1) values are not whole rows of \(width)")) {
            try transformer.forward(hidden: [Float](repeating: 0, count: width + 1), firstStep: 0, startPosition: 0,
                                    plan: full, cache: &cache)
        }
        #expect(throws: ForwardError.invalidHidden("first step 31 is outside 0...30")) {
            try transformer.forward(hidden: [Float](repeating: 0, count: width), firstStep: 31, startPosition: 0,
                                    plan: full, cache: &cache)
        }
    }
}
