import Testing
import VMMSModel

private let MiB: UInt64 = 1 << 20
private let GiB: UInt64 = 1 << 30
private let TiB: UInt64 = 1 << 40
private let hostMemory: UInt64 = 16 * GiB

private func settings(_ raw: [String: SettingValue], hostMemory: UInt64 = hostMemory, cpus: UInt32 = 8) throws(SettingsError) -> VMSettings {
    try VMSettings(validating: raw, hostMemoryBytes: hostMemory, hostProcessorCount: cpus)
}

/// The message of the error `raw` is refused with, or nil when it is accepted.
private func refusal(_ raw: [String: SettingValue], hostMemory: UInt64 = hostMemory, cpus: UInt32 = 8) -> String? {
    do {
        _ = try settings(raw, hostMemory: hostMemory, cpus: cpus)
        return nil
    } catch {
        return error.message
    }
}

@Suite struct VMSettingsDefaultsTests {
    @Test func emptySettingsGiveAGeneration2SecureBootVMWith1GiBAndOneProcessor() throws {
        let s = try settings([:])
        #expect(s.generation == 2)
        #expect(s.secureBoot)
        #expect(s.processorCount == 1)
        #expect(s.memoryStartupBytes == GiB)
        #expect(!s.dynamicMemory)
        #expect(s.memoryMinimumBytes == nil && s.memoryMaximumBytes == nil)
        #expect(s.effectiveMemoryMinimumBytes == GiB && s.effectiveMemoryMaximumBytes == GiB)
        #expect(s.newDiskSizeBytes == nil && s.diskPath == nil && s.installMedia == nil && s.switchPath == nil)
        #expect(s.notes == "")
        #expect(!s.autostart && !s.start)
        #expect(s == VMSettings())
    }

    @Test func generation1DefaultsToNoSecureBoot() throws {
        let s = try settings(["Generation": .uint32(1)])
        #expect(s.generation == 1)
        #expect(!s.secureBoot)
    }

    @Test func generation2SecureBootCanBeTurnedOff() throws {
        #expect(try !settings(["SecureBoot": .bool(false)]).secureBoot)
        #expect(try settings(["Generation": .uint32(2), "SecureBoot": .bool(true)]).secureBoot)
        #expect(try !settings(["Generation": .uint32(1), "SecureBoot": .bool(false)]).secureBoot)
    }

    @Test func dynamicMemoryDefaultsToHalfAGibibyteMinimumAndATebibyteMaximumClampedToTheHost() throws {
        let s = try settings(["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(2 * GiB)])
        #expect(s.dynamicMemory)
        #expect(s.memoryMinimumBytes == 512 * MiB)
        #expect(s.memoryMaximumBytes == hostMemory)
        #expect(s.effectiveMemoryMinimumBytes == 512 * MiB && s.effectiveMemoryMaximumBytes == hostMemory)
        let big = try settings(["DynamicMemory": .bool(true)], hostMemory: 4 * TiB)
        #expect(big.memoryMaximumBytes == TiB)
    }

    @Test func dynamicMemoryDefaultMinimumIsClampedToAStartupBelowHalfAGibibyte() throws {
        let s = try settings(["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(256 * MiB)])
        #expect(s.memoryMinimumBytes == 256 * MiB)
    }

    @Test func dynamicMemoryDefaultMaximumIsRoundedDownToWholeMebibytesOfAnOddHostSize() throws {
        let odd = 8 * GiB - 12345
        let s = try settings(["DynamicMemory": .bool(true)], hostMemory: odd)
        #expect(s.memoryMaximumBytes == 8 * GiB - MiB)
    }

    @Test func explicitDynamicMemoryBoundsAreKept() throws {
        let s = try settings(["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(GiB),
                              "MemoryMinimumBytes": .uint64(128 * MiB), "MemoryMaximumBytes": .uint64(4 * GiB)])
        #expect(s.memoryMinimumBytes == 128 * MiB && s.memoryMaximumBytes == 4 * GiB)
        let equal = try settings(["DynamicMemory": .bool(true), "MemoryMinimumBytes": .uint64(GiB), "MemoryMaximumBytes": .uint64(GiB)])
        #expect(equal.memoryMinimumBytes == GiB && equal.memoryMaximumBytes == GiB)
    }

    @Test func everyOtherSettingIsTakenAsGiven() throws {
        let s = try settings([
            "Generation": .uint32(1), "ProcessorCount": .uint32(8), "MemoryStartupBytes": .uint64(32 * MiB),
            "DiskPath": .string("/var/lib/libvirt/images/a disk.qcow2"), "InstallMedia": .string("/srv/iso/debian.iso"),
            "Switch": .objectPath("/org/example/VMMS1/Switch/Default"), "Notes": .string("line 1\nline 2\ttab <&>"),
            "Autostart": .bool(true), "Start": .bool(true), "DynamicMemory": .bool(false),
        ])
        #expect(s.generation == 1 && s.processorCount == 8 && s.memoryStartupBytes == 32 * MiB)
        #expect(s.diskPath == "/var/lib/libvirt/images/a disk.qcow2")
        #expect(s.installMedia == "/srv/iso/debian.iso")
        #expect(s.switchPath == "/org/example/VMMS1/Switch/Default")
        #expect(s.notes == "line 1\nline 2\ttab <&>")
        #expect(s.autostart && s.start && !s.dynamicMemory)
        let disk = try settings(["NewDiskSizeBytes": .uint64(127 * GiB)])
        #expect(disk.newDiskSizeBytes == 127 * GiB)
    }

    @Test func unknownHostLimitsDoNotRefuseAnything() throws {
        let s = try settings(["ProcessorCount": .uint32(240), "MemoryStartupBytes": .uint64(TiB)], hostMemory: 0, cpus: 0)
        #expect(s.processorCount == 240 && s.memoryStartupBytes == TiB)
        let dynamic = try settings(["DynamicMemory": .bool(true)], hostMemory: 0, cpus: 0)
        #expect(dynamic.memoryMaximumBytes == TiB)
    }
}

@Suite struct VMSettingsRefusalTests {
    @Test func anUnknownKeyIsNamedAndTheValidKeysListed() throws {
        let message = try #require(refusal(["Generation": .uint32(2), "Memory": .uint64(GiB)]))
        #expect(message.contains("'Memory'"))
        for key in VMSettings.keys.map(\.name) { #expect(message.contains(key), "\(key) missing from \(message)") }
        // Keys are case-sensitive, as in Hyper-V's D-Bus-less cousin and in every a{sv} API.
        #expect(refusal(["generation": .uint32(2)])?.contains("'generation'") == true)
    }

    @Test(arguments: [
        ("Generation", SettingValue.string("2"), "Generation must be of type u"),
        ("Generation", .uint64(2), "Generation must be of type u"),
        ("ProcessorCount", .uint64(2), "ProcessorCount must be of type u"),
        ("MemoryStartupBytes", .uint32(1024), "MemoryStartupBytes must be of type t"),
        ("MemoryMinimumBytes", .uint32(1024), "MemoryMinimumBytes must be of type t"),
        ("MemoryMaximumBytes", .string("4G"), "MemoryMaximumBytes must be of type t"),
        ("DynamicMemory", .uint32(1), "DynamicMemory must be of type b"),
        ("SecureBoot", .string("yes"), "SecureBoot must be of type b"),
        ("NewDiskSizeBytes", .uint32(1), "NewDiskSizeBytes must be of type t"),
        ("DiskPath", .objectPath("/a"), "DiskPath must be of type s"),
        ("InstallMedia", .bool(true), "InstallMedia must be of type s"),
        ("Switch", .string("/org/example/VMMS1/Switch/x"), "Switch must be of type o"),
        ("Notes", .uint32(0), "Notes must be of type s"),
        ("Autostart", .uint32(1), "Autostart must be of type b"),
        ("Start", .string("true"), "Start must be of type b"),
    ])
    func aValueOfTheWrongTypeNamesTheKeyAndTheExpectedType(key: String, value: SettingValue, expected: String) throws {
        let message = try #require(refusal([key: value]))
        #expect(message.hasPrefix(expected), "\(message)")
    }

    @Test(arguments: [UInt32(0), 3, 100])
    func generationMustBe1Or2(generation: UInt32) throws {
        #expect(try #require(refusal(["Generation": .uint32(generation)])).contains("Generation must be 1"))
    }

    @Test func secureBootOnGeneration1IsRefused() throws {
        #expect(try #require(refusal(["Generation": .uint32(1), "SecureBoot": .bool(true)])).contains("SecureBoot"))
    }

    @Test(arguments: [
        (UInt32(0), UInt32(8), false), (1, 8, true), (8, 8, true), (9, 8, false),
        (240, 256, true), (241, 256, false), (4, 4, true), (5, 4, false), (UInt32.max, 0, false),
    ])
    func processorCountIsBetween1AndTheHostsCountCappedAt240(count: UInt32, hostCPUs: UInt32, valid: Bool) {
        let message = refusal(["ProcessorCount": .uint32(count)], cpus: hostCPUs)
        #expect((message == nil) == valid, "\(message ?? "")")
        if let message { #expect(message.contains("ProcessorCount must be between 1 and")) }
    }

    @Test(arguments: [
        (UInt64(0), "at least 32 MiB"),
        (31 * MiB, "at least 32 MiB"),
        (GiB + 1, "multiple of 1 MiB"),
        (GiB + 512 * 1024, "multiple of 1 MiB"),
        (hostMemory + MiB, "more than the host"),
        (UInt64.max - UInt64.max % MiB, "more than the host"),
    ])
    func startupMemoryMustBeWholeMebibytesFrom32MiBToTheHostsMemory(bytes: UInt64, fragment: String) throws {
        let message = try #require(refusal(["MemoryStartupBytes": .uint64(bytes)]))
        #expect(message.contains("MemoryStartupBytes") && message.contains(fragment), "\(message)")
    }

    @Test func startupMemoryMayBeExactlyTheBounds() {
        #expect(refusal(["MemoryStartupBytes": .uint64(32 * MiB)]) == nil)
        #expect(refusal(["MemoryStartupBytes": .uint64(hostMemory)]) == nil)
    }

    @Test func theDefaultStartupMemoryIsRefusedOnAHostWithLessThan1GiB() throws {
        #expect(try #require(refusal([:], hostMemory: 512 * MiB)).contains("MemoryStartupBytes"))
        #expect(refusal(["MemoryStartupBytes": .uint64(256 * MiB)], hostMemory: 512 * MiB) == nil)
    }

    @Test(arguments: [
        ("MemoryMinimumBytes", 31 * MiB, "at least 32 MiB"),
        ("MemoryMinimumBytes", 100 * MiB + 1, "multiple of 1 MiB"),
        ("MemoryMaximumBytes", 2 * hostMemory, "more than the host"),
        ("MemoryMaximumBytes", 5 * GiB + 4096, "multiple of 1 MiB"),
    ])
    func dynamicMemoryBoundsFollowTheSameRules(key: String, bytes: UInt64, fragment: String) throws {
        let message = try #require(refusal(["DynamicMemory": .bool(true), key: .uint64(bytes)]))
        #expect(message.contains(key) && message.contains(fragment), "\(message)")
    }

    @Test func minimumAboveStartupIsRefused() throws {
        let message = try #require(refusal(["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(GiB),
                                            "MemoryMinimumBytes": .uint64(2 * GiB)]))
        #expect(message.contains("MemoryMinimumBytes") && message.contains("must not exceed MemoryStartupBytes"))
    }

    @Test func maximumBelowStartupIsRefused() throws {
        let message = try #require(refusal(["DynamicMemory": .bool(true), "MemoryStartupBytes": .uint64(2 * GiB),
                                            "MemoryMaximumBytes": .uint64(GiB)]))
        #expect(message.contains("MemoryMaximumBytes") && message.contains("less than MemoryStartupBytes"))
    }

    @Test(arguments: [
        ["MemoryMinimumBytes": SettingValue.uint64(512 * MiB)],
        ["MemoryMaximumBytes": .uint64(2 * GiB)],
        ["MemoryMaximumBytes": .uint64(2 * GiB), "DynamicMemory": .bool(false)],
    ])
    func dynamicMemoryBoundsWithoutDynamicMemoryAreRefused(raw: [String: SettingValue]) throws {
        #expect(try #require(refusal(raw)).contains("only applies with DynamicMemory=true"))
    }

    @Test(arguments: [
        (UInt64(0), "at least 1 MiB"),
        (MiB - 512, "at least 1 MiB"),
        (64 * TiB + 512, "at most 64 TiB"),
        (UInt64.max, "at most 64 TiB"),
        (GiB + 1, "multiple of 512"),
        (GiB + 256, "multiple of 512"),
    ])
    func newDiskSizeIsFrom1MiBTo64TiBInWholeSectors(bytes: UInt64, fragment: String) throws {
        let message = try #require(refusal(["NewDiskSizeBytes": .uint64(bytes)]))
        #expect(message.contains("NewDiskSizeBytes") && message.contains(fragment), "\(message)")
    }

    @Test(arguments: [MiB, MiB + 512, 64 * TiB, 10 * GiB + 512])
    func newDiskSizesInWholeSectorsAreAccepted(bytes: UInt64) {
        #expect(refusal(["NewDiskSizeBytes": .uint64(bytes)]) == nil)
    }

    @Test func aNewDiskAndAnExistingDiskTogetherAreRefused() throws {
        let message = try #require(refusal(["NewDiskSizeBytes": .uint64(GiB), "DiskPath": .string("/srv/a.qcow2")]))
        #expect(message.contains("NewDiskSizeBytes") && message.contains("DiskPath"))
    }

    @Test(arguments: [
        ("", "empty"), ("disk.qcow2", "absolute"), ("./disk.qcow2", "absolute"), ("~/disk.qcow2", "absolute"),
        ("/srv/a\u{0}b", "control"), ("/srv/a\nb", "control"), ("/srv/a\u{7F}", "control"), ("/srv/a\u{1B}[31m", "control"),
        ("/srv/../etc/shadow", ". or .."), ("/srv/./a", ". or .."), ("/srv/images/", "directory"), ("/", "directory"),
        ("/" + String(repeating: "a", count: 4096), "4096"),
    ])
    func pathsMustBeAbsoluteAndClean(path: String, fragment: String) throws {
        for key in ["DiskPath", "InstallMedia"] {
            let message = try #require(refusal([key: .string(path)]))
            #expect(message.hasPrefix(key) && message.contains(fragment), "\(message)")
        }
    }

    @Test(arguments: ["/var/lib/libvirt/images/x.qcow2", "/srv/with space/ünïcode.iso", "/dev/vg0/web01", "/a..b/c.d"])
    func cleanAbsolutePathsAreAccepted(path: String) {
        #expect(refusal(["DiskPath": .string(path)]) == nil)
        #expect(refusal(["InstallMedia": .string(path)]) == nil)
    }

    @Test func aSwitchMustBeAnObjectPathOtherThanTheRoot() {
        #expect(refusal(["Switch": .objectPath("/")]) != nil)
        #expect(refusal(["Switch": .objectPath("")]) != nil)
        #expect(refusal(["Switch": .objectPath("/org/example/VMMS1/Switch/Default_20Switch")]) == nil)
    }

    @Test func notesAreLimitedTo4096CharactersWithoutNULOrControlCharacters() throws {
        #expect(refusal(["Notes": .string(String(repeating: "n", count: 4096))]) == nil)
        #expect(refusal(["Notes": .string(String(repeating: "é", count: 4096))]) == nil)
        #expect(try #require(refusal(["Notes": .string(String(repeating: "n", count: 4097))])).contains("4096"))
        #expect(try #require(refusal(["Notes": .string("a\u{0}b")])).contains("NUL"))
        #expect(try #require(refusal(["Notes": .string("bell\u{7}")])).contains("control"))
        #expect(refusal(["Notes": .string("tab\tline\nreturn\r\n")]) == nil)
    }

    @Test func theFirstUnknownKeyIsReportedBeforeTypeErrors() throws {
        let message = try #require(refusal(["Generation": .string("x"), "Zzz": .bool(true), "Aaa": .bool(true)]))
        #expect(message.contains("'Aaa'"))
    }
}
