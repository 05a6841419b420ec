#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Build build/vm/initramfs-<KVER>.cpio.gz: busybox-static, the modules
# needed to mount the host root over 9p/virtio-pci, and an /init that
# mounts it read-only and switch_roots into tools/vm/guest-init.sh.
# Cached: rebuilt only when one of its inputs changes. Prints the path.
#
# Usage: tools/vm/mkinitramfs.sh [KVER]
set -euo pipefail

ic_prog=mkinitramfs.sh
# shellcheck source=tools/vm/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kver=${1:-$(ic_kver)}
moddir=/lib/modules/$kver
[[ -d "$moddir" ]] || ic_die "no modules for $kver in $moddir"
busybox=$(command -v busybox || true)
[[ -n "$busybox" ]] || ic_die "busybox not found (apt-get install busybox-static)"
# (grep without -q: it would stop reading at the match, busybox would get
# SIGPIPE, and pipefail would make the pipeline fail about 1 time in 100)
if ! "$busybox" --list 2>/dev/null | grep -x switch_root >/dev/null ||
   ldd "$busybox" >/dev/null 2>&1; then
	ic_die "$busybox is not a static busybox with switch_root (apt-get install busybox-static)"
fi

out="$IC_VMDIR/initramfs-$kver.cpio.gz"
stamp="$out.inputs"
mkdir -p "$IC_VMDIR"

# Modules for 9p over virtio-pci (and configfs, mounted here too), in
# dependency order as modprobe would load them; built-in ones are skipped. Duplicates are kept once, first wins.
mods=()
declare -A seen=()
for m in 9pnet_virtio 9p virtio_pci configfs; do
	deps=$(modprobe -S "$kver" --show-depends "$m" 2>&1) ||
		ic_die "modprobe -S $kver --show-depends $m failed: $deps"
	while read -r kind path _; do
		case "$kind" in
		insmod)
			if [[ -z "${seen[$path]:-}" ]]; then
				seen[$path]=1
				mods+=("$path")
			fi ;;
		builtin) ;;
		*) ic_die "unexpected modprobe output for $m: $kind $path" ;;
		esac
	done <<<"$deps"
done

this="${BASH_SOURCE[0]}"
inputs=$(
	printf 'kver %s\n' "$kver"
	sha256sum "$this" | cut -d' ' -f1
	stat -L -c '%n %s %Y' "$busybox" "${mods[@]}"
)
if [[ -f "$out" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$inputs" ]]; then
	printf '%s\n' "$out"
	exit 0
fi

ic_msg "building $out"
stage=$(mktemp -d "$IC_VMDIR/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$busybox" "$stage/bin/busybox"
for a in sh mount umount mkdir insmod cat sleep switch_root poweroff echo ln stty hostname; do
	ln -s busybox "$stage/bin/$a"
done
[[ $(id -u) -eq 0 ]] && mknod -m 600 "$stage/dev/console" c 5 1

: >"$stage/modules.order"
for p in "${mods[@]}"; do
	base=$(basename "$p")
	case "$p" in
	*.ko) cp "$p" "$stage/lib/modules/$base" ;;
	*.ko.xz) xz -dc "$p" >"$stage/lib/modules/${base%.xz}"; base=${base%.xz} ;;
	*.ko.gz) gzip -dc "$p" >"$stage/lib/modules/${base%.gz}"; base=${base%.gz} ;;
	*.ko.zst) zstd -qdc "$p" >"$stage/lib/modules/${base%.zst}"; base=${base%.zst} ;;
	*) ic_die "unsupported module file $p" ;;
	esac
	echo "$base" >>"$stage/modules.order"
done

cat >"$stage/init" <<'EOF'
#!/bin/sh
# Stage 1 (initramfs). Does all the mounting with the static busybox in RAM
# (much faster under TCG than running the host's dynamic binaries over 9p),
# then switch_roots into the host root and runs the stage-2 script.
# Kernel command line options read here:
#   icvm.src=<repo path>       also shared separately (mount_tag=src)
#   icvm.init=<stage-2 script> run with /bin/bash after switch_root
#   icvm.cache=loose|none|mmap 9p cache mode of the read-only shares (loose)
#   icvm.msize=<bytes>         9p msize (default 512000)
export PATH=/bin
fail() {
	echo "initramfs: error: $*" >/dev/console
	poweroff -f
	sleep 1000
}
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
exec </dev/console >/dev/console 2>&1
echo "icvm: initramfs started" >/dev/kmsg
for m in $(cat /modules.order); do
	insmod "/lib/modules/$m" || fail "insmod $m"
done
echo "icvm: modules loaded" >/dev/kmsg
src= init= cache=loose msize=512000
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	icvm.src=*) src=${arg#icvm.src=} ;;
	icvm.init=*) init=${arg#icvm.init=} ;;
	icvm.cache=*) cache=${arg#icvm.cache=} ;;
	icvm.msize=*) msize=${arg#icvm.msize=} ;;
	esac
done
[ -n "$init" ] || fail "no icvm.init= on the kernel command line"
p9="trans=virtio,version=9p2000.L,msize=$msize"
R=/newroot
mount -t 9p -o "$p9,cache=$cache,ro" hostroot $R || fail "mount 9p hostroot"
echo "icvm: hostroot mounted" >/dev/kmsg
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/tmp || fail "tmpfs /tmp"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/var/tmp || fail "tmpfs /var/tmp"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs $R/run || fail "tmpfs /run"
if [ -n "$src" ]; then
	# The repository may live below /tmp or /run on the host: those are
	# fresh tmpfs in the guest, so it is also shared on its own.
	mkdir -p "$R$src" 2>/dev/null
	mount -t 9p -o "$p9,cache=$cache,ro" src "$R$src" || fail "mount 9p src at $src"
fi
mkdir -p $R/run/out
mount -t 9p -o "$p9,cache=none" out $R/run/out || fail "mount 9p out"
for d in dev proc sys; do
	mount --move "/$d" "$R/$d" || fail "move /$d"
done
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts || fail "mount /dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/dev/shm || fail "mount /dev/shm"
mount -t configfs configfs $R/sys/kernel/config || fail "mount configfs"
mount -t debugfs debugfs $R/sys/kernel/debug || fail "mount debugfs"
ln -s /proc/self/fd $R/dev/fd
ln -s /proc/self/fd/0 $R/dev/stdin
ln -s /proc/self/fd/1 $R/dev/stdout
ln -s /proc/self/fd/2 $R/dev/stderr
ln -s /proc/kcore $R/dev/core
hostname icvm
# The command's output goes to the second serial port: no CR insertion.
[ -c $R/dev/ttyS1 ] && stty -F $R/dev/ttyS1 -onlcr -echo
echo "icvm: switch_root to $init" >$R/dev/kmsg
exec switch_root $R /bin/bash "$init"
EOF
chmod 755 "$stage/init"

tmp="$out.tmp.$$"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$tmp"
mv -f "$tmp" "$out"
printf '%s\n' "$inputs" >"$stamp"
printf '%s\n' "$out"
