#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Writeback mode (issue 4; the interface is in
# Documentation/admin-guide/dm-infercache.rst). One slow memory-backed
# origin, one cache about a third of the written area; status read by name
# (lib.sh's IC_FIELDS: dirty is $24, wb_state $25, written_back $26).
#   1. table values: every bad value (out of range, garbage, 2^32 wrapping
#      into range, missing, twice) is refused with a kernel message naming
#      it and leaves no device; good ones at both ends of each range are
#      taken and shown back by "dmsetup table"; a bad reload of a live
#      target leaves its table and status as they were.
#   2. messages: every bad one fails and changes nothing (table, status,
#      pause state, mode); good ones at the range ends are taken, do not
#      change the table line, and read_latency_target shows in $30.
#   3. placement, writeback paused: a whole-block write that misses and a
#      partial write to a clean cached block go to the cache only (dirty,
#      nothing on the origin); a partial write that misses goes to the
#      origin (write-around, not dirty); a partial write to a dirty block
#      stays in the cache. flush works while paused; then the origin holds
#      exactly the expected bytes.
#   4. fio verify with writeback running (max_dirty_age 500 ms): random
#      reads (fills), random 4 KiB writes verified after writing, then
#      512 B..64 KiB writes at 512-byte alignment (partial blocks: write
#      hits and write-around) verified while writing; verified again after
#      suspend/resume and after a table reload; after "flush" dirty is 0,
#      the target reads exactly as the origin, every byte, and the origin
#      alone verifies. (From here on, before each data set is written,
#      every block holding no live data set is discarded through the
#      target: the writes find free ways, admission cannot turn whole-block
#      writes away, and each data set becomes exactly N dirty blocks.)
#   5. watermark: paused, dirty_high 5 (bad dirty_high messages in between
#      must not change it), then with writeback running at 1 MB/s: random
#      4 KiB writes of 16x the limit; dirty ($24, sampled while fio writes)
#      never exceeds floor(5% of the slots) by more than one 256 KiB batch,
#      and reaches at least 3/4 of it; the data verifies.
#   6. pause/resume: paused, dirty stays and nothing is written back past
#      max_dirty_age; after writeback_resume it drains within age + 5 s.
#   7. deadlines: idle, max_dirty_age 1000: dirty reaches 0 within age + 5 s;
#      under a random-read load with read_latency_target 1 us (writeback
#      always wants to back off), max_dirty_age 3000: the controller backs
#      off (blocks still dirty 1 s after the writes, backoff windows
#      counted), and still dirty reaches 0 within age + 5 s. Times logged.
#      (Run after 300 s of guest uptime this also covers deadline stamps
#      past 2^32 jiffies: they once made every block look overdue.)
#   8. rate cap and suspend: writeback_rate 1 MB/s: 2N blocks take at least
#      (size in MB - 1) s to drain; while suspended in the middle, nothing
#      is written back and nothing becomes clean.
#   9. "mode writethrough" (while paused) drains and returns clean; the
#      table keeps "mode writeback"; writes then make no dirty block and all
#      reach the origin; "mode writeback" brings dirty blocks back.
#  10. warm restart: dirty blocks survive a table reload and a remove +
#      create ($21 loaded counts them, the data reads back, the new table
#      writes them back: written_back >= N), then flush: target == origin.
#  11. the documented safe removal: mode writethrough, dirty 0, remove: the
#      origin alone holds every data set not yet discarded.
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio dd cmp timeout head blkdiscard

MB=$(ic_full 8 48)		# zone A (fio), MiB
N=$(ic_full 256 1024)		# blocks of each small write set of zone S
ZB=$((MB * 256))		# zone A in 4 KiB blocks: 0 .. ZB-1
WZ=$ZB				# zone W (watermark): MB/2 MiB from here
PB=$((ZB * 3 / 2))		# zone P (placement): a few blocks
SB=$((ZB * 2))			# zone S: 16 sets of N blocks
OMB=$((2 * MB + 16 * N / 256))
ic_origin "${IC_ID}o" "$OMB" 20000 512
ic_cache "${IC_ID}c" $((MB / 2 + 2)) 512	# ~60% of zone A
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID
SZ=$(blockdev --getsz "$O") CM=$(ic_majmin "$C") OM=$(ic_majmin "$O")
OB=$((SZ / 8))			# origin blocks
BATCH=64			# one writeback batch: 256 KiB of 4 KiB blocks
OPTS=(mode writeback max_dirty_age 500 sequential_threshold 0)
TBL="0 $SZ infercache $CM $OM ${#OPTS[@]} ${OPTS[*]}"

# ------------------------------------------------------------------ helpers

section() { # section NAME: a kernel log marker and the time so far
	ic_mark "section $1"
	ic_log "---- $1 (at ${SECONDS}s)"
}

msg() { # msg WORDS...: a message that must be taken (a flush is bounded)
	case $1 in
	flush|mode) timeout 120 dmsetup message "$IC_ID" 0 "$@" ;;
	*) dmsetup message "$IC_ID" 0 "$@" ;;	# one process less (TCG)
	esac || ic_fail "message '$*' failed (status $?)"
}
snap() { ic_snap "$IC_ID" || ic_fail "no status for $IC_ID"; }
ms_now() { MS=$((${EPOCHREALTIME/./} / 1000)); }
owsect() { # OW: sectors written to the origin so far (no process: TCG)
	local -a f
	read -r -a f <"/sys/block/${IC_ID}o/stat" || ic_fail "no stat for $O"
	OW=${f[6]}
}

declare -A AT NB		# block and length of each data set written, by name
# put NAME SET [COUNT]: write COUNT (default N) 4 KiB blocks of fresh random
# data at set SET of zone S; the data is kept in $IC_TMP/NAME
put() { put_at "$1" $((SB + $2 * N)) "${3:-$N}"; }
put_at() { # put_at NAME BLOCK COUNT: the same at any block
	head -c $(($3 * 4096)) /dev/urandom >"$IC_TMP/$1" || ic_fail "no random data"
	dd if="$IC_TMP/$1" of="$D" bs=4k seek="$2" oflag=direct conv=notrunc status=none ||
		ic_fail "writing $1 ($3 blocks at block $2) failed"
	AT[$1]=$2 NB[$1]=$3
}
holds() { # holds DEV NAME: DEV holds the data set NAME at its block
	cmp -s "$IC_TMP/$2" <(dd if="$1" bs=4k skip="${AT[$2]}" count="${NB[$2]}" iflag=direct status=none)
}
must_hold() { holds "$1" "$2" || ic_fail "$3: $1 does not hold data set $2"; }
# A whole-block write that misses takes a free way at once, but in a set
# full of clean blocks it asks admission, which may send it to the origin.
# So that each data set surely becomes N dirty blocks, free_slots discards
# (through the target) every block that holds no live data set: reads (a
# reader, cmp_all, verification) fill the cache with them.
drop() { # drop NAME...: data sets checked on the origin: no longer live
	local f
	for f in "$@"; do unset "AT[$f]" "NB[$f]"; done
}
discard() { # discard BLOCK COUNT: through the target (-f: no probing reads)
	blkdiscard -f -o $(($1 * 4096)) -l $(($2 * 4096)) "$D" 2>/dev/null ||
		ic_fail "discard of $2 blocks at $1 failed"
}
free_slots() { # free_slots: discard all but the live data sets
	local f b=0 s n
	for f in "${!AT[@]}"; do echo "${AT[$f]} ${NB[$f]}"; done | sort -n >"$IC_TMP/live"
	while read -r s n; do
		((s > b)) && discard "$b" $((s - b))
		((s + n > b)) && b=$((s + n))
	done <"$IC_TMP/live"
	((OB > b)) && discard "$b" $((OB - b))
	snap
	ic_log "free_slots: ${IC_ST[cached]} blocks cached, ${IC_ST[dirty]} dirty, live data sets: ${!AT[*]}"
}

cmp_all() { # cmp_all WHAT: every byte of the target equals the origin's
	local n
	n=$(cmp -l <(dd if="$D" bs=1M iflag=direct status=none) <(dd if="$O" bs=1M iflag=direct status=none) \
		2>/dev/null | head -n 1000000 | awk '{ b[int(($1 - 1) / 4096)] = 1 } END { print length(b) }')
	ic_log "$1: $n blocks of the target differ from the origin"
	((n == 0)) || ic_fail "$1: $n blocks of the target differ from the origin"
}

flush_clean() { # flush_clean WHAT: flush; then dirty is 0, and paused stays paused
	local was
	snap
	was=${IC_ST[wb_state]}
	msg flush
	snap
	ic_want dirty -eq 0
	[[ $was == paused ]] && ic_want wb_state = paused
	ic_log "$1: flushed; written_back ${IC_ST[written_back]}, writeback_ios ${IC_ST[writeback_ios]}"
}

# wait_clean WHAT BOUND_S T0_MS: dirty reaches 0 within BOUND_S s of T0_MS
wait_clean() {
	while :; do
		snap
		ms_now
		[[ ${IC_ST[dirty]} == 0 ]] && break
		((MS - $3 <= $2 * 1000)) ||
			ic_fail "$1: still ${IC_ST[dirty]} dirty blocks $((MS - $3)) ms later (bound $2 s)"
		sleep 0.1
	done
	WAITED=$((MS - $3))
	ic_log "$1: clean $WAITED ms later (bound $2 s)"
}

# status without the commits counter ($23), which the periodic commit moves
status_nc() { dmsetup status "$IC_ID" | awk '{ $23 = "-"; print }'; }

# ------------------------------------------------------- 1. table values
section "table values"
fails=0
# bad "WANTED MESSAGE (regex)" TABLE-ARGS: must be refused (lib.sh)
bad() { ic_bad_table "$IC_ID" "$SZ" "$1" "$2" || fails=$((fails + 1)); }

ic_track "$IC_ID"
WB="$C $O 4 mode writeback"
MISSING="Missing value for optional argument|Invalid number of optional arguments|Invalid argument count"
TWICE="Optional argument given twice"
# 2^32 + n: a parser that truncates to 32 bits would take n
for v in 99 3600001 12x 4294967396; do
	bad "max_dirty_age" "$WB max_dirty_age $v"
done
for v in 0 91 4294967297; do
	bad "dirty_high" "$WB dirty_high $v"
done
for v in 10000001 x; do
	bad "read_latency_target" "$WB read_latency_target $v"
done
for v in 0 257; do
	bad "writeback_inflight" "$WB writeback_inflight $v"
done
for v in 100001 -1; do
	bad "writeback_rate" "$WB writeback_rate $v"
done
bad "Invalid cache mode" "$C $O 2 mode write-back"
bad "$MISSING" "$C $O 1 max_dirty_age"
bad "$MISSING" "$C $O 3 mode writeback dirty_high"
bad "$TWICE" "$C $O 6 mode writeback dirty_high 5 dirty_high 6"
bad "Unknown optional argument" "$C $O 4 mode writeback dirty_low 5"
ic_bad_tables_check || fails=$((fails + IC_BAD_MISSES))
ic_exists "$IC_ID" && ic_fail "a refused table left $IC_ID behind"

good() { # good TARGET_US|- OPTION-WORDS...: taken; the table shows the words
	local tus=$1 want got
	shift
	want="0 $SZ infercache $CM $OM $# $*"
	ic_mark "good: $*"
	if ! dmsetup create "$IC_ID" --table "0 $SZ infercache $C $O $# $*" >/dev/null 2>&1; then
		ic_log "refused: '$*': $(ic_klog_since | grep -o 'infercache: .*' | head -n 1)"
		fails=$((fails + 1))
		return
	fi
	got=$(dmsetup table "$IC_ID")
	[[ $got == "$want" ]] || { ic_log "table: got '$got', wanted '$want'"; fails=$((fails + 1)); }
	snap
	if [[ ${IC_ST[mode]} != writeback || ${IC_ST[dirty]} != 0 || -z ${IC_ST[target_us]} ||
		($tus != - && ${IC_ST[target_us]} != "$tus") ]]; then
		ic_log "'$*': status: mode ${IC_ST[mode]}, dirty ${IC_ST[dirty]:-none}," \
			"wb_state ${IC_ST[wb_state]:-none}, target_us ${IC_ST[target_us]:-none} (wanted $tus)"
		fails=$((fails + 1))
	fi
	dmsetup remove "$IC_ID" || ic_fail "remove failed"
}
good - mode writeback max_dirty_age 100 dirty_high 1 read_latency_target 0 \
	writeback_inflight 1 writeback_rate 0
good 10000000 mode writeback max_dirty_age 3600000 dirty_high 90 \
	read_latency_target 10000000 writeback_inflight 256 writeback_rate 100000
ic_expect "table lines that misbehaved" "$fails" -eq 0

# the main target; a bad reload of it changes nothing
ic_create_ok "$IC_ID" "$C" "$O" "${OPTS[@]}"
snap
[[ -n ${IC_ST[dirty]} ]] || ic_fail "status has no writeback fields (\$24..): $(dmsetup status "$IC_ID")"
ic_want mode = writeback dirty -eq 0 state = ok
[[ $(dmsetup table "$IC_ID") == "$TBL" ]] || ic_fail "table: $(dmsetup table "$IC_ID"), wanted $TBL"
s0=$(status_nc)
for v in "mode writeback dirty_high 91" "mode writeback1"; do
	# shellcheck disable=SC2206 # the words of a table
	w=(sequential_threshold 0 $v)
	if dmsetup reload "$IC_ID" --table "0 $SZ infercache $C $O ${#w[@]} ${w[*]}" >/dev/null 2>&1; then
		ic_fail "reload with '$v' was taken"
	fi
done
dmsetup info "$IC_ID" | grep -q 'Tables present: *LIVE$' ||
	ic_fail "a refused reload left an inactive table: $(dmsetup info "$IC_ID" | grep Tables)"
[[ $(dmsetup table "$IC_ID") == "$TBL" ]] || ic_fail "a refused reload changed the table"
[[ $(status_nc) == "$s0" ]] || ic_fail "a refused reload changed the status: $s0 -> $(status_nc)"
ic_log "bad reloads of the live target refused, table and status unchanged"

# ------------------------------------------------------------ 2. messages
section "messages"
s0=$(status_nc)
nbad=0
for m in "flush now" "writeback_pause 1" "mode" "mode writearound" "max_dirty_age" \
	"max_dirty_age 99" "max_dirty_age 3600001" "max_dirty_age 4294967396" "dirty_high 91" \
	"read_latency_target 10000001" "read_latency_target x" "writeback_inflight 0" \
	"writeback_inflight 257" "writeback_rate 100001" "max_dirty_age 500 1"; do
	# shellcheck disable=SC2086 # a message is several words
	if dmsetup message "$IC_ID" 0 $m 2>/dev/null; then
		ic_log "message '$m' was taken"
		fails=$((fails + 1))
	fi
	nbad=$((nbad + 1))
done
[[ $(status_nc) == "$s0" ]] || ic_fail "bad messages changed the status: $s0 -> $(status_nc)"
for m in "max_dirty_age 3600000" "dirty_high 90" "writeback_inflight 256" "writeback_rate 100000" \
	"writeback_rate 0" "writeback_pause" "writeback_resume" "flush" "mode writethrough" \
	"mode writeback" "read_latency_target 5000"; do
	# shellcheck disable=SC2086
	dmsetup message "$IC_ID" 0 $m || { ic_log "message '$m' refused"; fails=$((fails + 1)); }
done
snap
ic_want target_us -eq 5000 mode = writeback
msg writeback_pause
snap
ic_want wb_state = paused
for m in "writeback_resume now" "mode write-through"; do
	# shellcheck disable=SC2086
	dmsetup message "$IC_ID" 0 $m 2>/dev/null && { ic_log "message '$m' was taken"; fails=$((fails + 1)); }
done
snap
ic_want wb_state = paused mode = writeback
[[ $(dmsetup table "$IC_ID") == "$TBL" ]] || ic_fail "messages changed the table line: $(dmsetup table "$IC_ID")"
for m in "read_latency_target 0" "writeback_inflight 32" "max_dirty_age 500" "dirty_high 50"; do
	# shellcheck disable=SC2086
	msg $m
done
ic_expect "messages that misbehaved" "$fails" -eq 0
ic_log "$((nbad + 2)) bad messages refused without a trace, 11 good ones taken"

# ------------------------------------------------ 3. placement (paused)
section "placement"
X=$PB Y=$((PB + 16)) Z=$((PB + 32))
head -c 512 /dev/urandom >"$IC_TMP/p512"
head -c 4096 /dev/zero >"$IC_TMP/zero4k"
sect() { # sect BLOCK SECTOR: write $IC_TMP/p512 at that 512-byte sector of the target
	dd if="$IC_TMP/p512" of="$D" bs=512 seek=$(($1 * 8 + $2)) count=1 oflag=direct conv=notrunc status=none ||
		ic_fail "512-byte write at block $1 sector $2 failed"
}
expect() { # expect NAME BASE SECTOR BLOCK: data set NAME at BLOCK = data BASE with p512 at SECTOR
	cp "$IC_TMP/$2" "$IC_TMP/$1"
	dd if="$IC_TMP/p512" of="$IC_TMP/$1" bs=512 seek="$3" conv=notrunc status=none
	AT[$1]=$4 NB[$1]=1
}
placed() { # placed WHAT DIRTY_DELTA ORIGIN_SECTORS_DELTA
	local d0=$DIRTY w0=$OW
	snap
	owsect
	DIRTY=${IC_ST[dirty]}
	ic_log "placement: $1: dirty $d0 -> $DIRTY, origin sectors written +$((OW - w0))"
	ic_expect "$1: dirty blocks" "$DIRTY" -eq $((d0 + $2))
	ic_expect "$1: sectors written to the origin" $((OW - w0)) -eq "$3"
}
snap
ic_want dirty -eq 0 wb_state = paused
DIRTY=0
owsect
put_at px "$X" 1
placed "whole block, miss" 1 0
sect "$Y" 2
placed "512 B, miss (write-around)" 0 1
sect "$X" 4
placed "512 B into a dirty block" 0 0
f0=${IC_ST[fills]} c0=${IC_ST[cached]}
dd if="$D" of=/dev/null bs=4k skip="$Z" count=1 iflag=direct status=none || ic_fail "read of block $Z failed"
ic_wait "$IC_ID" cached -gt "$c0" || ic_fail "the read of block $Z did not fill it (fills ${IC_ST[fills]}, was $f0)"
owsect
sect "$Z" 6
placed "512 B into a clean cached block" 1 0
expect ex px 4 "$X"
expect ey zero4k 2 "$Y"
expect ez zero4k 6 "$Z"
unset 'AT[px]'			# ex is what block X holds now
for f in ex ey ez; do must_hold "$D" "$f" "placement, through the target"; done
holds "$O" ex && ic_fail "placement: the origin already holds block $X while paused"
flush_clean "placement"
for f in ex ey ez; do must_hold "$O" "$f" "placement, after flush"; done
msg writeback_resume

# ------------------------------------------------------------ 4. fio verify
section "fio verify"
lbs=$(cat "/sys/block/$(ic_dev_of "$D")/queue/logical_block_size")
if [[ $lbs == 512 ]]; then
	mixed="--size=${MB}M --bsrange=512-64k --blockalign=512 --verify_backlog=64"
else
	ic_log "logical block size of the target is $lbs: no partial-block writes"
	mixed="--size=${MB}M --bsrange=4k-64k --blockalign=4k --verify_backlog=64"
fi
# shellcheck disable=SC2046,SC2086
ic_fio fio1 "${IC_FIO_IO[@]}" --name=fill --filename="$D" --rw=randread --bs=128k --size="${MB}M" \
	$(ic_gen 1 "$D" --size="${MB}M" --bs=4k --do_verify=1) ||
	ic_fail "random 4 KiB writes in writeback mode did not verify"
snap
ic_log "after 4 KiB writes: dirty ${IC_ST[dirty]}, written_back ${IC_ST[written_back]}, write_hits ${IC_ST[write_hits]}"
# shellcheck disable=SC2046,SC2086
ic_fio fio2 "${IC_FIO_IO[@]}" $(ic_gen 2 "$D" $mixed) ||
	ic_fail "mixed-size writes (512 B..64 KiB) in writeback mode did not verify"
snap
ic_log "after mixed writes: dirty ${IC_ST[dirty]}, written_back ${IC_ST[written_back]}, write_hits ${IC_ST[write_hits]}"
ic_want write_hits -gt 0 written_back -gt 0 writeback_ios -gt 0 cache_errors -eq 0 state = ok
dmsetup suspend "$IC_ID" || ic_fail "suspend failed"
dmsetup resume "$IC_ID" || ic_fail "resume failed"
# shellcheck disable=SC2046,SC2086
ic_fio fio3 "${IC_FIO_IO[@]}" $(ic_gen 2 "$D" $mixed --verify_only) ||
	ic_fail "the mixed-size generation did not verify after suspend/resume"
dmsetup reload "$IC_ID" --table "$TBL" || ic_fail "reload failed"
dmsetup resume "$IC_ID" || ic_fail "resume after reload failed"
[[ $(dmsetup table "$IC_ID") == "$TBL" ]] || ic_fail "table after reload: $(dmsetup table "$IC_ID")"
# shellcheck disable=SC2046,SC2086
ic_fio fio4 "${IC_FIO_IO[@]}" $(ic_gen 2 "$D" $mixed --verify_only) ||
	ic_fail "the mixed-size generation did not verify after a table reload"
flush_clean "fio"
cmp_all "after flush"
# shellcheck disable=SC2046,SC2086
ic_fio fio5 "${IC_FIO_IO[@]}" $(ic_gen 2 "$O" $mixed --verify_only) ||
	ic_fail "after flush the origin alone does not hold the mixed-size generation"

# ------------------------------------------------------------- 5. watermark
section "watermark"
free_slots
msg writeback_pause
msg dirty_high 5
for m in "dirty_high 0" "dirty_high" "dirty_high 4294967297"; do
	# shellcheck disable=SC2086
	dmsetup message "$IC_ID" 0 $m 2>/dev/null && ic_fail "message '$m' was taken"
done
snap
LIMIT=$((5 * IC_ST[total] / 100))
# watermark WHAT GEN: random 4 KiB writes over zone W (16x the limit or
# more), verified; sample dirty while fio runs
watermark() {
	local max=0 n=0 d
	rm -f "$IC_TMP/wm.rc"
	wm_writer() {
		# shellcheck disable=SC2046
		ic_fio "wm$2" "${IC_FIO_IO[@]}" $(ic_gen "$2" "$D" --offset=$((WZ * 4))k --size=$((MB / 2))M \
			--bs=4k --do_verify=1)
		echo $? >"$IC_TMP/wm.rc"
	}
	ic_bg wm_writer "$1" "$2"
	while [[ ! -e $IC_TMP/wm.rc ]]; do
		snap
		d=${IC_ST[dirty]}
		((d > max)) && max=$d
		n=$((n + 1))
		sleep 0.05
	done
	wait "$IC_BGPID"
	[[ $(<"$IC_TMP/wm.rc") == 0 ]] || ic_fail "$1: the writes did not verify"
	snap
	d=${IC_ST[dirty]}
	((d > max)) && max=$d
	ic_log "$1: limit $LIMIT of ${IC_ST[total]} slots: dirty at most $max in $n samples while writing" \
		"$((MB * 256 / 2)) blocks, $d at the end; written_back ${IC_ST[written_back]}"
	((n >= 3)) || ic_log "$1: only $n samples while fio ran"
	ic_expect "$1: most dirty blocks seen" "$max" -le $((LIMIT + BATCH))
	ic_expect "$1: dirty blocks at the end" "$d" -le $((LIMIT + BATCH))
	WM_END=$d
}
watermark "watermark, paused" 3
ic_expect "watermark, paused: dirty blocks at the end (reached 3/4 of the limit)" \
	"$WM_END" -ge $((LIMIT * 3 / 4))
flush_clean "watermark, paused"
msg writeback_rate 1
msg writeback_resume
watermark "watermark, writeback at 1 MB/s" 4
msg writeback_rate 0
flush_clean "watermark, writeback running"
msg dirty_high 50

# --------------------------------------------------------- 6. pause/resume
section "pause/resume"
msg writeback_pause
msg max_dirty_age 1000
free_slots
wb0=${IC_ST[written_back]}
owsect
w0=$OW
put p0 0
snap
ic_want dirty -eq "$N" wb_state = paused
sleep 2.5		# past max_dirty_age
snap
owsect
ic_want dirty -eq "$N" wb_state = paused written_back -eq "$wb0"
ic_expect "pause: sectors written to the origin" $((OW - w0)) -eq 0
ms_now
t0=$MS
msg writeback_resume
wait_clean "resume after a pause" 6 "$t0"
ic_want written_back -ge $((wb0 + N))
must_hold "$O" p0 "after resume"
drop p0

# ------------------------------------------------------------ 7. deadlines
section "deadlines"
put p1 1
ms_now
wait_clean "idle, max_dirty_age 1000" 6 "$MS"
must_hold "$O" p1 "idle drain"
msg max_dirty_age 3000
msg read_latency_target 1
ic_bg fio --output="$IC_TMP/reader.log" --eta=never "${IC_FIO_IO[@]}" --filename="$D" --name=r --rw=randread \
	--bs=4k --size="${MB}M" --time_based --runtime=600
reader=$IC_BGPID
sleep 1
snap
b0=${IC_ST[backoffs]}
put p2 2
ms_now
t0=$MS
sleep 1
snap
read -r up _ </proc/uptime
ic_log "under reads, 1 s after the writes: dirty ${IC_ST[dirty]}, wb_state ${IC_ST[wb_state]}," \
	"read_p99_us ${IC_ST[read_p99_us]}, target_us ${IC_ST[target_us]}, backoffs ${IC_ST[backoffs]}; guest uptime ${up%.*} s"
# the reads were above the target all along and no deadline has passed
ic_expect "dirty blocks 1 s after the writes (reads above the target, deadline 3 s)" "${IC_ST[dirty]}" -gt 0
wait_clean "reads, read_latency_target 1 us, max_dirty_age 3000" 8 "$t0"
ic_log "backoffs ${IC_ST[backoffs]} (were $b0)"
ic_expect "backoff windows under reads above the target" "${IC_ST[backoffs]}" -gt "$b0"
kill -INT "$reader"
wait "$reader"
grep -qE 'err= *[1-9]|error=' "$IC_TMP/reader.log" && ic_fail "the reader saw I/O errors"
must_hold "$O" p2 "drain under reads"
drop p1 p2
msg read_latency_target 0
msg max_dirty_age 1000

# -------------------------------------------------- 8. rate cap, suspend
section "rate cap"
msg writeback_pause
free_slots
put p3 3 $((2 * N))
msg writeback_rate 1
ms_now
t0=$MS
msg writeback_resume
sleep 0.3
dmsetup suspend "$IC_ID" || ic_fail "suspend failed"
ms_now
ts=$MS
snap
d1=${IC_ST[dirty]} x1=${IC_ST[written_back]}
sleep 1.5
snap
ic_log "suspended: dirty ${IC_ST[dirty]} written_back ${IC_ST[written_back]}, 1.5 s earlier $d1 $x1"
ic_want dirty -eq "$d1" written_back -eq "$x1"
((d1 > 0)) || ic_log "rate 1 MB/s: already clean 0.3 s after resume"
dmsetup resume "$IC_ID" || ic_fail "resume failed"
ms_now
susp=$((MS - ts))
wait_clean "rate 1 MB/s" $((2 * N * 4 / 1000 + 15 + susp / 1000)) "$t0"
busy=$((WAITED - susp))
want=$((2 * N * 4096 / 1000 - 1000))	# ms at 1 MB/s, less one second of burst
ic_log "rate 1 MB/s: $((2 * N * 4)) KiB written back in $busy ms (not suspended), at least $want ms expected"
ic_expect "rate 1 MB/s: ms to write back $((2 * N * 4)) KiB" "$busy" -ge "$want"
must_hold "$O" p3 "rate-capped drain"
drop p3
msg writeback_rate 0

# --------------------------------------------------- 9. mode writethrough
section "mode writethrough"
msg writeback_pause
free_slots
put p4 5
snap
ic_want dirty -eq "$N"
ms_now
t0=$MS
msg mode writethrough
ms_now
snap
ic_log "mode writethrough returned after $((MS - t0)) ms, dirty ${IC_ST[dirty]}"
ic_want dirty -eq 0 mode = writethrough
[[ $(dmsetup table "$IC_ID") == "$TBL" ]] || ic_fail "mode writethrough changed the table line"
must_hold "$O" p4 "mode writethrough"
owsect
w0=$OW
put p4 5			# rewrites cached blocks
put p5 6			# new blocks
snap
owsect
ic_want dirty -eq 0
ic_expect "writethrough: sectors written to the origin" $((OW - w0)) -eq $((2 * N * 8))
must_hold "$O" p4 "writethrough, rewrite"
must_hold "$O" p5 "writethrough, new blocks"
drop p4 p5
msg mode writeback
msg writeback_pause
free_slots
put p6 7
snap
ic_want dirty -eq "$N" mode = writeback

# --------------------------------------------------------- 10. warm restart
section "warm restart"
holds "$O" p6 && ic_fail "the origin holds p6 while paused"
dmsetup reload "$IC_ID" --table "$TBL" || ic_fail "reload failed"
dmsetup resume "$IC_ID" || ic_fail "resume after reload failed"
snap
ic_log "reload with $N dirty blocks: loaded ${IC_ST[loaded]}, dirty ${IC_ST[dirty]}, written_back ${IC_ST[written_back]}"
ic_want loaded -ge "$N"
must_hold "$D" p6 "after the reload"
flush_clean "after the reload"
ic_want written_back -ge "$N"
must_hold "$O" p6 "flush after the reload"
drop p6
msg writeback_pause
free_slots
put p7 8
snap
ic_want dirty -eq "$N"
ic_remove "$IC_ID" || ic_fail "remove failed"
ic_mark "re-create"
ic_create_ok "$IC_ID" "$C" "$O" "${OPTS[@]}"
snap
ic_log "re-create with $N dirty blocks: loaded ${IC_ST[loaded]}, dirty ${IC_ST[dirty]}, written_back ${IC_ST[written_back]}"
ic_klog_since | grep -m1 -E 'infercache: .*loaded' | sed 's/^/#   klog: /'
ic_want loaded -ge "$N" mode = writeback
must_hold "$D" p7 "after re-create"
flush_clean "after re-create"
ic_want written_back -ge "$N"
must_hold "$O" p7 "flush after re-create"
cmp_all "after re-create and flush"

# ---------------------------------------------------------- 11. safe removal
section "safe removal"
msg writeback_pause
free_slots
put p8 9
snap
ic_want dirty -eq "$N"
# the documented procedure
msg mode writethrough
snap
ic_want dirty -eq 0
ic_show "$IC_ID"
ic_remove "$IC_ID" || ic_fail "remove failed"
for f in "${!AT[@]}"; do must_hold "$O" "$f" "after the safe removal"; done
ic_log "safe removal: the origin alone holds the data sets ${!AT[*]} (the others were checked there, then discarded)"
exit 0
