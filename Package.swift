// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top: C shims (module maps only) → typed wrappers that are the only code
// seeing C (`DBus`, `Libvirt`) and `Polkit` (polkitd's D-Bus API, over `DBus`) → the model
// (no bus, no C) → the service (one file per D-Bus interface) → `vmmsd` (argument parsing and
// wiring).

let package = Package(
    name: "vmms",
    products: [
        .executable(name: "vmmsd", targets: ["vmmsd"]),
        .executable(name: "vmmsctl", targets: ["vmmsctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CDBus", pkgConfig: "dbus-1", providers: [.apt(["libdbus-1-dev"])]),
        .systemLibrary(name: "CLibvirt", pkgConfig: "libvirt", providers: [.apt(["libvirt-dev"])]),

        .target(name: "DBus", dependencies: ["CDBus"]),
        .target(name: "Libvirt", dependencies: ["CLibvirt"]),
        // polkitd asked over our own D-Bus connections: no C of its own.
        .target(name: "Polkit", dependencies: ["DBus"]),

        .target(name: "VMMSModel"),
        // The POSIX calls made outside libvirt, D-Bus and polkit: child processes without
        // Foundation's Process (which hangs off the main thread on Linux) and a TCP reachability
        // probe with a time limit (SAN portals).
        .target(name: "Spawn"),
        .target(name: "VMMSService", dependencies: [
            "DBus", "Libvirt", "Polkit", "VMMSModel",
            .product(name: "Logging", package: "swift-log"),
            // ip (host bridges of External switches), qemu-img (the exact size of iSCSI LUNs,
            // checkpoint images), cp (checkpoints' NVRAM copies), the SAN portal probe.
            "Spawn",
        ]),
        .executableTarget(name: "vmmsd", dependencies: [
            "VMMSService", "DBus",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The administrator's command line: talks to the service only through its D-Bus API.
        .executableTarget(name: "vmmsctl", dependencies: [
            "DBus", "Spawn",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Starts private dbus-daemons and runs command-line clients for the tests.
        .target(name: "TestSupport", dependencies: ["DBus", "Spawn"], path: "Tests/TestSupport"),
        // `make bench`: vmms against libvirt-dbus on the same bus and libvirtd.
        .executableTarget(name: "vmms-bench", dependencies: [
            "DBus", "Spawn", "Libvirt",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "DBusTests", dependencies: ["DBus", "TestSupport"]),
        // Test driver in-process, plus gated tests on the real libvirtd (qemu:///system, TCG guests).
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt", "TestSupport"]),
        .testTarget(name: "PolkitTests", dependencies: ["Polkit", "DBus", "Spawn", "TestSupport"]),
        .testTarget(name: "VMMSModelTests", dependencies: ["VMMSModel", "TestSupport"]),
        // Real stack: the system bus, polkitd, libvirtd + QEMU, real users (run as root by `make test`).
        .testTarget(name: "IntegrationTests", dependencies: ["DBus", "Polkit", "Spawn", "TestSupport"]),
        // `make install` into a staging root and for real, D-Bus activation.
        .testTarget(name: "InstallTests", dependencies: ["DBus", "TestSupport"]),
        // vmmsctl run as a subprocess on the real stack, plus its formatting units.
        .testTarget(name: "VmmsctlTests", dependencies: ["vmmsctl", "DBus", "Spawn", "TestSupport"]),
        // The Cockpit page (cockpit/) in headless Chromium against cockpit-ws and the real stack.
        .testTarget(name: "CockpitTests", dependencies: ["DBus", "Spawn", "TestSupport"], exclude: ["cockpit_browser.py"]),
        .testTarget(name: "VMMSServiceTests", dependencies: ["VMMSService", "DBus", "Libvirt", "VMMSModel", "Spawn", "TestSupport"],
                    exclude: ["Scripts"]),
    ],
    swiftLanguageModes: [.v6]
)
