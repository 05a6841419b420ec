#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# No stale read under concurrent reads and writes: stale_check (see
# stale_check.c) runs writers and readers over 256 hot 4 KiB blocks through
# a target whose cache holds only 32 blocks, over a slow origin (200 us per
# I/O), so fills, evictions and write-throughs race all the time. Every
# read must return data at least as new as the last write completed before
# it began; afterwards every block must read back its last write through
# the target and, after removal, from the origin. Cache blocks of 4 KiB and
# 16 KiB (partial writes, reads of 1 and 4 blocks).
. "$(dirname "$0")/lib.sh"
ic_init

SC=''
for c in "$IC_DIR/stale_check" "$IC_SRC/build/selftests/dm-infercache/stale_check"; do
	if [[ -x $c && ! $IC_DIR/stale_check.c -nt $c && ! $IC_DIR/stamp.h -nt $c ]]; then SC=$c; break; fi
done
if [[ -z $SC ]]; then
	command -v gcc >/dev/null || ic_skip "stale_check not built (make -C selftests/dm-infercache) and no gcc"
	SC=$IC_TMP/stale_check
	gcc -O2 -Wall -pthread -o "$SC" "$IC_DIR/stale_check.c" || ic_fail "cannot build stale_check"
fi
SECS=$(ic_full 8 60)
HOT=256 SLOTS=32

ic_origin "${IC_ID}o" 16 200000
ic_cache "${IC_ID}c" 8
O=/dev/${IC_ID}o D=/dev/mapper/$IC_ID

for bs in 4096 16384; do
	bsec=$((bs / 512)) L=${IC_ID}l$bs
	# header, one block of set metadata, SLOTS data blocks
	ic_linear "$L" "/dev/${IC_ID}c" $((2048 + bsec + SLOTS * bsec))
	ic_create_ok "$IC_ID" "/dev/mapper/$L" "$O" block_size "$bs" format
	ic_snap "$IC_ID"
	total=${IC_ST[total]}
	ic_log "block_size $bs: $total cache blocks for $((HOT * 4096 / bs)) hot blocks, ${SECS}s"
	ic_expect "total" "$total" -ge 16
	ic_expect "total" "$total" -le 64
	"$SC" run -d "$D" -n $HOT -w 4 -r 4 -s 4 -t "$SECS" -o "$IC_TMP/state"
	rc=$?
	ic_show "$IC_ID"
	((rc == 0)) || ic_fail "stale_check through the target: status $rc (block_size $bs)"
	# the races were really run: fills, evictions and writes to cached blocks
	ic_want fills -gt 0 evictions -gt 0 write_hits -gt 0 cache_errors -eq 0
	ic_remove "$IC_ID" || ic_fail "remove failed"
	"$SC" check -d "$O" -i "$IC_TMP/state" || ic_fail "the origin does not hold the last writes (block_size $bs)"
	ic_remove "$L" || ic_fail "removing $L failed"
done
exit 0
