// Loads a GGUF model and continues a prompt greedily, printing the text as it streams, as
// `strata generate --temperature 0` does. Only `import StrataEngine`: everything a user needs
// for this must be reachable from that one product.
import StrataEngine

let arguments = CommandLine.arguments
guard arguments.count == 3 || arguments.count == 4, let maxTokens = Int(arguments.count == 4 ? arguments[3] : "32") else {
    fatalError("usage: LibraryUse MODEL.gguf PROMPT [MAX_TOKENS]")
}
let model = try LanguageModel(path: arguments[1])
let prompt: [TokenID] = try model.promptTokens(arguments[2])
let transformer = Transformer(model: model, pool: WorkerPool())
var generator = Generator(
    transformer: transformer, prompt: prompt,
    parameters: GenerationParameters(maxTokens: maxTokens, sampling: .greedy))
while let event = try generator.next() {
    switch event {
    case .token(_, let text), .text(let text): print(text, terminator: "")
    case .finished: break
    }
}
print("")
