#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Warm restart within one boot: the cache survives "dmsetup remove" and a
# re-creation with the same table, and a table reload; a table that does not
# match the superblock is refused unless it says "format".
#
# The cache device is the guest's NVMe disk when there is one, else a
# memory-backed null_blk (kept across the removals, so the same test).
# Its first 8 KiB are zeroed first (blank -> formatted at the first resume).
# A hot set of N random 4 KiB blocks of a slow origin (fio's random map with
# a fixed seed: the same blocks every pass, each once) is read twice so it
# is cached, every read checked against the pattern written to the origin.
#   1. remove, re-create the same table: it loads >= 99% of what was cached
#      ($21) and the first pass over the hot set hits >= 99% of it.
#   2. reload + resume of the same table: still warm, the same way.
#   3. remove; re-create with another block_size: refused, the error says to
#      add 'format'; with 'format' it comes up cold (loaded 0, cached 0)
#      and the kernel log says "formatted".
#   4. a different origin size and a different origin_tag are refused; the
#      matching table (block_size left out: the superblock's) then loads
#      what the step-3 device had cached.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio dd

N=$(ic_full 1000 8000)			# hot blocks (4 KiB)
OMB=$(ic_full 16 128)			# origin: 4x the hot set
CMB=$(ic_full 64 256)			# cache: 16x (full: 8x) the hot set
TAG=ic-warm.v1
ic_origin "${IC_ID}o" "$OMB" 50000
ic_origin "${IC_ID}p" $((OMB + 4)) 50000	# another origin size
O=/dev/${IC_ID}o P=/dev/${IC_ID}p D=/dev/mapper/$IC_ID
if C=$(ic_nvme); then
	ic_log "cache: NVMe $C"
else
	ic_cache "${IC_ID}c" "$CMB"
	C=/dev/${IC_ID}c
	ic_log "cache: null_blk $C (no NVMe disk in this guest)"
fi

# status field by position (the persistence fields $21.. are not in lib.sh's
# IC_FIELDS): st DEV N...
st() {
	local name=$1
	shift
	dmsetup status "$name" | awk -v f="$*" 'BEGIN { n = split(f, a, " ") }
		{ sub(/\/.*/, "", $5); s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? " " : "") $(a[i]); print s }'
}
# st words: 5 cached  6 reads  7 read_hits  21 loaded  22 dropped  23 commits
need_persist() {
	local w
	read -r -a w <<<"$(dmsetup status "$1")"
	((${#w[@]} >= 23)) || ic_fail "status has ${#w[@]} words, no loaded/dropped/commits" \
		"(\$21-\$23): this module has no persistent metadata"
}

pat() { echo "--verify=pattern --verify_pattern=$(ic_pattern 7) --verify_fatal=1"; }
# shellcheck disable=SC2046 # option strings are split on purpose
hot() { # hot LOG: one verified pass over the hot set through the target
	ic_fio "$1" "${IC_FIO_IO[@]}" --name=hot --filename="$D" --rw=randread --bs=4k \
		--size="${OMB}M" --io_size=$((N * 4))k --randseed=4242 $(pat) ||
		ic_fail "hot-set pass $1 failed"
}
# shellcheck disable=SC2046
ic_fio prep "${IC_FIO_IO[@]}" --name=prep --filename="$O" --rw=write --bs=4k --do_verify=0 \
	$(pat) || ic_fail "writing the origin failed"
dd if=/dev/zero of="$C" bs=4096 count=2 oflag=direct status=none || ic_fail "zeroing the superblocks failed"

create_ok() { # create_ok WHAT OPT...: create, check it came up
	ic_create_ok "$IC_ID" "$C" "$O" "${@:2}"
	ic_snap "$IC_ID" || ic_fail "$1: no status"
	need_persist "$IC_ID"
	[[ ${IC_ST[state]} == ok ]] || ic_fail "$1: state ${IC_ST[state]}"
}
refused() { # refused WHAT ORIGIN OPT...: the create must fail, saying 'format'
	local what=$1 origin=$2 err
	shift 2
	ic_mark "refused: $what"
	ic_create "$IC_ID" "$C" "$origin" "$@" 2>/dev/null && ic_fail "$what: create succeeded: $(dmsetup table "$IC_ID")"
	ic_exists "$IC_ID" && ic_fail "$what: a device was left behind"
	err=$(ic_klog_since | grep -m1 -E 'device-mapper: table: .*infercache' ||
		ic_klog_since | grep -m1 infercache || true)
	ic_log "$what: refused: ${err:-<no kernel message>}"
	[[ $err == *format* ]] || ic_fail "$what: the ctr error does not say to add 'format'"
}
warm_pass() { # warm_pass WHAT CACHED: the first pass hits >= 99% of CACHED
	local what=$1 c0=$2 reads hits
	dmsetup message "$IC_ID" 0 clear_stats || ic_fail "clear_stats failed"
	hot "$what"
	read -r reads hits < <(st "$IC_ID" 6 7)
	ic_log "$what: first pass: $hits hits of $reads reads, $c0 were cached"
	ic_expect "$what: reads" "$reads" -eq "$N"
	ic_expect "$what: hits (100 x)" $((hits * 100)) -ge $((c0 * 99))
}
klog_has() { ic_klog_since "$IC_MARK0" | grep -q -E "$1"; }

# ---- blank -> formatted; warm the hot set
create_ok blank origin_tag "$TAG"
ic_want block_size -eq 4096 cached -eq 0
ic_expect "loaded after format" "$(st "$IC_ID" 21)" -eq 0
klog_has 'infercache: .*formatted' || ic_fail "no 'formatted' kernel message"
hot warm1
hot warm2
ic_wait "$IC_ID" cached -ge "$N" 10 || true
ic_show "$IC_ID"
C0=${IC_ST[cached]}
ic_expect "cached after two passes (100 x)" $((C0 * 100)) -ge $((N * 95))

# ---- 1. remove, re-create the same table
ic_remove "$IC_ID" || ic_fail "remove failed"
ic_mark "re-create"
create_ok re-create origin_tag "$TAG"
read -r loaded dropped < <(st "$IC_ID" 21 22)
ic_log "re-create: loaded $loaded, dropped $dropped, cached ${IC_ST[cached]} (was $C0)"
ic_klog_since | grep -E 'infercache: .*loaded' | sed 's/^/#   klog: /'
ic_expect "loaded (100 x)" $((loaded * 100)) -ge $((C0 * 99))
ic_expect "dropped" "$dropped" -eq 0
warm_pass re-create "$C0"
ic_show "$IC_ID"
C1=${IC_ST[cached]}

# ---- 2. reload + resume of the same table
tbl=$(dmsetup table "$IC_ID")
dmsetup reload "$IC_ID" --table "$tbl" || ic_fail "reload failed"
dmsetup resume "$IC_ID" || ic_fail "resume after reload failed"
ic_log "reload: loaded $(st "$IC_ID" 21), cached $(ic_field "$IC_ID" cached) (was $C1)"
warm_pass reload "$C1"

# ---- 3. another block size: refused, then formatted cold
ic_remove "$IC_ID" || ic_fail "remove failed"
refused "block_size 8192" "$O" block_size 8192 origin_tag "$TAG"
ic_mark "format"
create_ok format block_size 8192 origin_tag "$TAG" format
ic_want block_size -eq 8192 cached -eq 0
ic_expect "loaded after format" "$(st "$IC_ID" 21)" -eq 0
ic_klog_since | grep -q -E 'infercache: .*formatted' || ic_fail "no 'formatted' kernel message"
dmsetup message "$IC_ID" 0 clear_stats
hot cold
ic_log "after format: first pass: $(st "$IC_ID" 7) hits (neighbours in one 8 KiB block) of $(st "$IC_ID" 6) reads"
ic_wait "$IC_ID" fills -ge 1 || true
ic_snap "$IC_ID"
C3=${IC_ST[cached]}
ic_remove "$IC_ID" || ic_fail "remove failed"

# ---- 4. origin size and tag mismatches; then the matching table
refused "origin size" "$P" origin_tag "$TAG"
refused "origin_tag" "$O" origin_tag other.v2
ic_mark "matching table"
create_ok "matching table" origin_tag "$TAG"
ic_want block_size -eq 8192
ic_expect "loaded after the refusals" "$(st "$IC_ID" 21)" -eq "$C3"
warm_pass "after the refusals" "$C3"
ic_remove "$IC_ID" || ic_fail "remove failed"
exit 0
