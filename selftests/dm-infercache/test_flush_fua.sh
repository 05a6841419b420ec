#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Flush and FUA reach the origin. The origin is a null_blk with a volatile
# write cache (cache_size): powering it off loses every write that was not
# flushed or FUA (checked first, without the target). Through the target:
# O_SYNC writes (REQ_FUA) and writes each followed by fsync (empty
# REQ_PREFLUSH); then the origin leg is switched to drop every write, so
# nothing the target does at removal can help, the target is removed and
# the origin powered off and on: all of that data must still be there.
# Then over legs with no volatile cache at all, in writeback mode: the
# target must still advertise a write-back cache with FUA (a write to the
# cache alone is durable only after a commit describes it, and the block
# layer strips flushes and FUA from a queue without a write cache), and
# every fsync must reach it and commit.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio

ic_origin "${IC_ID}o" 64 20000 512 cache_size=32
ic_cache "${IC_ID}c" 16
O=/dev/${IC_ID}o C=/dev/${IC_ID}c L=${IC_ID}leg D=/dev/mapper/$IC_ID
SZ=$(blockdev --getsz "$O")
n=1024 # 4 KiB writes per phase

# job G OFFSET_MB DEV ARGS...: a job writing 4 MiB of generation G (4 KiB
# blocks, one at a time); each run keeps its jobs at the same positions
job() { ic_gen "$1" "$3" --ioengine=psync --bs=4k --offset="$2M" --size=4M "${@:4}"; }
power_cycle() { ic_nullb_power "${IC_ID}o" 0; ic_nullb_power "${IC_ID}o" 1; }

# the oracle can fail: unflushed writes to the origin are lost at power off
# shellcheck disable=SC2046 # job strings are split into options on purpose
ic_fio ctl "${IC_FIO_IO[@]}" $(job 9 40 "$O" --do_verify=0) || ic_fail "writing the origin failed"
power_cycle
# shellcheck disable=SC2046
if ic_fio ctlv "${IC_FIO_IO[@]}" $(job 9 40 "$O" --verify_only) >/dev/null; then
	ic_skip "null_blk kept unflushed writes over a power cycle: cannot judge flush/FUA"
fi
ic_log "control: unflushed writes to the bare origin were lost at power off, as expected"

ic_linear "$L" "$O" "$SZ"
ic_create_ok "$IC_ID" "$C" "/dev/mapper/$L"
q=/sys/block/$(ic_dev_of "$D")/queue
[[ $(cat "$q/write_cache") == "write back" ]] || ic_fail "target write_cache is '$(cat "$q/write_cache")', origin has a write-back cache"
[[ $(cat "$q/fua") == 1 ]] || ic_fail "target does not advertise FUA; the origin does"

# writes each followed by fsync (a flush), then O_SYNC writes (REQ_FUA):
# the FUA ones last, so that no later flush can make up for a lost FUA
f0=$(ic_stat "$O" fios)
# shellcheck disable=SC2046
ic_fio sync "${IC_FIO_IO[@]}" $(job 2 4 "$D" --fsync=1 --do_verify=0) \
	$(job 1 0 "$D" --sync=1 --do_verify=0) || ic_fail "fsync or O_SYNC writes failed"
f1=$(ic_stat "$O" fios)
ic_show "$IC_ID"
ic_log "flushes that reached the origin: $((f1 - f0))"
ic_want writes -ge $((2 * n))
ic_expect "flushes reaching the origin" $((f1 - f0)) -ge $((n * 9 / 10))	# one per fsync

dmsetup suspend --noflush "$L" || ic_fail "suspending the origin leg failed"
dmsetup load "$L" --table "0 $SZ flakey $O 0 0 86400 1 drop_writes" || ic_skip "dm-flakey not available"
dmsetup resume "$L" || ic_fail "resuming the origin leg failed"
ic_remove "$IC_ID" || ic_fail "remove failed"
ic_remove "$L" || ic_fail "removing the leg failed"
power_cycle
# shellcheck disable=SC2046
ic_fio syncv "${IC_FIO_IO[@]}" $(job 2 4 "$O" --fsync=1 --verify_only) $(job 1 0 "$O" --sync=1 --verify_only) ||
	ic_fail "FUA or flushed writes through the target were lost at origin power off"

ic_origin "${IC_ID}p" 16 0 512		# no cache_size: no volatile cache
ic_cache "${IC_ID}q" 16
W=${IC_ID}w
for d in "${IC_ID}p" "${IC_ID}q"; do
	[[ $(cat "/sys/block/$d/queue/write_cache") == "write through" ]] ||
		ic_skip "null_blk $d has a write cache: cannot check the target's own"
done
ic_create_ok "$W" "/dev/${IC_ID}q" "/dev/${IC_ID}p" mode writeback commit_interval 0
q=/sys/block/$(ic_dev_of "/dev/mapper/$W")/queue
[[ $(cat "$q/write_cache") == "write back" ]] ||
	ic_fail "writeback target over legs without a write cache says '$(cat "$q/write_cache")': flushes would never reach it"
[[ $(cat "$q/fua") == 1 ]] || ic_fail "writeback target does not advertise FUA"
dmsetup message "$W" 0 writeback_pause || ic_fail "writeback_pause failed"	# commits by fsyncs alone
ic_snap "$W"
c0=${IC_ST[commits]}
m=64
# shellcheck disable=SC2046
ic_fio wbsync "${IC_FIO_IO[@]}" $(ic_gen 3 "/dev/mapper/$W" --ioengine=psync --bs=4k --size=$((m * 4))k --fsync=1 --do_verify=0) ||
	ic_fail "fsync writes in writeback mode failed"
ic_show "$W"
ic_log "commits for $m fsyncs in writeback mode (no periodic commits): $((IC_ST[commits] - c0))"
ic_want dirty -ge 1
ic_expect "commits made by fsyncs" $((IC_ST[commits] - c0)) -ge $((m / 2))
exit 0
