#!/bin/sh
# Install the Debian packages airlock needs to build and test, and only
# those that are missing: a fresh Debian machine needs nothing else.
#
#   tools/install-deps.sh          build and test dependencies
#   tools/install-deps.sh bench    also what the benchmarks compare against
#   tools/install-deps.sh vm       also what make check-vm needs on the host
#   tools/install-deps.sh list     print every package of the default mode,
#                                  installed or not, and install nothing
#                                  (tests/vm/build-image.sh puts them in the
#                                  guest image: one list for host and guest)
set -eu

mode="${1:-}"
need=""
add() { need="$need $1"; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pc() { have_cmd pkg-config && pkg-config --exists "$1" 2>/dev/null; }
have_file() { [ -e "$1" ]; }
have_py() { /usr/bin/python3 -c "import $1" 2>/dev/null; }
if [ "$mode" = list ]; then
	# every check fails: the list names every package
	have_cmd() { false; }
	have_file() { false; }
	have_py() { false; }
fi

have_cmd cc || add gcc
have_cmd make || add make
have_cmd pkg-config || add pkg-config
have_pc libseccomp || add libseccomp-dev
have_pc libcap || add libcap-dev
have_pc libcgroup || add libcgroup-dev
have_pc nettle || add nettle-dev
have_pc inih || add libinih-dev
have_pc sqlite3 || add libsqlite3-dev
# the PostgreSQL manifest backend (libpq), and the server its tests start
have_pc libpq || add libpq-dev
have_file /usr/lib/postgresql/15/bin/initdb || add postgresql
have_pc cmocka || add libcmocka-dev
# airlockd's HTTP endpoint (/metrics, /healthz, /ready)
have_pc libmicrohttpd || add libmicrohttpd-dev
# bundles: tar, tar.gz and tar.zst modules (supervisor/bundle.c)
have_pc libarchive || add libarchive-dev
have_cmd zstd || add zstd
# promtool: the tests check /metrics and docs/alerts.yml with it
have_cmd promtool || add prometheus
# the /healthz test puts a state directory on a loop-mounted ext4 image
have_cmd mkfs.ext4 || add e2fsprogs
# the static test probe links against glibc's libc.a
have_file /usr/lib/x86_64-linux-gnu/libc.a || have_file /usr/lib/aarch64-linux-gnu/libc.a || add libc6-dev
# interpreters the tests run inside the jail, at the paths the jail binds
have_file /usr/bin/python3 || add python3
have_file /usr/bin/ps || add procps
# make compat and its short form in make check: CPython's own regression
# tests, numpy for the python program, gcc's OpenMP runtime for the C one
have_file /usr/lib/python3.11/test/test_asyncio || add libpython3.11-testsuite
have_py numpy || add python3-numpy
have_file /usr/lib/gcc/x86_64-linux-gnu/12/libgomp.a || have_file /usr/lib/gcc/aarch64-linux-gnu/12/libgomp.a || add libgcc-12-dev
# test_policy.py and make compat run Node.js under the shipped node policy
have_file /usr/bin/node || add nodejs
# tests/compat: a Go program, static and through cgo
have_file /usr/bin/go || add golang-go
# a real JUnit consumer that reads airlock validate's report in the tests
have_py junitparser || add python3-junitparser
# libFuzzer for the parser fuzzing in make check and make fuzz, and the
# compiler of the learner's BPF program
have_cmd clang || add clang
# make check's format check (.clang-format is written for version 14)
have_cmd clang-format || add clang-format
# libFuzzer's runtime: only a Recommends of clang, so a minimal install
# (--no-install-recommends) lacks it
have_file /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ||
	add libclang-rt-14-dev
# syscall learning (sandbox/learn.c): libbpf with its static dependencies,
# bpftool (vmlinux.h, the skeleton), llvm-strip
have_pc libbpf || add libbpf-dev
have_pc libelf || add libelf-dev
# zlib: also the kept run output (manifest/output.c)
have_pc zlib || add zlib1g-dev
have_cmd bpftool || have_file /usr/sbin/bpftool || add bpftool
have_cmd llvm-strip || add llvm
# test_dbus talks to a real dbus-daemon (the systemd driver's D-Bus code)
have_cmd dbus-daemon || add dbus-daemon
# test_ops.py drives `airlock top` in a terminal
have_cmd tmux || add tmux
# test_install.py: systemd-analyze verify, systemd-sysusers and
# systemd-tmpfiles on the installed unit and entries (the package installs
# without starting anything); setpriv and unshare come with util-linux
have_cmd systemd-analyze || add systemd
# systemd-analyze verify runs man for the unit's Documentation= pages
have_cmd man || add man-db
have_cmd setpriv || add util-linux
# test_docs.py renders the man pages; the handbook's commands use jq
# and curl
have_cmd groff || add groff-base
have_cmd jq || add jq
have_cmd curl || add curl

if [ "$mode" = bench ]; then
	have_cmd bwrap || add bubblewrap
	have_cmd unshare || add util-linux
	have_cmd gnuplot || add gnuplot-nox
fi
# make check-vm: mmdebstrap builds the Debian guest's root, mkfs.ext4 (above)
# turns it into a disk, qemu boots it
if [ "$mode" = vm ]; then
	have_cmd mmdebstrap || add mmdebstrap
	have_cmd qemu-system-x86_64 || add qemu-system-x86
	have_cmd qemu-img || add qemu-utils
fi

if [ "$mode" = list ]; then
	echo "$need" | tr ' ' '\n' | sed '/^$/d'
	exit 0
fi

[ -z "$need" ] && exit 0
echo "install-deps: installing:$need"
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: not root; run as root or: apt-get install$need" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
