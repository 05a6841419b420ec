#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Table parsing: every bad line is refused with its message from the
# contract in the kernel log and leaves no device behind; good lines are
# accepted and "dmsetup table" gives back exactly the option words given.
. "$(dirname "$0")/lib.sh"
ic_init

ic_origin "${IC_ID}o" 64
ic_cache "${IC_ID}c" 16
ic_cache "${IC_ID}t" 1		# 1 MiB: no room for data blocks
# 1.05 TiB that keeps no data: more 4 KiB blocks than the index can hold
ic_nullb "${IC_ID}h" size=1100000 blocksize=512 memory_backed=0
O=/dev/${IC_ID}o C=/dev/${IC_ID}c T=/dev/${IC_ID}t H=/dev/${IC_ID}h N=$IC_ID
SZ=$(blockdev --getsz "$O") CM=$(ic_majmin "$C") OM=$(ic_majmin "$O")
ic_track "$N"
fails=0

# bad "EXPECTED MESSAGE[|ALTERNATIVE]" TABLE-ARGS [LEN]: must be refused
# with exactly that message (lib.sh's ic_bad_table: checked at the end)
bad() {
	ic_bad_table "$N" "${3:-$SZ}" "^infercache: ($1)( \(|\$)" "$2" || fails=$((fails + 1))
}

bad "Invalid argument count" ""
bad "Invalid argument count" "$C"
bad "Invalid argument count" "$C $O"
bad "Invalid argument count" "$C $O 0 extra"
bad "Invalid argument count" "$C $O 2 mode writethrough extra"
bad "Error opening cache device" "/dev/${IC_ID}nonexistent $O 0"
bad "Error opening origin device" "$C /dev/${IC_ID}nonexistent 0"
bad "Cache and origin must be different devices" "$C $C 0"
bad "Cache and origin must be different devices" "$O $OM 0"
for n in x -1 0x2 3; do
	bad "Invalid number of optional arguments" "$C $O $n mode writethrough"
done
bad "Invalid argument count" "$C $O 1 mode writethrough"	# one word too many
# dm's %u parsing truncates 2^32+1 to 1: either message is right
bad "Invalid number of optional arguments|Invalid argument count" "$C $O 4294967297 mode writethrough"
bad "Unknown optional argument" "$C $O 2 foo bar"
bad "Unknown optional argument" "$C $O 1 writethrough"
bad "Unknown optional argument" "$C $O 4 mode writethrough format 1"
# a key without its value: the contract has no message for it; the driver
# says "Missing value for optional argument"
bad "Missing value for optional argument|Invalid number of optional arguments" "$C $O 1 mode"
bad "Missing value for optional argument|Invalid number of optional arguments" "$C $O 3 mode writethrough block_size"
bad "Optional argument given twice" "$C $O 4 mode writethrough mode writethrough"
bad "Optional argument given twice" "$C $O 4 block_size 4096 block_size 8192"
MODE="Invalid cache mode: writethrough or writeback"
bad "$MODE" "$C $O 2 mode writearound"
bad "$MODE" "$C $O 2 mode WriteBackX"
# the writeback tunables (test_writeback.sh tries every range end)
bad "Invalid max_dirty_age: must be 100 to 3600000 ms" "$C $O 2 max_dirty_age 99"
bad "Invalid dirty_high: must be 1 to 90 \(percent of the cache\)" "$C $O 2 dirty_high 0"
bad "Invalid writeback_inflight: must be 1 to 256" "$C $O 2 writeback_inflight 4294967297"
bad "Optional argument given twice" "$C $O 4 writeback_rate 1 writeback_rate 1"
for b in 0 512 2048 3000 6144 131072 4294971392 abc 8192x; do
	bad "Invalid block_size: must be a power of two from 4096 to 65536" "$C $O 2 block_size $b"
done
SEQ="Invalid sequential_threshold: must be 0 \(off\) to 1073741824 bytes"
for v in x 1073741825; do
	bad "$SEQ" "$C $O 2 sequential_threshold $v"
done
bad "Optional argument given twice" "$C $O 4 sequential_threshold 0 sequential_threshold 0"
CI="Invalid commit_interval: must be 0 \(only on flush\) to 600000 ms"
for v in x -1 600001 4294967296; do
	bad "$CI" "$C $O 2 commit_interval $v"
done
TAG="Invalid origin_tag: 1 to 31 characters of A-Z a-z 0-9 \. _ : -"
for v in 'a/b' 'a,b' "$(printf 'x%.0s' {1..32})"; do
	bad "$TAG" "$C $O 2 origin_tag $v"
done
bad "Optional argument given twice" "$C $O 2 format format"
bad "Cache device too small" "$T $O 0"
bad "Cache too large for this block_size: over 268435455 blocks; use a larger block_size" "$H $O 1 format"
bad "Origin device is smaller than the target" "$C $O 0" $((SZ + 8))

ic_bad_tables_check || fails=$((fails + IC_BAD_MISSES))

good() { # good OPTION-WORDS...
	local want="0 $SZ infercache $CM $OM $#${*:+ $*}" got bs=4096
	ic_mark "good: $*"
	# a blank cache takes any geometry (a formatted one keeps its own)
	dd if=/dev/zero of="$C" bs=8k count=1 oflag=direct status=none
	if ! dmsetup create "$N" --table "0 $SZ infercache $C $O $# $*" >/dev/null 2>&1; then
		ic_log "refused: '$*': $(ic_klog_since | grep -o 'infercache: .*' | head -n 1)"
		fails=$((fails + 1)); return
	fi
	got=$(dmsetup table "$N")
	[[ "$got" == "$want" ]] || { ic_log "table: got '$got', wanted '$want'"; fails=$((fails + 1)); }
	[[ " $* " =~ " block_size "([0-9]+) ]] && bs=${BASH_REMATCH[1]}
	ic_snap "$N"
	[[ ${IC_ST[block_size]} == "$bs" ]] || { ic_log "'$*': status block_size ${IC_ST[block_size]}"; fails=$((fails + 1)); }
	# the printed table is itself a valid table
	if ! dmsetup reload "$N" --table "$got" || ! dmsetup resume "$N" ||
		[[ $(dmsetup table "$N") != "$want" ]]; then
		ic_log "'$*': reloading the printed table failed"; fails=$((fails + 1))
	fi
	dmsetup remove "$N" || { ic_log "remove failed"; fails=$((fails + 1)); }
}

good
good block_size 8192
good mode writethrough
good mode writethrough block_size 16384
good block_size 65536 mode writethrough
good block_size 4096
good sequential_threshold 0
good mode writethrough block_size 8192 sequential_threshold 1048576
good commit_interval 0 origin_tag wwn-0x5000c500a1b2c3d4
good origin_tag a.b_c:d-9 commit_interval 600000
good mode writeback
good mode writeback max_dirty_age 100 dirty_high 90 read_latency_target 10000000 writeback_inflight 256 writeback_rate 0
good writeback_rate 100000 mode writethrough dirty_high 1

# messages: clear_stats, sequential_threshold, commit_interval and commit
# are taken, others refused
dd if=/dev/zero of="$C" bs=8k count=1 oflag=direct status=none
ic_create_ok "$N" "$C" "$O"
for m in "clear_stats" "sequential_threshold 0" "sequential_threshold 8388608" \
	"commit_interval 0" "commit_interval 250" "commit"; do
	# shellcheck disable=SC2086 # a message is several words
	dmsetup message "$N" 0 $m || { ic_log "message '$m' refused"; fails=$((fails + 1)); }
done
for m in "bogus" "clear_stats now" "sequential_threshold" "sequential_threshold x" "sequential_threshold 1073741825" \
	"commit now" "commit_interval" "commit_interval 600001" "commit_interval -1"; do
	# shellcheck disable=SC2086
	dmsetup message "$N" 0 $m 2>/dev/null && { ic_log "message '$m' accepted"; fails=$((fails + 1)); }
done
[[ $(dmsetup table "$N") == "0 $SZ infercache $CM $OM 0" ]] || { ic_log "a message changed the table line"; fails=$((fails + 1)); }
dmsetup remove "$N"

ic_expect "table lines that misbehaved" "$fails" -eq 0
exit 0
