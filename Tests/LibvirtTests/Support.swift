import Foundation
import Libvirt
import Synchronization

/// Minimal persistent domain the test driver accepts.
func minimalDomainXML(name: String, uuid: String? = nil) -> String {
    let uuidElement = uuid.map { "<uuid>\($0)</uuid>" } ?? ""
    return """
    <domain type='test'><name>\(name)</name>\(uuidElement)<memory unit='KiB'>65536</memory>\
    <os><type>hvm</type></os></domain>
    """
}

/// The fake host every test starts from: like `test:///default`, one running domain "test".
private let testHostXML = """
<node>
  <domain type='test'>
    <name>test</name>
    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
    <memory unit='KiB'>8388608</memory>
    <currentMemory unit='KiB'>2097152</currentMemory>
    <vcpu>2</vcpu>
    <os><type arch='i686'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><source file='/guest/diskimage1'/><target dev='vda' bus='virtio'/></disk>
    </devices>
  </domain>
</node>
"""

/// Opens the test driver on a private fake host.
///
/// All `test:///default` connections open at the same time in one process share one
/// in-memory host, so parallel tests would see each other's domains. A test driver opened
/// from a file gets state of its own; libvirt reads the file during open only.
func openTestDriver() throws -> LibvirtConnection {
    let file = FileManager.default.temporaryDirectory
        .appendingPathComponent("libvirt-test-host-\(UUID().uuidString).xml")
    try testHostXML.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    return try LibvirtConnection(uri: "test://\(file.path)")
}

/// Collects events from the event-loop thread and lets a test wait for one.
final class Recorder<Event: Sendable>: Sendable {
    private let events = Mutex<[Event]>([])

    func record(_ event: Event) {
        events.withLock { $0.append(event) }
    }

    var all: [Event] { events.withLock { $0 } }

    /// Polls until `predicate` holds for the recorded events or `timeout` passes.
    func wait(timeout: Duration = .seconds(5), until predicate: ([Event]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if predicate(all) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return predicate(all)
    }
}

/// The recorder the domain-event tests use.
typealias EventRecorder = Recorder<DomainEvent>

/// A fresh directory under the system temporary directory, removed by the caller.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("libvirt-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
