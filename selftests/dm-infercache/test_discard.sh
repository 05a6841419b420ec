#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Discard: blkdiscard through the target reaches the origin (null_blk with
# discard=1 reads zeroes afterwards), invalidates the cached blocks of the
# range (cached drops by exactly their number), and no read returns the
# old data, also for a discard covering only part of a cache block. The
# data outside the ranges is untouched; the target reads like the origin.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio blkdiscard cmp dd

ic_origin "${IC_ID}o" 64 20000
ic_cache "${IC_ID}c" 32
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID
KB=1024 MB=1048576

same() { # same DEV1 DEV2 OFF LEN (bytes, 4 KiB aligned): identical contents
	cmp <(dd if="$1" iflag=direct bs=4k skip=$(($3 / 4096)) count=$(($4 / 4096)) status=none) \
	    <(dd if="$2" iflag=direct bs=4k skip=$(($3 / 4096)) count=$(($4 / 4096)) status=none)
}
zero() { # zero DEV OFF LEN
	cmp -n "$3" <(dd if="$1" iflag=direct bs=4k skip=$(($2 / 4096)) count=$(($3 / 4096)) status=none) /dev/zero
}

for bs in 4096 65536; do
	ic_create_ok "$IC_ID" "$C" "$O" block_size "$bs" format
	[[ $(cat "/sys/block/$(ic_dev_of "$D")/queue/discard_max_bytes") -gt 0 ]] ||
		ic_fail "the target does not support discard (origin does)"
	n=$((8 * MB / bs))
	pat=(--bs=64k --verify=pattern --verify_pattern="$(ic_pattern "$bs")" --verify_fatal=1)
	# write 8 MiB, then read it in random order (a sequential read would be
	# bypassed after sequential_threshold) so that all of it gets cached
	ic_fio "w$bs" "${IC_FIO_IO[@]}" --filename="$D" --size=8M "${pat[@]}" \
		--name=w --rw=write --do_verify=0 --name=r --stonewall --rw=randread ||
		ic_fail "writing and reading 8 MiB failed"
	ic_wait "$IC_ID" cached -ge "$n" || { ic_show "$IC_ID"; ic_fail "the 8 MiB are not all cached"; }
	ic_show "$IC_ID"
	c0=${IC_ST[cached]} d0=$(ic_stat "$O" dios)

	# -f: without it blkdiscard first probes (reads) the device for signatures
	blkdiscard -f -o $((2 * MB)) -l $((4 * MB)) "$D" || ic_fail "blkdiscard failed"
	ic_show "$IC_ID"
	ic_want discards -gt 0 cached -eq $((c0 - 4 * MB / bs))
	ic_expect "discards seen by the origin" $(($(ic_stat "$O" dios) - d0)) -gt 0
	zero "$D" $((2 * MB)) $((4 * MB)) || ic_fail "discarded range does not read zeroes through the target"
	zero "$O" $((2 * MB)) $((4 * MB)) || ic_fail "discarded range does not read zeroes on the origin"

	# 8 KiB inside a cached block (for 64 KiB blocks: part of one block)
	off=$((6 * MB + 4 * KB))
	blkdiscard -f -o $off -l $((8 * KB)) "$D" || ic_fail "small blkdiscard failed"
	zero "$O" $off $((8 * KB)) || ic_fail "small discard did not reach the origin"
	zero "$D" $off $((8 * KB)) || ic_fail "old data read after a discard of part of a cache block"
	same "$D" "$O" 0 $((8 * MB)) || ic_fail "target and origin differ after the discards (block_size $bs)"
	ic_fio "v$bs" "${IC_FIO_IO[@]}" --filename="$D" "${pat[@]}" --rw=read \
		--name=before --size=2M --name=after --offset=$((7 * MB)) --size=1M ||
		ic_fail "data outside the discarded ranges changed"
	ic_remove "$IC_ID" || ic_fail "remove failed"
	zero "$O" $((2 * MB)) $((4 * MB)) || ic_fail "origin lost the discard after removal"
done
exit 0
