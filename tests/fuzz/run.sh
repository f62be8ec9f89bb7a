#!/bin/sh
# Fuzz the policy-file parser: build tests/fuzz/fuzz_policy.c with clang's
# libFuzzer, ASan and UBSan into build-fuzz/, then run it for a bounded time.
#
#   sh tests/fuzz/run.sh [SECONDS] [LIBFUZZER-OPTION...]
#
# SECONDS defaults to 60. The seed corpus is every policy file of the tree
# (tests/policies/ and policy/policies/), copied into tests/fuzz/corpus/ on
# each run; what the fuzzer finds on top of it stays in build-fuzz/corpus/
# for the next run. A crash, leak, sanitizer report or round-trip mismatch
# leaves its input in build-fuzz/crashes/ and makes this script exit
# non-zero; reproduce one with
#
#   build-fuzz/fuzz_policy build-fuzz/crashes/crash-...
set -eu
cd "$(dirname "$0")/../.."

seconds=${1:-60}
[ $# -gt 0 ] && shift
case $seconds in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS] [LIBFUZZER-OPTION...]" >&2
	exit 2
	;;
esac

if ! command -v clang >/dev/null 2>&1; then
	echo "tests/fuzz/run.sh: clang is not installed; libFuzzer comes with it." >&2
	echo "Install it with:  apt-get install clang" >&2
	exit 1
fi

out=build-fuzz
mkdir -p "$out/corpus" "$out/crashes"

# shellcheck disable=SC2046 # pkg-config output is meant to be split
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=gnu11 -D_GNU_SOURCE -I. \
	-o "$out/fuzz_policy" \
	policy/*.c common/*.c tests/fuzz/fuzz_policy.c \
	$(pkg-config --cflags --libs libseccomp nettle inih)

# Seeds: fresh copies each run, named after where they came from.
rm -rf tests/fuzz/corpus
mkdir -p tests/fuzz/corpus
find tests/policies policy/policies -name '*.policy' -type f | while read -r f; do
	cp "$f" "tests/fuzz/corpus/$(echo "$f" | tr / _)"
done

echo "fuzzing the policy parser for ${seconds}s" \
	"($(ls tests/fuzz/corpus | wc -l) seeds, $(ls "$out/corpus" | wc -l) found before)"
status=0
UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
	"$out/fuzz_policy" -max_len=8192 -max_total_time="$seconds" -timeout=10 \
	-dict=tests/fuzz/policy.dict -artifact_prefix="$out/crashes/" \
	-print_final_stats=1 "$@" "$out/corpus" tests/fuzz/corpus || status=$?

if [ "$status" -ne 0 ]; then
	echo "tests/fuzz/run.sh: the fuzzer failed (status $status); inputs in $out/crashes/:" >&2
	ls -t "$out/crashes" >&2
	exit 1
fi
echo "tests/fuzz/run.sh: no crash in ${seconds}s"
