import DBus
import Foundation
import Glibc
import Spawn
import TestSupport
import Testing

/// The page's host resources and the VM page's adapters, checkpoints and jobs, in a real
/// browser against vmmsd on the system bus. What the page shows and does is checked with
/// virsh and with root's own calls. The switch, checkpoint and job tests run once the service
/// has those interfaces (their introspection files are in the tree).
@Suite("Cockpit page: switches, SANs, checkpoints, jobs", .usesLibvirtd, .serialized, .enabled(if: cockpitStackAvailable, cockpitStackReason))
struct CockpitResourceTests {
    static let hasSwitches = FileManager.default.fileExists(atPath: repositoryRoot + "/dbus/org.example.VMMS1.Switch.xml")
    static let hasCheckpoints = FileManager.default.fileExists(atPath: repositoryRoot + "/dbus/org.example.VMMS1.Checkpoint.xml")
    static let hasJobs = FileManager.default.fileExists(atPath: repositoryRoot + "/dbus/org.example.VMMS1.Job.xml")

    // MARK: SANs

    /// A tgtd target on 127.0.0.1 behind a SAN made as root: the SANs view lists it with its
    /// LUNs; a LUN added on the target appears after Refresh from the page; with the target
    /// down, Refresh shows the service's refusal inline.
    @Test func theSANsViewListsASANAndRefreshFromThePageFollowsItsTarget() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("san")
            try await ISCSITarget.with(luns: [(1, 64)]) { target in
                defer {
                    _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "pool-destroy", name])
                    _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "pool-undefine", name])
                }
                let reply = try await stack.client.call(RootClient.host, "org.example.VMMS1.Host", "CreateSAN", [
                    .string(name), .string("iSCSI"),
                    .vardict(["Portal": .string("127.0.0.1:\(target.port)"), "Target": .string(target.iqn)]),
                ])
                let path = try #require(reply.first?.objectPath)
                try await stack.browser(as: "alice") { page in
                    try await page.click(".view-tab[data-view=\"sans\"]")
                    let row = "document.querySelector(\(JSON.quote("tr.san-row[data-name=\"\(name)\"]")))"
                    try await page.wait("\(row)?.dataset.active === 'true'", timeout: 20)
                    #expect(try await page.eval("document.activeElement.id") == "sans-view-title", "the view's heading takes the focus")
                    #expect(try await page.eval("\(row).querySelector('td.path').textContent") == .string("127.0.0.1:\(target.port)"))
                    #expect(try await page.eval("\(row).querySelectorAll('.lun-list li').length") == .number(1))

                    try await target.addLUN(2, mib: 32)
                    try await page.click("tr.san-row[data-name=\"\(name)\"] button[data-action=\"refresh-san\"]")
                    try await page.wait("\(row)?.querySelectorAll('.lun-list li').length === 2", timeout: 30)
                    let sizes = try await page.eval("[...\(row).querySelectorAll('.lun-list li')].map(li => li.textContent)").strings
                    #expect(sizes.contains { $0.contains("64 MiB") } && sizes.contains { $0.contains("32 MiB") }, "\(sizes)")

                    // The target goes away: what Refresh answers root, the page shows inline.
                    await target.stop()
                    var refusal = ""
                    do {
                        _ = try await stack.client.call(path, "org.example.VMMS1.SAN", "Refresh")
                        Issue.record("Refresh succeeded with the target down")
                    } catch let error as DBusError {
                        refusal = error.message
                    }
                    #expect(!refusal.isEmpty)
                    try await page.click("tr.san-row[data-name=\"\(name)\"] button[data-action=\"refresh-san\"]")
                    let shown = try await page.wait("(p => !p.hidden && p.textContent)(document.querySelector('.sans-view .inline-problem'))", timeout: 60)
                    #expect(shown.string?.contains(refusal) == true, "page: \(shown), service: \(refusal)")
                    try await page.wait("\(row)?.dataset.active === 'false'", timeout: 20)
                }
            }
        }
    }

    // MARK: switches (issue 12)

    /// A switch made in the page's dialog is a libvirt network; an invalid one shows the
    /// service's message; an adapter added on the VM page uses it, so deleting it is refused
    /// inline with InvalidState's message, and after removing the adapter it goes.
    @Test(.enabled(if: hasSwitches, "the service has no Switch interface yet"))
    func aSwitchCreatedOnThePageIsALibvirtNetworkAndInUseItCannotBeDeleted() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("sw")
            let vmName = Names.unique("nic")
            defer {
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "net-destroy", name])
                _ = try? runCommandSync("/usr/bin/virsh", ["-c", "qemu:///system", "net-undefine", name])
            }
            let vm = try await stack.client.createVM(vmName)
            let uuid = try #require(try await stack.client.property(vm, "org.example.VMMS1.VM", "UUID")?.string)
            var expected = ""
            do {
                _ = try await stack.client.call(RootClient.host, "org.example.VMMS1.Host", "CreateSwitch",
                                                [.string(name), .string("NAT"), .vardict(["Address": .string("not-an-address")])])
                Issue.record("CreateSwitch accepted the address not-an-address")
            } catch let error as DBusError {
                expected = error.message
            }
            try await stack.browser(as: "alice") { page in
                try await page.click(".view-tab[data-view=\"switches\"]")
                try await page.click("#switch-create")
                try await page.wait("document.querySelector('dialog[data-dialog=\"create-switch\"]')?.open")
                try await page.setField(label: "Name", name)
                try await page.selectOption(label: "Type", "NAT")
                try await page.setField(label: "Address (CIDR, optional)", "not-an-address")
                try await page.click("dialog button[type=submit]")
                let shown = try await page.wait("[...document.querySelectorAll('dialog .field-error, dialog .dialog-problem')].find(e => !e.hidden)?.textContent", timeout: 30)
                #expect(shown == .string(expected), "the dialog shows the service's own message")

                try await page.selectOption(label: "Type", "Private")
                try await page.click("dialog button[type=submit]")
                try await page.wait("!document.querySelector('dialog[data-dialog=\"create-switch\"]')", timeout: 60)
                let row = "document.querySelector(\(JSON.quote("tr.switch-row[data-name=\"\(name)\"]")))"
                try await page.wait("\(row)?.querySelector('.switch-type').textContent === 'Private'", timeout: 10)
                #expect(try await virsh(["net-list", "--all", "--name"]).stdout.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == name })

                // An adapter on it, from the VM page.
                try await page.get(CockpitStack.pagePath + "#/vm/" + uuid)
                try await page.wait("document.getElementById('vm-page-title')?.textContent === \(JSON.quote(vmName))", timeout: 20)
                let switchPath = try #require(try await page.eval("[...window.vmms.service.switches].find(([, s]) => s.Name === \(JSON.quote(name)))?.[0]").string)
                try await page.eval("(() => { const s = document.querySelector('form[data-form=\"add-adapter\"] select'); s.value = \(JSON.quote(switchPath)); s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()")
                try await page.submitPageForm("add-adapter")
                try await page.wait("document.querySelectorAll('tr.adapter-row').length === 1", timeout: 20)
                #expect(try await page.eval("document.querySelector('tr.adapter-row .adapter-switch').textContent") == .string(name))
                #expect(try await virsh(["domiflist", vmName]).stdout.contains(name))

                // In use: the service refuses, the page says why.
                try await page.click(".breadcrumb button")
                try await page.click(".view-tab[data-view=\"switches\"]")
                try await page.click("tr.switch-row[data-name=\"\(name)\"] button[data-action=\"delete-switch\"]")
                try await page.wait("document.querySelector('dialog')?.open")
                try await page.click("dialog button[type=submit]")
                let refusal = try await page.wait("(p => !p.hidden && p.textContent)(document.querySelector('.switches-view .inline-problem'))", timeout: 30)
                #expect(refusal.string?.contains(vmName) == true, "InvalidState names the VM: \(refusal)")
                #expect(try await virsh(["net-info", name]).status == 0, "the switch is still there")

                // Without the adapter it goes.
                try await page.get(CockpitStack.pagePath + "#/vm/" + uuid)
                try await page.wait("document.querySelectorAll('tr.adapter-row').length === 1", timeout: 20)
                try await page.click("tr.adapter-row button[data-action=\"remove-adapter\"]")
                try await page.click("dialog button[type=submit]")
                try await page.wait("document.querySelectorAll('tr.adapter-row').length === 0", timeout: 30)
                try await page.click(".breadcrumb button")
                try await page.click(".view-tab[data-view=\"switches\"]")
                try await page.click("tr.switch-row[data-name=\"\(name)\"] button[data-action=\"delete-switch\"]")
                try await page.click("dialog button[type=submit]")
                try await page.wait("!\(row)", timeout: 30)
                #expect(try await virsh(["net-info", name]).status != 0, "the network is gone from libvirt")
            }
        }
    }

    // MARK: checkpoints (issue 13)

    /// Checkpoints taken on the VM page are the service's (the VM then writes into an overlay
    /// in Snapshots/), shown as a tree; Apply from the page brings back the disk's content at
    /// that checkpoint; rename and delete from the page reach the service.
    @Test(.enabled(if: hasCheckpoints, "the service has no Checkpoint interface yet"))
    func checkpointsTakenAndAppliedOnThePageBringBackTheDisk() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("cp")
            let vm = try await stack.client.createVM(name, ["NewDiskSizeBytes": .uint64(32 << 20)])
            let uuid = try #require(try await stack.client.property(vm, "org.example.VMMS1.VM", "UUID")?.string)
            let original = try await stack.client.disk(vm)
            try await qemuIO(["-f", "qcow2", "-c", "write -P 0x5a 1M 1M", original])
            try await stack.browser(as: "alice") { page in
                try await page.get(CockpitStack.pagePath + "#/vm/" + uuid)
                try await page.wait("document.getElementById('vm-page-title')?.textContent === \(JSON.quote(name))", timeout: 20)
                try await page.setPageField(form: "checkpoint", label: "Checkpoint name", "first")
                try await page.submitPageForm("checkpoint")
                try await page.wait("!!document.querySelector('li.checkpoint[data-name=\"first\"]')", timeout: 30)
                let overlay = try await stack.client.disk(vm)
                #expect(overlay != original && overlay.contains("/Snapshots/"), "the VM writes into an overlay: \(overlay)")
                try await qemuIO(["-f", "qcow2", "-c", "write -P 0x33 1M 1M", overlay])

                try await page.setPageField(form: "checkpoint", label: "Checkpoint name", "second")
                try await page.submitPageForm("checkpoint")
                try await page.wait("!!document.querySelector('li.checkpoint[data-name=\"first\"] > ul > li.checkpoint[data-name=\"second\"]')", timeout: 30)
                #expect(try await stack.client.checkpoints(vm) == [vm.rawValue + "/Checkpoint/first", vm.rawValue + "/Checkpoint/second"],
                        "VM.Checkpoints in creation order")

                try await page.checkpointAction("apply-checkpoint", on: "first")
                try await page.wait("document.querySelector('dialog')?.open")
                try await page.click("dialog button[type=submit]")
                var applied = false
                for _ in 0..<100 where !applied {
                    let disk = try await stack.client.disk(vm)
                    if disk != overlay { applied = try await holds(0x5a, at: 1, disk) }
                    if !applied { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(applied, "after Apply from the page the disk holds what it held at the checkpoint")
                #expect(try await page.eval("document.querySelector('[data-problem=\"checkpoints\"]').hidden") == .bool(true))

                try await page.checkpointAction("rename-checkpoint", on: "second")
                try await page.setField(label: "New name", "renamed")
                try await page.click("dialog[data-dialog=\"rename-checkpoint\"] button[type=submit]")
                try await page.wait("!!document.querySelector('li.checkpoint[data-name=\"renamed\"]') && !document.querySelector('li.checkpoint[data-name=\"second\"]')", timeout: 30)

                try await page.checkpointAction("delete-checkpoint", on: "first")
                try await page.wait("document.querySelector('dialog')?.open")
                try await page.click("dialog button[type=submit]")
                try await page.wait("!document.querySelector('li.checkpoint[data-name=\"first\"]') && !!document.querySelector('li.checkpoint[data-name=\"renamed\"]')", timeout: 30)
                #expect(try await stack.client.checkpoints(vm) == [vm.rawValue + "/Checkpoint/renamed"])
            }
        }
    }

    /// The checkpoint tree is a WAI-ARIA tree: roles, levels, expanded and selected states,
    /// one item in the tab order, and the arrow keys, Home and End move the selection as the
    /// pattern says; Enter applies the selected checkpoint (checked with the service: the
    /// next checkpoint descends from it). The tree a → (b, c) is made as root.
    @Test(.enabled(if: hasCheckpoints, "the service has no Checkpoint interface yet"))
    func theCheckpointTreeIsAnARIATreeTheKeyboardMovesThroughAndEnterApplies() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("cptree")
            let vm = try await stack.client.createVM(name, ["NewDiskSizeBytes": .uint64(32 << 20)])
            let uuid = try #require(try await stack.client.property(vm, "org.example.VMMS1.VM", "UUID")?.string)
            func checkpoint(_ name: String) throws -> ObjectPath {
                guard let path = ObjectPath(vm.rawValue + "/Checkpoint/" + name) else { throw TestFailure("no path for checkpoint \(name)") }
                return path
            }
            for step in ["a", "b", "apply a", "c"] {
                if step.hasPrefix("apply ") {
                    _ = try await stack.client.call(try checkpoint(String(step.dropFirst(6))), "org.example.VMMS1.Checkpoint", "Apply")
                } else {
                    try await stack.client.vm(vm, "Checkpoint", [.string(step)])
                }
            }
            try await stack.browser(as: "alice") { page in
                try await page.get(CockpitStack.pagePath + "#/vm/" + uuid)
                try await page.wait("document.querySelectorAll('li.checkpoint').length === 3", timeout: 20)
                let item = { (name: String) in "document.querySelector('li.checkpoint[data-name=\"\(name)\"]')" }
                #expect(try await page.eval("document.querySelector('.checkpoint-tree').getAttribute('role')") == "tree")
                #expect(try await page.eval("!!document.querySelector('.checkpoint-tree').getAttribute('aria-label')") == .bool(true))
                #expect(try await page.eval("document.querySelectorAll('.checkpoint-tree [role=treeitem]').length") == .number(3))
                #expect(try await page.eval("[...document.querySelectorAll('.checkpoint-tree [role=treeitem]')].map(i => i.dataset.name + ':' + i.getAttribute('aria-level') + ':' + i.getAttribute('aria-expanded'))") ==
                        .array(["a:1:true", "b:2:null", "c:2:null"]), "levels, and aria-expanded only where there are children")
                #expect(try await page.eval("[...\(item("a")).querySelectorAll(':scope > [role=group] > [role=treeitem]')].map(i => i.dataset.name)") ==
                        .array(["b", "c"]), "the children are in a group inside their parent")

                /// The focused item's name, after checking that it alone is selected and in the tab order.
                func focused() async throws -> String {
                    let state = try await page.eval("""
                        (() => { const items = [...document.querySelectorAll('.checkpoint-tree [role=treeitem]')];
                                 const a = document.activeElement;
                                 const selected = items.filter(i => i.getAttribute('aria-selected') === 'true');
                                 const tabbable = items.filter(i => i.tabIndex === 0);
                                 return items.includes(a) && selected.length === 1 && selected[0] === a && tabbable.length === 1 && tabbable[0] === a
                                     ? a.dataset.name : 'focus ' + (a.dataset.name ?? a.tagName) + ', selected ' + selected.map(i => i.dataset.name) + ', tabbable ' + tabbable.map(i => i.dataset.name); })()
                        """)
                    return state.string ?? "?"
                }
                // Tab reaches the tree at its one tabbable item: the newest checkpoint.
                try await page.eval("document.querySelector('.checkpoint-tree [role=treeitem][tabindex=\"0\"]').focus()")
                #expect(try await focused() == "c")
                // Left on the leaf b goes to its parent a, the second Left collapses a (End then
                // stays on it), Right expands it and the next goes to its first child.
                for (key, expected) in [("HOME", "a"), ("ARROW_DOWN", "b"), ("ARROW_DOWN", "c"), ("ARROW_DOWN", "c"), ("ARROW_UP", "b"),
                                        ("ARROW_LEFT", "a"), ("ARROW_LEFT", "a"), ("END", "a"), ("ARROW_RIGHT", "a"), ("ARROW_RIGHT", "b"),
                                        ("END", "c"), ("ARROW_UP", "b")] {
                    try await page.keys([key])
                    #expect(try await focused() == expected, "after \(key)")
                }
                #expect(try await page.eval("\(item("a")).getAttribute('aria-expanded')") == "true", "Right expanded a again")

                // Enter: Apply, confirmed in its dialog.
                try await page.keys(["ENTER"])
                try await page.wait("document.querySelector('dialog')?.open && document.querySelector('dialog h2')?.textContent === 'Apply checkpoint'")
                try await page.click("dialog button[type=submit]")
                try await page.wait("!document.querySelector('dialog')", timeout: 30)
                try await stack.client.vm(vm, "Checkpoint", [.string("d")])
                #expect(try await stack.client.property(try checkpoint("d"), "org.example.VMMS1.Checkpoint", "Parent")?.objectPath == (try checkpoint("b")),
                        "Enter applied b: the next checkpoint descends from it")
                try await page.wait("!!document.querySelector('li.checkpoint[data-name=\"b\"] > [role=group] > li.checkpoint[data-name=\"d\"]')", timeout: 20)
            }
        }
    }

    /// The list's Checkpoint action on three selected VMs: the two with a disk get a
    /// checkpoint named as Hyper-V names them (checked with the service), the diskless one
    /// shows the service's refusal in a notification of its own; a VM not selected gets none.
    @Test(.enabled(if: hasCheckpoints, "the service has no Checkpoint interface yet"))
    func theToolbarsCheckpointActionTakesACheckpointOfEachSelectedVM() async throws {
        try await CockpitStack.with { stack in
            let prefix = Names.unique("cpbulk")
            var vms: [String: ObjectPath] = [:]
            for suffix in ["a", "b", "bystander"] {
                vms[suffix] = try await stack.client.createVM("\(prefix)-\(suffix)", ["NewDiskSizeBytes": .uint64(32 << 20)])
            }
            let diskless = "\(prefix)-diskless"
            try await stack.client.createVM(diskless)
            // What the service answers for the diskless VM, asked directly.
            var refusal = ""
            do {
                try await stack.client.vm(try await stack.client.lookup(diskless), "Checkpoint", [.string("x")])
                Issue.record("a diskless VM took a checkpoint")
            } catch let error as DBusError {
                refusal = error.message
            }
            #expect(!refusal.isEmpty)
            try await stack.browser(as: "alice") { page in
                try await page.type("#vm-filter", prefix)
                try await page.wait("document.querySelectorAll('tr.vm-row').length === 4", timeout: 20)
                for name in ["\(prefix)-a", "\(prefix)-b", diskless] { try await page.select(name) }
                try await page.act("checkpoint")
                try await page.wait("[...document.querySelectorAll('.notification.success')].some(n => n.textContent.includes('Took checkpoints of 2 virtual machines'))", timeout: 60)
                let failure = try await page.wait("[...document.querySelectorAll('.notification.danger')].map(n => n.querySelector('.notification-text').textContent).find(t => t.includes(\(JSON.quote(diskless))))", timeout: 10)
                #expect(failure == .string("Checkpoint \(diskless) failed: \(refusal)"), "the refusal, per VM")
                #expect(try await page.eval("document.querySelectorAll('.notification.danger').length") == .number(1), "no failure for the others")
            }
            for suffix in ["a", "b"] {
                let vm = try #require(vms[suffix])
                let checkpoints = try await stack.client.checkpoints(vm)
                #expect(checkpoints.count == 1, "\(suffix): \(checkpoints)")
                let path = try #require(checkpoints.first)
                let name = try await stack.client.property(try #require(ObjectPath(path)), "org.example.VMMS1.Checkpoint", "Name")?.string
                let pattern = /^ck-cpbulk-[0-9a-f]{4}-[ab] - \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d$/
                #expect(name.map { (try? pattern.wholeMatch(in: $0)) != nil } == true, "Hyper-V's kind of name: \(name ?? "none")")
            }
            #expect(try await stack.client.checkpoints(try #require(vms["bystander"])).isEmpty, "the VM not selected has no checkpoint")
        }
    }

    // MARK: jobs (issue 14)

    /// Export from the VM page: the job dialog follows the job to Completed and the export is
    /// on disk; a second export, cancelled from the dialog once it shows progress, ends
    /// Cancelled without its folder; a Move from the page moves the disk. vmmsd copies at 16 MiB/s (its test knob), the disk holds
    /// 96 MiB, so the copy takes seconds.
    @Test(.enabled(if: hasJobs, "the service has no Job interface yet"))
    func exportAndMoveFromThePageShowTheJobsProgressAndCanBeCancelled() async throws {
        try await CockpitStack.with(environment: ["VMMSD_TEST_COPY_BYTES_PER_SECOND": String(16 << 20)]) { stack in
            let name = Names.unique("export")
            let vm = try await stack.client.createVM(name, ["NewDiskSizeBytes": .uint64(128 << 20)])
            let uuid = try #require(try await stack.client.property(vm, "org.example.VMMS1.VM", "UUID")?.string)
            try await qemuIO(["-f", "qcow2", "-c", "write -P 0x5a 1M 96M", try await stack.client.disk(vm)])
            // Inside VirtualMachinePath: alice may export only into the host's storage paths.
            let machines = try #require(try await stack.client.property(RootClient.host, "org.example.VMMS1.Host", "VirtualMachinePath")?.string)
            let directory = machines + "/ck-export-\(UUID().uuidString.prefix(8).lowercased())"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let job = "document.querySelector('dialog[data-dialog=\"job\"] .job')"
            try await stack.browser(as: "alice") { page in
                try await page.get(CockpitStack.pagePath + "#/vm/" + uuid)
                try await page.wait("document.getElementById('vm-page-title')?.textContent === \(JSON.quote(name))", timeout: 20)
                try await page.click(".vm-page button[data-action=\"export\"]")
                try await page.setField(label: "Export to folder", directory)
                try await page.click("dialog[data-dialog=\"export\"] button[type=submit]")
                try await page.waitForJobDialog()
                // Every percentage the dialog showed, to see it move.
                try await page.eval("""
                    (() => { const j = \(job); window.__percents = [j.dataset.percent];
                             new MutationObserver(() => window.__percents.push(j.dataset.percent)).observe(j, {attributes: true});
                             return true; })()
                    """)
                let state = try await page.wait("(s => s !== 'Running' && s)(\(job).dataset.state)", timeout: 120)
                #expect(state == "Completed")
                #expect(try await page.eval("\(job).dataset.percent") == "100")
                let seen = try await page.eval("[...new Set(window.__percents)]").strings
                #expect(seen.contains { (Int($0) ?? 0) > 0 && (Int($0) ?? 100) < 100 }, "percentages shown: \(seen)")
                #expect(FileManager.default.fileExists(atPath: directory + "/" + name + "/Virtual Machines"))
                try await page.click("dialog[data-dialog=\"job\"] button[data-action=\"close-job\"]")
                // The finished job stays listed on the VM page.
                try await page.wait("document.querySelectorAll('.vm-page .job-list .job[data-state=\"Completed\"]').length === 1")

                let second = directory + "/again"
                try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
                try await page.click(".vm-page button[data-action=\"export\"]")
                try await page.setField(label: "Export to folder", second)
                try await page.click("dialog[data-dialog=\"export\"] button[type=submit]")
                try await page.waitForJobDialog()
                try await page.wait("Number(\(job).dataset.percent) > 0", timeout: 60)
                try await page.click("dialog[data-dialog=\"job\"] button[data-action=\"cancel-job\"]")
                let ended = try await page.wait("(s => s !== 'Running' && s)(\(job).dataset.state)", timeout: 120)
                #expect(ended == "Cancelled")
                #expect(try await page.eval("\(job).querySelector('.job-error').hidden") == .bool(false), "the job's ErrorMessage is shown")
                #expect(!FileManager.default.fileExists(atPath: second + "/" + name), "a cancelled export leaves no folder")
                try await page.click("dialog[data-dialog=\"job\"] button[data-action=\"close-job\"]")

                // Move (storage move of the VM that is off): its disk ends up in the folder.
                let moved = directory + "/moved"
                try FileManager.default.createDirectory(atPath: moved, withIntermediateDirectories: true)
                try await page.click(".vm-page button[data-action=\"move\"]")
                try await page.setField(label: "Move to folder", moved)
                try await page.click("dialog[data-dialog=\"move\"] button[type=submit]")
                try await page.waitForJobDialog()
                let moveState = try await page.wait("(s => s !== 'Running' && s)(\(job).dataset.state)", timeout: 120)
                #expect(moveState == "Completed")
                let blocks = try await virsh(["domblklist", name]).stdout
                #expect(blocks.contains(moved + "/"), "the disk is in \(moved): \(blocks)")
            }
        }
    }
}

extension RootClient {
    /// VM.Checkpoints as strings.
    func checkpoints(_ vm: ObjectPath) async throws -> [String] {
        guard case .array(_, let items)? = try await property(vm, "org.example.VMMS1.VM", "Checkpoints") else { return [] }
        return items.compactMap { $0.objectPath?.rawValue }
    }

    /// The path of the VM's first disk (HardDisks).
    func disk(_ vm: ObjectPath) async throws -> String {
        guard case .array(_, let disks)? = try await property(vm, "org.example.VMMS1.VM", "HardDisks"),
              case .structure(let fields)? = disks.first, let disk = fields.first?.string else {
            throw TestFailure("\(vm) has no disk")
        }
        return disk
    }
}

func qemuIO(_ arguments: [String]) async throws {
    let result = try await runCommand("/usr/bin/qemu-io", arguments)
    guard result.status == 0, !result.stderr.contains("error") else { throw TestFailure("qemu-io \(arguments): \(result.stderr)") }
}

/// Whether 1 MiB at `offset` MiB of the qcow2 image (through its backing chain) is `byte`.
func holds(_ byte: UInt8, at offset: Int, _ image: String) async throws -> Bool {
    let result = try await runCommand("/usr/bin/qemu-io", ["-r", "-U", "-f", "qcow2", "-c", "read -P \(byte) \(offset)M 1M", image])
    return result.status == 0 && result.stdout.contains("read 1048576/1048576") && !result.stdout.contains("Pattern verification failed")
}

extension Browser {
    /// Selects the checkpoint `name` in the VM page's tree with the mouse, then clicks the
    /// tree's toolbar button `action` (apply-checkpoint, rename-checkpoint, delete-checkpoint).
    func checkpointAction(_ action: String, on name: String) async throws {
        let item = "li.checkpoint[data-name=\"\(name)\"]"
        try await click("\(item) > .checkpoint-line .checkpoint-name")
        try await wait("document.querySelector(\(JSON.quote(item)))?.getAttribute('aria-selected') === 'true'")
        try await click(".checkpoint-toolbar button[data-action=\"\(action)\"]")
    }

    /// After Export/Move was submitted: the job dialog opens, or this throws with the refusal
    /// the first dialog shows.
    func waitForJobDialog() async throws {
        let outcome = try await wait("""
            document.querySelector('dialog[data-dialog="job"]')?.open ? 'job' :
            [...document.querySelectorAll('dialog .field-error, dialog .dialog-problem')].find(e => !e.hidden)?.textContent
            """, timeout: 30)
        guard outcome == "job" else { throw TestFailure("no job dialog: \(outcome)") }
    }
}
