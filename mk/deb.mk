# `make deb` (included by the Makefile): the Debian packages, built by the distribution's own
# tools from debian/ (dpkg-buildpackage -b: debhelper, `dh`, a static-stdlib release build).
#
#   make deb                   dist/vmms_<version>_amd64.deb, dist/cockpit-vmms_<version>_all.deb
#                              (+ .buildinfo, .changes), then lintian on them
#   make deb DEB_DIST=/tmp/x   somewhere else
#   make deb-version-check     only: debian/changelog and ServiceVersion agree
#   make deb-clean             removes dist/ (not another DEB_DIST), .build-deb and debian/'s build products (make clean too)
#
# The version lives in three places that must agree: ServiceVersion.current (what
# Host.ServiceVersion reports), vmmsctl's `version:` (vmmsctl --version; vmmsctl does not link
# the service module) and debian/changelog's top entry (the packages' version; a Debian
# revision such as 0.2.0-2 is allowed). deb refuses to build when they differ. SwiftPM's release build is kept in .build-deb for the next run.

DEB_PACKAGES := debhelper dpkg-dev fakeroot lintian
DEB_DEPS_STAMP := .build/.deb-deps-ok
DEB_DIST ?= $(CURDIR)/dist
# swift from PATH, else the toolchain this machine has in /opt/swift.
DEB_SWIFT ?= $(or $(shell command -v $(SWIFT) 2>/dev/null),/opt/swift/usr/bin/swift)
VMMS_SERVICE_VERSION_FILE ?= Sources/VMMSService/Host/HostInterface.swift
VMMSCTL_VERSION_FILE ?= Sources/vmmsctl/VMMSCtl.swift

.PHONY: deb deb-deps deb-version-check deb-clean

# make clean also removes the packages, the release build and dpkg-buildpackage's leftovers.
clean: deb-clean
deb-clean:
	rm -rf .build-deb dist debian/.debhelper debian/tmp debian/vmms debian/cockpit-vmms debian/files \
	  debian/*.substvars debian/*.debhelper debian/*.debhelper.log debian/debhelper-build-stamp

# The Makefile's deps recipe, run by a sub-make for the build and packaging tools (not the
# test stack); in that sub-make DEPS_STAMP is this stamp, and its rule is the Makefile's.
ifneq ($(DEPS_STAMP),$(DEB_DEPS_STAMP))
$(DEB_DEPS_STAMP):
	@$(MAKE) --no-print-directory deps DEPS_STAMP='$(DEB_DEPS_STAMP)' \
	  BUILD_PACKAGES='$(BUILD_PACKAGES) $(DEB_PACKAGES)' TEST_PACKAGES=
endif

deb-deps: $(DEB_DEPS_STAMP)

deb-version-check:
	@set -euo pipefail; \
	service=$$(sed -n 's/^ *public static let current = "\([^"]*\)".*/\1/p' $(VMMS_SERVICE_VERSION_FILE)); \
	client=$$(sed -n 's/^ *version: "\([^"]*\)",.*/\1/p' $(VMMSCTL_VERSION_FILE)); \
	changelog=$$(dpkg-parsechangelog -S Version); \
	upstream=$${changelog#*:}; upstream=$${upstream%-*}; \
	if [ -z "$$service" ] || [ "$$service" != "$$upstream" ] || [ "$$client" != "$$upstream" ]; then \
	  echo "deb: debian/changelog says $$changelog, ServiceVersion.current in $(VMMS_SERVICE_VERSION_FILE) says" \
	       "'$$service', vmmsctl's version in $(VMMSCTL_VERSION_FILE) says '$$client': make them agree" \
	       "(dch -v NEW, then the two Swift constants)" >&2; exit 1; \
	fi; \
	echo "deb: version $$changelog (ServiceVersion $$service, vmmsctl $$client)"

deb: $(DEB_DEPS_STAMP) deb-version-check
	@set -euo pipefail; \
	version=$$(dpkg-parsechangelog -S Version); version=$${version#*:}; \
	arch=$$(dpkg-architecture -q DEB_HOST_ARCH); \
	mkdir -p '$(DEB_DIST)'; \
	rm -f '$(DEB_DIST)'/vmms_*.deb '$(DEB_DIST)'/cockpit-vmms_*.deb '$(DEB_DIST)'/vmms_*.buildinfo '$(DEB_DIST)'/vmms_*.changes; \
	PATH="$$(dirname '$(DEB_SWIFT)'):$$PATH" SWIFT='$(DEB_SWIFT)' VMMS_DEB_DIST='$(DEB_DIST)' \
	  dpkg-buildpackage -b -us -uc \
	    --buildinfo-option=-u'$(DEB_DIST)' --buildinfo-file='$(DEB_DIST)'/vmms_$${version}_$$arch.buildinfo \
	    --changes-option=-u'$(DEB_DIST)' --changes-file='$(DEB_DIST)'/vmms_$${version}_$$arch.changes; \
	echo "deb: lintian"; \
	lintian --info --display-info --fail-on error '$(DEB_DIST)'/vmms_$${version}_$$arch.changes; \
	ls -l '$(DEB_DIST)'/*_$${version}_*.deb
