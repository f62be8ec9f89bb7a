#!/bin/sh
# make check-vm: boot the Debian 12 guest (systemd, cgroup v2) and run the
# suite there (tests/vm/guest-job.sh), then print what it found.
#
#   tests/vm/run.sh     VM_TIMEOUT=seconds (default 3600)
#                       VM_PARTS="login service unit" (default: all three)
#
# Files: build/vm/out/ holds the guest's logs (console.log, the kernel and
# systemd on the serial console; one log per part), build/vm/run.qcow2
# the guest's disk of this run (an overlay on the cached image).
# Exit status 0 only when the guest finished and every part passed.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
vm="$top/build/vm"
out="$vm/out"
timeout=${VM_TIMEOUT:-3600}
t0=$(date +%s)
img=$(sh "$top/tests/vm/build-image.sh" "$vm")
t_image=$(($(date +%s) - t0))

rm -rf "$out" "$vm/run.qcow2"
mkdir -p "$out"
echo "${VM_PARTS:-login service unit}" >"$out/parts"
qemu-img create -q -f qcow2 -b "$img/root.img" -F raw "$vm/run.qcow2"

# KVM where it is hardware virtualisation; a paravirtual /dev/kvm (PVM)
# cannot boot a stock kernel, and without one TCG emulates.
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	accel="-accel kvm -cpu host"
else
	accel="-accel tcg,thread=multi -cpu max"
fi
echo "check-vm: image $img (${t_image} s); accelerator: ${accel#-accel }"
echo "check-vm: guest console: $out/console.log; timeout ${timeout} s"

t1=$(date +%s)
# shellcheck disable=SC2086
qemu-system-x86_64 $accel -m 6G -smp 2 -no-reboot \
	-kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
	-append "console=ttyS0 root=/dev/vda rw panic=1" \
	-drive "file=$vm/run.qcow2,if=virtio,format=qcow2" \
	-virtfs "local,path=$top,mount_tag=src,security_model=passthrough,readonly=on" \
	-virtfs "local,path=$out,mount_tag=out,security_model=passthrough" \
	-nic none -display none -monitor none -serial "file:$out/console.log" &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT INT TERM
timed_out=0
while kill -0 $qemu 2>/dev/null; do
	if [ $(($(date +%s) - t1)) -ge "$timeout" ]; then
		timed_out=1
		kill $qemu
		break
	fi
	sleep 2
done
wait $qemu || true
trap - EXIT INT TERM
t_guest=$(($(date +%s) - t1))

for log in "$out"/*.log; do
	[ "$log" = "$out/console.log" ] && continue
	[ -f "$log" ] || continue
	echo "== $(basename "$log") (last 30 lines; full log: $log)"
	tail -n 30 "$log"
done
echo "== wall times: image ${t_image} s, guest ${t_guest} s (boot to power-off); inside the guest:"
sed 's/^/   /' "$out/times" 2>/dev/null || true

fail=""
grep -q 'Kernel panic' "$out/console.log" 2>/dev/null && fail="the guest kernel panicked (see $out/console.log)"
[ "$timed_out" = 1 ] && fail="the guest did not finish within ${timeout} s (see $out/console.log)"
[ -z "$fail" ] && [ ! -f "$out/status" ] && fail="the guest stopped without a result (see $out/console.log)"
passed=0 failed=0 skipped=0
if [ -f "$out/summary" ]; then
	echo "== parts"
	sed 's/^/   /' "$out/summary"
	# each line: "PART: N passed, N failed[, N skipped]"
	set -- $(awk '{ for (i = 2; i <= NF; i++) {
		if ($(i) ~ /^passed/) p += $(i - 1)
		if ($(i) ~ /^failed/) f += $(i - 1)
		if ($(i) ~ /^skipped/) s += $(i - 1) } }
		END { print p + 0, f + 0, s + 0 }' "$out/summary")
	passed=$1 failed=$2 skipped=$3
fi
echo "check-vm: $passed passed, $failed failed, $skipped skipped"
if [ -n "$fail" ]; then
	echo "check-vm: $fail" >&2
	exit 1
fi
[ "$(cat "$out/status")" = 0 ] && [ "$failed" -eq 0 ]
