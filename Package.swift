// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strata", targets: ["strata"]),
        .library(name: "StrataEngine", targets: ["StrataEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        .executableTarget(
            name: "strata",
            dependencies: [
                "StrataEngine", "StrataAnalysis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
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
            name: "StrataAnalysisTests", dependencies: ["StrataAnalysis", "StrataEngine", "StrataTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "StrataCLITests", dependencies: ["strata", "StrataTestSupport"]),
    ]
)
