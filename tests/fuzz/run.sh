#!/bin/sh
# The fuzzers, each for a bounded time:
#
#   policy    the policy-file parser (tests/fuzz/fuzz_policy.c), libFuzzer
#   request   a client's request line: JSON reader, request decoder,
#             base64 and "since" (tests/fuzz/fuzz_request.c), libFuzzer
#   protocol  the ASan build of airlockd itself over its socket, as root
#             and three local users (tests/fuzz/fuzz_protocol.py)
#
#   sh tests/fuzz/run.sh [SECONDS] [TARGET...] [-- OPTION...]
#
# SECONDS (default 60) is each target's time; no TARGET runs all three.
# OPTIONs go to the libFuzzer binaries, or to fuzz_protocol.py.
#
# libFuzzer targets are built with clang (-fsanitize=fuzzer,address,
# undefined) into build-fuzz/. Their seeds are fresh copies on each run:
# every policy file of the tree (tests/policies/, policy/policies/) into
# tests/fuzz/corpus/; one valid request of every op (tests/fuzz/request/).
# What a fuzzer finds on top of them stays in build-fuzz/corpus-TARGET/
# for the next run. A crash, leak, sanitizer report or round-trip mismatch
# leaves its input in build-fuzz/crashes-TARGET/ and makes this script
# exit non-zero; reproduce one with
#
#   build-fuzz/fuzz_policy build-fuzz/crashes-policy/crash-...
#
# The protocol fuzzer needs root and build-asan/airlockd (make SAN=1); a
# violation prints its seed and step, replayed with
#
#   python3 tests/fuzz/fuzz_protocol.py build-asan --replay SEED --steps N
set -eu
cd "$(dirname "$0")/../.."

seconds=60
case ${1:-} in
'' | -- | *[!0-9]*) ;;
*)
	seconds=$1
	shift
	;;
esac
targets=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	case $1 in
	policy | request | protocol) targets="$targets $1" ;;
	*)
		echo "usage: $0 [SECONDS] [policy|request|protocol...] [-- OPTION...]" >&2
		exit 2
		;;
	esac
	shift
done
[ $# -gt 0 ] && shift # the --
targets=${targets:-policy request protocol}

out=build-fuzz

need_clang() {
	if ! command -v clang >/dev/null 2>&1; then
		echo "tests/fuzz/run.sh: clang is not installed; libFuzzer comes with it." >&2
		echo "Install it with:  apt-get install clang" >&2
		exit 1
	fi
}

build() { # NAME SOURCE... -- PKG...
	name=$1
	shift
	srcs=
	while [ "$1" != -- ]; do
		srcs="$srcs $1"
		shift
	done
	shift
	# shellcheck disable=SC2046,SC2086 # lists meant to be split
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-std=gnu11 -D_GNU_SOURCE -I. -o "$out/$name" $srcs \
		$(pkg-config --cflags --libs "$@")
}

# libfuzz NAME SEEDS DICT MAX_LEN OPTION...
libfuzz() {
	name=$1 seeds=$2 dict=$3 max_len=$4
	shift 4
	mkdir -p "$out/corpus-$name" "$out/crashes-$name"
	echo "fuzzing the $name target for ${seconds}s" \
		"($(ls "$seeds" | wc -l) seeds, $(ls "$out/corpus-$name" | wc -l) found before)"
	status=0
	UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
		"$out/fuzz_$name" -max_len="$max_len" -max_total_time="$seconds" -timeout=10 \
		-dict="$dict" -artifact_prefix="$out/crashes-$name/" \
		-print_final_stats=1 "$@" "$out/corpus-$name" "$seeds" || status=$?
	if [ "$status" -ne 0 ]; then
		echo "tests/fuzz/run.sh: the $name fuzzer failed (status $status); inputs in $out/crashes-$name/:" >&2
		ls -t "$out/crashes-$name" >&2
		return 1
	fi
	echo "tests/fuzz/run.sh: $name: no crash in ${seconds}s"
}

fuzz_policy() {
	need_clang
	build fuzz_policy policy/*.c common/*.c tests/fuzz/fuzz_policy.c \
		-- libseccomp nettle inih || return 1
	# seeds: fresh copies each run, named after where they came from
	rm -rf tests/fuzz/corpus
	mkdir -p tests/fuzz/corpus
	find tests/policies policy/policies -name '*.policy' -type f | while read -r f; do
		cp "$f" "tests/fuzz/corpus/$(echo "$f" | tr / _)"
	done
	libfuzz policy tests/fuzz/corpus tests/fuzz/policy.dict 8192 "$@"
}

fuzz_request() {
	need_clang
	build fuzz_request supervisor/protocol.c common/*.c policy/*.c \
		manifest/*.c manifest/*.S tests/fuzz/fuzz_request.c \
		-- sqlite3 zlib nettle libpq libseccomp inih || return 1
	libfuzz request tests/fuzz/request tests/fuzz/request.dict 65536 "$@"
}

fuzz_protocol() {
	if [ ! -x build-asan/airlockd ]; then
		echo "tests/fuzz/run.sh: build-asan/airlockd is missing; build it with:  make SAN=1" >&2
		return 1
	fi
	python3 tests/fuzz/fuzz_protocol.py build-asan --seconds "$seconds" "$@"
}

mkdir -p "$out"
failed=
for t in $targets; do
	"fuzz_$t" "$@" || failed="$failed $t"
done
if [ -n "$failed" ]; then
	echo "tests/fuzz/run.sh: failed:$failed" >&2
	exit 1
fi
