import Foundation
import StrataTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Drives `strata serve` with the official `openai` Python client: the checks in
/// `Tests/Python/openai_client_checks.py`, run with the environment `scripts/fetch-python.sh`
/// makes, against the built binary serving SmolLM2 on a free loopback port. The last check
/// stops the server with SIGTERM in the middle of a stream; the test then wants exit status 0.
@Suite("strata serve with the openai client", .serialized)
struct ServeOpenAIClientTests {
    static let checksScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Python/openai_client_checks.py").path

    @Test(.timeLimit(.minutes(3)))
    func openaiClientChecksPass() throws {
        let model = try TestModels.require("smollm2-135m")
        let python = try TestPython.require()
        let key = "sk-strata-test-" + UUID().uuidString
        let server = try ChildProcess(StrataRun.binary.path, [
            "serve", "--model", model, "--host", "127.0.0.1", "--port", "0", "--context", "2048", "--api-key", key,
        ])
        defer { server.kill() }
        let port = try server.servingPort(timeout: 60)

        let names = try ChildProcess(python, [Self.checksScript, "--list"])
        try #require(names.wait(timeout: 30) == 0, "\(names.error.text)")
        let expected = names.output.text.split(separator: "\n").map(String.init)
        let checks = try ChildProcess(python, [
            Self.checksScript, "--base-url", "http://127.0.0.1:\(port)/v1", "--api-key", key,
            "--strata", StrataRun.binary.path, "--model-path", model, "--context", "2048", "--deadline", "75",
            "--shutdown-pid", String(server.process.processIdentifier),
        ])
        let status = checks.wait(timeout: 100)

        var reported: [String] = []
        for line in checks.output.text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let name = object["name"] as? String
            else {
                Issue.record("not a check result: \(line)")
                continue
            }
            reported.append(name)
            #expect(object["ok"] as? Bool == true, "\(name): \(object["detail"] as? String ?? "(no detail)")")
        }
        #expect(reported == expected, "checks reported: \(reported); stderr: \(checks.error.text.suffix(2000))")
        #expect(status == 0, "the checks exited \(status.map(String.init) ?? "late, killed"); stderr: \(checks.error.text.suffix(2000))")

        // The last check sent SIGTERM mid-stream; the server exits 0 within seconds (one more
        // SIGTERM if it still runs, then SIGKILL).
        let exit = server.terminate(timeout: 15)
        let outcome = exit.map { "exit \($0)" } ?? "still running, killed"
        #expect(exit == 0, "strata serve after SIGTERM: \(outcome); stderr: \(server.error.text.suffix(2000))")
    }
}

/// Everything a pipe has delivered so far, filled from the pipe's reader as output arrives (so a
/// chatty child never blocks on a full pipe).
final class CapturedOutput: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    init(_ pipe: Pipe) {
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let chunk = handle.availableData
            if chunk.isEmpty {
                handle.readabilityHandler = nil
            } else {
                lock.withLock { data.append(chunk) }
            }
        }
    }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}

/// A child process whose output is captured as it runs, waited for with a time limit and never
/// left behind.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let output: CapturedOutput
    let error: CapturedOutput
    private let exited = DispatchSemaphore(value: 0)

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        process.standardInput = FileHandle.nullDevice
        output = CapturedOutput(outputPipe)
        error = CapturedOutput(errorPipe)
        process.terminationHandler = { [exited] _ in exited.signal() }
        try process.run()
    }

    /// The exit status once the process ends within `timeout` seconds; nil (after killing it)
    /// when it does not.
    func wait(timeout: Double) -> Int32? {
        guard exited.wait(timeout: .now() + timeout) == .success else {
            kill()
            return nil
        }
        exited.signal()  // later waits return at once
        return process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
    }

    /// Sends SIGTERM and waits `timeout` seconds for the exit status (nil: killed instead).
    func terminate(timeout: Double) -> Int32? {
        if process.isRunning { process.terminate() }
        return wait(timeout: timeout)
    }

    /// SIGKILL, if the process still runs.
    func kill() {
        guard process.isRunning else { return }
        sendKill(process.processIdentifier)
        _ = exited.wait(timeout: .now() + 5)
        exited.signal()
    }

    /// The port of `strata serve`, read from its stderr line
    /// `strata: serving <model> on http://127.0.0.1:<port>`; throws if it does not come within
    /// `timeout` seconds or the server exits first.
    func servingPort(timeout: Double) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        let pattern = try Regex(#"strata: serving .* on http://127\.0\.0\.1:(\d+)"#)
        while Date() < deadline {
            if let match = try pattern.firstMatch(in: error.text), let port = Int(match.output[1].substring ?? "") {
                return port
            }
            guard process.isRunning else {
                throw ServerFailure("strata serve exited \(process.terminationStatus) before serving: \(error.text.suffix(2000))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw ServerFailure("strata serve did not say it was serving within \(Int(timeout)) s: \(error.text.suffix(2000))")
    }
}

/// SIGKILL to `pid` (a free function: inside `ChildProcess`, `kill` is the method).
private func sendKill(_ pid: Int32) {
    _ = kill(pid, SIGKILL)
}

struct ServerFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
