#!/bin/sh
# make check-vm inside the guest (airlock-vm-job.service runs it at boot;
# tests/vm/run.sh is the host side). The checkout is on the read-only 9p
# share /mnt/src; results go to /mnt/out: one log per part, "summary"
# (one "PART: N passed, N failed[, N skipped]" line each) and "status"
# (0 when every part passed), written last.
#
# Parts, each the way a user or a CI runner would run the suite, never
# from the root cgroup, with CI=true:
#   login     su -l root (a PAM session: session-N.scope in user-0.slice):
#             make check-guest (the Makefile says what it leaves to the
#             host's make check), then tests/vm/acceptance.sh
#   service   this unit, a plain service without Delegate=:
#             tests/vm/acceptance.sh and the jail suite against build/
#   unit      tests/vm/test_unit.sh: the installed airlockd.service
#             under the real systemd
# /mnt/out/parts names the parts to run (tests/vm/run.sh's VM_PARTS).
set -u
# Run a copy: sh reads a script as it goes, and the share is the live
# checkout, which may be edited while the guest works.
if [ "$0" != /run/guest-job.sh ]; then
	cp "$0" /run/guest-job.sh && exec sh /run/guest-job.sh
fi
out=/mnt/out
src=/mnt/src
work=/srv/airlock
export CI=true
status=0
parts=$(cat "$out/parts" 2>/dev/null || echo login service unit)
: >"$out/summary"

stamp() { echo "guest-job: $(date -u +%T) $*"; }
# part NAME LOG: record LOG's last "N passed, N failed" line under NAME;
# no such line (the part did not get that far) counts as one failure.
part() {
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
	[ -n "$line" ] || line="0 passed, 1 failed (no summary line: see $(basename "$2"))"
	echo "$1: $line" >>"$out/summary"
	case "$line" in *" 0 failed"*) ;; *) status=1 ;; esac
}
# timed NAME LOG CMD...: run CMD with its output in LOG, record its wall
# time in "times"
timed() {
	name=$1 log=$2
	shift 2
	stamp "$name: started (log $(basename "$log"))"
	t0=$(date +%s)
	"$@" >"$log" 2>&1
	rc=$?
	echo "$name: $(($(date +%s) - t0)) s" >>"$out/times"
	stamp "$name: done in $(($(date +%s) - t0)) s, exit $rc; $(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)"
	return $rc
}

stamp "booted in $(cut -d' ' -f1 /proc/uptime) s; kernel $(uname -r)"
echo "boot: $(cut -d' ' -f1 /proc/uptime | cut -d. -f1) s" >"$out/times"
stamp "cgroup file system: $(stat -fc %T /sys/fs/cgroup); this job's cgroup: $(cat /proc/self/cgroup)"
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
	stamp "not a cgroup v2 host: the guest image is wrong"
	echo 1 >"$out/status"
	exit 1
fi

# Build on the guest's own disk, not on 9p.
rm -rf "$work"
mkdir -p "$work"
tar -C "$src" --exclude=./build --exclude='./build-*' -cf - . | tar -C "$work" -xf -
chmod 0755 "$work"

want() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }

# login: a PAM login session (pam_systemd: session-N.scope or, without a
# terminal, session-cN.scope), as a user at a console would have.
if want login; then
	timed login "$out/login.log" su -l root -c "cd $work &&
		echo \"login session cgroup: \$(cat /proc/self/cgroup)\" &&
		grep -q '^0::/user.slice/user-0.slice/session-[c0-9]*.scope\$' /proc/self/cgroup &&
		CI=true make check-guest"
	part "login: make check-guest" "$out/login.log"
	timed login-acceptance "$out/login-acceptance.log" \
		su -l root -c "CI=true sh $work/tests/vm/acceptance.sh $work/build"
	part "login: acceptance" "$out/login-acceptance.log"
fi

# service: this unit's own cgroup, no delegation. The other parts need a
# build; make check-guest (login) made it already.
[ -x "$work/build/airlock" ] || make -C "$work" -s -j2 tests >"$out/build.log" 2>&1
if want service; then
	timed service-acceptance "$out/service-acceptance.log" \
		sh "$work/tests/vm/acceptance.sh" "$work/build"
	part "service: acceptance" "$out/service-acceptance.log"
	timed service-jail "$out/service-jail.log" \
		sh -c "cd $work && python3 tests/integration/test_jail.py build"
	part "service: test_jail.py" "$out/service-jail.log"
fi

if want unit; then
	timed unit "$out/unit.log" sh "$work/tests/vm/test_unit.sh"
	part "unit: airlockd.service" "$out/unit.log"
fi

echo "$status" >"$out/status"
stamp "done, status $status"
