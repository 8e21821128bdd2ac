#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import StrataEngine
import StrataServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over an OpenAI-compatible HTTP API.",
        discussion: """
            Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, \
            GET /metrics (docs/serving.md). Binds loopback by default. On start one line on stderr \
            names the bound address. SIGINT or SIGTERM stops accepting, cancels the generations in \
            flight and exits.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var planOptions: PlanOptions
    @OptionGroup var speculationOptions: SpeculationOptions

    @Option(help: "The address to listen on; anything but loopback should come with --api-key.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on; 0 picks a free one (printed on start).")
    var port = 8080

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' (default: $STRATA_API_KEY, else none).")
    var apiKey: String?

    @Option(help: "Sequences decoded together in one forward pass.")
    var parallel = 4

    @Option(help: "Positions per sequence, prompt and output (default: the model's, at most \(SessionOptions.defaultContextLimit)).")
    var context: Int?

    @Option(help: "Requests that may wait for a free sequence; more get 429.")
    var queue = 64

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes; larger ones get 413.")
    var maxBody = ServerConfiguration.defaultMaxBodyBytes

    @Option(name: .customLong("time-limit"), help: "Seconds a generation may run before it ends with finish_reason 'length'.")
    var timeLimit: Double = 600

    @Flag(name: .customLong("no-prompt-cache"), help: "Do not keep finished sequences' KV caches for reuse by later prompts.")
    var noPromptCache = false

    func validate() throws {
        if !(0...65_535).contains(port) { throw ValidationError("--port must be 0 to 65535, found \(port)") }
        if parallel < 1 { throw ValidationError("--parallel must be at least 1, found \(parallel)") }
        if queue < 0 { throw ValidationError("--queue must be 0 or more, found \(queue)") }
        if let context, context < 2 { throw ValidationError("--context must be at least 2, found \(context)") }
        if apiKey?.isEmpty == true { throw ValidationError("--api-key must not be empty; leave it out to serve without a key") }
        if maxBody < 1 { throw ValidationError("--max-body must be at least 1, found \(maxBody)") }
        if !(timeLimit > 0 && timeLimit <= 86_400 * 365) {
            throw ValidationError("--time-limit must be a positive number of seconds, found \(timeLimit)")
        }
    }

    func run() async throws {
        // Until the server's signal handling takes over (it ignores the signals and watches
        // them itself), SIGINT and SIGTERM end the process with 0: nothing is in flight yet.
        signal(SIGTERM, exitBeforeServing)
        signal(SIGINT, exitBeforeServing)
        let (model, _) = try modelOptions.load()
        let transformer = modelOptions.makeTransformer(model)
        let sessionOptions = SessionOptions(
            parallel: parallel, contextLength: context, queueLimit: queue,
            plan: planOptions.isSet ? try planOptions.plan(for: model.config) : nil,
            speculation: try speculationOptions.parameters(for: transformer, name: modelOptions.model),
            promptCacheEntries: noPromptCache ? 0 : SessionOptions().promptCacheEntries,
            timeLimit: .milliseconds(Int64(timeLimit * 1000)))
        let session: ModelSession
        do {
            session = try ModelSession(transformer: transformer, options: sessionOptions)
        } catch {
            throw CommandFailure("cannot start the session: \(error)")
        }
        let key = apiKey ?? ProcessInfo.processInfo.environment["STRATA_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let configuration = ServerConfiguration(host: host, port: port, apiKey: key, maxBodyBytes: maxBody)
        if !configuration.isLoopback, key == nil {
            printError("strata: warning: listening on \(host) without an API key: anyone who reaches this port can use the model; set --api-key or STRATA_API_KEY")
        }
        let name = ModelOptions.modelName(modelOptions.model)
        let server = OpenAIServer(backend: SessionBackend(session: session, name: name), configuration: configuration)
        let shownHost = host.contains(":") ? "[\(host)]" : host
        try await server.run { boundPort in
            printError("strata: serving \(name) on http://\(shownHost):\(boundPort)")
        }
    }
}

/// A signal while the model loads: no request exists yet, so there is nothing to finish.
private func exitBeforeServing(_ signal: Int32) {
    _exit(0)
}
