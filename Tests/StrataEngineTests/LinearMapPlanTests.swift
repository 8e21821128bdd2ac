import Foundation
import StrataEngine
import StrataKernels
import StrataTestSupport
import Testing

/// Linear maps in plan steps (healing, shortcuts): the forward pass applies them where the
/// plan says, an identity map changes nothing, and plan files carry them.
@Suite("Linear maps in plans")
struct LinearMapPlanTests {
    static let tokens: [TokenID] = [5, 17, 42, 99, 7, 3, 64, 12]

    /// Layers 1-2 removed; the map (if any) on step 0, the layer before the cut.
    static func healedPlan(layerCount: Int, map: LinearMap?) -> LayerPlan {
        var steps = [LayerStep(layer: 0, map: map)]
        steps += (3..<layerCount).map { LayerStep(layer: $0) }
        return LayerPlan(layerCount: layerCount, steps: steps, method: "test")
    }

    static func logits(_ transformer: inout Transformer, plan: LayerPlan) throws -> [Float] {
        var cache = transformer.makeCache(capacity: 64)
        return try transformer.forward(tokens: tokens, startPosition: 0, plan: plan, cache: &cache, logits: .all).values
    }

    /// Gemma 3 normalizes sublayer outputs (a second code path for FFN-output maps).
    static let models: [TestModel] = [.tiny(.llama), .tiny(.qwen2)]
        + (TestModels.isAvailable("gemma3-270m") ? [.real("gemma3-270m")] : [])

    @Test("an identity map at either site leaves a plan's logits bitwise unchanged", arguments: models, [Numerics.exact, .fast])
    func identityChangesNothing(model: TestModel, numerics: Numerics) throws {
        var transformer = try model.transformer(numerics: numerics)
        let config = transformer.config
        let plain = try Self.logits(&transformer, plan: Self.healedPlan(layerCount: config.layerCount, map: nil))
        for site in [LinearMap.Site.stream, .feedForwardOutput] {
            let identity = LinearMap.identity(name: "heal.0", site: site, width: config.hiddenSize)
            let healed = try Self.logits(&transformer, plan: Self.healedPlan(layerCount: config.layerCount, map: identity))
            #expect(firstBitwiseDifference(plain, healed) == nil, "\(site)")
        }
    }

    @Test("a stream map gives what multiplying the observed stream and continuing gives")
    func streamMapIsAppliedAfterItsStep() throws {
        var transformer = try PreparedModels.transformer(.llama, numerics: .exact)
        let config = transformer.config
        let width = config.hiddenSize
        var generator = SeededGenerator(seed: 11)
        var values = [Float](repeating: 0, count: width * width)
        for i in 0..<width { values[i * width + i] = 1 }
        for index in values.indices { values[index] += Float.random(in: -0.02...0.02, using: &generator) }
        let map = LinearMap(name: "heal.0", site: .stream, map: values, width: width)
        #expect(map.values == values)
        let healed = try Self.logits(&transformer, plan: Self.healedPlan(layerCount: config.layerCount, map: map))

        // by hand: the stream leaving step 0, times T, fed to the rest of the plan
        let unhealed = Self.healedPlan(layerCount: config.layerCount, map: nil)
        let recorder = StepOutputRecorder(step: 0)
        var cache = transformer.makeCache(capacity: 64)
        _ = try transformer.forward(tokens: Self.tokens, startPosition: 0, plan: unhealed, cache: &cache, observer: recorder, logits: .none)
        var mapped = [Float](repeating: 0, count: recorder.hidden.count)
        for row in 0..<Self.tokens.count {
            for j in 0..<width {
                var sum: Double = 0
                for i in 0..<width { sum += Double(recorder.hidden[row * width + i]) * Double(values[i * width + j]) }
                mapped[row * width + j] = Float(sum)
            }
        }
        var continued = transformer.makeCache(capacity: 64)
        _ = try transformer.forward(tokens: Self.tokens, startPosition: 0, plan: unhealed, cache: &continued, logits: .none)
        let byHand = try transformer.forward(hidden: mapped, firstStep: 1, startPosition: 0, plan: unhealed, cache: &continued,
                                             logits: .all).values
        let plain = try Self.logits(&transformer, plan: unhealed)
        let worst = zip(healed, byHand).map { abs($0 - $1) }.max() ?? .infinity
        let moved = zip(healed, plain).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-4, "largest difference \(worst)")
        #expect(moved > 100 * worst, "the map must change the logits (moved \(moved))")
    }

    @Test("plan files carry maps in a tensor file beside them, and refuse what does not fit")
    func planFilesRoundTrip() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("maps-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let width = 256
        var values = [Float](repeating: 0, count: width * width)
        for index in values.indices { values[index] = Float(index % 97) / 97 }
        let plan = Self.healedPlan(layerCount: 4, map: LinearMap(name: "heal.0", site: .feedForwardOutput, map: values, width: width))
        let path = folder + "/healed.json"
        try plan.write(to: path)
        #expect(FileManager.default.fileExists(atPath: folder + "/healed.maps.gguf"))
        let loaded = try LayerPlan.load(path: path)
        #expect(loaded.mapFile == "healed.maps.gguf")
        #expect(loaded.steps.map(\.layer) == plan.steps.map(\.layer))
        #expect(loaded.steps[0].map?.site == .feedForwardOutput)
        #expect(loaded.steps[0].map?.values == values)
        // an existing tensor file is not replaced without asking
        try? FileManager.default.removeItem(atPath: path)
        #expect(throws: PlanError.self) { try plan.write(to: path) }
        try plan.write(to: path, overwrite: true)

        // a decoded plan without its tensor file is refused by validation and by the forward pass
        let decoded = try LayerPlan.decode(Data(contentsOf: URL(fileURLWithPath: path)), path: path)
        #expect(throws: PlanError.mapNotLoaded(step: 0, name: "heal.0")) { try decoded.validate(layerCount: 4) }
        try FileManager.default.removeItem(atPath: folder + "/healed.maps.gguf")
        #expect(throws: PlanError.self) { try LayerPlan.load(path: path) }

        // a map of the wrong width for the model
        var transformer = try PreparedModels.transformer(.llama, numerics: .exact)
        let narrow = LinearMap.identity(name: "narrow", site: .stream, width: 128)
        let wrong = Self.healedPlan(layerCount: transformer.config.layerCount, map: narrow)
        #expect(throws: ForwardError.self) { try Self.logits(&transformer, plan: wrong) }
        // an FFN-output map on a step without its FFN
        var noFFN = Self.healedPlan(layerCount: 4, map: LinearMap.identity(name: "m", site: .feedForwardOutput, width: width))
        noFFN.steps[0].runsFFN = false
        #expect(throws: PlanError.mapWithoutFeedForward(step: 0, name: "m")) { try noFFN.validate(layerCount: 4) }
    }
}

/// Keeps the residual stream leaving one plan step.
final class StepOutputRecorder: HiddenStateObserver {
    let step: Int
    private(set) var hidden: [Float] = []

    init(step: Int) { self.step = step }

    func observe(step: Int, layer: Int, boundary: ResidualBoundary, hidden: [Float], tokens: Int, hiddenSize: Int) {
        guard step == self.step, boundary == .layerOutput else { return }
        self.hidden = Array(hidden.prefix(tokens * hiddenSize))
    }
}
