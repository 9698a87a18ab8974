#!/usr/bin/env python3
"""make bench: the state read from an outside client, python3-dbus (libdbus underneath, as
most Python and desktop clients). Alternates Peer.Ping and Properties.Get(State) on one VM
object of org.example.VMMS1, prints {"ping": [ms...], "get": [ms...]} as JSON.

Usage: bench-python-client.py OBJECT_PATH ITERATIONS
"""
import json
import sys
import time

import dbus

path, iterations = sys.argv[1], int(sys.argv[2])
bus = dbus.SystemBus()
proxy = bus.get_object("org.example.VMMS1", path, introspect=False)
peer = dbus.Interface(proxy, "org.freedesktop.DBus.Peer")
properties = dbus.Interface(proxy, "org.freedesktop.DBus.Properties")
for _ in range(50):
    peer.Ping()
    properties.Get("org.example.VMMS1.VM", "State")
ping, get = [], []
for _ in range(iterations):
    start = time.perf_counter()
    peer.Ping()
    ping.append((time.perf_counter() - start) * 1000)
    start = time.perf_counter()
    properties.Get("org.example.VMMS1.VM", "State")
    get.append((time.perf_counter() - start) * 1000)
json.dump({"ping": ping, "get": get}, sys.stdout)
