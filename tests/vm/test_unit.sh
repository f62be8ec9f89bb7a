#!/bin/sh
# The shipped airlockd.service under the real systemd (make check-vm runs
# this in the guest, as root): installed with make install PREFIX=/usr,
# then started, reloaded, stopped and killed with runs in flight, and
# asked to run a module that hits its memory limit. Ends with
# "N passed, N failed".
#
#   tests/vm/test_unit.sh          from the top of a checkout
set -u
cd "$(dirname "$0")/../.."
passed=0 failed=0
work=$(mktemp -d /var/tmp/airlock-unit.XXXXXX)
export AIRLOCK_SOCKET=/run/airlock/airlock.sock AIRLOCK_STATE_DIR=/var/lib/airlock

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { # NAME WHY
	echo "not ok - $1"
	echo "   $2"
	journalctl -u airlockd -n 15 -o cat --no-pager | sed 's/^/   journal: /'
	failed=$((failed + 1))
}
main_pid() { systemctl show -p MainPID --value airlockd; }
# exec_bg NAME ARG...: airlock exec in the background, its JSON answer in
# $work/exec.json
exec_bg() {
	airlock exec --json "$@" >"$work/exec.json" 2>"$work/exec.err" &
	exec_pid=$!
}
answer() { jq -r "$1" "$work/exec.json" 2>/dev/null; }
# The newest recorded run of module $1: "VERDICT" (from the manifest)
last_run() { airlock runs "$1" --limit 1 --json | jq -r '.runs[0].verdict'; }
# wait_running NAME: until airlockd reports a run of NAME in flight
wait_running() {
	for _ in $(seq 1 100); do
		[ "$(airlock runs "$1" --verdict running --json | jq '.runs | length')" -gt 0 ] &&
			return 0
		sleep 0.1
	done
	return 1
}

printf '#!/bin/sh\nsleep "${1:-0}"\necho slept\n' >"$work/sleeper"
# 512 MiB written, past the default policy's 64M
printf '#!/usr/bin/python3\nimport sys\nif sys.argv[1:] == ["hog"]:\n    b = b"x" * (512 << 20)\nprint("fine")\n' >"$work/hog"
chmod 0755 "$work/sleeper" "$work/hog"

echo "test_unit: make install PREFIX=/usr (build-unit/)"
if ! { make -s -j2 BUILD=build-unit PREFIX=/usr all &&
	make -s BUILD=build-unit PREFIX=/usr install &&
	systemd-sysusers airlock.conf && systemd-tmpfiles --create airlock.conf &&
	systemctl daemon-reload; } >"$work/install.log" 2>&1; then
	cat "$work/install.log"
	echo "0 passed, 1 failed"
	exit 1
fi

# The default policy's 3 s would end the sleepers below as timeouts; an
# operator's /etc/default/airlock (read by the unit) gives it longer.
echo SANDBOX_TIMEOUT_MS=60000 >/etc/default/airlock

name="the installed unit has OOMPolicy=continue, Type=notify, Delegate=yes"
got=$(systemctl show -p OOMPolicy -p Type -p Delegate airlockd | sort | tr '\n' ' ')
if [ "$got" = "Delegate=yes OOMPolicy=continue Type=notify " ]; then ok "$name"; else not_ok "$name" "got: $got"; fi

name="systemctl start returns when the socket answers (Type=notify)"
if systemctl start airlockd && airlock status >"$work/status.txt" 2>&1; then
	ok "$name"
	echo "   airlockd pid $(main_pid) in $(systemctl show -p ControlGroup --value airlockd)"
else
	not_ok "$name" "status: $(cat "$work/status.txt")"
fi

name="submit: modules validated and active"
if airlock submit "$work/sleeper" --name sleeper >"$work/submit.txt" 2>&1 &&
	airlock submit "$work/hog" --name hog >>"$work/submit.txt" 2>&1; then
	ok "$name"
else
	not_ok "$name" "$(cat "$work/submit.txt")"
fi

name="systemctl reload with a run in flight: the run ends ok, same pid"
pid=$(main_pid)
exec_bg sleeper 3
wait_running sleeper
systemctl reload airlockd
wait $exec_pid
if [ "$(answer .result.verdict)" = ok ] && [ "$(main_pid)" = "$pid" ] &&
	systemctl is-active -q airlockd; then
	ok "$name"
else
	not_ok "$name" "answer $(cat "$work/exec.json" "$work/exec.err"); pid $pid -> $(main_pid)"
fi

name="systemctl stop with an 8 s run in flight drains it: recorded ok"
exec_bg sleeper 8
wait_running sleeper
t0=$(date +%s)
systemctl stop airlockd
took=$(($(date +%s) - t0))
wait $exec_pid
verdict=$(last_run sleeper)
if [ "$verdict" = ok ] && [ "$took" -ge 5 ] && ! systemctl is-active -q airlockd; then
	ok "$name"
	echo "   stop took $took s; the client's answer: $(answer .result.verdict)"
else
	not_ok "$name" "recorded $verdict; stop took $took s; answer $(cat "$work/exec.json")"
fi

name="kill -9 of airlockd mid-run, restart: the run is interrupted"
systemctl start airlockd
exec_bg sleeper 30
wait_running sleeper
kill -9 "$(main_pid)"
wait $exec_pid
systemctl restart airlockd
verdict=$(last_run sleeper)
airlock status >"$work/status.txt" 2>&1
if [ "$verdict" = interrupted ] && airlock runs --verdict interrupted | grep -q sleeper; then
	ok "$name"
	airlock runs --verdict interrupted | sed 's/^/   /'
else
	not_ok "$name" "recorded $verdict; status: $(cat "$work/status.txt")"
fi

name="a module past its memory limit: memory_limit, airlockd stays up (OOMPolicy=continue)"
pid=$(main_pid)
restarts=$(systemctl show -p NRestarts --value airlockd)
airlock exec --json hog hog >"$work/exec.json" 2>"$work/exec.err"
sleep 1
if [ "$(answer .result.verdict)" = memory_limit ] && systemctl is-active -q airlockd &&
	[ "$(main_pid)" = "$pid" ] &&
	[ "$(systemctl show -p NRestarts --value airlockd)" = "$restarts" ]; then
	ok "$name"
else
	not_ok "$name" "answer $(cat "$work/exec.json" "$work/exec.err"); pid $pid -> $(main_pid); $(systemctl is-active airlockd)"
fi

# The control: the same module under systemd's default OOMPolicy=stop
# takes the daemon down, so the check above can tell the setting's worth.
name="control: with OOMPolicy=stop in a drop-in the same module stops airlockd"
mkdir -p /run/systemd/system/airlockd.service.d
printf '[Service]\nOOMPolicy=stop\n' >/run/systemd/system/airlockd.service.d/oom.conf
systemctl daemon-reload
systemctl restart airlockd
pid=$(main_pid)
airlock exec --json hog hog >"$work/exec.json" 2>"$work/exec.err"
sleep 2
if [ "$(main_pid)" != "$pid" ] || ! systemctl is-active -q airlockd; then
	ok "$name"
	echo "   airlockd: $(systemctl is-active airlockd), pid $pid -> $(main_pid), answer $(answer .result.verdict)"
else
	not_ok "$name" "airlockd stayed up (pid $pid); answer $(cat "$work/exec.json" "$work/exec.err")"
fi
rm -rf /run/systemd/system/airlockd.service.d
systemctl daemon-reload

systemctl stop airlockd
rm -rf "$work"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
