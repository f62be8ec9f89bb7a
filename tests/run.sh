#!/bin/sh
# Run every test against each build directory given (build, build-asan):
# the cmocka unit tests, then the integration suite that drives the real
# binaries as root. Ends with one line "N passed, N failed, N skipped".
#
#   tests/run.sh BUILD[:SUITE,...] ...
#
# BUILD:SUITE,... runs the unit tests and only the integration suites
# named (test_jail.py,test_uids.py) against BUILD; make check-vm's guest
# uses it to give the sanitizer build the suites whose paths only a
# cgroup v2 host takes.
set -u
cd "$(dirname "$0")/.."

passed=0 failed=0 skipped=0
log=$(mktemp)
# One PostgreSQL server for every suite that wants one (the manifest unit
# tests' second group, test_postgres.py): starting it costs a second.
pgdir=$(mktemp -d /tmp/airlock-pg.XXXXXX)
trap 'rm -f "$log"; sh tests/pg.sh stop "$pgdir"' EXIT
if url=$(sh tests/pg.sh start "$pgdir"); then
	export AIRLOCK_TEST_PG_URL="$url"
else
	echo "== no PostgreSQL server for the tests (their PostgreSQL parts" \
		"are skipped; CI=true fails them)"
fi

count() { # FIELD N
	eval "$1=\$((\$$1 + $2))"
}

run_unit() { # BUILD
	for t in "$1"/tests/test_*; do
		[ -x "$t" ] || continue
		echo "== unit: $t"
		"$t" >"$log" 2>&1
		rc=$?
		cat "$log"
		# a binary may run several groups: one summary line each
		ok=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" |
			awk '{ n += $1 } END { if (NR) print n }')
		bad=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" |
			awk '{ n += $1 } END { if (NR) print n }')
		count passed "${ok:-0}"
		count failed "${bad:-0}"
		# a crash or a sanitizer report with no cmocka summary
		if [ "$rc" -ne 0 ] && [ -z "$bad" ]; then count failed 1; fi
	done
}

run_integration() { # BUILD SUITE
	echo "== integration: $2 against $1"
	t0=$(date +%s)
	python3 "$2" "$1" >"$log" 2>&1
	rc=$?
	cat "$log"
	echo "== $(basename "$2") against $1: $(($(date +%s) - t0)) s"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		count failed 1
		return
	fi
	set -- $line
	count passed "$1"
	count failed "$3"
	count skipped "${5:-0}"
	if [ "$rc" -ne 0 ] && [ "$3" -eq 0 ]; then count failed 1; fi
}

# sanitizer reports fail the run; leak checking covers the CLI itself
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=99}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=99}"

# FUZZ_SECONDS=N: also run each fuzzer for N seconds (one test each):
# the policy parser, request lines, airlockd's socket (tests/fuzz/run.sh).
run_fuzz() {
	for target in policy request protocol; do
		echo "== fuzz: $target, ${FUZZ_SECONDS}s"
		if sh tests/fuzz/run.sh "$FUZZ_SECONDS" "$target" >"$log" 2>&1; then
			count passed 1
			tail -n 2 "$log"
		else
			count failed 1
			tail -n 40 "$log"
		fi
	done
}

for arg in "$@"; do
	build=${arg%%:*}
	only=
	[ "$build" = "$arg" ] || only=",${arg#*:},"
	run_unit "$build"
	for suite in tests/integration/test_*.py; do
		case "$only" in
		"" | *",$(basename "$suite"),"*) run_integration "$build" "$suite" ;;
		esac
	done
done

[ -n "${FUZZ_SECONDS:-}" ] && run_fuzz

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
