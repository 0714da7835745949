// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Depot",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "depot", targets: ["depot"]),
        .executable(name: "depot-bench", targets: ["DepotBench"]),
        .executable(name: "amqp-c-reference", targets: ["AMQPCReference"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries: only AMQP imports CAMQP, only Postgres imports CLibPQ.
        .systemLibrary(name: "CAMQP", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        .target(
            name: "AMQP",
            dependencies: ["CAMQP", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ", "CivilDate",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(name: "CivilDate", swiftSettings: swiftSettings),
        .target(name: "DepotModel", dependencies: ["CivilDate"], swiftSettings: swiftSettings),
        .target(
            name: "Messaging",
            dependencies: [
                "AMQP", "Postgres", "DepotModel",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The services import Messaging, Postgres and DepotModel, never AMQP.
        .target(
            name: "Inventory",
            dependencies: ["Messaging", "Postgres", "DepotModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Orders",
            dependencies: [
                "Messaging", "Postgres", "DepotModel", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Payments",
            dependencies: ["Messaging", "Postgres", "DepotModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Projector",
            dependencies: [
                "Messaging", "Postgres", "DepotModel", .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP edge: imports Messaging to publish commands, Postgres to read projections,
        // Projector for the order row it serves, and Operations (with AMQP) for the admin API. Its
        // OpenAPI document (openapi.json) is embedded in the code at build time by the EmbedFile plugin.
        .target(
            name: "Edge",
            dependencies: [
                "Messaging", "Postgres", "DepotModel", "Projector", "Operations", "AMQP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["openapi.json"],
            // The operator console's page, script and style, in the binary (Sources/Edge/Console/).
            resources: [
                .embedInCode("Console/console.html"), .embedInCode("Console/console.js"),
                .embedInCode("Console/console.css"), .embedInCode("Console/favicon.svg"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["EmbedFile"]
        ),
        // Turns Sources/Edge/openapi.json into Swift source at build time (Plugins/).
        .plugin(
            name: "EmbedFile", capability: .buildTool(), dependencies: ["EmbedFileTool"], path: "Plugins/EmbedFile"),
        .executableTarget(name: "EmbedFileTool", path: "Plugins/EmbedFileTool"),
        .target(
            name: "Operations",
            dependencies: [
                "Postgres", "Projector", "DepotModel", "Messaging", "AMQP",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "DepotApp",
            dependencies: [
                "AMQP", "Postgres", "Operations", "Messaging", "DepotModel", "Orders", "Inventory", "Payments",
                "Projector", "Edge",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "depot",
            dependencies: [
                "DepotApp", "Operations", "Edge", "AMQP", "Postgres", "DepotModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Benchmarks: the C reference loop on librabbitmq, and the side-by-side runner.
        .executableTarget(
            name: "AMQPCReference", dependencies: ["CAMQP"], path: "bench/AMQPCReference",
            linkerSettings: [.linkedLibrary("rabbitmq")]),
        .executableTarget(
            name: "DepotBench",
            dependencies: [
                "AMQP", "Postgres", "Messaging", "DepotModel", "Edge", "Operations",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "bench/DepotBench",
            swiftSettings: swiftSettings
        ),

        // Unit tests need no server.
        .testTarget(name: "AMQPTests", dependencies: ["AMQP"], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"], swiftSettings: swiftSettings),
        .testTarget(name: "DepotModelTests", dependencies: ["DepotModel"], swiftSettings: swiftSettings),
        .testTarget(name: "MessagingTests", dependencies: ["Messaging", "DepotModel"], swiftSettings: swiftSettings),
        .testTarget(name: "OrdersTests", dependencies: ["Orders", "DepotModel"], swiftSettings: swiftSettings),
        .testTarget(
            name: "EdgeTests",
            dependencies: [
                "Edge", "Projector", "DepotModel", "Messaging", "Postgres", "Operations",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProjectorTests", dependencies: ["Projector", "DepotModel", "Postgres"], swiftSettings: swiftSettings),
        .testTarget(
            name: "DepotAppTests", dependencies: ["DepotApp", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        // Integration tests need the real broker and database (scripts/dev test starts them).
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "AMQP", "Postgres", "Operations", "DepotApp", "Messaging", "DepotModel", "Edge", "Inventory",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
