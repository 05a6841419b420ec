#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Crash consistency, instant power cut below the target: both legs (cache
# and origin) are dm-flakey devices over memory-backed null_blk disks
# without a write cache, passing everything through. crash_io (see
# crash_io.c) writes, discards and reads 1024 blocks through the target
# (commit interval 100 ms, a cache of about half of them, so blocks are
# filled, rewritten and evicted); at a random instant, 0.2 to 2 s into the
# run, crash_io freezes its record of durable writes and at once suspends
# both legs (noflush, in random order), reloads them with drop_writes and
# resumes them: everything written from then on, the target's final commit
# included, is lost. The target is removed, the legs are restored and the
# target is created again over them: it loads the metadata as the crash
# left it. Every block must then read back no older than its last durable
# write (not lost), valid (not corrupt), the same twice, and the same as
# the origin reads directly (nothing stale). With persistent metadata, most
# loads must find cached blocks, and the shutdown must be seen as unclean.
# Also proves that the oracle fails on an inflated durable version and on a
# cache that disagrees with its origin.
# IC_CRASH_MODE=writeback (test_crash_flakey_wb.sh) runs it in writeback
# mode: the target alone is verified after each reload, then flushed, then
# compared with the origin (see crash_lib.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/crash_lib.sh"
ic_init
modprobe dm-flakey 2>/dev/null
cr_init

CUTS=$(ic_full 4 50)
NB=1024				# 4 MiB of hot blocks
ic_origin "${IC_ID}o" 8 0 512 irqmode=0
ic_cache "${IC_ID}c" 3		# about 500 slots of 4 KiB
FC=${IC_ID}fc FO=${IC_ID}fo D=/dev/mapper/$IC_ID
CSZ=$(blockdev --getsz "/dev/${IC_ID}c") OSZ=$(blockdev --getsz "/dev/${IC_ID}o")
PASS_C="0 $CSZ flakey /dev/${IC_ID}c 0 3600 0"		# always up
PASS_O="0 $OSZ flakey /dev/${IC_ID}o 0 3600 0"
DROP_C="0 $CSZ flakey /dev/${IC_ID}c 0 0 3600 1 drop_writes"	# writes vanish
DROP_O="0 $OSZ flakey /dev/${IC_ID}o 0 0 3600 1 drop_writes"
ic_track "$FC" "$FO" "$IC_ID"
dmsetup create "$FC" --table "$PASS_C" || ic_skip "dm-flakey not available"
cr_dms create "$FO" --table "$PASS_O"

cr_create "$IC_ID" "/dev/mapper/$FC" "/dev/mapper/$FO"
cr_detect "$IC_ID"
if ((CR_PERSIST)); then
	cr_dms remove "$IC_ID"
	cr_create "$IC_ID" "/dev/mapper/$FC" "/dev/mapper/$FO"
fi
ic_snap "$IC_ID"
ic_log "cache of ${IC_ST[total]} blocks for $NB hot blocks; $CUTS cut points"

reverted=0 fills=0 t0=$SECONDS
for ((r = 1; r <= CUTS; r++)); do
	st=$IC_TMP/state.$r
	if ((RANDOM & 1)); then		# which leg freezes first
		order="cache, origin" cut=(-C "suspend:$FC" -C "suspend:$FO")
	else
		order="origin, cache" cut=(-C "suspend:$FO" -C "suspend:$FC")
	fi
	cr_lap
	cr_start "$D" "$NB" "$st" -w 2 -r 2 -p 1 -x 5 "${cut[@]}" \
		-C "load:$FC:$DROP_C" -C "load:$FO:$DROP_O" -C "resume:$FC" -C "resume:$FO"
	cr_lap start
	cr_rand_ms 200 2000
	ms=$CR_MS
	cr_sleep_ms "$ms"
	cr_lap run

	# the cut: crash_io freezes its durable record, then suspends both
	# legs (noflush) and resumes them dropping every write
	cr_freeze "$st"
	cr_lap cut
	cr_stop "$st"
	cr_lap stop
	note=''
	if ((r <= 3 || r % 10 == 0)); then	# a status is one more process
		ic_snap "$IC_ID"
		fills=$((fills + IC_ST[fills]))
		cr_wb_note
		note=": cached ${IC_ST[cached]}, fills ${IC_ST[fills]}, write_hits ${IC_ST[write_hits]}, evictions ${IC_ST[evictions]}$CR_WB_NOTE"
	fi
	ic_log "cut $r at ${ms} ms ($order)$note"
	cr_dms remove "$IC_ID"		# its last commit is dropped too
	cr_lap remove

	# power back: the legs pass through again, the target loads
	cr_dm "load:$FC:$PASS_C" "load:$FO:$PASS_O" "resume:$FC" "resume:$FO"
	cr_reload "$IC_ID" "/dev/mapper/$FC" "/dev/mapper/$FO" "$r"
	cr_lap reload

	cr_check "$IC_ID" "$st" "$D" "/dev/mapper/$FO" "cut $r at ${ms} ms ($order)"
	cr_lap verify
	ic_log "cut $r: times:$CR_LAPS"
	cr_count reverted
	reverted=$((reverted + CR_N))
	((r == 1)) && cr_oracle_lost "$st" "$D" "/dev/mapper/$FO"
done
ic_log "$CUTS cut points in $((SECONDS - t0)) s: no block lost, stale or corrupt;" \
	"$reverted acknowledged writes undone by the cuts; warm reloads $CR_WARM of $CUTS"

# the cuts were real: writes acknowledged after them did not survive
((reverted > 0)) || ic_fail "no acknowledged write was ever undone: the cut did not cut"
((fills > 0)) || ic_fail "the target never filled a block: the cache was not exercised"
cr_check_warm "$CUTS"
cr_wb_done "$CUTS"
cr_oracle_stale "$IC_TMP/state.$CUTS" "$D" "/dev/mapper/$FO"
exit 0
