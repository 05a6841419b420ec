#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A second read of a block is a hit served by the cache device: read a
# range once (misses, fills), wait for the fills, clear the counters, read
# it again: every read is a hit by the counters, the cache device's read
# sectors grow by the bytes read and the origin's do not grow at all. Both
# passes check the data against a pattern written to the origin first.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio

MB=$(ic_full 4 64)
ic_origin "${IC_ID}o" $((MB * 4)) 100000
ic_cache "${IC_ID}c" $((MB * 4 + 8))
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID
sizes=(4096 65536)

pat() { echo "--verify=pattern --verify_pattern=$(ic_pattern "$1") --verify_fatal=1"; }
# shellcheck disable=SC2046 # job strings are split into options on purpose
ic_fio prep "${IC_FIO_IO[@]}" --filename="$O" --rw=write --do_verify=0 \
	--name=p0 --bs="${sizes[0]}" --size="${MB}M" $(pat "${sizes[0]}") \
	--name=p1 --bs="${sizes[1]}" --offset="${MB}M" --size="${MB}M" $(pat "${sizes[1]}") ||
	ic_fail "writing the origin failed"

for i in 0 1; do
	bs=${sizes[$i]}
	n=$((MB * 1048576 / bs)) sect=$((MB * 2048))
	# each block of the range exactly once, in random order, verified
	# shellcheck disable=SC2207
	rd=(--name=rd --filename="$D" "${IC_FIO_IO[@]}" --rw=randread --bs="$bs"
		--offset=$((i * MB))M --size="${MB}M" $(pat "$bs"))
	ic_create_ok "$IC_ID" "$C" "$O" block_size "$bs" format
	ic_fio "cold$bs" "${rd[@]}" || ic_fail "first read failed"
	ic_wait "$IC_ID" fills -ge "$n" || { ic_show "$IC_ID"; ic_fail "fills did not reach $n"; }
	ic_show "$IC_ID"
	ic_want reads -eq "$n" read_misses -eq "$n" read_hits -eq 0 bypasses -eq 0 cached -eq "$n"

	dmsetup message "$IC_ID" 0 clear_stats || ic_fail "clear_stats failed"
	ic_snap "$IC_ID"
	ic_want reads -eq 0 fills -eq 0 read_misses -eq 0 cached -eq "$n"
	c0=$(ic_stat "$C" rsect) o0=$(ic_stat "$O" rsect)
	ic_fio "warm$bs" "${rd[@]}" || ic_fail "second read failed"
	c1=$(ic_stat "$C" rsect) o1=$(ic_stat "$O" rsect)
	ic_show "$IC_ID"
	ic_log "block_size $bs: second read of $MB MiB: cache read $((c1 - c0)) sectors, origin $((o1 - o0))"
	ic_want reads -eq "$n" read_hits -eq "$n" read_misses -eq 0 fills -eq 0
	ic_expect "sectors read from the cache device" $((c1 - c0)) -ge "$sect"
	ic_expect "sectors read from the cache device" $((c1 - c0)) -le $((sect + sect / 10))
	ic_expect "sectors read from the origin" $((o1 - o0)) -eq 0
	ic_remove "$IC_ID" || ic_fail "remove failed"
done
exit 0
