#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Data integrity with fio, for block_size 4096 and 65536: random writes of
# 4k..128k with verification over a region larger than the cache (fills,
# hits, evictions), a second generation over the now cached blocks, a
# re-read through the target, then the same data read straight from the
# origin after removal. Then 512-byte aligned I/O of 512..16k (partial
# blocks) the same way. Patterns name the generation and the offset, so a
# stale or misplaced block fails.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio

MB=$(ic_full 32 256)
ic_origin "${IC_ID}o" $((MB * 2)) 20000 512
ic_cache "${IC_ID}c" $((MB / 2 + 2)) 512
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID
big="--size=${MB}M --bsrange=4k-128k"
small="--offset=${MB}M --size=$((MB / 4))M --bsrange=512-16k --blockalign=512"

# shellcheck disable=SC2046,SC2086 # job strings are split into options on purpose
for bs in 4096 65536; do
	g1=$((bs / 512)) g2=$((bs / 512 + 1)) g3=$((bs / 512 + 2))
	ic_log "block_size $bs"
	ic_create_ok "$IC_ID" "$C" "$O" block_size "$bs" format
	lbs=$(cat "/sys/block/$(ic_dev_of "$D")/queue/logical_block_size")
	# 1: random reads (fills), generation 1 verified after writing, then
	# generation 2 over cached blocks, verified while writing
	ic_fio "run1-$bs" "${IC_FIO_IO[@]}" \
		--name=fill --filename="$D" --rw=randread --bs=128k --size="${MB}M" \
		$(ic_gen $g1 "$D" $big --do_verify=1) $(ic_gen $g2 "$D" $big --verify_backlog=32) ||
		ic_fail "writing generations 1 and 2 failed (block_size $bs)"
	# 2: generation 2 read again (now mostly hits); 512-byte I/O if possible
	if [[ $lbs == 512 ]]; then
		sub="$(ic_pad "$D") --name=pre --stonewall --filename=$D --rw=randread --bs=64k $small"
		sub+=" $(ic_gen $g3 "$D" $small --verify_backlog=64)"
	else
		ic_log "logical block size of the target is $lbs: 512-byte I/O not tried"
		sub=''
	fi
	ic_fio "run2-$bs" "${IC_FIO_IO[@]}" $(ic_pad "$D") $(ic_pad "$D") \
		$(ic_gen $g2 "$D" $big --verify_backlog=32 --verify_only) $sub ||
		ic_fail "re-reading generation 2 or 512-byte I/O through the target failed (block_size $bs)"
	if [[ $lbs == 512 ]]; then
		ic_fio "run3-$bs" "${IC_FIO_IO[@]}" $(ic_pad "$D") $(ic_pad "$D") $(ic_pad "$D") \
			$(ic_pad "$D") $(ic_pad "$D") $(ic_gen $g3 "$D" $small --verify_backlog=64 --verify_only) ||
			ic_fail "re-reading the 512-byte I/O through the target failed (block_size $bs)"
		sub="$(ic_pad "$O") $(ic_pad "$O") $(ic_gen $g3 "$O" $small --verify_backlog=64 --verify_only)"
	fi
	ic_show "$IC_ID"
	ic_want read_hits -gt 0 fills -gt 0 evictions -gt 0 cache_errors -eq 0
	ic_remove "$IC_ID" || ic_fail "remove failed"
	ic_fio "origin-$bs" "${IC_FIO_IO[@]}" $(ic_pad "$O") $(ic_pad "$O") \
		$(ic_gen $g2 "$O" $big --verify_backlog=32 --verify_only) $sub ||
		ic_fail "the origin does not hold what was written (block_size $bs)"
done
exit 0
