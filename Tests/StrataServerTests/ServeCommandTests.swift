import Foundation
import StrataTestSupport
import Synchronization
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `strata serve` started as a user starts it, on a free port; stopped by a signal.
final class RunningServer: Sendable {
    let process: Process
    let port: Int
    private let errorPipe: Pipe
    private let stderr = OutputLog()

    /// The built binary sits beside the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata")
    }

    /// Starts `strata serve --port 0 arguments` and waits (at most a minute) for its start line.
    init(_ arguments: [String]) async throws {
        process = Process()
        process.executableURL = Self.binary
        process.arguments = ["serve", "--port", "0"] + arguments
        errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardOutput = FileHandle.nullDevice
        let stderr = stderr
        errorPipe.fileHandleForReading.readabilityHandler = { handle in stderr.append(handle.availableData) }
        try process.run()
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(60)
        while port == nil, process.isRunning, ContinuousClock.now < deadline {
            let text = stderr.text
            if let range = text.range(of: #"strata: serving \S+ on http://127\.0\.0\.1:\d+"#, options: .regularExpression),
               let colon = text[range].lastIndex(of: ":") {
                port = Int(text[range][text.index(after: colon)...])
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let port else {
            if process.isRunning { process.interrupt() }
            throw StartFailure(description: "no start line: \(stderr.text)")
        }
        self.port = port
    }

    struct StartFailure: Error, CustomStringConvertible { var description: String }

    var errorOutput: String { stderr.text }

    /// POSTs `body` (JSON) to `path`; the status and the body.
    func post(_ path: String, _ body: String) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(port)\(path)")))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(body.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    func get(_ path: String) async throws -> String {
        let url = try #require(URL(string: "http://127.0.0.1:\(port)\(path)"))
        return String(decoding: try await URLSession.shared.data(from: url).0, as: UTF8.self)
    }

    /// Sends SIGTERM and waits (at most 20 s) for the exit; the exit status, or nil if it hangs.
    func stop() async throws -> Int32? {
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(20)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        errorPipe.fileHandleForReading.readabilityHandler = nil
        if process.isRunning {
            process.interrupt()
            return nil
        }
        return process.terminationStatus
    }
}

/// What a process wrote, collected from a pipe's handler thread.
final class OutputLog: Sendable {
    private let collected = Mutex("")
    func append(_ data: Data) { collected.withLock { $0 += String(decoding: data, as: UTF8.self) } }
    var text: String { collected.withLock { $0 } }
}

@Suite(.serialized) struct ServeCommandTests {
    @Test func servesOnAFreePortAndStopsOnSIGTERM() async throws {
        let path = try TinyModels.path(.llama)
        let server = try await RunningServer(["--model", path, "--parallel", "1"])
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let answer = try await server.post("/v1/completions", #"{"model": "\#(name)", "prompt": "the cat", "temperature": 0, "max_tokens": 4}"#)
        #expect(answer.status == 200, "\(answer.body)")
        let object = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
        #expect(object?["object"] as? String == "text_completion")
        #expect(try await server.stop() == 0, "\(server.errorOutput)")
    }

    /// A streaming client that hangs up: its sequence is freed at once, and the next request is
    /// answered. curl's --max-time is the client going away mid-stream.
    @Test(.enabled(if: TestModels.isAvailable("smollm2-135m")))
    func clientThatDisconnectsFreesItsSequence() async throws {
        let server = try await RunningServer(["--model", try TestModels.require("smollm2-135m"), "--parallel", "1"])
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = ["-sN", "--max-time", "1", "-H", "Content-Type: application/json", "-d",
                          #"{"model": "smollm2-135m", "prompt": "Once upon a time", "max_tokens": 4000, "stream": true}"#,
                          "http://127.0.0.1:\(server.port)/v1/completions"]
        curl.standardOutput = FileHandle.nullDevice
        try curl.run()
        curl.waitUntilExit()
        // the generation would run for minutes; once cancelled the session has no active sequence
        var active = "unknown"
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let metrics = try await server.get("/metrics")
            active = metrics.split(separator: "\n").first { $0.hasPrefix("strata_active_sequences ") }.map(String.init) ?? "missing"
            if active == "strata_active_sequences 0.0" || active == "strata_active_sequences 0" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(active.hasSuffix(" 0") || active.hasSuffix(" 0.0"), "\(active)")
        let next = try await server.post("/v1/completions", #"{"model": "smollm2-135m", "prompt": "The capital of France is", "temperature": 0, "max_tokens": 4}"#)
        #expect(next.status == 200, "\(next.body)")
        #expect(try await server.stop() == 0, "\(server.errorOutput)")
    }
}
