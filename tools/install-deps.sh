#!/bin/sh
# Install the Debian packages airlock needs to build and test, and only
# those that are missing: a fresh Debian machine needs nothing else.
#
#   tools/install-deps.sh          build and test dependencies
#   tools/install-deps.sh bench    also what the benchmarks compare against
set -eu

need=""
add() { need="$need $1"; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pc() { have_cmd pkg-config && pkg-config --exists "$1" 2>/dev/null; }

have_cmd cc || add gcc
have_cmd make || add make
have_cmd pkg-config || add pkg-config
have_pc libseccomp || add libseccomp-dev
have_pc libcap || add libcap-dev
have_pc libcgroup || add libcgroup-dev
have_pc nettle || add nettle-dev
have_pc inih || add libinih-dev
have_pc sqlite3 || add libsqlite3-dev
have_pc cmocka || add libcmocka-dev
# the static test probe links against glibc's libc.a
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/aarch64-linux-gnu/libc.a ] || add libc6-dev
# interpreters the tests run inside the jail, at the paths the jail binds
[ -x /usr/bin/python3 ] || add python3
[ -x /usr/bin/ps ] || add procps
# libFuzzer for the parser fuzzing in make check and make fuzz
have_cmd clang || add clang

if [ "${1:-}" = bench ]; then
	have_cmd bwrap || add bubblewrap
	have_cmd unshare || add util-linux
	have_cmd gnuplot || add gnuplot-nox
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
