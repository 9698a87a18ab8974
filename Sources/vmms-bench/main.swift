// vmms-bench: vmms against libvirt-dbus, on the same system bus and the same libvirtd.
// `scripts/bench.sh` (`make bench`) builds and runs it; see `vmms-bench --help`.

/// An async context, so that the async `main()` of AsyncParsableCommand is the one chosen.
func entryPoint() async {
    await VMMSBench.main()
}

await entryPoint()
