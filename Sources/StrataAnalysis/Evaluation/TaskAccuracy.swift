import StrataEngine
import StrataTokenizer

/// What one document's scores decide.
public struct DocumentOutcome: Sendable, Equatable {
    public var documentID: Int
    /// The choice with the highest summed log-probability (LAMBADA: 0).
    public var prediction: Int
    /// The choice with the highest log-probability per character of its continuation.
    public var predictionPerCharacter: Int
    /// Multiple choice: `prediction == label`; LAMBADA: greedy decoding reproduces the continuation.
    public var isCorrect: Bool
    /// Multiple choice: `predictionPerCharacter == label`; LAMBADA: same as `isCorrect`.
    public var isCorrectPerCharacter: Bool
    /// Summed log-probability of the correct continuation (LAMBADA: of the one continuation).
    public var correctLogProbability: Double

    /// Decides a document from the scores of its requests, in choice order.
    public init(document: TaskDocument, kind: EvaluationTask.Kind, scores: [ContinuationScore], characters: [Int]) {
        precondition(scores.count == document.requests.count && characters.count == scores.count)
        documentID = document.id
        // The first of equal scores wins, as numpy's argmax does in the harnesses.
        func firstMaximum(_ values: [Double]) -> Int {
            values.indices.reduce(0) { values[$1] > values[$0] ? $1 : $0 }
        }
        let sums = scores.map(\.logProbability)
        prediction = firstMaximum(sums)
        predictionPerCharacter = firstMaximum(zip(sums, characters).map { $0 / Double(max(1, $1)) })
        switch kind {
        case .greedyContinuation:
            isCorrect = scores[0].isGreedy
            isCorrectPerCharacter = isCorrect
            correctLogProbability = sums[0]
        case .multipleChoice:
            let label = document.label ?? -1
            isCorrect = prediction == label
            isCorrectPerCharacter = predictionPerCharacter == label
            correctLogProbability = sums.indices.contains(label) ? sums[label] : -.infinity
        }
    }
}

/// Accuracy of a model (under a plan) on a task.
public struct TaskReport: Sendable, Codable, Equatable {
    public var task: EvaluationTask
    public var documents: Int
    public var requests: Int
    /// LAMBADA: fraction of continuations greedy decoding reproduces. Multiple choice: fraction
    /// of documents whose most likely choice (summed log-probability) is the label (`acc`).
    public var accuracy: Double
    /// Multiple choice: the same with each sum divided by the continuation's length in
    /// characters (`acc_per_char`); nil for LAMBADA.
    public var accuracyPerCharacter: Double?
    /// Mean over documents of the summed natural-log probability of the correct continuation.
    public var meanContinuationLogProbability: Double
    /// Tokens run through the forward pass (after prefix sharing).
    public var tokensProcessed: Int
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case task, documents, requests, accuracy, seconds
        case accuracyPerCharacter = "accuracy_per_char"
        case meanContinuationLogProbability = "mean_continuation_logprob"
        case tokensProcessed = "tokens_processed"
    }

    /// Aggregates document outcomes.
    public init(task: EvaluationTask, outcomes: [DocumentOutcome], requests: Int, tokensProcessed: Int, seconds: Double) {
        self.task = task
        documents = outcomes.count
        self.requests = requests
        let count = Double(max(1, outcomes.count))
        accuracy = Double(outcomes.filter(\.isCorrect).count) / count
        accuracyPerCharacter = task.kind == .multipleChoice
            ? Double(outcomes.filter(\.isCorrectPerCharacter).count) / count : nil
        meanContinuationLogProbability = outcomes.map(\.correctLogProbability).reduce(0, +) / count
        self.tokensProcessed = tokensProcessed
        self.seconds = seconds
    }
}

/// Scores `documents` of `task` with the model under `plan` (default: the full model).
///
/// Each request is tokenized as `TokenizedRequest` describes and scored by
/// `scoreContinuations`, one document at a time, documents in the given order.
/// `progress` is called after each document with the count done and the running accuracy.
public func evaluateTask(
    _ task: EvaluationTask, documents: [TaskDocument], transformer: inout Transformer, plan: LayerPlan? = nil,
    sharesPrefix: Bool = true,
    progress: ((_ done: Int, _ of: Int, _ runningAccuracy: Double) -> Void)? = nil
) throws -> TaskReport {
    let clock = ContinuousClock()
    let start = clock.now
    let plan = plan ?? .full(layerCount: transformer.config.layerCount)
    let tokenizer = transformer.model.tokenizer
    let maximumLength = transformer.config.contextLength
    let tokenized = try documents.map { document in
        try document.requests.map { try TokenizedRequest($0, tokenizer: tokenizer, maximumLength: maximumLength) }
    }
    // One cache for the whole run, as long as the longest request.
    var cache = transformer.makeCache(capacity: tokenized.joined().map(\.tokens.count).max() ?? 1)
    var outcomes: [DocumentOutcome] = []
    outcomes.reserveCapacity(documents.count)
    var correct = 0
    var tokensProcessed = 0
    for (document, requests) in zip(documents, tokenized) {
        let scored = try scoreContinuations(requests, transformer: &transformer, plan: plan, cache: &cache, sharesPrefix: sharesPrefix)
        tokensProcessed += scored.tokensRun
        let outcome = DocumentOutcome(
            document: document, kind: task.kind, scores: scored.scores, characters: requests.map(\.continuationCharacters))
        outcomes.append(outcome)
        if outcome.isCorrect { correct += 1 }
        progress?(outcomes.count, documents.count, Double(correct) / Double(outcomes.count))
    }
    let elapsed = clock.now - start
    return TaskReport(
        task: task, outcomes: outcomes, requests: tokenized.map(\.count).reduce(0, +),
        tokensProcessed: tokensProcessed,
        seconds: elapsed.seconds)
}
