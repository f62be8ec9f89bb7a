#!/bin/sh
# Acceptance checks of airlock run on a systemd host (make check-vm runs
# them from a login session and from a plain service, tests/vm/guest-job.sh):
#   as root: /bin/true ends ok, a 64M memory hog ends memory_limit;
#   rootless, from a delegated user scope: the same, with the limit applied
#   through a cgroup (not "none").
# Prints the result's cgroup member of each run; ends with
# "N passed, N failed".
#
#   tests/vm/acceptance.sh BUILD_DIR [USER]
set -eu
build=$(cd "$1" && pwd)
user=${2:-tester}
airlock="$build/airlock"
probe="$build/probe"
passed=0 failed=0

# check NAME EXPECTED_VERDICT WANT_CGROUP COMMAND...: run COMMAND (an
# airlock run --json), print verdict and cgroup, compare.
check() {
	name=$1 want=$2 want_cg=$3
	shift 3
	set +e
	json=$("$@" 2>/tmp/acceptance.err)
	set -e
	verdict=$(printf '%s' "$json" | jq -r .verdict 2>/dev/null || echo "?")
	cgroup=$(printf '%s' "$json" | jq -r .cgroup 2>/dev/null || echo "?")
	echo "   verdict $verdict, cgroup $cgroup"
	if [ "$verdict" = "$want" ] && { [ "$want_cg" = any ] || [ "$cgroup" != none ]; }; then
		echo "ok - $name"
		passed=$((passed + 1))
	else
		echo "not ok - $name: expected verdict $want$([ "$want_cg" = any ] || echo ' and a cgroup')"
		printf '   stdout: %.600s\n' "$json"
		sed 's/^/   stderr: /' /tmp/acceptance.err | head -n 20
		failed=$((failed + 1))
	fi
}

echo "acceptance: $(id -un) in cgroup $(cat /proc/self/cgroup)"
check "root: /bin/true ends ok" ok any \
	"$airlock" run --json -- /bin/true
check "root: a hog past --memory 64M ends memory_limit" memory_limit cgroup \
	"$airlock" run --json --memory 64M -- "$probe" alloc 256

# Rootless: the user's own systemd (linger keeps user@UID.service up)
# gives a scope whose cgroup subtree is the user's to manage.
uid=$(id -u "$user")
as_user() {
	runuser -u "$user" -- env XDG_RUNTIME_DIR="/run/user/$uid" \
		DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$uid/bus" \
		systemd-run --user --scope --quiet -p Delegate=yes -- "$@"
}
echo "acceptance: rootless as $user, a scope: $(as_user cat /proc/self/cgroup 2>&1)"
check "rootless: /bin/true ends ok in a delegated scope" ok cgroup \
	as_user "$airlock" run --json -- /bin/true
check "rootless: a hog past --memory 64M ends memory_limit" memory_limit cgroup \
	as_user "$airlock" run --json --memory 64M -- "$probe" alloc 256

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
