// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strata", targets: ["strata"]),
        .library(name: "StrataEngine", targets: ["StrataEngine"]),
        .library(name: "StrataServer", targets: ["StrataServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The innermost quantized loops, in C for per-function CPU targets chosen at run time.
        .target(name: "StrataKernelsC", linkerSettings: [.linkedLibrary("m")]),
        .target(
            name: "StrataKernels", dependencies: ["StrataKernelsC"], linkerSettings: [.linkedLibrary("m")]),
        .target(name: "StrataFormats", dependencies: ["StrataKernels"]),
        .target(name: "StrataTokenizer"),
        .target(name: "StrataEngine", dependencies: ["StrataKernels", "StrataFormats", "StrataTokenizer"]),
        .target(name: "StrataAnalysis", dependencies: ["StrataEngine", "StrataFormats"]),
        // The OpenAI-compatible HTTP front door over a ModelSession.
        .target(
            name: "StrataServer",
            dependencies: [
                "StrataEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .executableTarget(
            name: "strata",
            dependencies: [
                "StrataEngine", "StrataAnalysis", "StrataServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // The fuzz harnesses' entry points: what the libFuzzer executables and the seed replay share.
        .target(name: "StrataFuzzing", dependencies: ["StrataEngine", "StrataServer"]),
        .target(
            name: "StrataTestSupport",
            dependencies: ["StrataKernels", "StrataFormats", "StrataEngine"],
            path: "Tests/StrataTestSupport"),
        .testTarget(
            name: "StrataKernelsTests", dependencies: ["StrataKernels", "StrataFormats", "StrataTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "StrataFormatsTests", dependencies: ["StrataFormats", "StrataTestSupport"]),
        .testTarget(
            name: "StrataTokenizerTests",
            dependencies: ["StrataTokenizer", "StrataFormats", "StrataEngine", "StrataTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "StrataEngineTests",
            dependencies: ["StrataEngine", "StrataAnalysis", "StrataTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "StrataEvaluationTests", dependencies: ["StrataAnalysis", "StrataEngine", "StrataTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "StrataAnalysisTests",
            dependencies: ["StrataAnalysis", "StrataEngine", "StrataFormats", "StrataKernels", "StrataTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "StrataServerTests",
            dependencies: [
                // strata: the serve test runs the built binary beside the test bundle
                "StrataServer", "StrataEngine", "StrataTestSupport", "strata",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]),
        .testTarget(
            name: "StrataCLITests", dependencies: ["strata", "StrataTestSupport"]),
        .testTarget(
            name: "StrataFuzzingTests", dependencies: ["StrataFuzzing", "StrataEngine", "StrataFormats", "StrataKernels", "StrataTestSupport"]),
    ]
)

// The libFuzzer executables, one per target, exist only when scripts/fuzz.sh builds them
// (STRATA_FUZZ=1 with -sanitize=fuzzer): libFuzzer supplies their main, so an ordinary build
// could not link them.
if Context.environment["STRATA_FUZZ"] == "1" {
    for name in ["gguf", "tokenizer", "chat-template", "plan", "request"] {
        package.targets.append(
            .executableTarget(name: "fuzz-\(name)", dependencies: ["StrataFuzzing"], path: "Fuzz/Targets/\(name)"))
    }
}
