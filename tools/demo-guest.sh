#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make demo` (started by tools/demo.sh through tools/vm/vm-run):
# a slow origin (null_blk, IC_DEMO_LAT_US per I/O), the guest's NVMe disk as
# the cache, and 4 KiB random reads over a hot set smaller than the cache,
# read cold and then warm. Prints IOPS, latency and the hit ratio from the
# target's status counters, with the bare origin as a reference.
set -euo pipefail
export DM_DISABLE_UDEV=1

IC_SRC=${IC_SRC:-$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)}
IC_KO=${IC_KO:-$IC_SRC/dm-infercache.ko}
HOT_MB=${IC_DEMO_HOT_MB:-32} ORIGIN_MB=${IC_DEMO_ORIGIN_MB:-1024}
LAT_US=${IC_DEMO_LAT_US:-5000} DEPTH=${IC_DEMO_DEPTH:-4}
NAME=icdemo NB=icdemo_origin ORIGIN=/dev/icdemo_origin
WORK=$(mktemp -d /tmp/icdemo.XXXXXX)
cd "$WORK"	# fio may write state files into the current directory

die() { echo "demo: error: $*" >&2; exit 1; }
cleanup() {
	set +e
	dmsetup remove "$NAME" 2>/dev/null
	if [[ -d /sys/kernel/config/nullb/$NB ]]; then
		echo 0 >"/sys/kernel/config/nullb/$NB/power"
		rmdir "/sys/kernel/config/nullb/$NB"
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

for t in dmsetup fio jq blockdev; do command -v $t >/dev/null || die "$t not installed (make deps)"; done
modprobe nvme 2>/dev/null || true
CACHE=''
for d in ${IC_NVME_DEVS:-} /dev/nvme0n1; do [[ -b $d ]] && { CACHE=$d; break; }; done
[[ -n $CACHE ]] || die "no NVMe disk in the guest (vm-run --nvme FILE:SIZE)"
[[ -d /sys/module/dm_infercache ]] || { modprobe dm-mod; modprobe libcrc32c; insmod "$IC_KO"; } || die "cannot load $IC_KO"

modprobe configfs
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
[[ -d /sys/kernel/config/nullb ]] || modprobe null_blk nr_devices=0
d=/sys/kernel/config/nullb/$NB
mkdir "$d"
echo "$ORIGIN_MB" >"$d/size"
echo 4096 >"$d/blocksize"
echo 1 >"$d/memory_backed"
echo 2 >"$d/irqmode"
echo $((LAT_US * 1000)) >"$d/completion_nsec"
echo 64 >"$d/hw_queue_depth"
echo 1 >"$d/power"
for _ in $(seq 50); do [[ -b $ORIGIN ]] && break; sleep 0.1; done
[[ -b $ORIGIN ]] || die "$ORIGIN did not appear"

# the "model shard": a known pattern over the hot set, checked on every read
PAT=(--verify=pattern --verify_pattern=0x1cca5eed --verify_fatal=1 --verify_state_save=0 --eta=never)
fio --name=load --filename="$ORIGIN" --direct=1 --ioengine=libaio --iodepth=16 --rw=write --bs=1M \
	--size="${HOT_MB}M" "${PAT[@]}" --do_verify=0 --output="$WORK/load.txt" || die "writing the origin failed"

# reads PASS DEV [FIO ARGS]: 4 KiB random reads of the hot set, JSON in $WORK/PASS.json
reads() {
	local pass=$1 dev=$2
	shift 2
	fio --name="$pass" --filename="$dev" --direct=1 --ioengine=libaio --iodepth="$DEPTH" \
		--rw=randread --bs=4k --size="${HOT_MB}M" --randrepeat=1 "${PAT[@]}" "$@" \
		--output-format=json --output="$WORK/$pass.json" || die "fio $pass failed (data or I/O error)"
}
field() { dmsetup status "$NAME" | awk -v f="$1" '{ print $f }'; }

echo "== origin alone ($ORIGIN, ${LAT_US} us per I/O)"
reads origin "$ORIGIN" --number_ios=$((HOT_MB * 32))
CACHE_MB=$(($(blockdev --getsize64 "$CACHE") / 1048576))
dmsetup create "$NAME" --table "0 $(blockdev --getsz "$ORIGIN") infercache $CACHE $ORIGIN 0"
echo "== $NAME: $(dmsetup table "$NAME")"
declare -A HIT
for pass in cold warm; do
	echo "== $pass pass"
	dmsetup message "$NAME" 0 clear_stats
	reads "$pass" "/dev/mapper/$NAME"
	r=$(field 6) h=$(field 7)
	HIT[$pass]=$(awk -v h="$h" -v r="$r" 'BEGIN { printf "%.1f%%", r ? 100 * h / r : 0 }')
	# fills complete just after the reads: let them land before the next pass
	for _ in $(seq 100); do
		[[ $(field 9) -ge $(field 8) ]] && break
		sleep 0.05
	done
done
echo "== status: $(dmsetup status "$NAME")"

row() { # row LABEL PASS HIT
	jq -r --arg l "$1" --arg h "$3" '.jobs[0].read | [$l, (.total_ios | tostring), $h,
		(.iops | floor | tostring),
		((.clat_ns.mean / 1000) | floor | tostring),
		((.clat_ns.percentile["99.000000"] / 1000) | floor | tostring)] | @tsv' "$WORK/$2.json"
}
echo
echo "dm-infercache demo: 4 KiB random reads (iodepth $DEPTH) over a ${HOT_MB} MiB hot set,"
echo "origin null_blk with ${LAT_US} us per I/O, cache $CACHE (${CACHE_MB} MiB emulated NVMe)."
echo "Every read was checked against the data written to the origin."
{
	printf 'pass\treads\thit ratio\tIOPS\tmean lat (us)\tp99 lat (us)\n'
	row "origin alone" origin "-"
	row "cold cache" cold "${HIT[cold]}"
	row "warm cache" warm "${HIT[warm]}"
} | awk -F'\t' '{ printf "%-14s %7s %10s %9s %14s %13s\n", $1, $2, $3, $4, $5, $6 }'
