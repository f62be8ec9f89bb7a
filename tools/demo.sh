#!/bin/sh
# make demo: run the sample modules of tools/demo/ through `airlock run`
# and show each verdict. Needs root (the jail is built from namespaces,
# cgroups and seccomp).
set -eu
cd "$(dirname "$0")/.."
build="${1:-build}"
airlock="$build/airlock"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
