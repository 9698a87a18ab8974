import DBus
import Foundation
import Glibc
import TestSupport
import Testing

/// The Cockpit page (cockpit/) in a real browser: Debian's cockpit-ws and headless Chromium,
/// logged in as alice (vmms-admins) and bob (no rights), against vmmsd on the system bus and
/// libvirtd under TCG. What the page shows is checked against libvirt with virsh.
///
/// No time limit on the suite: its tests wait for the system-bus lock, which test runs in other
/// work trees may hold for many minutes. Every wait inside a test has its own deadline.
@Suite("Cockpit page", .usesLibvirtd, .serialized, .enabled(if: cockpitStackAvailable, cockpitStackReason))
struct CockpitPageTests {

    @Test func aliceSeesTheVMsAndPowerActionsFromThePageReachLibvirt() async throws {
        try await CockpitStack.with { stack in
            let target = Names.unique("power")
            let bystander = Names.unique("bystander")
            try await stack.client.createVM(target)
            try await stack.client.createVM(bystander)
            try await stack.browser(as: "alice") { page in
                let names = try await page.rowNames()
                #expect(names.contains(target) && names.contains(bystander), "rows: \(names)")
                try await page.select(target)
                for (action, state, libvirtState) in [("start", "Running", "running"), ("pause", "Paused", "paused"),
                                                      ("resume", "Running", "running"), ("turnoff", "Off", "shut off")] {
                    try await page.act(action)
                    try await page.waitForState(target, state, timeout: 60)
                    #expect(try await domstate(target) == libvirtState, "after \(action) from the page")
                    if action == "start" {
                        // Get-VM's uptime and CPU usage, from StartTime and CPUUsage.
                        let row = page.rowExpression(target)
                        try await page.wait("""
                            /^\\d\\d:\\d\\d:\\d\\d$/.test(\(row).querySelector('td.col-uptime').textContent) &&
                            /^\\d+ %$/.test(\(row).querySelector('td.col-cpu').textContent)
                            """)
                    }
                }
                #expect(try await domstate(bystander) == "shut off", "the VM that was not selected was left alone")
            }
        }
    }

    @Test func theListIsUsableWithTheKeyboardAndFilters() async throws {
        try await CockpitStack.with { stack in
            let prefix = Names.unique("keys")
            for suffix in ["a", "b", "c"] { try await stack.client.createVM("\(prefix)-\(suffix)") }
            try await stack.browser(as: "alice") { page in
                try await page.type("#vm-filter", prefix)
                try await page.wait("document.querySelectorAll('tr.vm-row').length === 3")
                try await page.eval("document.querySelector('tr.vm-row[tabindex=\"0\"]').focus()")
                try await page.keys(["ARROW_DOWN", "SPACE"])
                let focused = try await page.eval("document.activeElement.dataset.name")
                #expect(focused == .string("\(prefix)-b"))
                #expect(try await page.eval("document.activeElement.getAttribute('aria-selected')") == "true")
                #expect(try await page.eval("document.querySelector('.selection-count').textContent") == "1 selected")
                try await page.keys(["ENTER"])
                try await page.wait("!document.querySelector('.vm-page').hidden && document.getElementById('vm-page-title').textContent === \(JSON.quote("\(prefix)-b"))")
                try await page.click(".breadcrumb button")
                try await page.wait("!document.querySelector('.list-view').hidden")

                try await stack.client.vm(try await stack.client.lookup("\(prefix)-c"), "Start")
                try await page.waitForState("\(prefix)-c", "Running")
                try await page.eval("(() => { const s = document.getElementById('vm-state-filter'); s.value = 'Running'; s.dispatchEvent(new Event('change')); return true; })()")
                try await page.wait("document.querySelectorAll('tr.vm-row').length === 1")
                #expect(try await page.rowNames() == ["\(prefix)-c"])
            }
        }
    }

    @Test func changesMadeWithVirshAppearWithoutAReload() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("virsh")
            try await stack.client.createVM(name)
            try await stack.browser(as: "alice") { page in
                try await page.eval("(window.__sameDocument = true)")
                for (command, state) in [("start", "Running"), ("suspend", "Paused"), ("resume", "Running"), ("destroy", "Off")] {
                    #expect(try await virsh([command, name]).status == 0)
                    try await page.waitForState(name, state, timeout: 10)
                    // The health card follows: CheckHealth names the paused VM, then no longer.
                    let finding = "document.querySelector('.health-findings [data-rule=\"vmms.paused-vms\"]')"
                    if state == "Paused" {
                        try await page.wait("\(finding)?.textContent.includes(\(JSON.quote(name))) === true", timeout: 20)
                    } else if command == "resume" {
                        try await page.wait("!(\(finding)?.textContent.includes(\(JSON.quote(name))))", timeout: 20)
                    }
                }
                // A domain defined and removed behind the service's back comes and goes.
                let defined = Names.unique("defined")
                stack.client.track(defined)
                try await defineWithVirsh(defined)
                try await page.waitForState(defined, "Off", timeout: 10)
                #expect(try await virsh(["undefine", name]).status == 0)
                try await page.wait("!\(page.rowExpression(name))", timeout: 10)
                #expect(try await page.eval("window.__sameDocument === true") == .bool(true), "the page was reloaded")
            }
        }
    }

    @Test func anInvalidCreateShowsTheServicesMessageAndAValidOneCanBeDeletedAgain() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("create")
            stack.client.track(name)
            let secureBoot = try await stack.client.property(RootClient.host, "org.example.VMMS1.Host", "SecureBootAvailable")?.boolean ?? false
            // What the service answers for the same settings when called directly.
            var expected = ""
            do {
                var settings: [String: DBusValue] = ["Generation": .uint32(2), "ProcessorCount": .uint32(1), "MemoryStartupBytes": .uint64(31 << 20)]
                settings["SecureBoot"] = .boolean(secureBoot)
                _ = try await stack.client.call(RootClient.host, "org.example.VMMS1.Host", "CreateVM", [.string(name), .vardict(settings)])
                Issue.record("CreateVM accepted 31 MiB")
            } catch let error as DBusError {
                expected = error.message
            }
            #expect(!expected.isEmpty)
            try await stack.browser(as: "alice") { page in
                try await page.click("#vm-create")
                try await page.wait("document.querySelector('dialog[data-dialog=\"create-vm\"]')?.open")
                try await page.type("dialog input[type=text]", name)
                try await page.setField(label: "Startup memory (MiB)", "31")
                try await page.selectOption(label: "Hard disk", "none")
                try await page.click("dialog button[type=submit]")
                let shown = try await page.wait("[...document.querySelectorAll('dialog .field-error, dialog .dialog-problem')].find(e => !e.hidden)?.textContent", timeout: 30)
                #expect(shown == .string(expected), "the dialog shows the service's own message")
                #expect(try await page.eval("document.activeElement.getAttribute('aria-invalid')") == "true", "focus is on the field at fault")
                #expect(try await virsh(["domstate", name]).status != 0, "nothing was created")

                // Corrected, the same dialog creates the VM, and the list shows it.
                try await page.setField(label: "Startup memory (MiB)", "64")
                try await page.eval("(() => { document.querySelector('dialog input[name=generation][value=\"1\"]').click(); return true; })()")
                try await page.click("dialog button[type=submit]")
                try await page.wait("!document.querySelector('dialog[data-dialog=\"create-vm\"]')", timeout: 60)
                try await page.waitForState(name, "Off", timeout: 10)
                #expect(try await domstate(name) == "shut off")

                try await page.select(name)
                try await page.act("delete")
                try await page.wait("document.querySelector('dialog[data-dialog=\"delete-vm\"]')?.open")
                try await page.click("dialog[data-dialog=\"delete-vm\"] button[type=submit]")
                try await page.wait("!\(page.rowExpression(name))", timeout: 60)
                #expect(try await virsh(["domstate", name]).status != 0, "the VM is gone from libvirt")
            }
        }
    }

    @Test func settingsChangedOnTheVMPageReachLibvirtAndRefusalsShowInline() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("settings")
            let path = try await stack.client.createVM(name)
            let uuid = try #require(try await stack.client.property(path, "org.example.VMMS1.VM", "UUID")?.string)
            // What the service says about 31 MiB, asked directly.
            var refusal = ""
            do {
                try await stack.client.vm(path, "SetMemory", [.uint64(31 << 20), .vardict(["DynamicMemory": .boolean(false)])])
                Issue.record("SetMemory accepted 31 MiB")
            } catch let error as DBusError {
                refusal = error.message
            }
            try await stack.browser(as: "alice") { page in
                try await page.get(CockpitStack.pagePath + "#/vm/" + uuid)
                try await page.wait("document.getElementById('vm-page-title')?.textContent === \(JSON.quote(name))", timeout: 20)

                try await page.setPageField(form: "processor", label: "Virtual processors", "2")
                try await page.setPageField(form: "processor", label: "Limit (%)", "50")
                try await page.submitPageForm("processor")
                let xml = try await virsh(["dumpxml", name]).stdout
                #expect(xml.contains(">2</vcpu>") && xml.contains("<quota>50000</quota>"), "processor settings in libvirt")

                try await page.setPageField(form: "memory", label: "Startup memory (MiB)", "31")
                try await page.click("form[data-form=\"memory\"] button[type=submit]")
                let shown = try await page.wait("[...document.querySelectorAll('form[data-form=\"memory\"] .field-error, form[data-form=\"memory\"] .inline-problem')].find(e => !e.hidden)?.textContent", timeout: 20)
                #expect(shown == .string(refusal), "the service's refusal, inline")
                try await page.setPageField(form: "memory", label: "Startup memory (MiB)", "128")
                try await page.submitPageForm("memory")
                #expect(try await virsh(["dumpxml", name]).stdout.contains("<currentMemory unit='KiB'>131072</currentMemory>"))

                try await page.setPageField(form: "notes", label: "Notes", "web tier, owner: ops")
                try await page.submitPageForm("notes")
                #expect(try await virsh(["desc", name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "web tier, owner: ops")

                try await page.click("input[data-setting=\"autostart\"]")
                try await page.wait("document.querySelector('input[data-setting=\"autostart\"]').checked && !document.querySelector('input[data-setting=\"autostart\"]').disabled")
                var autostart = ""
                for _ in 0..<50 where !autostart.contains("enable") {
                    autostart = try await virsh(["dominfo", name]).stdout.split(separator: "\n").first { $0.hasPrefix("Autostart:") }.map(String.init) ?? ""
                    if !autostart.contains("enable") { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(autostart.contains("enable"), "\(autostart)")

                try await page.setPageField(form: "add-disk", label: "Size (GiB)", "0.01")
                try await page.submitPageForm("add-disk")
                try await page.wait("document.querySelectorAll('.vm-page td.path').length === 1", timeout: 20)
                let disk = try #require(try await page.eval("document.querySelector('.vm-page td.path').textContent").string)
                #expect(try await virsh(["domblklist", name]).stdout.contains(disk))
                #expect(FileManager.default.fileExists(atPath: disk))
                try await page.click(".vm-page button[aria-label^=\"Remove \"]")
                try await page.click("dialog input[type=checkbox]")
                try await page.click("dialog button[type=submit]")
                try await page.wait("document.querySelectorAll('.vm-page td.path').length === 0", timeout: 20)
                #expect(!(try await virsh(["domblklist", name]).stdout.contains(disk)))
                #expect(!FileManager.default.fileExists(atPath: disk), "the image was deleted")

                let renamed = name + "-new"
                stack.client.track(renamed)
                try await page.setPageField(form: "rename", label: "Name", renamed)
                try await page.submitPageForm("rename")
                try await page.wait("document.getElementById('vm-page-title').textContent === \(JSON.quote(renamed))")
                #expect(try await domstate(renamed) == "shut off")
            }
        }
    }

    @Test func bobSeesThatHeIsNotAuthorizedRatherThanAnEmptyList() async throws {
        try await CockpitStack.with { stack in
            try await stack.client.createVM(Names.unique("hidden"))
            try await stack.browser(as: "bob") { page in
                try await page.wait("document.documentElement.dataset.vmmsStatus === 'not-authorized'")
                let heading = try await page.eval("document.querySelector('[data-state=\"not-authorized\"] h1')?.textContent")
                #expect(heading.string?.contains("not authorized") == true, "\(heading)")
                #expect(try await page.eval("document.querySelector('.list-view').hidden") == .bool(true))
                #expect(try await page.eval("document.querySelectorAll('tr.vm-row').length") == .number(0))
            }
        }
    }

    /// carol (sudo) must confirm with her password. The page's calls allow interactive
    /// authorization, so polkit looks for an agent instead of answering
    /// InteractiveAuthorizationRequired; without logind (CI containers) no agent can register,
    /// so the answer is NotAuthorized and the page explains that.
    @Test(.enabled(if: !logindRuns, "with logind, Cockpit's polkit agent would ask for carol's password"))
    func anAdministratorsCallsAllowInteractiveAuthorization() async throws {
        try await CockpitStack.with(users: ["carol"]) { stack in
            try await stack.browser(as: "carol") { page in
                try await page.wait("document.documentElement.dataset.vmmsStatus === 'not-authorized'")
                #expect(try await page.eval("document.documentElement.dataset.vmmsProblem") == "org.example.VMMS1.Error.NotAuthorized",
                        "not InteractiveAuthorizationRequired: the call carried the interactive flag")
                #expect(try await page.eval("!!document.querySelector('[data-state=\"not-authorized\"] .admin-hint')") == .bool(true))
            }
        }
    }

    /// A polkit rule that gives bob one VM (read and power, keyed on vm.name): the host
    /// still refuses him, but the inventory holds that VM (and only it), the page opens it by
    /// name and drives it.
    @Test func aUserWithAPerVMRuleOpensAndStartsThatVM() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("delegated")
            let path = try await stack.client.createVM(name)
            let rule = try PolkitRule("""
                polkit.addRule(function(action, subject) {
                    if (subject.user == "bob" && action.lookup("vm.name") == \(JSON.quote(name)) &&
                        (action.id == "org.example.vmms1.read" || action.id == "org.example.vmms1.vm.power")) {
                        return polkit.Result.YES;
                    }
                });
                """)
            defer { rule.remove() }
            try await rule.waitUntil(user: "bob", canRead: path)
            try await stack.browser(as: "bob") { page in
                try await page.wait("document.documentElement.dataset.vmmsStatus === 'delegated'")
                #expect(try await page.rowNames() == [name], "the inventory holds bob's VM only")
                try await page.type(".open-form input", name)
                try await page.click(".open-form button[type=submit]")
                try await page.wait("!document.querySelector('.vm-page').hidden && document.getElementById('vm-page-title').textContent === \(JSON.quote(name))", timeout: 20)
                #expect(try await page.eval("document.documentElement.dataset.vmmsStatus") == "delegated")
                try await page.click(".vm-page button[data-action=\"start\"]")
                try await page.wait("document.querySelector('.vm-page').dataset.state === 'Running'", timeout: 60)
                #expect(try await domstate(name) == "running")
                try await page.click(".breadcrumb button")
                #expect(try await page.rowNames() == [name], "bob's list holds his VM only")
            }
        }
    }

    @Test func thePageRecoversWhenVmmsdRestarts() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("restart")
            try await stack.client.createVM(name)
            try await stack.browser(as: "alice") { page in
                try await page.eval("(window.__sameDocument = true)")
                stack.service.stop()
                try await page.wait("document.documentElement.dataset.vmmsStatus === 'service-down'", timeout: 20)
                #expect(try await page.eval("document.querySelector('[data-state=\"service-down\"] h1')?.textContent") ==
                        "The service required to manage virtual machines is not running")
                try await stack.service.restart()
                try await page.waitForState(name, "Off", timeout: 30)
                // Signals from the new vmmsd arrive too.
                #expect(try await virsh(["start", name]).status == 0)
                try await page.waitForState(name, "Running", timeout: 10)
                #expect(try await page.eval("window.__sameDocument === true") == .bool(true), "the page was reloaded")
            }
        }
    }

    /// Only the rows in view are in the document, and the grid says how many there are.
    @Test func aLongListRendersOnlyTheRowsInView() async throws {
        try await CockpitStack.with { stack in
            let prefix = Names.unique("many")
            let count = 200
            for index in 1...count {
                let name = "\(prefix)-\(index)"
                stack.client.track(name)
                try await defineWithVirsh(name)
            }
            try await stack.browser(as: "alice") { page in
                try await page.type("#vm-filter", prefix)
                try await page.wait("/^\(count) (of|virtual)/.test(document.getElementById('vm-count').textContent)", timeout: 30)
                #expect(try await page.eval("document.querySelector('.vm-table').getAttribute('aria-rowcount')") == .string(String(count + 1)))
                let rendered = try await page.eval("document.querySelectorAll('tr.vm-row').length").number ?? 0
                #expect(rendered > 0 && rendered < 80, "\(rendered) rows in the document")
                try await page.eval("document.querySelector('tr.vm-row[tabindex=\"0\"]').focus()")
                try await page.keys(["END"])
                let last = "\(prefix)-\(count)"   // numeric collation: -200 sorts last
                try await page.wait("document.activeElement.dataset.name === \(JSON.quote(last))")
                #expect(try await page.eval("document.activeElement.getAttribute('aria-rowindex')") == .string(String(count + 1)))
            }
        }
    }

    /// The README's pictures (docs/cockpit-*.png), taken in Cockpit's shell.
    @Test func screenshotsOfTheListAVMAndTheCreateDialog() async throws {
        try await CockpitStack.with { stack in
            // Long enough that no other test's VM name holds it: the filter must leave these five.
            let run = UUID().uuidString.prefix(8).lowercased()
            let web = try await stack.client.createVM("web01-\(run)", ["ProcessorCount": .uint32(2), "Notes": .string("Web tier, owner: ops")])
            let web2 = try await stack.client.createVM("web02-\(run)")
            let database = try await stack.client.createVM("db01-\(run)", ["MemoryStartupBytes": .uint64(128 << 20), "NewDiskSizeBytes": .uint64(1 << 30)])
            try await stack.client.createVM("build01-\(run)", ["Generation": .uint32(2), "SecureBoot": .boolean(false)])
            try await stack.client.createVM("test01-\(run)")
            try await stack.client.vm(web, "Start")
            try await stack.client.vm(web2, "Start")
            try await stack.client.vm(web2, "Pause")
            try await stack.client.vm(database, "Start")
            try await stack.client.vm(database, "Save")
            let docs = repositoryRoot + "/docs"

            try await stack.browser(as: "alice") { page in
                try await page.window(width: 1400, height: 1000)
                try await page.get("/vmms")
                try await page.frame("iframe[name=\"cockpit1:localhost/vmms\"]")
                try await page.wait("document.documentElement.dataset.vmmsList === 'complete'", timeout: 30)
                try await page.type("#vm-filter", String(run))
                try await page.wait("document.querySelectorAll('tr.vm-row').length === 5")
                try await page.select("web01-\(run)")
                try await page.select("web02-\(run)")
                // The filter only hides other tests' leftovers: without any, the picture shows none.
                try await page.eval("""
                    (() => { if (window.vmms.service.vms.size === 5) { const f = document.getElementById('vm-filter');
                             f.value = ''; f.dispatchEvent(new Event('input')); }
                             document.activeElement.blur(); return true; })()
                    """)
                try await page.wait("document.querySelectorAll('tr.vm-row').length >= 5")
                try await page.frame(nil)
                try await page.screenshot(docs + "/cockpit-vm-list.png")

                try await page.frame("iframe[name=\"cockpit1:localhost/vmms\"]")
                try await page.click("tr.vm-row[data-name=\"db01-\(run)\"] .vm-name")
                try await page.wait("document.getElementById('vm-page-title')?.textContent === 'db01-\(run)'")
                try await page.frame(nil)
                try await page.window(width: 1400, height: 1250)
                try await page.screenshot(docs + "/cockpit-vm-page.png")

                try await page.window(width: 1400, height: 1000)
                try await page.frame("iframe[name=\"cockpit1:localhost/vmms\"]")
                try await page.click(".breadcrumb button")
                try await page.click("#vm-create")
                try await page.type("dialog input[type=text]", "web03")
                try await page.setField(label: "Startup memory (MiB)", "31")
                try await page.click("dialog button[type=submit]")
                try await page.wait("[...document.querySelectorAll('dialog .field-error')].some(e => !e.hidden)", timeout: 30)
                try await page.frame(nil)
                try await page.screenshot(docs + "/cockpit-create-dialog.png")
            }
            for file in ["cockpit-vm-list.png", "cockpit-vm-page.png", "cockpit-create-dialog.png"] {
                let size = (try? FileManager.default.attributesOfItem(atPath: docs + "/" + file)[.size] as? Int) ?? 0
                #expect(size > 10_000, "\(file): \(size) bytes")
            }
        }
    }
}

/// The page while libvirtd goes away and comes back: stops libvirtd, so it runs alone
/// (`.disturbsLibvirtd`) rather than beside the tests that need libvirtd throughout.
@Suite("Cockpit page across a libvirtd restart", .disturbsLibvirtd, .serialized, .enabled(if: cockpitStackAvailable, cockpitStackReason))
struct CockpitLibvirtdRestartTests {
    @Test func thePageRecoversWhenLibvirtdRestarts() async throws {
        try await CockpitStack.with { stack in
            let name = Names.unique("libvirtd")
            try await stack.client.createVM(name)
            try await stack.browser(as: "alice") { page in
                try await Libvirtd.stop()
                do {
                    try await page.wait("document.querySelector('.banner[data-banner=\"disconnected\"]') && !document.querySelector('.banner').hidden", timeout: 20)
                    #expect(try await page.eval("document.querySelector('.connection').dataset.connected") == "false")
                } catch {
                    try await Libvirtd.start()
                    throw error
                }
                try await Libvirtd.start()
                // Defined while the service may still be reconnecting: it must show up anyway.
                let defined = Names.unique("while-away")
                stack.client.track(defined)
                try await defineWithVirsh(defined)
                try await page.wait("document.querySelector('.banner').hidden", timeout: 30)
                try await page.waitForState(defined, "Off", timeout: 30)
                try await page.waitForState(name, "Off")
            }
        }
    }
}

// MARK: - the page, as the tests see it

extension Browser {
    /// Waits until the page has settled into one of its states (and, when ready, rendered).
    func waitForPage() async throws {
        try await wait("""
            (document.documentElement.dataset.vmmsStatus === 'ready' && document.documentElement.dataset.vmmsList === 'complete') ||
            ['delegated', 'not-authorized', 'service-down', 'failed'].includes(document.documentElement.dataset.vmmsStatus)
            """, timeout: 180)
    }

    func rowExpression(_ name: String) -> String {
        "document.querySelector(\(JSON.quote("tr.vm-row[data-name=\"\(name)\"]")))"
    }

    func rowNames() async throws -> [String] {
        try await eval("[...document.querySelectorAll('tr.vm-row')].map(row => row.dataset.name)").strings
    }

    func waitForState(_ name: String, _ state: String, timeout: Double = 10) async throws {
        do {
            try await wait("\(rowExpression(name))?.dataset.state === \(JSON.quote(state))", timeout: timeout)
        } catch {
            let shown = try? await eval("\(rowExpression(name))?.dataset.state ?? 'no row'")
            throw TestFailure("\(name) did not show \(state) within \(timeout) s (shows \(shown?.string ?? "?")): \(error)")
        }
    }

    func select(_ name: String) async throws {
        try await click("tr.vm-row[data-name=\"\(name)\"] input[type=checkbox]")
        try await wait("\(rowExpression(name)).getAttribute('aria-selected') === 'true'")
    }

    /// A button of the list's toolbar (start, shutdown, turnoff, save, pause, resume, reset, delete).
    func act(_ action: String) async throws {
        try await click(".vm-list .toolbar button[data-action=\"\(action)\"]")
    }

    /// Sets the text field labelled `label` in the open dialog.
    func setField(label: String, _ value: String) async throws {
        let id = try await eval("[...document.querySelectorAll('dialog label')].find(l => l.textContent === \(JSON.quote(label)))?.htmlFor").string
        guard let id else { throw TestFailure("no field labelled \(label)") }
        try await type("#\(id)", value)
    }

    /// Sets the field labelled `label` in the VM page's form `form` (processor, memory, …).
    func setPageField(form: String, label: String, _ value: String) async throws {
        let id = try await eval("[...document.querySelectorAll(\(JSON.quote("form[data-form=\"\(form)\"] label")))].find(l => l.textContent === \(JSON.quote(label)))?.htmlFor").string
        guard let id else { throw TestFailure("no field \(label) in the form \(form)") }
        try await type("#\(id)", value)
    }

    /// Submits a VM page form and waits until it says it saved, or throws with what it said.
    func submitPageForm(_ form: String) async throws {
        let scope = "form[data-form=\"\(form)\"]"
        try await click("\(scope) button[type=submit]")
        let outcome = try await wait("""
            (() => { const f = document.querySelector(\(JSON.quote(scope)));
                     if (f.querySelector('.form-done').textContent) return 'saved';
                     const e = [...f.querySelectorAll('.field-error, .inline-problem')].find(e => !e.hidden);
                     return e ? 'refused: ' + e.textContent : false; })()
            """, timeout: 60)
        guard outcome == "saved" else { throw TestFailure("\(form): \(outcome.string ?? "?")") }
    }

    func selectOption(label: String, _ value: String) async throws {
        let changed = try await eval("""
            (() => { const l = [...document.querySelectorAll('dialog label')].find(l => l.textContent === \(JSON.quote(label)));
                     const s = l && document.getElementById(l.htmlFor); if (!s) return false;
                     s.value = \(JSON.quote(value)); s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()
            """)
        guard changed == .bool(true) else { throw TestFailure("no select labelled \(label)") }
    }
}

extension RootClient {
    func lookup(_ name: String) async throws -> ObjectPath {
        let reply = try await call(Self.host, "org.example.VMMS1.Host", "LookupVM", [.string(name)])
        guard let path = reply.first?.objectPath else { throw TestFailure("LookupVM \(name): \(reply)") }
        return path
    }
}

// MARK: - polkit

/// A rules file of the test's own in /etc/polkit-1/rules.d (polkitd reloads on change).
struct PolkitRule {
    let path: String

    init(_ text: String) throws {
        path = "/etc/polkit-1/rules.d/39-vmms-cockpit-test-\(UUID().uuidString.prefix(8).lowercased()).rules"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Until polkitd has loaded the rule: `user` can read the VM's state.
    func waitUntil(user: String, canRead vm: ObjectPath) async throws {
        for _ in 0..<100 {
            let result = try await busctl(as: user, ["get-property", "org.example.VMMS1", vm.rawValue, "org.example.VMMS1.VM", "State"])
            if result.status == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("polkitd did not apply \(path) within 10 s")
    }
}
