#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Damaged metadata never crashes the target and never serves stale data.
#
# Setup: every 4 KiB block of a small origin carries a stamp (its number and
# a generation, gen 1); the target reads it all twice (the cache fills),
# then gen 2 is written through the target to every 4th block (the cache
# updates or drops its copies, leaving stale gen-1 data in freed slots) and
# it all is read once more; "commit", remove. The cache device now holds a
# clean, warm image: saved by meta_fuzz.
#
# Then meta_fuzz runs ITERS iterations (see meta_fuzz.c): restore the image,
# damage the superblock copies and the set metadata at random (bit flips,
# random bytes, sectors of garbage or zeroes, set sectors copied over each
# other, superblock fields edited and resealed), create the target with raw
# DM ioctls. The outcome must be the one the on-disk codec predicts: table
# rejected (with an infercache line in the kernel log), or formatted, or
# loaded with exactly the damaged entries dropped (status $21 and $22); every
# block read through a loaded target must equal the origin's; no WARNING,
# BUG or Oops. At the end the pristine image is back and loads cleanly.
#
# IC_META_FUZZ_SEED=<n> repeats a run's damage; IC_META_FUZZ_ITERS=<n> and
# IC_META_FUZZ_BUDGET=<seconds> override the number of iterations and the
# time they may take.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prog_lib.sh"
ic_init
ic_require fio cmp dd
ic_prog FUZZ meta_fuzz

ITERS=${IC_META_FUZZ_ITERS:-$(ic_full 300 3000)}
# A time budget under the runner's 600 s limit (settings): a slow host runs
# fewer iterations, logged, rather than time out.
BUDGET=${IC_META_FUZZ_BUDGET:-$(ic_full 240 420)}
SEED=${IC_META_FUZZ_SEED:-$(( $(date +%s%N) % 1000000007 ))}
ic_origin "${IC_ID}o" 2 2000
ic_cache "${IC_ID}c" 3
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID
NB=$(( $(blockdev --getsz "$O") / 8 ))

"$FUZZ" pattern -d "$O" -g 1 || ic_fail "writing gen 1 to the origin failed"
ic_create_ok "$IC_ID" "$C" "$O"
rd=(--name=rd --filename="$D" "${IC_FIO_IO[@]}" --rw=randread --bs=4k)
ic_fio warm "${rd[@]}" --loops=2 || ic_fail "warming the cache failed"
"$FUZZ" pattern -d "$D" -g 2 -e 4 || ic_fail "writing gen 2 through the target failed"
ic_fio warm2 "${rd[@]}" || ic_fail "reading after gen 2 failed"
dmsetup message "$IC_ID" 0 commit || ic_fail "message commit failed"
ic_show "$IC_ID"
cached=$(ic_field "$IC_ID" cached)
ic_expect "cached blocks" "$cached" -ge $((NB / 4))
ic_remove "$IC_ID" || ic_fail "remove failed"

ic_log "fuzz: $ITERS iterations over $NB origin blocks, $cached cached; IC_META_FUZZ_SEED=$SEED"
ic_track "${IC_ID}f"
ic_mark "fuzz"
"$FUZZ" fuzz -c "$C" -o "$O" -N "${IC_ID}f" -t "$IC_TMP" -n "$ITERS" -s "$SEED" -T "$BUDGET"
rc=$?
((rc == 0)) || ic_fail "meta_fuzz failed (status $rc); repeat with IC_META_FUZZ_SEED=$SEED"

# Negative control: entries forged valid but wrong must be caught by the
# reads (the oracle can fail).
out=$("$FUZZ" fuzz -c "$C" -o "$O" -N "${IC_ID}f" -t "$IC_TMP" -n 1 -s "$SEED" -F)
rc=$?
printf '%s\n' "$out" | grep -E 'forged|STALE|differ' | head -n 4
if ((rc != 1)) || ! grep -q 'STALE/WRONG' <<<"$out"; then
	ic_fail "forged entries were not caught by the oracle (meta_fuzz -F: status $rc)"
fi
ic_log "negative control: forged entries caught"

# The pristine image is back: it loads every cached block, drops nothing.
ic_create_ok "$IC_ID" "$C" "$O"
loaded=$(dmsetup status "$IC_ID" | awk '{ print $21 }')
dropped=$(dmsetup status "$IC_ID" | awk '{ print $22 }')
ic_log "pristine image after the fuzz: loaded $loaded, dropped $dropped"
ic_expect "loaded after the fuzz" "$loaded" -eq "$cached"
ic_expect "dropped after the fuzz" "$dropped" -eq 0
cmp <(dd if="$D" iflag=direct bs=1M status=none) <(dd if="$O" iflag=direct bs=1M status=none) ||
	ic_fail "after the fuzz, the target's data differs from the origin's"
ic_remove "$IC_ID" || ic_fail "remove failed"
exit 0
