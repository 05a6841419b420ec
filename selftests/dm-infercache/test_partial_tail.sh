#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A target whose length is not a multiple of the cache block size, over a
# larger origin: random I/O over the whole device, including the partial
# last block, verifies through the target; the target then reads exactly
# like the origin (a second pass, mostly hits); after removal the origin
# holds the data and nothing past the target's end was touched.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio cmp dd

ic_origin "${IC_ID}o" 16 20000
ic_cache "${IC_ID}c" 16
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID
LEN=$((8 * 2048 + 24))	# 8 MiB + 12 KiB, in sectors
past="--name=past --stonewall --filename=$O --rw=write --bs=4k --offset=$((LEN * 512)) --size=1M"
past+=" --verify=pattern --verify_pattern=0x7a11 --verify_fatal=1"

# shellcheck disable=SC2086 # job strings are split into options on purpose
ic_fio prep "${IC_FIO_IO[@]}" $past --do_verify=0 || ic_fail "preparing the origin failed"

# shellcheck disable=SC2046,SC2086
for bs in 65536 16384; do
	ic_track "$IC_ID"
	ic_mark "create $bs"
	dmsetup create "$IC_ID" --table "0 $LEN infercache $C $O 3 block_size $bs format" ||
		ic_fail "creating a $LEN-sector target over a larger origin failed"
	ic_expect "size" "$(blockdev --getsz "$D")" -eq "$LEN"
	ic_fio "tail$bs" "${IC_FIO_IO[@]}" $(ic_gen "$bs" "$D" --bsrange=4k-64k --size=$((LEN * 512)) --do_verify=1) ||
		ic_fail "write/verify over the whole device failed (block_size $bs)"
	cmp <(dd if="$D" iflag=direct bs=4k status=none) <(dd if="$O" iflag=direct bs=4k count=$((LEN / 8)) status=none) ||
		ic_fail "target and origin differ (block_size $bs)"
	ic_show "$IC_ID"
	ic_want read_hits -gt 0 cache_errors -eq 0
	ic_remove "$IC_ID" || ic_fail "remove failed"
	ic_fio "tailo$bs" "${IC_FIO_IO[@]}" $(ic_gen "$bs" "$O" --bsrange=4k-64k --size=$((LEN * 512)) --verify_only) \
		${past/--rw=write/--rw=read} ||
		ic_fail "the origin does not hold the data, or data past the end changed (block_size $bs)"
done
exit 0
