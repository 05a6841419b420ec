#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The cache device fails under the target: its data area (every sector
# from the superblock's data_start on) turns into dm "error" below a leg,
# while the metadata area keeps working, as a drive with bad media would.
#   1. writethrough: cached blocks are read from the origin, correctly, and
#      the target says "degraded"; writes to cached blocks succeed and land
#      on the origin; "mode writeback" (message and sysfs) is refused and
#      changes nothing. Restored and created again, the cache serves none
#      of the old copies (the load after the error re-formats).
#   2. writeback (paused): dirty blocks are the only copy: reading or
#      writing them fails rather than serve or overwrite behind the origin's
#      older data; clean cached blocks and uncached blocks still work. The
#      leg restored and the target created again, the dirty blocks are
#      loaded (and written back), read back whole, and after a flush the
#      origin holds them.
#   3. writeback, metadata writes fail (the entries area, not the
#      superblock): a dirty block's entry cannot be written, so a flush
#      must fail, and keep failing while the area does (it once succeeded
#      from the second try on: the failed commit forgot its sets). Once
#      the area works again, removal commits the entry: the block survives
#      a re-creation.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prog_lib.sh"
ic_init
ic_require dd cmp head
modprobe dm-flakey 2>/dev/null
ic_prog CHK infercache-check

ic_origin "${IC_ID}o" 16 20000
ic_cache "${IC_ID}c" 8
O=/dev/${IC_ID}o C=/dev/${IC_ID}c L=${IC_ID}leg D=/dev/mapper/$IC_ID
CSZ=$(blockdev --getsz "$C")
N=64				# blocks of each data set (4 KiB)
ic_linear "$L" "$C" "$CSZ"

for p in p1 p2 p3 p4 p5; do
	head -c $((N * 4096)) /dev/urandom >"$IC_TMP/$p" || ic_fail "cannot make data set $p"
done

# put DEV FILE BLOCK: write a data set at BLOCK (O_DIRECT, 4 KiB writes)
put() {
	dd if="$IC_TMP/$2" of="$1" bs=4k seek="$3" oflag=direct conv=notrunc status=none ||
		ic_fail "writing $2 to $1 at block $3 failed"
}
# holds DEV FILE BLOCK WHAT: DEV has the data set at BLOCK (O_DIRECT)
holds() {
	cmp -s "$IC_TMP/$2" <(dd if="$1" bs=4k skip="$3" count="$N" iflag=direct status=none) ||
		ic_fail "$4: $1 does not hold $2 at block $3"
}
# fsync_dev: fsync the target (an empty REQ_PREFLUSH); status of dd
fsync_dev() { dd if=/dev/null of="$D" bs=4k count=0 conv=notrunc,fsync status=none; }
# fails CMD...: CMD must fail (an I/O error reaches the caller)
fails() { if "$@" 2>/dev/null; then return 1; fi; return 0; }

# sb_num KEY: a number of the cache superblock (infercache-check --json)
sb_num() {
	local v
	v=$("$CHK" --json "/dev/mapper/$L" 2>/dev/null | grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2)
	if ! [[ $v =~ ^[0-9]+$ ]] || ((v == 0 || v >= CSZ)); then
		ic_fail "no $1 from infercache-check (got '$v')"
	fi
	echo "$v"
}
# leg TABLE: swap the cache leg's table (TABLE: lines, \n-separated)
leg() {
	dmsetup suspend "$L" || ic_fail "suspending the cache leg failed"
	printf '%b' "$1" | dmsetup load "$L" || ic_fail "loading the cache leg failed"
	dmsetup resume "$L" || ic_fail "resuming the cache leg failed"
}
# break_data: the leg fails every sector from data_start on
break_data() {
	local ds
	ds=$(sb_num data_start) || exit
	leg "0 $ds linear $C 0\n$ds $((CSZ - ds)) error\n"
	ic_log "cache data area (sectors $ds-$CSZ) now fails every I/O"
}
mend() {
	if ! dmsetup suspend "$L" || ! dmsetup load "$L" --table "0 $CSZ linear $C 0" ||
		! dmsetup resume "$L"; then
		ic_fail "restoring the cache leg failed"
	fi
}

# ------------------------------------------------------ 1. writethrough
ic_create_ok "$IC_ID" "/dev/mapper/$L" "$O"
put "$O" p1 0
holds "$D" p1 0 "first read"
holds "$D" p1 0 "second read"
ic_snap "$IC_ID"
ic_want cached -ge $((N * 9 / 10)) state = ok
break_data
holds "$D" p1 0 "reads of cached blocks on a failed cache"
ic_show "$IC_ID"
ic_want state = degraded cache_errors -gt 0
put "$D" p2 0
holds "$O" p2 0 "writes to cached blocks on a failed cache, on the origin"
holds "$D" p2 0 "writes to cached blocks on a failed cache, through the target"
sys=/sys/block/$(ic_dev_of "$D")/infercache/mode
fails dmsetup message "$IC_ID" 0 mode writeback || ic_fail "mode writeback accepted on a degraded target"
[[ -e $sys ]] || ic_fail "no $sys on a resumed target"
fails sh -c "echo writeback >$sys" || ic_fail "sysfs mode writeback accepted on a degraded target"
ic_snap "$IC_ID"
ic_want mode = writethrough state = degraded
ic_log "mode writeback refused while degraded; mode still ${IC_ST[mode]}"
ic_remove "$IC_ID" || ic_fail "removing the degraded target failed"
mend
ic_create_ok "$IC_ID" "/dev/mapper/$L" "$O"
ic_show "$IC_ID"
ic_want loaded -eq 0 state = ok
holds "$D" p2 0 "after the failure, restored and created again"

# --------------------------------------------------------- 2. writeback
ic_remove "$IC_ID" || ic_fail "remove failed"
ic_create_ok "$IC_ID" "/dev/mapper/$L" "$O" mode writeback
dmsetup message "$IC_ID" 0 writeback_pause || ic_fail "writeback_pause failed"
put "$D" p3 0			# cached clean blocks rewritten: dirty
put "$O" p4 $((2 * N))		# clean, cached by two reads
holds "$D" p4 $((2 * N)) "clean set, first read"
holds "$D" p4 $((2 * N)) "clean set, second read"
ic_snap "$IC_ID"
ic_want dirty -eq "$N" wb_state = paused
break_data
holds "$D" p4 $((2 * N)) "clean cached blocks on a failed cache"
fails dd if="$D" of=/dev/null bs=4k skip=5 count=1 iflag=direct status=none ||
	ic_fail "a dirty block read without error on a failed cache (the origin's copy is older)"
fails dd if="$IC_TMP/p5" of="$D" bs=4k seek=6 count=1 oflag=direct conv=notrunc status=none ||
	ic_fail "a write to a dirty block succeeded on a failed cache"
put "$D" p5 $((4 * N))		# never cached: to the origin
holds "$O" p5 $((4 * N)) "uncached writes on a failed cache"
ic_show "$IC_ID"
ic_want state = degraded dirty -eq "$N"
mend
sleep 1.5			# the superblock's error mark is retried once a second
ic_remove "$IC_ID" || ic_fail "removing the degraded writeback target failed"
ic_create_ok "$IC_ID" "/dev/mapper/$L" "$O" mode writeback
ic_show "$IC_ID"
ic_want loaded -eq "$N" state = ok
# found dirty: still dirty, or written back since (writeback runs at once)
# shellcheck disable=SC2154 # IC_ST is keyed by field name
wb_sum=$((IC_ST[dirty] + IC_ST[written_back]))
ic_expect "dirty and written back after the reload" "$wb_sum" -eq "$N"
holds "$D" p3 0 "dirty blocks after the failure, restored and created again"
dmsetup message "$IC_ID" 0 flush || ic_fail "flush failed"
ic_snap "$IC_ID"
ic_want dirty -eq 0
holds "$O" p3 0 "the origin after the flush"
holds "$O" p5 $((4 * N)) "the uncached write made while degraded"

# ------------------------------------------- 3. metadata writes fail
ic_remove "$IC_ID" || ic_fail "remove failed"
ic_create_ok "$IC_ID" "/dev/mapper/$L" "$O" mode writeback commit_interval 0
dmsetup message "$IC_ID" 0 writeback_pause || ic_fail "writeback_pause failed"
ms=$(sb_num meta_start) || exit
ds=$(sb_num data_start) || exit
put "$D" p1 $((6 * N))		# dirty: their entries wait for a commit
leg "0 $ms linear $C 0\n$ms $((ds - ms)) flakey $C $ms 0 3600 1 error_writes\n$ds $((CSZ - ds)) linear $C $ds\n"
ic_log "cache metadata entries (sectors $ms-$ds) now fail every write"
for try in 1 2 3; do
	if fsync_dev 2>/dev/null; then
		ic_fail "flush $try succeeded while no entry of the dirty blocks could be written"
	fi
done
ic_show "$IC_ID"
ic_want state = degraded dirty -eq "$N"
leg "0 $CSZ linear $C 0\n"
sleep 1.5			# the error mark in the superblock is retried once a second
fsync_dev || ic_fail "flush failed once the metadata area worked again"
ic_remove "$IC_ID" || ic_fail "removing the target failed"
ic_create_ok "$IC_ID" "/dev/mapper/$L" "$O" mode writeback
ic_show "$IC_ID"
ic_want loaded -ge "$N"
holds "$D" p1 $((6 * N)) "dirty blocks whose first commits failed, after a re-creation"
exit 0
