import Foundation
import StrataTestSupport
import Synchronization
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `strata serve` as a user runs it: started on a free port, asked over HTTP, stopped by SIGTERM.
@Suite struct ServeCommandTests {
    /// The built binary sits beside the test bundle.
    static var binary: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("strata")
    }

    @Test func servesOnAFreePortAndStopsOnSIGTERM() async throws {
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["serve", "--model", try TinyModels.path(.llama), "--port", "0", "--parallel", "1"]
        let errorPipe = Pipe()
        process.standardError = errorPipe
        process.standardOutput = FileHandle.nullDevice
        let stderr = Mutex("")
        errorPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            stderr.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        defer { if process.isRunning { process.interrupt() } }

        // the start line names the bound port
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(60)
        while port == nil, process.isRunning, ContinuousClock.now < deadline {
            let text = stderr.withLock { $0 }
            if let range = text.range(of: #"strata: serving \S+ on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
               let colon = text[range].lastIndex(of: ":") {
                port = Int(text[range][text.index(after: colon)...])
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let bound = try #require(port, "no start line: \(stderr.withLock { $0 })")
        #expect(bound > 0)

        var request = URLRequest(url: try #require(URL(string: "http://127.0.0.1:\(bound)/v1/completions")))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let name = URL(fileURLWithPath: try TinyModels.path(.llama)).deletingPathExtension().lastPathComponent
        request.httpBody = Data(#"{"model": "\#(name)", "prompt": "the cat", "temperature": 0, "max_tokens": 4}"#.utf8)
        let (data, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 200, "\(String(decoding: data, as: UTF8.self))")
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(object?["object"] as? String == "text_completion")

        process.terminate()  // SIGTERM
        let stopDeadline = ContinuousClock.now + .seconds(20)
        while process.isRunning, ContinuousClock.now < stopDeadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning)
        if !process.isRunning { #expect(process.terminationStatus == 0, "\(stderr.withLock { $0 })") }
        errorPipe.fileHandleForReading.readabilityHandler = nil
    }
}
