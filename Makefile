# vmms — make run | make test | make deps
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
RUN_DIR := $(CURDIR)/.run

# Debian packages the build and the tests need; `deps` installs the missing ones.
BUILD_PACKAGES := libdbus-1-dev libvirt-dev libpolkit-gobject-1-dev pkg-config
TEST_PACKAGES := dbus-daemon dbus-bin systemd libglib2.0-bin libvirt-daemon libvirt-clients \
                 libvirt-daemon-driver-qemu
DEPS_STAMP := .build/.deps-ok

.PHONY: all build run test test-unit test-integration deps clean bench

all: build

$(DEPS_STAMP):
	@missing=""; for p in $(BUILD_PACKAGES) $(TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then echo "deps: run as root, or: sudo apt-get install$$missing" >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@mkdir -p .build && touch $@

deps: $(DEPS_STAMP)

build: deps
	$(SWIFT) build --product vmmsd

# A private session bus and libvirt's built-in test driver: no root, no libvirtd.
run: build
	@mkdir -p $(RUN_DIR)
	@rm -f $(RUN_DIR)/bus
	@trap 'kill $$VMMSD $$BUS 2>/dev/null; wait 2>/dev/null; echo; echo "vmms stopped."' EXIT INT TERM; \
	dbus-daemon --session --nofork --nopidfile --address=unix:path=$(RUN_DIR)/bus & BUS=$$!; \
	for i in $$(seq 100); do [ -S $(RUN_DIR)/bus ] && break; sleep 0.05; done; \
	$(SWIFT) build --product vmmsd --show-bin-path >/dev/null; \
	"$$($(SWIFT) build --show-bin-path)/vmmsd" --address unix:path=$(RUN_DIR)/bus --connect test:///default \
	  --state-dir $(RUN_DIR)/state & VMMSD=$$!; \
	echo; echo "vmms is running on a private bus. Try, in another terminal:"; \
	echo "  busctl --address=unix:path=$(RUN_DIR)/bus introspect org.example.VMMS1 /org/example/VMMS1/Host"; \
	echo "  gdbus call --address unix:path=$(RUN_DIR)/bus --dest org.example.VMMS1 --object-path /org/example/VMMS1 \\"; \
	echo "        --method org.freedesktop.DBus.ObjectManager.GetManagedObjects"; \
	echo "Press Ctrl-C to stop."; echo; \
	wait $$VMMSD

# Everything: unit tests, private-bus tests, and (as root) the real stack: system bus,
# polkitd with our policy and rules, libvirtd + QEMU, and the test users.
test: deps
	$(SWIFT) build --build-tests
	@if [ "$$(id -u)" -eq 0 ]; then \
	  scripts/stack.sh up && \
	  VMMS_INTEGRATION=1 VMMS_POLKIT_TESTS=1 $(SWIFT) test --skip-build; \
	else \
	  echo "test: not root, so the real-stack tests are skipped (they say so below)"; \
	  $(SWIFT) test --skip-build; \
	fi

# vmms against libvirt-dbus on the real stack (root): table on stdout, bench/results.json.
# Options through BENCH_ARGS, e.g. make bench BENCH_ARGS="--vms 200".
bench: deps
	scripts/bench.sh $(BENCH_ARGS)

clean:
	rm -rf .build .build-bench $(RUN_DIR)

# make install / make uninstall [PREFIX=/usr/local] [DESTDIR=] [VMMSD_BIN=...]: see mk/install.mk
include $(CURDIR)/mk/install.mk
