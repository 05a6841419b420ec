#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Admission and sequential bypass. A hot set (a quarter of the cache) read
# three times, then a one-touch random scan four times the cache size: the
# scan must not wash the hot set out (a re-read still hits at least 90%;
# plain LRU or CLOCK would keep almost nothing). A long sequential read
# stops filling after sequential_threshold (default 4 MiB) and counts as
# "sequential"; with "sequential_threshold 0" it fills all the way.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio

ic_origin "${IC_ID}o" 160 20000
ic_cache "${IC_ID}c" 17
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID
ic_create_ok "$IC_ID" "$C" "$O"
ic_snap "$IC_ID"
slots=${IC_ST[total]} hot=$((IC_ST[total] / 4))
rd=("${IC_FIO_IO[@]}" --filename="$D" --rw=randread --bs=4k)

ic_fio hot "${rd[@]}" --name=hot --size=$((hot * 4))k --loops=3 || ic_fail "reading the hot set failed"
ic_wait "$IC_ID" cached -ge "$hot" || ic_fail "the hot set did not get cached"
ic_fio scan "${rd[@]}" --name=scan --offset=32M --size=$((slots * 16))k || ic_fail "the scan failed"
ic_show "$IC_ID"
dmsetup message "$IC_ID" 0 clear_stats
ic_fio hot2 "${rd[@]}" --name=hot --size=$((hot * 4))k || ic_fail "re-reading the hot set failed"
ic_show "$IC_ID"
ic_log "hot set of $hot blocks after a scan of $((slots * 4)) blocks: ${IC_ST[read_hits]} hits"
ic_want reads -eq "$hot" read_hits -ge $((hot * 9 / 10))

# sequential streams, on an empty cache: 8 MiB = 2048 blocks, the first
# 4 MiB (1024 blocks) fill, the rest is bypassed
ic_remove "$IC_ID" || ic_fail "remove failed"
ic_create_ok "$IC_ID" "$C" "$O" format
seq=("${IC_FIO_IO[@]}" --filename="$D" --rw=read --bs=64k --size=8M)
ic_fio seq1 "${seq[@]}" --name=seq1 --offset=100M || ic_fail "sequential read failed"
ic_wait "$IC_ID" fills -ge 1000
ic_show "$IC_ID"
ic_want reads -eq 2048 sequential -ge 900 fills -le 1100
dmsetup message "$IC_ID" 0 sequential_threshold 0 || ic_fail "message sequential_threshold 0 refused"
dmsetup message "$IC_ID" 0 clear_stats
ic_fio seq2 "${seq[@]}" --name=seq2 --offset=130M || ic_fail "sequential read failed"
ic_wait "$IC_ID" fills -ge 1700 || { ic_show "$IC_ID"; ic_fail "with sequential_threshold 0 a long sequential read did not fill"; }
ic_show "$IC_ID"
ic_want sequential -eq 0
exit 0
