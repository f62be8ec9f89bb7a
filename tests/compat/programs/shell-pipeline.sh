#!/bin/sh
# What generated shell does: coreutils pipelines, awk, sed, grep, files
# in the working directory, job control signals, mkfifo, cp -a, install.
set -eu
seq 1 1000 | awk '{ s += $1 } END { print s }' > sum.txt
test "$(cat sum.txt)" = 500500
printf 'b\na\nc\na\n' | sort | uniq -c | sed 's/^ *//' | grep -c ' a$' >/dev/null
printf 'x=1\ny=2\n' | sed -n 's/^y=//p' | grep -qx 2
ls -l /tmp >/dev/null
date +%s >/dev/null; id -un >/dev/null; hostname >/dev/null; uname -a >/dev/null
mkdir -p out/a && echo hi > out/a/f && cp -a out copy && install -m 0644 sum.txt copy/
test -f copy/a/f && test -f copy/sum.txt
mkfifo pipe && (echo through > pipe &) && test "$(cat pipe)" = through
sleep 2 & p=$!; kill -STOP $p; kill -CONT $p; kill $p; wait $p || true
tar -cf out.tar out && tar -tf out.tar | grep -q 'out/a/f'
sha256sum sum.txt | cut -c1-64 | grep -Eq '^[0-9a-f]{64}$'
find . -name f | xargs cat | grep -q hi
sync
echo ok
