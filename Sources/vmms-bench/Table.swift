import Foundation

extension Runner {
    func printTable(_ r: Report) {
        func ms(_ x: Double) -> String {
            guard x.isFinite else { return "-" }
            if x >= 1000 { return String(format: "%.2f s", x / 1000) }
            if x >= 10 { return String(format: "%.1f ms", x) }
            return String(format: "%.3f ms", x)
        }
        func ratio(_ a: Double, _ b: Double) -> String {
            guard a.isFinite, b.isFinite, b > 0 else { return "-" }
            let x = a / b
            return x < 0.01 ? String(format: "%.5f (1/%.0f)", x, 1 / x) : String(format: "%.2f", x)
        }
        var rows: [[String]] = [["scenario", "vmms median", "vmms p99", "libvirt-dbus median", "libvirt-dbus p99", "ratio vmms/libvirt-dbus"]]
        func row(_ name: String, _ v: Summary?, _ l: Summary?) {
            rows.append([name, v.map { ms($0.median) } ?? "-", v.map { ms($0.p99) } ?? "-",
                         l.map { ms($0.median) } ?? "-", l.map { ms($0.p99) } ?? "-",
                         (v != nil && l != nil) ? ratio(v?.median ?? .nan, l?.median ?? .nan) : "-"])
        }
        let i = r.inventory
        row("1. inventory, \(i.vms) VMs (libvirt-dbus: 1 call after the other)", i.vmms, i.libvirtSequential)
        if let p = i.libvirtPipelined { row("1. inventory, \(i.vms) VMs (libvirt-dbus: \(i.libvirtPipelinedWindow) domains in flight)", i.vmms, p) }
        if let floor = i.busFloor { row("1.   the same reply through dbus-daemon alone (floor)", floor, nil) }
        let s = r.stateRead
        row("2. Peer.Ping floor, root", s.rootPing, nil)
        row("2. state read, root (vs libvirt-dbus GetState)", s.rootGet, s.libvirtGetState)
        row("2. Peer.Ping floor, \(s.user)", s.userPing, nil)
        row("2. state read, \(s.user) (vs libvirt-dbus GetState as root)", s.userGet, s.libvirtGetState)
        row("2. Peer.Ping floor, \(s.user), python3-dbus", s.pythonPing, nil)
        row("2. state read, \(s.user), python3-dbus", s.pythonGet, s.libvirtGetState)
        let p = r.power
        row("3. Pause+Resume (vmms: \(p.vmmsCaller), libvirt-dbus: root)", p.vmmsPair, p.libvirtPair)
        row("3.   Pause / Suspend", p.vmmsPause, p.libvirtSuspend)
        row("3.   Resume", p.vmmsResume, p.libvirtResume)
        row("3. Pause+Resume (vmms: root, libvirt-dbus: root)", p.rootPair, p.libvirtPair)
        row("3.   Pause / Suspend, root", p.rootPause, p.libvirtSuspend)
        row("3.   Resume, root", p.rootResume, p.libvirtResume)
        row("3. polkitd alone: CheckAuthorization vm.power as \(s.user)", p.polkitAlone, nil)
        if let onBehalf = p.polkitOnBehalf {
            row("3. polkitd alone, as vmmsd asks: root, for \(s.user)'s bus name, details", onBehalf, nil)
        }
        if let pair = p.libvirtAPIPair {
            row("3. libvirt API alone: virDomainSuspend+virDomainResume (no D-Bus)", pair, nil)
        }
        let e = r.events
        row("4. virsh suspend/resume -> signal", e.vmms, e.libvirt)
        row("4.   (virsh's own wall time)", e.virshWall, nil)
        row("4. libvirt's own event -> signal", e.vmmsFromLibvirtEvent, e.libvirtDBusFromLibvirtEvent)
        row("5. vmmsd start -> GetManagedObjects with N VMs", r.footprint.vmmsdReady, nil)

        var widths = [Int](repeating: 0, count: rows[0].count)
        for cells in rows { for (k, c) in cells.enumerated() { widths[k] = max(widths[k], c.count) } }
        func line(_ cells: [String]) -> String {
            "| " + cells.enumerated().map { k, c in k == 0 ? c.padding(toLength: widths[k], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[k] - c.count) + c }.joined(separator: " | ") + " |"
        }
        var out = ""
        out += "vmms-bench: N = \(r.vms) VMs, \(r.machine.cpus) cores, \(r.machine.memoryGiB) GiB, \(r.machine.os), kernel \(r.machine.kernel), \(r.machine.date)\n\n"
        out += line(rows[0]) + "\n"
        out += "|" + widths.enumerated().map { k, w in k == 0 ? String(repeating: "-", count: w + 2) : String(repeating: "-", count: w + 1) + ":" }.joined(separator: "|") + "|\n"
        for cells in rows.dropFirst() { out += line(cells) + "\n" }

        let f = r.footprint
        out += "\n5. RSS after the inventory: vmmsd \(String(format: "%.1f", Double(f.vmmsdRSSKiB) / 1024)) MiB (peak \(String(format: "%.1f", Double(f.vmmsdHWMKiB) / 1024)) MiB), "
        out += "libvirt-dbus \(String(format: "%.1f", Double(f.libvirtDBusRSSKiB) / 1024)) MiB (peak \(String(format: "%.1f", Double(f.libvirtDBusHWMKiB) / 1024)) MiB)\n"
        out += "5. vmmsd ready times: " + f.vmmsdReadyMs.map { String(format: "%.0f ms", $0) }.joined(separator: ", ") + "\n"
        let cv = r.concurrency.vmms, cl = r.concurrency.libvirt
        out += String(format: "6. %d clients for %.1f s (%d doing Pause/Resume on their own VM, the rest reading State of random VMs):\n",
                      cv.clients, cv.seconds, cv.powerClients)
        out += String(format: "   vmms (as %@):      %.0f ops/s (%.0f reads/s, %.1f power ops/s), read p99 %@, power p99 %@, errors %d\n",
                      r.concurrency.vmmsCaller, cv.opsPerSecond, cv.readsPerSecond, cv.powerOpsPerSecond, ms(cv.readLatency.p99), ms(cv.powerLatency.p99), cv.errors)
        out += String(format: "   libvirt-dbus (root): %.0f ops/s (%.0f reads/s, %.1f power ops/s), read p99 %@, power p99 %@, errors %d\n",
                      cl.opsPerSecond, cl.readsPerSecond, cl.powerOpsPerSecond, ms(cl.readLatency.p99), ms(cl.powerLatency.p99), cl.errors)
        for error in cv.firstErrors + cl.firstErrors { out += "   error: \(error)\n" }
        if !p.libvirtRefusedUser.isEmpty {
            out += "3. libvirt-dbus refuses \(s.user) (\(p.libvirtRefusedUser)), so its calls ran as root.\n"
        }
        if e.missedVMMS + e.missedLibvirt > 0 { out += "4. missed signals: vmms \(e.missedVMMS), libvirt-dbus \(e.missedLibvirt)\n" }
        out += "\nTargets:\n"
        for t in r.targets { out += "  [\(t.met ? "met" : "MISSED")] \(t.name): \(t.measured) (target \(t.target))\n" }
        out += String(format: "\nsetup %.1f s, bench total %.1f s\n", r.setupSeconds, r.totalSeconds)
        print(out, terminator: "")
    }
}
