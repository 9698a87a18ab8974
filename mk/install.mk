# `make install` / `make uninstall` (included by the Makefile).
#
#   make install                                 release build, installed under /usr/local
#   make install PREFIX=/usr DESTDIR=$(pwd)/pkg  staging root for a package
#   make install VMMSD_BIN=.build/debug/vmmsd VMMSCTL_BIN=.build/debug/vmmsctl
#                                                install existing binaries, no build
#   make uninstall [same variables]              removes exactly what install put there
#
# Where the files go is decided by the programs that read them, not only by PREFIX
# (checked on Debian 12):
#   - dbus-daemon reads bus policies from /usr/share/dbus-1/system.d and /etc/dbus-1/system.d
#     only, so the policy goes to /usr/share/dbus-1/system.d for PREFIX=/usr (where Debian
#     packages put theirs, debian/) and to $(SYSCONFDIR)/dbus-1/system.d otherwise. Its activation files are
#     searched in /usr/local/share/dbus-1/system-services, /usr/share/... and /lib/...
#     (<standard_system_servicedirs/>), so $(DATADIR)/dbus-1/system-services works for
#     PREFIX=/usr/local and /usr.
#   - polkitd (122) reads actions from /usr/share/polkit-1/actions only (compiled in),
#     whatever the prefix; rules from /etc/polkit-1/rules.d and /usr/share/polkit-1/rules.d:
#     the rules go to /usr/share/polkit-1/rules.d for PREFIX=/usr, /etc/polkit-1/rules.d otherwise.
#   - vmmsd is not run by users: $(LIBEXECDIR)/vmms/vmmsd (PKGLIBEXECDIR); the unit's ExecStart=
#     and the activation file's Exec= get that path (@PKGLIBEXECDIR@) at install time.
#   - systemd's unit path and systemd-sysusers both include /usr/local/lib/..., so
#     $(PREFIX)/lib/systemd/system and $(PREFIX)/lib/sysusers.d work for both prefixes. But
#     PREFIX=/usr puts the unit in /lib/systemd/system: Debian 12's packages do (the move to
#     /usr/lib came with Debian 13), and its debhelper (13.11) finds units only there, so the
#     package's maintainer scripts would not enable, start and restart it otherwise. With
#     merged /usr it is the same directory.
#   - vmmsd reads /etc/vmms/vmmsd.conf (its --config default): keep SYSCONFDIR=/etc.
#   - vmmsctl's completions: bash-completion and fish search every XDG data directory
#     (/usr/local/share and /usr/share), so $(DATADIR)/bash-completion/completions and
#     $(DATADIR)/fish/vendor_completions.d work for both prefixes. Debian's zsh has
#     /usr/share/zsh/vendor-completions and /usr/local/share/zsh/site-functions in its fpath
#     (not /usr/local/share/zsh/vendor-completions), hence the two zsh defaults. man-db reads
#     /usr/share/man and /usr/local/share/man.
#   - cockpit-bridge finds packages in $XDG_DATA_DIRS/cockpit (default /usr/local/share and
#     /usr/share), so the web console goes to $(DATADIR)/cockpit/vmms for both prefixes.

DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec
PKGLIBEXECDIR ?= $(LIBEXECDIR)/vmms
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
BASH_COMPLETIONSDIR ?= $(DATADIR)/bash-completion/completions
ZSH_COMPLETIONSDIR ?= $(if $(filter /usr,$(PREFIX)),$(DATADIR)/zsh/vendor-completions,$(DATADIR)/zsh/site-functions)
FISH_COMPLETIONSDIR ?= $(DATADIR)/fish/vendor_completions.d
SYSCONFDIR ?= /etc
DBUS_INTERFACESDIR ?= $(DATADIR)/dbus-1/interfaces
DBUS_SYSTEM_SERVICESDIR ?= $(DATADIR)/dbus-1/system-services
DBUS_POLICYDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/share/dbus-1/system.d,$(SYSCONFDIR)/dbus-1/system.d)
POLKIT_ACTIONDIR ?= /usr/share/polkit-1/actions
POLKIT_RULESDIR ?= $(if $(filter /usr,$(PREFIX)),/usr/share/polkit-1/rules.d,$(SYSCONFDIR)/polkit-1/rules.d)
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
VMMS_CONFDIR ?= $(SYSCONFDIR)/vmms
COCKPITDIR ?= $(DATADIR)/cockpit/vmms
# An existing vmmsd / vmmsctl to install; empty: `swift build -c release --product …` first.
VMMSD_BIN ?=
VMMSCTL_BIN ?=
# Extra arguments for that release build (e.g. --scratch-path .build-release).
SWIFT_BUILD_FLAGS ?=

# The group named in the bus policy, the polkit rules and systemd/vmms-sysusers.conf.
VMMS_ADMIN_GROUP := vmms-admins

# Every installed file, as KIND:SOURCE:DESTINATION (without DESTDIR). install and
# uninstall both walk this one list, so they cannot diverge. KIND:
#   bin     the binary named SOURCE (vmmsd or vmmsctl: VMMSD_BIN / VMMSCTL_BIN or the
#           release build), 0755
#   gen     what `vmmsctl SOURCE` prints (completion scripts, the man page), 0644
#   data    copied as is, 0644
#   subst   copied with @PKGLIBEXECDIR@ replaced, 0644
#   config  installed only if absent, removed only while identical to SOURCE, 0644
VMMS_INTERFACE_XML = $(sort $(wildcard dbus/org.example.VMMS1.*.xml))
# The Cockpit page: every file of cockpit/ (manifest, HTML, modules, CSS), none generated.
VMMS_COCKPIT_FILES = $(sort $(wildcard cockpit/*))
VMMS_INSTALL_FILES = \
	bin:vmmsd:$(PKGLIBEXECDIR)/vmmsd \
	bin:vmmsctl:$(BINDIR)/vmmsctl \
	gen:--generate-completion-script=bash:$(BASH_COMPLETIONSDIR)/vmmsctl \
	gen:--generate-completion-script=zsh:$(ZSH_COMPLETIONSDIR)/_vmmsctl \
	gen:--generate-completion-script=fish:$(FISH_COMPLETIONSDIR)/vmmsctl.fish \
	gen:--generate-manual:$(MANDIR)/man1/vmmsctl.1 \
	$(foreach f,$(VMMS_INTERFACE_XML),data:$(f):$(DBUS_INTERFACESDIR)/$(notdir $(f))) \
	data:dbus/org.example.VMMS1.conf:$(DBUS_POLICYDIR)/org.example.VMMS1.conf \
	subst:dbus/org.example.VMMS1.service:$(DBUS_SYSTEM_SERVICESDIR)/org.example.VMMS1.service \
	data:polkit/org.example.vmms1.policy:$(POLKIT_ACTIONDIR)/org.example.vmms1.policy \
	data:polkit/50-org.example.vmms1.rules:$(POLKIT_RULESDIR)/50-org.example.vmms1.rules \
	subst:systemd/vmms.service:$(SYSTEMDUNITDIR)/vmms.service \
	data:systemd/vmms-sysusers.conf:$(SYSUSERSDIR)/vmms.conf \
	config:etc/vmmsd.conf:$(VMMS_CONFDIR)/vmmsd.conf \
	$(foreach f,$(VMMS_COCKPIT_FILES),data:$(f):$(COCKPITDIR)/$(notdir $(f)))

# Ask the running system bus to re-read its policies and activation files; no bus, no error.
define VMMS_RELOAD_SYSTEM_BUS
if dbus-send --system --print-reply --reply-timeout=5000 --dest=org.freedesktop.DBus \
     /org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1; then \
  echo "$@: system bus reloaded its configuration"; \
else \
  echo "$@: no system bus answered ReloadConfig (ignored)"; \
fi
endef

.PHONY: install uninstall vmmsd-release vmmsctl-release

vmmsd-release: deps
	$(SWIFT) build -c release --product vmmsd $(SWIFT_BUILD_FLAGS)

vmmsctl-release: deps
	$(SWIFT) build -c release --product vmmsctl $(SWIFT_BUILD_FLAGS)

install: $(if $(VMMSD_BIN),,vmmsd-release) $(if $(VMMSCTL_BIN),,vmmsctl-release)
	@set -euo pipefail; \
	vmmsd='$(VMMSD_BIN)'; vmmsctl='$(VMMSCTL_BIN)'; \
	if [ -z "$$vmmsd" ] || [ -z "$$vmmsctl" ]; then \
	  release="$$($(SWIFT) build -c release --show-bin-path $(SWIFT_BUILD_FLAGS))"; \
	  vmmsd="$${vmmsd:-$$release/vmmsd}"; vmmsctl="$${vmmsctl:-$$release/vmmsctl}"; \
	fi; \
	for binary in "$$vmmsd" "$$vmmsctl"; do \
	  [ -f "$$binary" ] && [ -x "$$binary" ] || { echo "install: no executable at $$binary" >&2; exit 1; }; \
	done; \
	tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	for entry in $(VMMS_INSTALL_FILES); do \
	  IFS=: read -r kind src dst <<<"$$entry"; \
	  target='$(DESTDIR)'"$$dst"; \
	  case $$kind in \
	    bin)    case $$src in vmmsd) binary="$$vmmsd" ;; vmmsctl) binary="$$vmmsctl" ;; \
	              *) echo "install: bad entry $$entry" >&2; exit 1 ;; esac; \
	            install -D -m 0755 "$$binary" "$$target" ;; \
	    gen)    "$$vmmsctl" "$$src" >"$$tmp"; \
	            [ -s "$$tmp" ] || { echo "install: vmmsctl $$src printed nothing" >&2; exit 1; }; \
	            install -D -m 0644 "$$tmp" "$$target" ;; \
	    data)   install -D -m 0644 "$$src" "$$target" ;; \
	    subst)  sed 's|@PKGLIBEXECDIR@|$(PKGLIBEXECDIR)|g' "$$src" >"$$tmp"; \
	            if grep -n '@[A-Z_]*@' "$$tmp" >&2; then echo "install: unreplaced placeholder in $$src" >&2; exit 1; fi; \
	            install -D -m 0644 "$$tmp" "$$target" ;; \
	    config) if [ -e "$$target" ]; then echo "install: keeping existing $$target"; continue; fi; \
	            install -D -m 0644 "$$src" "$$target" ;; \
	    *)      echo "install: bad entry $$entry" >&2; exit 1 ;; \
	  esac; \
	  echo "install: $$target"; \
	done; \
	if [ -z '$(DESTDIR)' ]; then \
	  if ! getent group $(VMMS_ADMIN_GROUP) >/dev/null; then \
	    if command -v systemd-sysusers >/dev/null; then systemd-sysusers '$(SYSUSERSDIR)/vmms.conf'; \
	    else groupadd --system $(VMMS_ADMIN_GROUP); fi; \
	    getent group $(VMMS_ADMIN_GROUP) >/dev/null || { echo "install: could not create group $(VMMS_ADMIN_GROUP)" >&2; exit 1; }; \
	    echo "install: created group $(VMMS_ADMIN_GROUP)"; \
	  fi; \
	  $(VMMS_RELOAD_SYSTEM_BUS); \
	fi

# Removes the files of VMMS_INSTALL_FILES (the config only while unchanged) and
# $(VMMS_CONFDIR) and $(COCKPITDIR) if that leaves them empty. Shared directories, the
# vmms-admins group and /var/lib/vmms (state the service wrote) stay.
uninstall:
	@set -euo pipefail; \
	for entry in $(VMMS_INSTALL_FILES); do \
	  IFS=: read -r kind src dst <<<"$$entry"; \
	  target='$(DESTDIR)'"$$dst"; \
	  [ -e "$$target" ] || [ -L "$$target" ] || continue; \
	  if [ "$$kind" = config ] && ! cmp -s "$$src" "$$target"; then \
	    echo "uninstall: keeping $$target (changed by the administrator)"; continue; \
	  fi; \
	  rm -f "$$target"; \
	  echo "uninstall: removed $$target"; \
	done; \
	for dir in '$(DESTDIR)$(VMMS_CONFDIR)' '$(DESTDIR)$(COCKPITDIR)' '$(DESTDIR)$(PKGLIBEXECDIR)'; do \
	  if [ -d "$$dir" ]; then rmdir --ignore-fail-on-non-empty "$$dir"; fi; \
	done; \
	if [ -z '$(DESTDIR)' ]; then $(VMMS_RELOAD_SYSTEM_BUS); fi
