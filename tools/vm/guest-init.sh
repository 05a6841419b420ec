#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stage 2 of the VM rig: runs as PID 1 in the guest after switch_root into
# the host root (shared read-only over 9p). Sets up the environment, runs the
# job that tools/vm/vm-run wrote to the out share (job.sh), records its exit
# status and the kernel log there, and powers off.
#
# Output files in $IC_OUT (host: the --out directory):
#   rc          exit status of the command (absent: the guest did not finish)
#   dmesg.txt   kernel log after the command
#   guest-error set when this script itself failed
set -euo pipefail

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
umask 022
IC_OUT=/run/out

poweroff_now() {
	sync || true
	busybox poweroff -f 2>/dev/null || echo o >/proc/sysrq-trigger
	sleep 1000
}

# PID 1 must never exit (that panics the guest): on any error, say why and
# power off; the host sees that no rc file was written.
errline='?'
on_exit() {
	local rc=$?
	trap - EXIT
	echo "guest-init: error: stage 2 failed (status $rc, line $errline)" >/dev/console
	if [[ "${mounted:-}" == *" $IC_OUT "* ]]; then
		echo "stage 2 (tools/vm/guest-init.sh) failed with status $rc at line $errline" >"$IC_OUT/guest-error" || true
		dmesg >"$IC_OUT/dmesg.txt" 2>/dev/null || true
	fi
	poweroff_now
}
trap on_exit EXIT
trap 'errline=$LINENO' ERR

# Mount points already set up (the initramfs normally does all of them with
# its static busybox, which is much cheaper under TCG than running the host's
# dynamic binaries over 9p; this only fills in what is missing).
mounted=' '
if [[ -r /proc/self/mounts ]]; then
	while read -r _ mp _; do mounted+="$mp "; done </proc/self/mounts
fi
mnt() { # mnt TYPE SRC DIR [OPTIONS]
	[[ "$mounted" == *" $3 "* ]] && return 0
	mkdir -p "$3"
	mount -t "$1" ${4:+-o "$4"} "$2" "$3"
	mounted+="$3 "
}

mnt proc proc /proc
mnt sysfs sysfs /sys
mnt devtmpfs devtmpfs /dev
mnt devpts devpts /dev/pts gid=5,mode=620,ptmxmode=666
mnt tmpfs tmpfs /dev/shm mode=1777,nosuid,nodev
mnt tmpfs tmpfs /tmp mode=1777,nosuid,nodev
mnt tmpfs tmpfs /var/tmp mode=1777,nosuid,nodev
mnt tmpfs tmpfs /run mode=755,nosuid,nodev
[[ -e /dev/fd ]] || ln -sfn /proc/self/fd /dev/fd
[[ -e /dev/stdin ]] || ln -sfn /proc/self/fd/0 /dev/stdin
[[ -e /dev/stdout ]] || ln -sfn /proc/self/fd/1 /dev/stdout
[[ -e /dev/stderr ]] || ln -sfn /proc/self/fd/2 /dev/stderr
if [[ "$mounted" != *" /sys/kernel/config "* ]]; then
	modprobe configfs
	mnt configfs configfs /sys/kernel/config
fi
mnt debugfs debugfs /sys/kernel/debug

# Kernel command line: icvm.src=<repo> icvm.msize=<9p msize>.
IC_SRC='' msize=512000
read -r -a cmdline </proc/cmdline
for arg in "${cmdline[@]}"; do
	case "$arg" in
	icvm.src=*) IC_SRC=${arg#icvm.src=} ;;
	icvm.msize=*) msize=${arg#icvm.msize=} ;;
	esac
done
[[ -n "$IC_SRC" ]] || { echo "guest-init: no icvm.src= on the kernel command line" >/dev/console; exit 1; }

# Writable results share (the host's --out directory).
mnt 9p out "$IC_OUT" "trans=virtio,version=9p2000.L,msize=$msize,cache=none"

# The command's output goes to the second serial port (host: output.log and
# stdout), the kernel console stays on ttyS0 (host: console.log). The
# initramfs already turned off CR insertion on ttyS1.
outdev=/dev/ttyS1
[[ -c $outdev ]] || outdev=/dev/console

# The job: IC_CMD=(...), IC_FULL, IC_GUEST_DEADLINE (wall-clock time, in
# seconds since the epoch, at which the command is stopped; 0: none),
# IC_NVME_COUNT, IC_VIRTIO_COUNT.
IC_CMD=() IC_FULL=0 IC_GUEST_DEADLINE=0 IC_NVME_COUNT=0 IC_VIRTIO_COUNT=0
# shellcheck source=/dev/null
. "$IC_OUT/job.sh"
[[ ${#IC_CMD[@]} -gt 0 ]] || { echo "guest-init: empty command in $IC_OUT/job.sh" >/dev/console; exit 1; }

# Disks: load the drivers and name the devices in the order vm-run was given
# them (NVMe probing is asynchronous, so nvme0n1 is not always the first).
# IC_NVME_DEVS / IC_VIRTIO_DEVS are space separated /dev paths.
IC_NVME_DEVS='' IC_VIRTIO_DEVS=''
find_disk() { # find_disk PREFIX SERIAL -> prints /dev/<disk>, waits up to 20 s
	# Builtins only: every exec is slow under TCG. NVMe serials are padded
	# with blanks in sysfs.
	local b s up t0
	read -r t0 _ </proc/uptime
	while :; do
		for b in /sys/block/"$1"*; do
			[[ -b "/dev/${b##*/}" ]] || continue
			s=''
			{ read -r s <"$b/serial" || read -r s <"$b/device/serial"; } 2>/dev/null || true
			if [[ "$s" == "$2" ]]; then
				echo "/dev/${b##*/}"
				return 0
			fi
		done
		read -r up _ </proc/uptime
		((${up%%.*} - ${t0%%.*} < 20)) || break
		sleep 0.1
	done
	echo "guest-init: no /dev/$1* disk with serial $2 appeared" >/dev/console
	return 1
}
if ((IC_NVME_COUNT > 0)); then
	modprobe nvme
	for ((i = 0; i < IC_NVME_COUNT; i++)); do
		d=$(find_disk nvme "ic$i")
		IC_NVME_DEVS+="${IC_NVME_DEVS:+ }$d"
	done
fi
if ((IC_VIRTIO_COUNT > 0)); then
	modprobe virtio_blk
	for ((i = 0; i < IC_VIRTIO_COUNT; i++)); do
		d=$(find_disk vd "icv$i")
		IC_VIRTIO_DEVS+="${IC_VIRTIO_DEVS:+ }$d"
	done
fi

export IC_OUT IC_SRC IC_FULL IC_NVME_DEVS IC_VIRTIO_DEVS
export IC_KO="$IC_SRC/dm-infercache.ko"
export DM_DISABLE_UDEV=1
cd "$IC_SRC"

echo "guest-init: running: ${IC_CMD[*]}" >/dev/kmsg
: >"$IC_OUT/started"
rc=0
set +e
if ((IC_GUEST_DEADLINE > 0)); then
	limit=$((IC_GUEST_DEADLINE - EPOCHSECONDS))
	((limit > 0)) || limit=1
	timeout -k 5 "$limit" "${IC_CMD[@]}" </dev/null >"$outdev" 2>&1 &
	pid=$!
	# timeout(1) itself waits forever for a task stuck in D state: give up
	# on it 10 s after the deadline.
	while kill -0 "$pid" 2>/dev/null && ((EPOCHSECONDS < IC_GUEST_DEADLINE + 10)); do
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		rc=124
	else
		wait "$pid"
		rc=$?
	fi
	if ((rc == 124 || rc == 137)) && ((EPOCHSECONDS >= IC_GUEST_DEADLINE - 1)); then
		echo "guest-init: command timed out after ${limit}s" >"$outdev"
		echo "guest-init: command timed out after ${limit}s; blocked tasks and CPU backtraces follow" >/dev/kmsg
		echo timeout >"$IC_OUT/guest-timeout"
		timeout 10 ps -eo pid,ppid,stat,wchan:32,etime,args >"$IC_OUT/ps.txt" 2>&1
		echo w >/proc/sysrq-trigger
		echo l >/proc/sysrq-trigger
	fi
else
	"${IC_CMD[@]}" </dev/null >"$outdev" 2>&1
	rc=$?
fi
set -e
echo "guest-init: command exited with status $rc" >/dev/kmsg

echo "$rc" >"$IC_OUT/rc"
dmesg >"$IC_OUT/dmesg.txt"
trap - EXIT
poweroff_now
