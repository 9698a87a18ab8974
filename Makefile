# vmms — make run | make test | make deps
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
RUN_DIR := $(CURDIR)/.run

# Debian packages the build and the tests need; `deps` installs the missing ones.
BUILD_PACKAGES := libdbus-1-dev libvirt-dev pkg-config
TEST_PACKAGES := dbus-daemon dbus-bin systemd libglib2.0-bin libvirt-daemon libvirt-clients \
                 libvirt-daemon-driver-qemu
# SANs: libvirt's iscsi-direct pool, QEMU's iSCSI driver and qemu-img (LUN sizes), tgt for the tests.
TEST_PACKAGES += libvirt-daemon-driver-storage-iscsi-direct qemu-block-extra qemu-utils tgt
# libvirt's network driver (switches): dnsmasq for DHCP, iptables for NAT; busybox's udhcpc
# is the DHCP client of the switch tests.
TEST_PACKAGES += dnsmasq-base iptables busybox
# socat: the migration tests' relay that lets the second host reach this libvirtd (moves back).
TEST_PACKAGES += socat
DEPS_STAMP := .build/.deps-ok

.PHONY: all build run test test-unit test-integration deps clean bench
.PHONY: bench-jobs
.PHONY: bench-migration

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
# VMMSD_BIN=path runs that binary instead of building (the tests do, from inside swift test).
run: $(if $(VMMSD_BIN),deps,build)
	@scripts/run.sh "$(if $(VMMSD_BIN),$(VMMSD_BIN),$$($(SWIFT) build --show-bin-path)/vmmsd)" $(RUN_DIR)

# Everything: unit tests, private-bus tests, and (as root) the real stack: system bus,
# polkitd with our policy and rules, libvirtd + QEMU, and the test users.
# The locale and terminal the tests see are fixed here, not inherited: Cockpit's bridge needs a
# generated locale (C.UTF-8 always is), and vmmsctl's colour tests set TERM and NO_COLOR per run.
test: export LANG := C.UTF-8
test: export LC_ALL := C.UTF-8
test: export TERM := dumb
test: export NO_COLOR :=
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

# make bench at 1,000 and 10,000 VMs and how every figure grew between them (root; ~15 min).
.PHONY: bench-scale
bench-scale: deps
	scripts/bench-scale.sh $(BENCH_ARGS)

# Export and storage Move jobs against qemu-img convert, cp --sparse=always and virsh blockcopy.
bench-jobs: deps
	scripts/bench-jobs.sh
# Checkpoint + Apply of a running 256 MiB VM against virsh snapshot-create-as --memspec (root).
.PHONY: bench-checkpoints
bench-checkpoints: build
	scripts/bench-checkpoints.sh $(BENCH_ROUNDS)

# Move of a running 256 MiB VM to a second host on this machine against virsh migrate --live.
bench-migration: deps
	swift build --build-tests
	VMMS_BENCH=1 VMMS_INTEGRATION=1 swift test --skip-build --filter 'MigrationTests/bench'

# The vmms page against cockpit-machines in headless Chromium with N VMs (root): time to the
# first full list; table on stdout, bench/cockpit-results.json. BENCH_ARGS="--vms 200 --runs 3".
.PHONY: bench-cockpit
bench-cockpit: deps
	scripts/bench-cockpit.sh $(BENCH_ARGS)

clean:
	rm -rf .build .build-bench $(RUN_DIR)

# make install / make uninstall [PREFIX=/usr/local] [DESTDIR=] [VMMSD_BIN=...]: see mk/install.mk
include $(CURDIR)/mk/install.mk

# make deb [DEB_DIST=dist]: Debian packages vmms and cockpit-vmms from debian/: see mk/deb.mk
include $(CURDIR)/mk/deb.mk
