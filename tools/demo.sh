#!/bin/sh
# make demo: run the sample modules of tools/demo/ through `airlock run`
# and show each verdict; then start airlockd on a temporary state directory
# and socket and take modules through it: one validated and run, one
# rejected, one that crashes at runtime, is archived on its own and is
# restored, and a bundle (a tar.gz of C source) built at validation, run,
# and run again detached with its result fetched later. Needs root (the
# jail is built from namespaces, cgroups and seccomp).
set -eu
cd "$(dirname "$0")/.."
build="${1:-build}"
airlock="$build/airlock"
airlockd="$build/airlockd"
work=$(mktemp -d)
daemon=
cleanup() { # whatever happened: stop airlockd (SIGTERM), remove $work
	if [ -n "$daemon" ]; then
		kill -TERM "$daemon" 2>/dev/null || true
		wait "$daemon" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cc -O2 -o "$work/wordcount" tools/demo/wordcount.c
cc -O0 -o "$work/crash" tools/demo/crash.c

"$airlock" version
echo

row() { # LABEL, then airlock run arguments
	label=$1
	shift
	json=$("$@" 2>&1) || true
	printf "%s\n" "$json" | python3 -c '
import json, sys
label = sys.argv[1]
raw = sys.stdin.read()
try:
    r = json.loads(raw)
except ValueError:
    print("%-22s not JSON: %r" % (label, raw[:200]))
    sys.exit(0)
out = (r.get("stdout") or "").strip().replace("\n", " | ")[:48]
extra = r.get("syscall") or r.get("error") or out
print("%-22s %-18s exit %-4s %7.1f ms  %6.1f MiB  %s" % (
    label, r["verdict"], r["exit_status"], r["wall_ms"],
    r["peak_memory_bytes"] / 1048576.0, extra))
' "$label"
}

printf '%-22s %-18s %-9s %10s  %10s  %s\n' module verdict status wall peak output
row "shell script" "$airlock" run --json -- tools/demo/hello.sh world
row "python script" "$airlock" run --json -- tools/demo/primes.py 50
echo "the quick brown fox jumps" >"$work/words.txt"
row "C program (stdin)" sh -c "\"$airlock\" run --json -- \"$work/wordcount\" <\"$work/words.txt\""
row "crashes" "$airlock" run --json -- "$work/crash"
row "never ends (1s)" "$airlock" run --json --timeout 1s -- tools/demo/spin.sh
row "wants 1 GiB (64M)" "$airlock" run --json -- tools/demo/hog.py
row "tries ptrace" "$airlock" run --json -- python3 -c 'import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0)'
row "not there" "$airlock" run --json -- /nonexistent/module
row "socket, strict policy" "$airlock" run --json --policy strict -- python3 -c 'import socket; socket.socket()'
row "socket, default" "$airlock" run --json -- python3 -c 'import socket; socket.socket(); print("socket made")'
echo
echo "shipped policies:"
"$airlock" policy list
echo
echo "passthrough (no --json): the module's output goes straight to the terminal:"
"$airlock" run -- tools/demo/hello.sh terminal

echo
echo "== the supervisor: airlockd on a temporary state directory"
state="$work/state"
export AIRLOCK_SOCKET="$work/airlock.sock"
mkfifo "$work/log.fifo"
# METRICS_PORT=0: no HTTP endpoint, so the demo never competes for 9100
METRICS_PORT=0 "$airlockd" --state-dir "$state" --socket "$AIRLOCK_SOCKET" \
	2>"$work/log.fifo" &
daemon=$!
exec 3<"$work/log.fifo"
# its stderr: JSON log lines; wait for the readiness line (EOF: it died)
while :; do
	if ! IFS= read -r line <&3; then
		echo "airlockd exited before it was ready" >&2
		cat "$work/airlockd.log" >&2 2>/dev/null || true
		exit 1
	fi
	printf "%s\n" "$line" >>"$work/airlockd.log"
	case $line in *'"msg":"ready'*) break ;; esac
done
cat <&3 >>"$work/airlockd.log" & # keep draining it; ends with airlockd
drain=$!
exec 3<&-
printf "%s\n" "$line" | python3 -c '
import json, sys
print("airlockd pid %s: %s" % (sys.argv[1], json.loads(sys.stdin.read())["msg"]))
' "$daemon"

step() { # EXPECTED-STATUS, then airlock arguments: show, run once, check
	want=$1
	shift
	printf '\n$ airlock %s\n' "$*"
	rc=0
	out=$("$airlock" "$@" 2>&1) || rc=$?
	[ -z "$out" ] || printf "%s\n" "$out"
	echo "(exit $rc)"
	if [ "$rc" -ne "$want" ]; then
		echo "demo: expected exit $want from airlock $*" >&2
		exit 1
	fi
}

step 0 submit tools/demo/hello.sh --name hello --arg world
step 0 exec hello daemon
step 1 submit tools/demo/hog.py --name hog        # rejected: memory_limit
step 0 submit tools/demo/crash_on_arg.py --name crashy
step 0 exec crashy fine
step 139 exec crashy boom                          # crashed (SIGSEGV): archived
step 125 exec crashy fine                          # answers "archived"
step 0 restore crashy
step 0 exec crashy fine
# a bundle with a build step: a tar.gz of C source, built once by cc in
# the jail at validation, then run from its read-only tree
tar -czf "$work/greet.tar.gz" -C tools/demo/bundle greet.c greeting.txt
step 0 submit "$work/greet.tar.gz" --name greet --entry greet \
	--build "cc -O2 -o greet greet.c"
step 0 exec greet daemon
# detached: the run id at once; its end and its kept output fetched later,
# from another connection
printf '\n$ run=$(airlock exec --detach greet later)\n'
run=$("$airlock" exec --detach greet later) || {
	echo "demo: airlock exec --detach failed" >&2
	exit 1
}
echo "run $run"
step 0 wait --timeout 30s "$run"
step 0 result "$run"
step 0 status
printf '\n$ airlock list --state-dir $TMP/state\n'
"$airlock" list --state-dir "$state"

echo
echo "stopping airlockd (SIGTERM)"
kill -TERM "$daemon"
rc=0
wait "$daemon" || rc=$?
daemon=
wait "$drain"
grep -c . "$work/airlockd.log" | sed 's/^/airlockd wrote /; s/$/ log lines/'
if [ "$rc" -ne 0 ]; then
	echo "airlockd exited with status $rc" >&2
	tail -n 20 "$work/airlockd.log" >&2
	exit 1
fi
echo "airlockd stopped cleanly (exit 0)"
