# airlock — plain Makefile, pkg-config for every library.
#
#   make              build/airlock, build/airlockd, build/probe (static
#                     test probe)
#   make SAN=1        the same with -fsanitize=address,undefined into build-asan/
#   make check        install missing packages, build both, run every test
#   make check-vm     the suite in a booted Debian 12 guest: systemd as PID 1,
#                     cgroup v2 (tests/vm/, docs/ci.md)
#   make demo         install missing packages, build, run sample modules
#   make bench        side-by-side start-up benchmarks (bench/)
#   make bench-learn  the cost of syscall learning (bench/airlock_learn.c)
#   make format-check the lines that differ from .clang-format (fails if any)
#   make install      PREFIX=/usr/local DESTDIR=

PREFIX ?= /usr/local
DESTDIR ?=
CC ?= cc
PKG_CONFIG ?= pkg-config

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-asan
MODE_CFLAGS := -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
MODE_LDFLAGS := -fsanitize=address,undefined
else
BUILD ?= build
MODE_CFLAGS := -O2 -D_FORTIFY_SOURCE=3
MODE_LDFLAGS :=
endif

PKGS := libseccomp libcap libcgroup nettle inih sqlite3 zlib
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)
# libmicrohttpd (airlockd's HTTP for /metrics) is always linked
# dynamically: its static archive needs GnuTLS, which Debian ships shared
# only. Only airlockd and the unit tests link it.
MHD_CFLAGS := $(shell $(PKG_CONFIG) --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS := $(shell $(PKG_CONFIG) --libs libmicrohttpd 2>/dev/null)
# libpq (the PostgreSQL manifest backend, manifest/db_pg.c) is not linked:
# db_pg.c loads libpq.so.5 when a DATABASE_URL names a server, which keeps
# its dependencies (OpenSSL, Kerberos, LDAP: ~5 MiB resident) out of every
# airlockd on SQLite. Only its header is needed to build. db_pg.o stays out
# of libairlock.a: the static CLI cannot load a library, so it hands a
# PostgreSQL DATABASE_URL to airlock-pg (tools/airlock.c).
# libarchive (bundles: tar, tar.gz, tar.zst modules, supervisor/bundle.c)
# is not linked: airlockd loads it with dlopen at its first bundle (its
# libxml2, ICU and libstdc++ would cost every idle daemon some 3 MiB), as
# the manifest loads libpq; the CLI never unpacks (the daemon does). The
# unit tests link it: they write the archives they feed it.
ARCHIVE_CFLAGS := $(shell $(PKG_CONFIG) --cflags libarchive 2>/dev/null)
ARCHIVE_LIBS := $(shell $(PKG_CONFIG) --libs libarchive 2>/dev/null)
PQ_CFLAGS := $(shell $(PKG_CONFIG) --cflags libpq 2>/dev/null)
# the manifest's unit tests also talk to the server themselves
PQ_LIBS := $(shell $(PKG_CONFIG) --libs libpq 2>/dev/null)

# The binaries link the support libraries statically (Debian's -dev
# packages ship the archives): dynamic loading and relocating six shared
# libraries cost every airlock process about 2 ms (bench/launch.c), a tenth
# of a whole 'airlock run'. STATIC_LIBS=0 links them dynamically; then a
# library's security update needs no rebuild.
STATIC_LIBS ?= 1
# libbpf (the learner, sandbox/learn.c) with its own dependencies.
BPF_LIBS := $(shell $(PKG_CONFIG) --libs --static libbpf 2>/dev/null || echo -lbpf -lelf -lz)
PKG_LIBS += $(BPF_LIBS)
ifeq ($(STATIC_LIBS),1)
BIN_LIBS := -Wl,-Bstatic $(PKG_LIBS) -Wl,-Bdynamic -lm
else
BIN_LIBS := $(PKG_LIBS)
endif
# The CLI goes further, with libc too (-static-pie): no dynamic loader at
# all, which took another ~1.4 ms of every airlock process and ~2.3 ms of
# CPU per 'airlock run' (bench/launch.c, docs/benchmarks.md). It calls no
# NSS function; airlockd does (socket group, users by name), so it keeps
# the shared libc. Sanitizers need the shared libc as well.
CLI_LDFLAGS :=
CLI_LIBS := $(BIN_LIBS)
ifeq ($(STATIC_LIBS)$(SAN),10)
CLI_LDFLAGS := -static-pie
CLI_LIBS := $(PKG_LIBS) -lm
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wmissing-prototypes -Wformat=2 \
	-Wstrict-prototypes -Wno-unused-parameter
HARDEN := -fstack-protector-strong -fstack-clash-protection -fPIE
CFLAGS ?= -g
ALL_CFLAGS := -std=gnu11 -D_GNU_SOURCE -I. -I$(BUILD)/gen $(WARN) $(HARDEN) $(MODE_CFLAGS) \
	$(PKG_CFLAGS) $(MHD_CFLAGS) $(PQ_CFLAGS) $(ARCHIVE_CFLAGS) $(CFLAGS) -DAIRLOCK_POLICY_DIR='"$(PREFIX)/share/airlock/policies"' \
	-DAIRLOCK_LIBEXEC_DIR='"$(PREFIX)/libexec/airlock"'
ALL_LDFLAGS := -pie -Wl,-z,relro,-z,now $(MODE_LDFLAGS) $(LDFLAGS)

LIB_SRC := $(filter-out manifest/db_pg.c,$(wildcard common/*.c policy/*.c \
	sandbox/*.c manifest/*.c))
PG_OBJ := $(BUILD)/obj/manifest/db_pg.o
LIB_ASM := $(wildcard manifest/*.S)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(LIB_ASM:%.S=$(BUILD)/obj/%.o)
CLI_SRC := $(wildcard tools/*.c)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
# supervisor/: the daemon's library (everything but its main), and the
# protocol codec, the one part of it the airlock client links (docs/design.md).
SUP_SRC := $(filter-out supervisor/airlockd.c,$(wildcard supervisor/*.c))
SUP_OBJ := $(SUP_SRC:%.c=$(BUILD)/obj/%.o)
PROTO_OBJ := $(BUILD)/obj/supervisor/protocol.o \
	$(BUILD)/obj/supervisor/report.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all tests check check-guest check-vm check-build compat demo bench bench-learn fuzz install uninstall clean deps format format-check

# The jail's init helper (sandbox/init/init.c): x86-64 only; elsewhere
# jails are forked and it is not built.
ifeq ($(shell uname -m),x86_64)
INIT_HELPER := $(BUILD)/airlock-init
endif

all: $(BUILD)/airlock $(BUILD)/airlock-pg $(BUILD)/airlockd $(BUILD)/probe \
	$(INIT_HELPER)

tests: all $(UNIT_BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Assembly that embeds a data file with .incbin (manifest/schema_sql.S embeds
# manifest/schema.sql); -MMD cannot see an .incbin, hence the line after.
$(BUILD)/obj/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<
$(BUILD)/obj/manifest/schema_sql.o: manifest/schema.sql manifest/schema_pg.sql

# The learner's BPF program: CO-RE against the running kernel's BTF,
# compiled by clang, debug info stripped, embedded as a libbpf skeleton.
BPFTOOL ?= bpftool
BPF_CLANG ?= clang
LLVM_STRIP ?= llvm-strip
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

$(BUILD)/gen/vmlinux.h:
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp
	mv $@.tmp $@

$(BUILD)/gen/%.bpf.o: sandbox/bpf/%.bpf.c sandbox/bpf/%.h $(BUILD)/gen/vmlinux.h
	$(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -I. -I$(BUILD)/gen \
		-Wall -Werror -c -o $@ $<
	$(LLVM_STRIP) -g $@

$(BUILD)/gen/%.skel.h: $(BUILD)/gen/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp
	mv $@.tmp $@

$(BUILD)/obj/sandbox/learn.o: $(BUILD)/gen/learn.skel.h
.SECONDARY: $(BUILD)/gen/learn.bpf.o

$(BUILD)/libairlock.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libairlockd.a: $(SUP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/airlock: $(CLI_OBJ) $(PROTO_OBJ) $(BUILD)/libairlock.a
	$(CC) $(ALL_LDFLAGS) $(CLI_LDFLAGS) -o $@ $(CLI_OBJ) $(PROTO_OBJ) \
		$(BUILD)/libairlock.a $(CLI_LIBS)

# The same CLI with the PostgreSQL backend, linked dynamically (it loads libpq):
# what airlock runs for the manifest's commands when DATABASE_URL names a
# server. Installed beside airlock-init.
$(BUILD)/airlock-pg: $(CLI_OBJ) $(PROTO_OBJ) $(PG_OBJ) $(BUILD)/libairlock.a
	$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJ) $(PROTO_OBJ) $(PG_OBJ) \
		$(BUILD)/libairlock.a $(BIN_LIBS)

$(BUILD)/airlockd: $(BUILD)/obj/supervisor/airlockd.o $(BUILD)/libairlockd.a \
		$(BUILD)/libairlock.a $(PG_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/obj/supervisor/airlockd.o \
		$(PG_OBJ) $(BUILD)/libairlockd.a $(BUILD)/libairlock.a \
		$(BIN_LIBS) $(MHD_LIBS)

# The probe runs inside jails: static, no sanitizer, no dependency on the
# jail's libraries.
$(BUILD)/probe: tests/probe/probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -D_GNU_SOURCE -O2 -g $(WARN) -static -o $@ $<

# No libc, no start-up code, no sanitizer: it runs under the module's
# seccomp filter. Root-only readable (0711), which keeps it non-dumpable
# in the jail (sandbox/host.c refuses it otherwise).
$(BUILD)/airlock-init: sandbox/init/init.c sandbox/jail_msg.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -I. -O2 -g $(WARN) -static -nostdlib -ffreestanding \
		-fno-builtin -fno-stack-protector -fno-pie -no-pie \
		-fno-asynchronous-unwind-tables -o $@ $<
	chmod 0711 $@

# Benchmarks that call the library (bench/run.sh builds the others).
$(BUILD)/bench/%: bench/%.c $(BUILD)/libairlock.a $(PG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(PG_OBJ) \
		$(BUILD)/libairlock.a $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libairlockd.a $(BUILD)/libairlock.a \
		$(PG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP $(ALL_LDFLAGS) -o $@ $< $(PG_OBJ) \
		$(BUILD)/libairlockd.a $(BUILD)/libairlock.a $(PKG_LIBS) \
		$(MHD_LIBS) $(CMOCKA_LIBS) $(PQ_LIBS) $(ARCHIVE_LIBS)

deps:
	@sh tools/install-deps.sh

# Both builds, every test against each, and a short run of each fuzzer
# (policy parser, request lines, airlockd's socket; make fuzz runs longer).
check: deps
	$(MAKE) -s format-check
	$(MAKE) tests
	$(MAKE) SAN=1 tests
	FUZZ_SECONDS=25 sh tests/run.sh build build-asan

# What make check-vm's guest runs in its login session: the plain build
# against every suite, and the sanitizer build against the suites whose
# paths only a cgroup v2 host takes (the cgroup drivers, D-Bus, rootless
# through the user manager, the daemon's runs). The host's make check has
# the sanitizer build against everything and the fuzzers; neither depends
# on the hierarchy, and under TCG both would take the guest past an hour.
check-guest: deps
	$(MAKE) tests
	$(MAKE) SAN=1 tests
	sh tests/run.sh build build-asan:test_jail.py,test_daemon.py

# A Debian 12 guest under qemu (KVM if the host has it, else TCG): the
# image is cached in build/vm/, the guest builds its own copy of the
# checkout and runs make check and the systemd checks (tests/vm/run.sh).
check-vm:
	@sh tools/install-deps.sh vm
	sh tests/vm/run.sh

# False denials: CPython's regression test modules (tests/compat/compat.py
# MODULES) bare and under the python policy, and the runtime programs of
# tests/compat/programs/ under their policies; prints the table, fails on
# a jailed-only failure not in tests/compat/denials.txt. make check runs
# the short list (tests/integration/test_compat.py).
compat: deps
	$(MAKE) all
	python3 tests/compat/compat.py build $(COMPAT_MODULES)

# Each fuzzer for FUZZ_SECONDS (tests/fuzz/run.sh): the protocol one
# drives the sanitizer build of airlockd, so that is built first.
FUZZ_SECONDS ?= 600
fuzz: deps
	$(MAKE) SAN=1 all
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

demo: deps
	$(MAKE) all
	sh tools/demo.sh build

bench: deps
	$(MAKE) all $(BUILD)/bench/manifest_bench $(BUILD)/bench/airlock_learn
	sh bench/run.sh build

# Syscall learning alone: a syscall-heavy module with and without it.
bench-learn: deps
	$(MAKE) all $(BUILD)/bench/airlock_learn
	$(BUILD)/bench/airlock_learn $(BUILD)/probe $(LEARN_ROUNDS) $(LEARN_CALLS)
LEARN_ROUNDS ?= 20
LEARN_CALLS ?= 1000000

POLICIES := $(wildcard policy/policies/*.policy)
SBINDIR ?= $(PREFIX)/sbin
# systemd reads units, tmpfiles.d and sysusers.d under /usr/lib and
# /usr/local/lib alike; distributions packaging airlock set these.
UNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCDIR ?= $(PREFIX)/share/doc/airlock
DOCS := docs/operations.md docs/metrics.md docs/alerts.yml
INSTALLED := $(PREFIX)/bin/airlock $(SBINDIR)/airlockd \
	$(PREFIX)/share/man/man1/airlock.1 $(PREFIX)/share/man/man5/airlock.policy.5 \
	$(PREFIX)/share/man/man8/airlockd.8 $(UNITDIR)/airlockd.service \
	$(TMPFILESDIR)/airlock.conf $(SYSUSERSDIR)/airlock.conf \
	$(PREFIX)/share/airlock/airlock.default \
	$(addprefix $(PREFIX)/share/airlock/policies/,$(notdir $(POLICIES))) \
	$(addprefix $(DOCDIR)/,$(notdir $(DOCS))) \
	$(PREFIX)/libexec/airlock/airlock-init $(PREFIX)/libexec/airlock/airlock-pg

# The systemd files take effect on a running system after
#   systemd-sysusers && systemd-tmpfiles --create && systemctl daemon-reload
# (docs/operations.md, "Installing as a service").
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR) \
		$(DESTDIR)$(PREFIX)/share/airlock/policies \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/airlock $(DESTDIR)$(PREFIX)/bin/airlock
	install -m 0755 $(BUILD)/airlockd $(DESTDIR)$(SBINDIR)/airlockd
	install -d $(DESTDIR)$(PREFIX)/libexec/airlock
	install -m 0755 $(BUILD)/airlock-pg $(DESTDIR)$(PREFIX)/libexec/airlock/airlock-pg
	$(if $(INIT_HELPER),install -m 0711 $(INIT_HELPER) \
		$(DESTDIR)$(PREFIX)/libexec/airlock/airlock-init)
	install -m 0644 $(POLICIES) $(DESTDIR)$(PREFIX)/share/airlock/policies/
	install -m 0644 docs/man/airlock.1 $(DESTDIR)$(PREFIX)/share/man/man1/airlock.1
	install -m 0644 docs/man/airlock.policy.5 $(DESTDIR)$(PREFIX)/share/man/man5/airlock.policy.5
	install -m 0644 docs/man/airlockd.8 $(DESTDIR)$(PREFIX)/share/man/man8/airlockd.8
	sed 's|@SBINDIR@|$(SBINDIR)|g' tools/systemd/airlockd.service.in \
		>$(DESTDIR)$(UNITDIR)/airlockd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/airlockd.service
	install -m 0644 tools/systemd/airlock.tmpfiles $(DESTDIR)$(TMPFILESDIR)/airlock.conf
	install -m 0644 tools/systemd/airlock.sysusers $(DESTDIR)$(SYSUSERSDIR)/airlock.conf
	install -m 0644 tools/systemd/airlock.default $(DESTDIR)$(PREFIX)/share/airlock/airlock.default
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/

# Removes what install put there; directories only when airlock's own.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(PREFIX)/share/airlock/policies \
		$(DESTDIR)$(PREFIX)/share/airlock $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(PREFIX)/libexec/airlock

FORMAT_SRC = $(LIB_SRC) $(CLI_SRC) $(SUP_SRC) supervisor/airlockd.c \
	$(UNIT_SRC) tests/probe/probe.c $(wildcard */*.h)

format:
	clang-format -i $(FORMAT_SRC)

# Counts the lines clang-format would change and fails if there are any;
# make check runs it first (tests/integration/test_layering.py checks that
# it refuses a misformatted file).
format-check:
	@n=0; for f in $(FORMAT_SRC); do \
		d=$$(clang-format --style=file "$$f" | diff "$$f" - | grep -c '^<'); \
		[ "$$d" -eq 0 ] || echo "$$f: $$d lines differ"; \
		n=$$((n + d)); \
	done; echo "format-check: $$n lines differ from .clang-format"; [ "$$n" -eq 0 ]

clean:
	rm -rf build build-asan build-fuzz build-perf

-include $(LIB_OBJ:.o=.d) $(PG_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(SUP_OBJ:.o=.d) \
	$(BUILD)/obj/supervisor/airlockd.d $(UNIT_BIN:=.d)
