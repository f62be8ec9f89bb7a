#!/bin/sh
# make bench: airlock beside its peers, in one run, from a clean clone.
#
#   sh bench/run.sh [BUILD_DIR]       (the Makefile's bench target)
#
# Installs what it compares against (tools/install-deps.sh bench), builds
# the drivers, then bench/bench.py prints one table: per-run latency of
# bare, unshare, bwrap, airlock run and airlockd's exec (interleaved
# rounds), throughput with 1, 2 and 4 callers, supervisor memory with
# idle, N and 256 sleeping jails, and timeout precision; then the
# manifest's own figures on SQLite and PostgreSQL
# (bench/manifest_bench.c). The samples and the table go to
# BUILD_DIR/bench/, and bench/chart.sh draws BUILD_DIR/bench/latency.png.
# docs/benchmarks.md explains the method and every row.
set -eu
cd "$(dirname "$0")/.."
build="${1:-build}"
sh tools/install-deps.sh bench
mkdir -p "$build/bench"
cc -O2 -Wall -Wextra -Werror -o "$build/bench/launch" bench/launch.c

status=0
python3 bench/bench.py "$build" "$build/bench" || status=$?
sh bench/chart.sh "$build/bench/latency.csv" "$build/bench/latency.png"
echo
echo "chart: $build/bench/latency.png"

# The manifest: runs recorded per second (insert + commit, fsynced), on
# SQLite and on a throw-away PostgreSQL server with fsync on (its data on
# the same disk, /var/tmp, over a Unix socket).
echo
"$build/bench/manifest_bench" "${MANIFEST_RUNS:-5000}"
pgdir=$(mktemp -d /var/tmp/airlock-bench-pg.XXXXXX)
if url=$(PG_FSYNC=on sh tests/pg.sh start "$pgdir"); then
	echo
	"$build/bench/manifest_bench" "${MANIFEST_RUNS:-5000}" /var/tmp "$url" ||
		status=$?
	sh tests/pg.sh stop "$pgdir"
else
	echo "manifest benchmark on PostgreSQL: no server (tools/install-deps.sh installs it)"
	rm -rf "$pgdir"
fi

# Syscall learning: a syscall-heavy module with and without the BPF
# learner (the Makefile's bench target builds it).
echo
"$build/bench/airlock_learn" "$build/probe" "${LEARN_ROUNDS:-20}" "${LEARN_CALLS:-1000000}" || status=$?
exit "$status"
