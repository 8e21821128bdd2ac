import ArgumentParser
import Foundation
import StrataAnalysis
import StrataEngine

/// The calibration text of `analyze` and `plan`: a file, or the bundled passage.
struct CalibrationOptions: ParsableArguments {
    @Option(name: [.short, .long, .customLong("calibration")],
            help: "Calibration text file (default: the opening of Pride and Prejudice, bundled).")
    var file: String?

    @Option(help: "Tokens per calibration window.")
    var context: Int = 512

    @Option(help: "Number of calibration windows (non-overlapping, from the start of the text).")
    var windows: Int = 4

    func validate() throws {
        if context < 2 { throw ValidationError("--context must be at least 2, found \(context)") }
        if windows < 1 { throw ValidationError("--windows must be at least 1, found \(windows)") }
    }

    /// The tokenized windows, and a name for the text to record in reports. `windows` (default
    /// --windows) asks for that many; `upTo` takes as many whole windows as the text holds, at
    /// most that many, instead of refusing a text too short for them.
    func calibration(for model: LanguageModel, upTo limit: Int? = nil) throws -> (set: CalibrationSet, name: String) {
        try Self.calibration(file: file, context: context, windows: limit ?? windows, for: model, takesWhatFits: limit != nil)
    }

    /// `calibration(for:upTo:)` for commands that set the file and sizes themselves; with
    /// `takesWhatFits`, as many whole windows as the text holds (at most `windows`).
    static func calibration(
        file: String?, context: Int, windows: Int, for model: LanguageModel, takesWhatFits: Bool
    ) throws -> (set: CalibrationSet, name: String) {
        let (text, name) = try self.text(file: file)
        guard context <= model.config.contextLength else {
            throw CommandFailure("--context \(context) exceeds the model's context length \(model.config.contextLength)")
        }
        let tokens = model.tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let available = tokens.count / context
        if takesWhatFits, available >= 2 {
            return (try CalibrationSet(tokens: tokens, context: context, windows: min(windows, available),
                                       firstToken: windowStartToken(for: model.tokenizer)), name)
        }
        guard tokens.count >= context * windows else {
            throw CommandFailure("\(file ?? "the bundled text") has \(tokens.count) tokens, fewer than --windows \(windows) × --context \(context)")
        }
        return (try CalibrationSet(tokens: tokens, context: context, windows: windows,
                                   firstToken: windowStartToken(for: model.tokenizer)), name)
    }
}

extension CalibrationOptions {
    /// The text of `file` with the name reports give it (the path as given), or without a file
    /// the bundled passage.
    static func text(file: String?) throws -> (text: String, name: String) {
        guard let file else { return (CalibrationText.prideAndPrejudice, CalibrationText.prideAndPrejudiceName) }
        let data = try InputFiles.read(file)
        guard let decoded = String(data: data, encoding: .utf8) else { throw CommandFailure("\(file) is not UTF-8 text") }
        return (decoded, file)
    }
}

/// Draws `progress` as one rewritten line on stderr.
func printProgress(_ progress: AnalysisProgress) {
    let left = progress.secondsLeft.map { String(format: ", about %.0f s left", $0) } ?? ""
    printError(String(format: "\r\u{1B}[K%3.0f%%  %@%@", progress.fractionDone * 100, progress.activity, left), terminator: "")
}
