/// How `strata serve` listens and what it lets in.
public struct ServerConfiguration: Sendable {
    /// The address to bind; loopback unless told otherwise.
    public var host: String
    /// The port to bind; 0 picks any free port (the bound one is reported on start).
    public var port: Int
    /// Requests must send `Authorization: Bearer <apiKey>`; nil lets every request in.
    public var apiKey: String?
    /// Larger request bodies get 413.
    public var maxBodyBytes: Int

    /// The default body limit, 1 MiB: far more than any prompt that fits a context.
    public static let defaultMaxBodyBytes = 1 << 20

    public init(host: String = "127.0.0.1", port: Int = 8080, apiKey: String? = nil, maxBodyBytes: Int = defaultMaxBodyBytes) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.maxBodyBytes = maxBodyBytes
    }

    /// Whether `host` only accepts connections from this machine.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
