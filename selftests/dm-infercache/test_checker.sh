#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# infercache-check against real cache devices:
#   1. a blank cache device: exit 8 (not formatted);
#   2. N random blocks read twice through the target (cached), "commit"
#      message: the checker on the live cache device exits 0 and counts the
#      cached blocks as valid entries (unclean: in use); after removal it
#      says the same, clean; --json parses (jq, when installed);
#      --origin-sectors with the table length exits 0, with another 4;
#   3. one entry damaged (a byte of its oblock flipped on disk): exit 4, one
#      bad checksum, one valid entry less; the target then loads that many
#      and drops 1 (status $21 $22); its first commit rewrites the set, so
#      after removal the checker exits 0 again;
#   4. superblock copy 0 damaged: exit 4, copy 1 used, entries still there;
#   5. a device holding other data: exit 8; no device argument: exit 16;
#   6. a cache device with 4 KiB logical blocks: exit 0, the cached count.
# The checker only reads (O_RDONLY): running it on the live device must not
# disturb the target (its status afterwards is checked).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/prog_lib.sh"
ic_init
ic_require fio dd od
ic_prog CHK infercache-check

N=$(ic_full 400 2000)
ic_origin "${IC_ID}o" 16 10000
ic_cache "${IC_ID}c" 16
ic_cache "${IC_ID}x" 4
O=/dev/${IC_ID}o C=/dev/${IC_ID}c X=/dev/${IC_ID}x D=/dev/mapper/$IC_ID
SZ=$(blockdev --getsz "$O")
ic_log "checker: $CHK"

OUT='' RC=0
check() { # check ARGS...: run the checker, output in $OUT, status in $RC
	OUT=$("$CHK" "$@" 2>&1)
	RC=$?
}
expect_rc() { # expect_rc WANT WHAT: fail unless the last check exited WANT
	if [[ $RC != "$1" ]]; then
		printf '%s\n' "$OUT" | sed 's/^/#   checker: /'
		ic_fail "$2: infercache-check exited $RC, expected $1"
	fi
}
jnum() { # jnum KEY: first number after "KEY": in the last JSON output
	grep -o "\"$1\":-\?[0-9]*" <<<"$OUT" | head -n 1 | cut -d: -f2
}
expect_num() { # expect_num KEY OP WANT WHAT
	local got
	got=$(jnum "$1")
	if ! test "${got:-none}" "$2" "$3" 2>/dev/null; then
		printf '%s\n' "$OUT" | sed 's/^/#   checker: /'
		ic_fail "$4: $1 is ${got:-missing}, expected $2 $3"
	fi
}
expect_text() { # expect_text TEXT WHAT
	grep -qF -- "$1" <<<"$OUT" || {
		printf '%s\n' "$OUT" | sed 's/^/#   checker: /'
		ic_fail "$2: output lacks '$1'"
	}
}
jq_check() { # jq_check FILTER WHAT: with jq installed, FILTER must be true
	command -v jq >/dev/null || return 0
	jq -e "$1" <<<"$OUT" >/dev/null || {
		printf '%s\n' "$OUT" | sed 's/^/#   checker: /'
		ic_fail "$2: jq '$1' is not true (or the JSON does not parse)"
	}
}
field() { dmsetup status "$1" | awk -v i="$2" '{ print $i }'; }

# flip_byte DEV OFFSET: xor one byte on DEV with 0xff, read-modify-write of
# its sector with O_DIRECT (no stale page cache of the device involved).
flip_byte() {
	local dev=$1 off=$2 s=$(($2 / 512)) b=$(($2 % 512)) f=$IC_TMP/sector v
	dd if="$dev" of="$f" iflag=direct bs=512 skip="$s" count=1 status=none ||
		ic_fail "reading sector $s of $dev failed"
	v=$(od -An -tu1 -j "$b" -N 1 "$f" | tr -d ' ')
	# shellcheck disable=SC2059 # the format is the byte
	printf "\\x$(printf '%02x' $((v ^ 255)))" |
		dd of="$f" bs=1 seek="$b" conv=notrunc status=none
	dd if="$f" of="$dev" oflag=direct bs=512 seek="$s" count=1 conv=notrunc status=none ||
		ic_fail "writing sector $s of $dev failed"
	ic_log "flipped byte $off of $dev: $v -> $((v ^ 255))"
}

# ---- 1. blank
check --json "$C"
expect_rc 8 "blank cache device"
expect_text "blank device: not formatted" "blank cache device"
jq_check '.exit_status == 8 and .used_copy == -1' "blank cache device"

# ---- 2. cached blocks, live and after removal
ic_log "step 2: warm the cache (${SECONDS}s)"
ic_create_ok "$IC_ID" "$C" "$O"
ic_klog_since | grep -q "infercache.*formatted" || ic_fail "no 'formatted' line in the kernel log"
ic_fio warm --name=warm --filename="$D" "${IC_FIO_IO[@]}" --rw=randread --bs=4k \
	--size=$((N * 4))k --loops=2 || ic_fail "reading $N blocks twice failed"
ic_wait "$IC_ID" fills -ge "$N" || ic_fail "fills did not reach $N"
dmsetup message "$IC_ID" 0 commit || ic_fail "message commit failed"
ic_show "$IC_ID"
cached=$(ic_field "$IC_ID" cached)
ic_expect "cached blocks" "$cached" -ge "$N"
commits=$(field "$IC_ID" 23)
ic_expect "commits after the commit message" "${commits:-0}" -ge 1

ic_log "step 2: check the live device (${SECONDS}s)"
check --json "$C"
expect_rc 0 "live cache device"
expect_num valid -eq "$cached" "live cache device"
expect_num dropped -eq 0 "live cache device"
expect_text '"clean":false' "live cache device (in use: not clean)"
jq_check ".entries.valid == $cached and .used_copy >= 0" "live cache device"
ic_snap "$IC_ID" || ic_fail "target gone after the checker ran"
ic_want cached -eq "$cached" state == ok
ic_log "live: $cached cached, checker: $(jnum valid) valid, exit 0"

ic_remove "$IC_ID" || ic_fail "remove failed"
ic_log "step 2: check after removal (${SECONDS}s)"
check "$C"
expect_rc 0 "after removal"
expect_text " $cached valid (0 dirty)," "after removal (human summary)"
expect_text "clean shutdown" "after removal"
expect_text "result: no problems found" "after removal"
check --json "$C"
expect_rc 0 "after removal (json)"
expect_num valid -eq "$cached" "after removal"
expect_num origin_sectors -eq "$SZ" "after removal"
expect_text '"clean":true' "after removal"
jq_check ".entries.valid == $cached and .clean and .superblocks[0].status == \"ok\" and .superblocks[1].status == \"ok\"" \
	"after removal"
check --origin-sectors "$SZ" --quiet "$C"
expect_rc 0 "--origin-sectors $SZ"
[[ -z $OUT ]] || ic_fail "--quiet printed: $OUT"
check --origin-sectors $((SZ + 8)) "$C"
expect_rc 4 "--origin-sectors $((SZ + 8))"
expect_text "origin size" "--origin-sectors $((SZ + 8))"

# ---- 3. one damaged entry
ic_log "step 3: damage an entry (${SECONDS}s)"
check --json "$C"
meta=$(jnum meta_start) sets=$(jnum nr_sets)
line=$(dd if="$C" iflag=direct bs=512 skip="$meta" count="$sets" status=none |
	od -An -v -tx1 -w32 | grep -n -m 1 -v '^\( 00\)*$' | cut -d: -f1)
[[ -n $line ]] || ic_fail "no entry found in the set metadata ($sets sets at sector $meta)"
slot=$((line - 1))
flip_byte "$C" $((meta * 512 + slot * 32))
check --json "$C"
expect_rc 4 "one damaged entry"
expect_num bad_checksum -eq 1 "one damaged entry"
expect_num valid -eq $((cached - 1)) "one damaged entry"
expect_num slot -eq "$slot" "one damaged entry (the slot reported)"
jq_check ".damaged[0].problem == \"bad_checksum\" and .damaged[0].slot == $slot" "one damaged entry"
check "$C"
expect_text "set $((slot / 16)) way $((slot % 16)) (slot $slot): bad_checksum" "one damaged entry (human)"

ic_create_ok "$IC_ID" "$C" "$O"
loaded=$(field "$IC_ID" 21) dropped=$(field "$IC_ID" 22)
ic_log "target after the damage: loaded $loaded dropped $dropped"
ic_expect "loaded (\$21)" "$loaded" -eq $((cached - 1))
ic_expect "dropped (\$22)" "$dropped" -eq 1
ic_klog_since | grep -q "loaded $loaded blocks, dropped 1 damaged" ||
	ic_fail "no 'loaded $loaded blocks, dropped 1 damaged entries' in the kernel log"
ic_remove "$IC_ID" || ic_fail "remove failed"
check --json "$C"
expect_rc 0 "after the target rewrote the damaged set"
expect_num valid -eq $((cached - 1)) "after the target rewrote the damaged set"

# ---- 4. superblock copy 0 damaged
ic_log "step 4: damage superblock copy 0 (${SECONDS}s)"
flip_byte "$C" 100
check --json "$C"
expect_rc 4 "superblock copy 0 damaged"
expect_num used_copy -eq 1 "superblock copy 0 damaged"
expect_num valid -eq $((cached - 1)) "superblock copy 0 damaged"
expect_text '"status":"corrupt"' "superblock copy 0 damaged"
jq_check '.superblocks[0].status == "corrupt" and .superblocks[1].status == "ok" and .used_copy == 1' \
	"superblock copy 0 damaged"
check "$C"
expect_text "using superblock copy 1" "superblock copy 0 damaged (human)"

# ---- 5. someone else's data; usage
ic_log "step 5: foreign data, usage (${SECONDS}s)"
dd if=/dev/urandom of="$X" oflag=direct bs=64k count=16 status=none || ic_fail "writing $X failed"
check --json "$X"
expect_rc 8 "device with other data"
expect_text "not an infercache device" "device with other data"
check
expect_rc 16 "no device argument"
check --json --quiet "$C"
expect_rc 16 "--json with --quiet"

# ---- 6. a cache device with 4 KiB logical blocks (O_DIRECT alignment)
ic_log "step 6: 4 KiB sector cache device (${SECONDS}s)"
ic_cache "${IC_ID}k" 8 4096
K=/dev/${IC_ID}k
ic_create_ok "$IC_ID" "$K" "$O"
# At full counts (2000 blocks, 3808 slots) a few sets get more than 16
# blocks, and admission keeps them out: wait for 90% of the fills and for
# the count to settle (fills complete after the reads), then compare.
ic_fio warm4k --name=warm4k --filename="$D" "${IC_FIO_IO[@]}" --rw=randread --bs=4k \
	--size=$((N * 4))k --loops=2 || ic_fail "reading through the 4Kn cache failed"
ic_wait "$IC_ID" fills -ge $((N * 9 / 10)) || ic_fail "fills did not reach 90% of $N (4Kn cache)"
prev=-1
for ((i = 0; i < 20; i++)); do
	cur=$(ic_field "$IC_ID" fills)
	[[ $cur == "$prev" ]] && break
	prev=$cur
	sleep 0.5
done
cached=$(ic_field "$IC_ID" cached)
ic_remove "$IC_ID" || ic_fail "remove failed"
check --json "$K"
expect_rc 0 "4Kn cache device"
expect_num valid -eq "$cached" "4Kn cache device"
exit 0
