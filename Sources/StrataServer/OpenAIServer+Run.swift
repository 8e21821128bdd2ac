import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

extension OpenAIServer {
    /// The Hummingbird application on the configured address; `onRunning` gets the bound port
    /// (the chosen one when the configuration asks for port 0).
    public func makeApplication(
        logger: Logger = defaultLogger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: makeRouter(),
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port),
                                                    serverName: "strata"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }

    /// The server's log: warnings and errors on stderr; the one start-up line is the caller's.
    public static var defaultLogger: Logger {
        var logger = Logger(label: "strata.server")
        logger.logLevel = .warning
        return logger
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting, cancels the generations in flight
    /// (their streams end with an error event, whole answers with 503) and returns.
    public func run(logger: Logger = defaultLogger, onRunning: @escaping @Sendable (Int) async -> Void) async throws {
        let application = makeApplication(logger: logger, onRunning: onRunning)
        // Services shut down last-listed first: the session stops before the HTTP server waits
        // for its open responses, so those end now instead of when their generations would.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [application, SessionShutdownService(backend: backend)],
            gracefulShutdownSignals: [.sigint, .sigterm],
            logger: logger))
        try await group.run()
    }
}

/// Shuts the backend down when the service group begins its graceful shutdown.
struct SessionShutdownService: Service {
    let backend: any GenerationBackend

    func run() async throws {
        // returns on graceful shutdown, throws on cancellation: both mean stop
        try? await gracefulShutdown()
        await backend.shutdown(cancelRunning: true)
    }
}
