import Testing
import VMMSModel

/// What may be a disk or install media, for every caller.
@Suite struct DiskImageRuleTests {
    static let qcow2: [UInt8] = [0x51, 0x46, 0x49, 0xFB, 0, 0, 0, 3]

    @Test(arguments: [
        ("/var/lib/libvirt/images/a.qcow2", DiskImageRule.FileType.regular, qcow2, DiskImageRule.Kind.disk, true),
        ("/srv/a.img", .regular, [0, 0, 0, 0], .disk, true),
        ("/srv/a.raw", .regular, [], .disk, true),
        ("/srv/a.vhdx", .regular, [], .disk, true),
        ("/srv/a.vhd", .regular, [], .disk, true),
        ("/dev/sdb", .blockDevice, [], .disk, true),
        ("/srv/install.iso", .regular, [], .installMedia, true),
        // Named like a qcow2 image but is not one.
        ("/srv/fake.qcow2", .regular, [0x7F, 0x45, 0x4C, 0x46], .disk, false),
        // Not an image name.
        ("/srv/notes.txt", .regular, [], .disk, false),
        ("/srv/a.img", .regular, [], .installMedia, false),
        // System trees, for root too.
        ("/etc/passwd.img", .regular, [], .disk, false),
        ("/usr/share/a.qcow2", .regular, qcow2, .disk, false),
        ("/boot/a.img", .regular, [], .disk, false),
        ("/run/a.img", .regular, [], .disk, false),
        ("/proc/self/mem", .regular, [], .disk, false),
        ("/dev/null", .other, [], .disk, false),
        ("/dev/shm/a.img", .regular, [], .disk, false),
        ("/dev/sdb", .blockDevice, [], .installMedia, false),
        ("/srv/dir", .other, [], .disk, false),
    ])
    func imagesAreAcceptedOnlyOutsideTheSystemTrees(path: String, type: DiskImageRule.FileType, header: [UInt8],
                                                     kind: DiskImageRule.Kind, accepted: Bool) {
        let problem = DiskImageRule.problem(resolvedPath: path, type: type, header: header, kind: kind)
        #expect((problem == nil) == accepted, "\(path): \(problem ?? "accepted")")
        if let problem, type != .regular || !path.hasSuffix(".qcow2") {
            #expect(problem.contains("must be"), "the refusal says what is accepted: \(problem)")
        }
    }
}
