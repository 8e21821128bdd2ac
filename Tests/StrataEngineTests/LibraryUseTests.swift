import Foundation
import Testing

/// Runs scripts/check-library-use.sh: the Examples/LibraryUse package, which depends on this
/// repository by path and imports StrataEngine alone, must build and generate the same greedy
/// text as `strata generate --temperature 0`. It builds Strata a second time in the example's
/// own folder (minutes on a 2-core machine), so it runs in the full tier only.
@Suite("Strata as a dependency of another package")
struct LibraryUseTests {
    static let isFullTier = ProcessInfo.processInfo.environment["STRATA_TEST_TIER"] == "full"

    @Test("Examples/LibraryUse builds on the StrataEngine product and generates what strata generate does",
          .enabled(if: isFullTier, "full tier only: set STRATA_TEST_TIER=full"))
    func exampleMatchesTheCommandLine() throws {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/check-library-use.sh")
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(text.suffix(3000))")
        #expect(text.contains("check-library-use: ok"))
    }
}
