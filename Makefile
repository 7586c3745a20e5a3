# SPDX-License-Identifier: MIT
# Sluice -- one non-recursive build (after libbpf-bootstrap).
#
#   bpf/x.bpf.c --clang -target bpf--> $(OUTPUT)/x.bpf.o --bpftool gen skeleton--> $(OUTPUT)/x.skel.h
#   user/**/*.c  --> $(OUTPUT)/libsluice.a (everything but the daemon's main)
#   each folder's own rules (generated headers, skeleton users) sit in its *.mk fragment
#   tools/*, tests/* link against libsluice.a (or the few objects they need), each binary
#   with only the libraries it uses
#
# Folder fragments (*/*.mk) add binaries to BINS. `make help` lists the targets.

OUTPUT		?= .output
ARCH		:= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG		?= clang
CC		?= cc
BPFTOOL		?= bpftool
PREFIX		?= /usr/local
VERSION		:= $(shell cat VERSION)

VMLINUX		:= vmlinux/$(ARCH)/vmlinux.h
INCLUDES	:= -Iinclude -I$(OUTPUT) -Iuser -I/usr/include/postgresql
CFLAGS		?= -O2 -g
CFLAGS		+= -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -pthread $(INCLUDES) \
		   -D_GNU_SOURCE -DSLUICE_VERSION='"$(VERSION)"' -MMD -MP $(EXTRA_CFLAGS)
BPF_CFLAGS	:= -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
		   -I$(dir $(VMLINUX)) -Iinclude -Ibpf
# No global library list: each link rule names the libraries its binary uses, so readelf -d
# shows exactly those as NEEDED. --as-needed stays as a guard: a library still named but no
# longer used drops out of NEEDED instead of being loaded for nothing.
LDFLAGS		+= -Wl,--as-needed -pthread

ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.PHONY: all clean help test bench check install run deps deploy-gen FORCE

# Dependencies: tools/setup runs only when a package it names is missing.
# SETUP=true skips it where the packages come from elsewhere (the Dockerfile's build stage).
SETUP		?= tools/setup
DEPS_STAMP := $(OUTPUT)/.deps
$(DEPS_STAMP): tools/setup | $(OUTPUT)
	$(call msg,SETUP,$(SETUP))
	$(Q)$(SETUP)
	$(Q)touch $@

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/tests $(OUTPUT)/tools:
	$(Q)mkdir -p $@

# ---- BPF objects and skeletons -------------------------------------------------------
BPF_SRCS	:= $(wildcard bpf/*.bpf.c)
BPF_OBJS	:= $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.bpf.o,$(BPF_SRCS))
BPF_SKELS	:= $(patsubst bpf/%.bpf.c,$(OUTPUT)/%.skel.h,$(BPF_SRCS))
BPF_HDRS	:= $(wildcard bpf/*.bpf.h) include/sluice/abi.h include/sluice/gcra.h

$(OUTPUT)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(VMLINUX) | $(DEPS_STAMP)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUTPUT)/%.skel.h: $(OUTPUT)/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

# ---- user library --------------------------------------------------------------------
USER_SRCS	:= $(filter-out user/sluiced.c,$(shell find user -name '*.c' 2>/dev/null))
USER_OBJS	:= $(patsubst %.c,$(OUTPUT)/%.o,$(USER_SRCS))
LIBSLUICE	:= $(OUTPUT)/libsluice.a

$(OUTPUT)/%.o: %.c | $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBSLUICE): $(USER_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# Fragments add to BINS (and to TEST_SRCS, BENCH_BINS: what benchmarks need built, BENCH_RUN:
# the benchmark commands `make bench` runs) and bring their own link rules.
BINS		:=
TEST_SRCS	:=
BENCH_BINS	:=
BENCH_RUN	:=
include $(sort $(shell find user bpf tests tools -name '*.mk'))

all: $(BPF_OBJS) $(LIBSLUICE) $(BINS) ## build everything

test: all $(TEST_BINS) ## run every test (SEED=N: shuffled order); ends with "tests: N passed, M failed, K skipped"
	$(Q)tests/run

bench: all $(BENCH_BINS) ## run the benchmarks (BENCH=name to pick) and print ratios to their anchors
	$(Q)BENCH_RUN="$(BENCH_RUN)" tools/bench/run $(BENCH)

check: ## clang-format check, cppcheck, and the tests under ASan/UBSan
	$(Q)tools/check

deps: $(USER_OBJS) $(OUTPUT)/user/sluiced.o ## fail on any call cycle between files or folders of user/ (from nm)
	$(Q)tools/deps --check --objs $(OUTPUT) $^

SYSTEMD_UNITDIR	?= /lib/systemd/system
SYSUSERSDIR	?= /usr/lib/sysusers.d
SYSCONFDIR	?= /etc

# The unit names $(PREFIX)/bin/sluiced; example settings go to /etc/sluice only where none are
# yet (an upgrade never overwrites an operator's files); the user comes from sysusers.d
# (systemd-sysusers runs when DESTDIR is empty, i.e. on the machine itself).
install: all ## install sluiced, sluicectl, the BPF object, the systemd unit, its user and example config
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/sluice \
		$(DESTDIR)$(PREFIX)/share/doc/sluice $(DESTDIR)$(SYSTEMD_UNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(SYSCONFDIR)/sluice
	install -m755 $(filter $(OUTPUT)/sluicectl $(OUTPUT)/sluiced,$(BINS)) $(DESTDIR)$(PREFIX)/bin/
	install -m644 $(OUTPUT)/admission.bpf.o $(DESTDIR)$(PREFIX)/lib/sluice/
	install -m644 docs/deploy.md docs/runbook.md $(DESTDIR)$(PREFIX)/share/doc/sluice/
	sed 's|/usr/local/|$(PREFIX)/|g' deploy/systemd/sluiced.service > $(DESTDIR)$(SYSTEMD_UNITDIR)/sluiced.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNITDIR)/sluiced.service
	install -m644 deploy/systemd/sluice.sysusers $(DESTDIR)$(SYSUSERSDIR)/sluice.conf
	for f in deploy/systemd/sluiced.conf deploy/config/tenants.ini deploy/config/routes.ini; do \
		[ -e $(DESTDIR)$(SYSCONFDIR)/sluice/$${f##*/} ] || \
			install -m640 $$f $(DESTDIR)$(SYSCONFDIR)/sluice/; done
	[ -n "$(DESTDIR)" ] || ! command -v systemd-sysusers >/dev/null || \
		systemd-sysusers $(SYSUSERSDIR)/sluice.conf

deploy-gen: $(DEPS_STAMP) ## rewrite deploy/ files derived from another (PrometheusRule, seccomp profile)
	$(Q)node tools/deploy/gen.mjs

run: ## install, start local PostgreSQL and Redis, run sluiced with the journal and XDP (IFACE=lo; TLS=1 adds HTTPS; QUEUE=kafka: mock Kafka, ingress + worker)
	$(Q)TLS=$(TLS) QUEUE=$(QUEUE) tools/run

clean: ## remove the build directory
	$(call msg,CLEAN,$(OUTPUT))
	$(Q)rm -rf $(OUTPUT)

help: ## this list
	@echo "Sluice build. Targets:"
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 12
	@echo "Variables: V=1 (show commands), OUTPUT=dir (build dir, default .output), CC, CLANG, PREFIX"

-include $(shell find $(OUTPUT) -name '*.d' 2>/dev/null)
