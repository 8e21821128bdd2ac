// swift-tools-version: 6.1
import PackageDescription

// A package that uses Strata as a new user would: a dependency by path on the repository,
// only the StrataEngine library product, only its public API. scripts/check-library-use.sh
// builds and runs it.
let package = Package(
    name: "LibraryUse",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Strata", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "LibraryUse",
            dependencies: [.product(name: "StrataEngine", package: "Strata")]),
    ]
)
