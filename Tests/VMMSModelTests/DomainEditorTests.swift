import Foundation
import Testing
import VMMSModel

/// DomainEditor keeps what it does not own and produces XML the parser reads back as set.
struct DomainEditorTests {
    static let mib: UInt64 = 1 << 20
    static let foreign = """
    <domain type='kvm'>
      <name>web</name>
      <uuid>0b1c4d0e-1111-2222-3333-444455556666</uuid>
      <metadata>
        <other:app xmlns:other="https://example.com/other"><other:owner>ops</other:owner></other:app>
      </metadata>
      <memory unit='GiB'>2</memory>
      <vcpu placement='static' current='2'>4</vcpu>
      <vcpus><vcpu id='0' enabled='yes' hotpluggable='no'/><vcpu id='1' enabled='yes' hotpluggable='yes'/>
        <vcpu id='2' enabled='no' hotpluggable='yes'/><vcpu id='3' enabled='no' hotpluggable='yes'/></vcpus>
      <os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type>
        <loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>
        <nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>/var/lib/libvirt/qemu/nvram/web_VARS.fd</nvram>
      </os>
      <features><acpi/><smm state='on'/></features>
      <cpu mode='host-model'><topology sockets='1' dies='1' cores='2' threads='2'/></cpu>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/d/web.qcow2'/><target dev='vda' bus='virtio'/></disk>
        <disk type='file' device='cdrom'><target dev='sda' bus='sata'/></disk><seclabel type='dynamic'/></devices>
    </domain>
    """

    @Test func processorChangeRewritesVcpusTuningAndMetadataOnly() throws {
        let editor = try DomainEditor(xml: Self.foreign)
        #expect(editor.maximumProcessorCount == 4)
        editor.setProcessor(count: 3, reserve: 10, maximum: 25, weight: 50)
        let c = try DomainXML.parse(editor.xml)
        #expect(c.processorCount == 3 && c.processorReserve == 10 && c.processorMaximum == 25 && c.processorRelativeWeight == 50)
        #expect(editor.xml.contains("<quota>25000</quota>") && editor.xml.contains("<shares>512</shares>"))
        #expect(!editor.xml.contains("<vcpus>"), "per-vCPU entries would contradict the new count")
        #expect(editor.xml.contains("sockets=\"3\"") || editor.xml.contains("sockets='3'"), "\(editor.xml)")
        #expect(editor.xml.contains("ops"), "another application's metadata was lost")
        #expect(c.hardDisks.map(\.path) == ["/d/web.qcow2"])
    }

    @Test func memoryAndSecureBootChanges() throws {
        let editor = try DomainEditor(xml: Self.foreign)
        editor.setMemory(startupBytes: 512 * Self.mib, maximumBytes: 4096 * Self.mib, dynamic: true, minimumBytes: 256 * Self.mib)
        editor.setSecureBoot(false)
        let c = try DomainXML.parse(editor.xml)
        #expect(c.memoryStartupBytes == 512 * Self.mib && c.memoryMaximumBytes == 4096 * Self.mib)
        #expect(c.dynamicMemoryEnabled && c.memoryMinimumBytes == 256 * Self.mib)
        #expect(!c.secureBoot)
        #expect(!editor.xml.contains("<loader") && !editor.xml.contains("template=") && !editor.xml.contains("<smm"), "\(editor.xml)")
        #expect(c.generation == 2)
    }

    @Test func disksAreAddedAtTheNextFreeTargetAndRemovedByTarget() throws {
        let editor = try DomainEditor(xml: Self.foreign)
        #expect(editor.diskTargets == ["vda", "sda"])
        let target = try #require(DomainEditor.freeDiskTarget(notIn: editor.diskTargets))
        #expect(target == "vdb")
        try editor.addDisk(path: "/d/data & logs.qcow2", format: "qcow2", target: target)
        var c = try DomainXML.parse(editor.xml)
        #expect(c.hardDisks.map(\.path) == ["/d/web.qcow2", "/d/data & logs.qcow2"])
        #expect(editor.removeDisk(target: "vda"))
        #expect(!editor.removeDisk(target: "sda"), "a CD-ROM is not a hard disk")
        c = try DomainXML.parse(editor.xml)
        #expect(c.hardDisks.map(\.device) == ["vdb"] && c.cdroms.count == 1)
    }

    @Test func changesAreValidatedLikeHyperV() throws {
        let current = VMConfiguration(name: "x", processorCount: 1, memoryStartupBytes: 1024 * Self.mib,
                                      memoryMaximumBytes: 1024 * Self.mib, memoryMinimumBytes: 1024 * Self.mib)
        #expect(throws: SettingsError.self) { try ProcessorChange(count: 3, reserve: nil, maximum: nil, relativeWeight: nil, current: current, hostProcessorCount: 2) }
        #expect(throws: SettingsError.self) { try ProcessorChange(count: 1, reserve: 50, maximum: 40, relativeWeight: nil, current: current, hostProcessorCount: 2) }
        let p = try ProcessorChange(count: 2, reserve: 20, maximum: nil, relativeWeight: nil, current: current, hostProcessorCount: 2)
        #expect(p.maximum == 100 && p.relativeWeight == 100 && p.reservedCapacity == 40)

        let on = try MemoryChange(startupBytes: 1024 * Self.mib, dynamic: true, minimumBytes: nil, maximumBytes: nil,
                                  current: current, hostMemoryBytes: 8192 * Self.mib)
        #expect(on.minimumBytes == 512 * Self.mib && on.maximumBytes == 8192 * Self.mib, "Hyper-V's defaults, capped by the host")
        #expect(throws: SettingsError.self) {
            try MemoryChange(startupBytes: 1024 * Self.mib, dynamic: false, minimumBytes: 512 * Self.mib, maximumBytes: nil,
                             current: current, hostMemoryBytes: 8192 * Self.mib)
        }
        #expect(throws: SettingsError.self) {
            try MemoryChange(startupBytes: 16384 * Self.mib, dynamic: nil, minimumBytes: nil, maximumBytes: nil,
                             current: current, hostMemoryBytes: 8192 * Self.mib)
        }
    }
}
