#!/bin/sh
# Build the Debian 12 guest that make check-vm boots, unless the cached one
# is current: build/vm/image-KEY/{root.img,vmlinuz,initrd.img}, where KEY
# hashes the package list (tools/install-deps.sh list) and this recipe.
#
#   tests/vm/build-image.sh [OUT_DIR]     prints the image directory
#
# The guest: systemd as PID 1 on cgroup v2, every package the host's make
# check installs, a login user for the rootless checks, and
# airlock-vm-job.service, which runs tests/vm/guest-job.sh from the 9p
# share at boot and powers the guest off.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$top/build/vm}
# stdout is the image directory alone; everything else goes to stderr
exec 3>&1 1>&2

# Beyond the test dependencies: a booted system with logins (pam_systemd
# puts su -l into a session scope), D-Bus for systemctl and systemd-run
# --user, udev to load the virtio 9p transport, and Debian's kernel.
GUEST_PKGS="systemd systemd-sysv dbus libpam-systemd udev kmod sudo
linux-image-amd64 initramfs-tools e2fsprogs util-linux"
# The user the rootless checks run as (tests/vm/acceptance.sh).
GUEST_USER=tester GUEST_UID=1000

pkgs=$( (sh "$top/tools/install-deps.sh" list; printf '%s\n' $GUEST_PKGS) |
	sort -u | tr '\n' ',' | sed 's/,$//')
key=$( (echo "$pkgs"; cat "$0" "$here/airlock-vm-job.service") |
	sha256sum | cut -c1-16)
img="$out/image-$key"
if [ -f "$img/done" ]; then
	echo "build-image: cached image $img"
	echo "$img" >&3
	exit 0
fi

for c in mmdebstrap mkfs.ext4 qemu-img; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "build-image: $c is missing: run tools/install-deps.sh vm"
		exit 1
	}
done
# An older image (another package list) is only disk space now.
rm -rf "$out"/image-* "$out/root"
mkdir -p "$img"
root="$out/root"
start=$(date +%s)
echo "build-image: building $img (packages: $pkgs)"

# The host's apt sources, so the guest installs from the same mirror.
sources=/etc/apt/sources.list.d/debian.sources
[ -f "$sources" ] || sources=/etc/apt/sources.list
unit="$here/airlock-vm-job.service"
mmdebstrap --variant=apt --include="$pkgs" \
	--customize-hook='echo airlock-vm >"$1/etc/hostname"' \
	--customize-hook='echo "127.0.1.1 airlock-vm" >>"$1/etc/hosts"' \
	--customize-hook='chroot "$1" passwd --delete root' \
	--customize-hook="chroot \"\$1\" useradd --create-home --uid $GUEST_UID --shell /bin/bash $GUEST_USER" \
	--customize-hook="mkdir -p \"\$1/var/lib/systemd/linger\" && touch \"\$1/var/lib/systemd/linger/$GUEST_USER\"" \
	--customize-hook='mkdir -p "$1/mnt/src" "$1/mnt/out"' \
	--customize-hook='cat >"$1/etc/fstab" <<FSTAB
/dev/vda / ext4 rw,errors=remount-ro 0 1
src /mnt/src 9p trans=virtio,version=9p2000.L,msize=262144,ro,nofail 0 0
out /mnt/out 9p trans=virtio,version=9p2000.L,msize=262144,nofail 0 0
FSTAB' \
	--customize-hook="cp '$unit' \"\$1/etc/systemd/system/\"" \
	--customize-hook='chroot "$1" systemctl enable airlock-vm-job.service' \
	--customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer' \
	bookworm "$root" "$sources"

cp -L "$root/vmlinuz" "$img/vmlinuz"
cp -L "$root/initrd.img" "$img/initrd.img"
# Room for both builds and the tests' state; the file is sparse.
mkfs.ext4 -q -L airlock-vm -d "$root" "$img/root.img" 12G
rm -rf "$root"
touch "$img/done"
echo "build-image: built in $(($(date +%s) - start)) s"
echo "$img" >&3
