#!/bin/sh
# make bench: start-up cost of a jail, side by side, in one run.
#
# Rows, interleaved round by round (bench/launch.c):
#   bare     /bin/true, spawned directly
#   unshare  the same namespaces as airlock (mount pid net ipc uts cgroup)
#   bwrap    bubblewrap with a comparable jail (read-only system binds,
#            fresh /proc, /dev, /tmp, every namespace, new session)
#   airlock  airlock run -- /bin/true (default policy: namespaces, cgroup
#            limits, dropped capabilities, seccomp, all of it)
set -eu
cd "$(dirname "$0")/.."
build="${1:-build}"
rounds="${ROUNDS:-200}"
sh tools/install-deps.sh bench
mkdir -p "$build/bench"
cc -O2 -Wall -Wextra -Werror -o "$build/bench/launch" bench/launch.c

true_bin=/bin/true
unshare_bin=$(command -v unshare)
bwrap_bin=$(command -v bwrap)
bwrap_args="--unshare-all --die-with-parent --new-session --ro-bind /usr /usr \
--symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin \
--proc /proc --dev /dev --tmpfs /tmp $true_bin"

echo "airlock start-up benchmark: $rounds interleaved rounds, $(nproc) CPUs, $(uname -r)"
"$build/airlock" version | sed 's/^/  /'
"$build/bench/launch" "$rounds" \
	bare "$true_bin" \
	unshare "$unshare_bin --mount --pid --net --ipc --uts --cgroup --fork $true_bin" \
	bwrap "$bwrap_bin $bwrap_args" \
	airlock "$build/airlock run -- $true_bin"

# The manifest: runs recorded per second (insert + commit, fsynced). The
# Makefile's bench target builds it.
echo
"$build/bench/manifest_bench" "${MANIFEST_RUNS:-5000}"

# Syscall learning: a syscall-heavy module with and without the BPF
# learner (the Makefile's bench target builds it).
echo
"$build/bench/airlock_learn" "$build/probe" "${LEARN_ROUNDS:-20}" "${LEARN_CALLS:-1000000}"

# Through the daemon: registered /bin/true, 1 and 2 concurrent clients,
# beside bwrap with 1 and 2 concurrent callers.
echo
python3 bench/daemon_bench.py "$build" "${DAEMON_RUNS:-200}"
