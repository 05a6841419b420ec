#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Crash consistency, power loss with volatile write caches: cache and
# origin are memory-backed null_blk disks with a write cache (cache_size):
# only FUA writes and flushes are sure to reach the media, and powering a
# disk off (configfs "power") throws its cache away. Each disk is reached
# through a dm-linear leg. While crash_io (see crash_io.c) writes, discards
# and reads 1024 blocks through the target (commit interval 100 ms, a cache
# of about half of them), at a random instant 0.2 to 2 s into the run,
# crash_io freezes its record of durable writes and at once suspends both
# legs (noflush) and powers both disks off (in random order): the legs make
# the cut simultaneous, so that the target cannot complete I/O on one disk
# after the other died. One cut in three leaves the legs running instead:
# the target then sees one disk die while the other still works (a device
# failure, then the power cut), and must neither serve a block it could
# not invalidate nor lose one. The legs then fail all I/O, the target is
# removed, the disks are powered on again with what reached their media,
# and the target is created again: it loads the metadata as the power cut
# left it. Every block must read back no older than its last durable write
# (FUA, or completed before a completed fdatasync; zeroes only after a
# discard), valid, the same twice, and the same as the origin read
# directly. With persistent metadata most loads must find cached blocks.
#
# null_blk 6.1 caches a write only if its page is not on the media yet (a
# write to a page that is goes straight to the media, see null_insert_page):
# discards make origin pages leave the media, so the writes after them
# really are volatile (30% of the writes are such rewrites, fdatasync comes
# only every 40 plain writes). The cache disk's pages are never discarded,
# so there only a slot's first write is volatile.
#
# IC_CRASH_UNFROZEN=1 makes every cut one without frozen legs.
# IC_CRASH_MODE=writeback (test_crash_nullb_wb.sh) runs it in writeback
# mode: the target alone is verified after each reload, then flushed, then
# compared with the origin (see crash_lib.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/crash_lib.sh"
ic_init
cr_init

CUTS=$(ic_full 4 50)
NB=1024				# 4 MiB of hot blocks
ic_origin "${IC_ID}o" 8 0 512 irqmode=0 cache_size=2	# MB of volatile cache
ic_cache "${IC_ID}c" 3 512 cache_size=1		# about 500 slots of 4 KiB
CP=/sys/kernel/config/nullb/${IC_ID}c/power OP=/sys/kernel/config/nullb/${IC_ID}o/power
[[ $(cat "/sys/block/${IC_ID}c/queue/write_cache") == "write back" ]] ||
	ic_skip "null_blk cache_size gives no volatile write cache here"
CSZ=$(blockdev --getsz "/dev/${IC_ID}c") OSZ=$(blockdev --getsz "/dev/${IC_ID}o")
LC=${IC_ID}lc LO=${IC_ID}lo D=/dev/mapper/$IC_ID
C=/dev/mapper/$LC O=/dev/mapper/$LO
ic_linear "$LC" "/dev/${IC_ID}c" "$CSZ"
ic_linear "$LO" "/dev/${IC_ID}o" "$OSZ"
FAIL=(-C "load:$LC:0 $CSZ error" -C "load:$LO:0 $OSZ error" -C "resume:$LC" -C "resume:$LO")
[[ ${IC_CRASH_UNFROZEN:-0} == 1 ]] && ic_log "IC_CRASH_UNFROZEN=1: the legs never freeze"

ic_track "$IC_ID"
cr_create "$IC_ID" "$C" "$O"
cr_detect "$IC_ID"
if ((CR_PERSIST)); then
	cr_dms remove "$IC_ID"
	cr_create "$IC_ID" "$C" "$O"
fi
ic_snap "$IC_ID"
ic_log "cache of ${IC_ST[total]} blocks for $NB hot blocks; $CUTS cut points"

reverted=0 fills=0 forced=0 t0=$SECONDS
for ((r = 1; r <= CUTS; r++)); do
	st=$IC_TMP/state.$r
	if ((RANDOM & 1)); then
		order="origin, cache" cut=(-C "write:$OP:0" -C "write:$CP:0")
	else
		order="cache, origin" cut=(-C "write:$CP:0" -C "write:$OP:0")
	fi
	if ((RANDOM % 3 == 0)) || [[ ${IC_CRASH_UNFROZEN:-0} == 1 ]]; then
		order+=", legs running"
	else
		cut=(-C "suspend:$LC" -C "suspend:$LO" "${cut[@]}")
	fi
	cr_lap
	cr_start "$D" "$NB" "$st" -w 2 -r 2 -p 1 -x 30 -y 40 "${cut[@]}" "${FAIL[@]}"
	cr_lap start
	cr_rand_ms 200 2000
	ms=$CR_MS
	cr_sleep_ms "$ms"
	cr_lap run

	# the cut: crash_io freezes its durable record, then (mostly) the legs,
	# then powers both disks off; the legs come back failing every I/O
	cr_freeze "$st"
	[[ $(<"$CP") == 0 && $(<"$OP") == 0 ]] || ic_fail "cut $r: power off failed"
	cr_lap cut
	cr_stop "$st"
	cr_lap stop
	note=''
	if ((r <= 3 || r % 10 == 0)); then	# a status is one more process
		ic_snap "$IC_ID"
		fills=$((fills + IC_ST[fills]))
		cr_wb_note
		note=": cached ${IC_ST[cached]}, fills ${IC_ST[fills]}, write_hits ${IC_ST[write_hits]}, evictions ${IC_ST[evictions]}, cache_errors ${IC_ST[cache_errors]}, ${IC_ST[state]}$CR_WB_NOTE"
	fi
	ic_log "cut $r at ${ms} ms ($order)$note"
	if ! dmsetup remove "$IC_ID"; then
		forced=$((forced + 1))
		ic_log "cut $r: dmsetup remove over dead disks failed; --force"
		cr_dms remove --force "$IC_ID"
	fi
	cr_lap remove

	# power back on: what reached the media is there, the target loads
	ic_nullb_power "${IC_ID}c" 1
	ic_nullb_power "${IC_ID}o" 1
	cr_dm "load:$LC:0 $CSZ linear /dev/${IC_ID}c 0" "load:$LO:0 $OSZ linear /dev/${IC_ID}o 0" \
		"resume:$LC" "resume:$LO"
	cr_reload "$IC_ID" "$C" "$O" "$r"
	cr_lap reload

	cr_check "$IC_ID" "$st" "$D" "$O" "cut $r at ${ms} ms ($order)"
	cr_lap verify
	ic_log "cut $r: times:$CR_LAPS"
	cr_count reverted
	reverted=$((reverted + CR_N))
	((r == 1)) && cr_oracle_lost "$st" "$D" "$O"
done
ic_log "$CUTS cut points in $((SECONDS - t0)) s: no block lost, stale or corrupt;" \
	"$reverted acknowledged writes undone by the power cuts; warm reloads $CR_WARM of $CUTS;" \
	"$forced forced removals"

# the power cuts were real: acknowledged, unflushed writes did not survive
((reverted > 0)) || ic_fail "no acknowledged write was ever undone: the volatile caches lost nothing"
((fills > 0)) || ic_fail "the target never filled a block: the cache was not exercised"
cr_check_warm "$CUTS"
cr_wb_done "$CUTS"
cr_oracle_stale "$IC_TMP/state.$CUTS" "$D" "$O"
exit 0
