#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of test_reboot_crash.sh: one boot of a chain of crash rounds.
#
#   guest_crash.sh NA ROUND PREV_STATE|- DELAY1_MS DELAY2_MS
#   guest_crash.sh NA final PREV_STATE
#
# With a PREV_STATE (every boot but the first): the guest crashed in the
# previous boot; re-create the target, which loads the metadata the crash
# left (the kernel must say "unclean shutdown"), then verify: crash_io verify
# of its blocks against PREV_STATE (nothing lost, stale, corrupt, changed;
# through the target = the origin read directly), and every block of the
# target equal to the origin (the fio region and the untouched rest too).
# Results: loaded, dropped, verify.
#
# ROUND: crash again. The first boot blanks the cache and creates the
# target (formatted); later ones go on with the target they verified.
# The target is created with a plain table; odd rounds then reload it with
# commit_interval 100 (a reload: a clean commit and load), even ones keep
# the default (1000 ms).
# crash_io (see selftests/dm-infercache/crash_io.c) writes, flushes and
# warms NA 4 KiB blocks (a multiple of 64) at the start of the target,
# then writes and reads them;
# its state (durable/completed/submitted version per block) goes to
# $IC_OUT/state, i.e. to the host, when it is stopped DELAY1_MS later. A fio
# random read/write/fsync load on the next 2 MiB keeps running, and
# DELAY2_MS after crash_io stopped, the guest crashes (sysrq c): metadata
# commits, fills and writes of that region are in flight.
#
# final: after the verification, remove the target (clean shutdown),
# re-create it: "clean shutdown", loaded = what was cached, target = origin.
#
# A module without persistent metadata (no status $21-$23) comes up cold
# after every crash: the same checks, except the load messages and counts.
#
# CRASH_MODE=writeback: the target runs "mode writeback max_dirty_age 1000
# dirty_high 20" (dirty blocks, writeback and the watermark during the
# load), and the crash waits (up to 10 s) until the status shows 8 dirty
# blocks, then commits (message), so that each recovery has some to find
# (a DIRTY entry not yet committed is rightly forgotten). The origin then legitimately lacks the dirty blocks after a crash,
# so the verification is: crash_io verify of the target alone (nothing
# lost, corrupt or changed), "flush" (dirty 0 after it; the blocks the
# recovered table wrote back are handed to the host as wb_loaded), then
# crash_io verify against the origin and every block equal, as above.
#
# Environment: CRASH_IO, the crash_io binary (the host builds it);
# CRASH_MODE (writethrough, the default, or writeback). Only crash_io's
# command line is used here, not crash_lib.sh's helpers.
# shellcheck disable=SC2119 # ic_init and rg_create take no script arguments
. "$(dirname "$0")/guest-lib.sh"
ic_init
ic_require fio dd cmp
rg_disks
RG_NEED_PERSIST=0
CRASH_IO=${CRASH_IO:-$IC_SRC/build/selftests/dm-infercache/crash_io}
[[ -x $CRASH_IO ]] || ic_fail "no crash_io binary at $CRASH_IO"

NA=${1:?NA} round=${2:?round} prev=${3:?previous state or -}
BOFF=$((NA * 4096)) BSIZE=2M	# the fio region after crash_io's blocks
MODE=${CRASH_MODE:-writethrough}
base=()
case $MODE in
writethrough) ;;
writeback) base=(mode writeback max_dirty_age 1000 dirty_high 20) ;;
*) ic_fail "CRASH_MODE=$MODE: writethrough or writeback" ;;
esac
opts=("${base[@]}")
[[ $round =~ ^[0-9]+$ ]] && ((round % 2)) && opts+=(commit_interval 100)

ms_sleep() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# cio_start STATE: run crash_io on the first NA blocks of the target in the
# background (CIO_PID); return once it has written and warmed them.
cio_start() {
	local i
	rm -f "$1" "$1.ready"
	"$CRASH_IO" run -d "$D" -n "$NA" -o "$1" -R "$1.ready" -t 300 >"$1.log" 2>&1 &
	CIO_PID=$!
	for ((i = 0; i < 1200; i++)); do
		[[ -e $1.ready ]] && return 0
		kill -0 "$CIO_PID" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/#   /' "$1.log"
	ic_fail "crash_io did not get ready"
}

# cio_stop STATE: stop crash_io, which then writes STATE (to the host);
# fail on a bad read, an I/O error, or a hang.
cio_stop() {
	local i rc
	kill -TERM "$CIO_PID"
	for ((i = 0; i < 600; i++)); do
		kill -0 "$CIO_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$CIO_PID" 2>/dev/null; then
		echo w >/proc/sysrq-trigger
		ic_fail "crash_io does not stop (blocked tasks in the kernel log)"
	fi
	wait "$CIO_PID"
	rc=$?
	sed 's/^/#   /' "$1.log"
	((rc == 0)) || ic_fail "crash_io run: status $rc"
	[[ -s $1 ]] || ic_fail "crash_io saved no state"
}

# cio_verify STATE [ORIGIN]: crash_io verify of the target (against the
# origin if given); the summary line in CIO_VLINE; status of crash_io
cio_verify() {
	local out rc
	out=$("$CRASH_IO" verify "$1" "$D" "${@:2}" 2>&1)
	rc=$?
	printf '%s\n' "$out" | sed 's/^/#   /'
	CIO_VLINE=$(printf '%s\n' "$out" | grep -m1 'crash_io: verify ')
	return $rc
}

load_log() { # load_log: the target's "loaded N blocks" line since the last ic_mark
	ic_klog_since | grep -m1 -E 'infercache: .*loaded [0-9]+ blocks' | sed 's/^\[[^]]*\] *//'
}

cmp_all() { # cmp_all WHAT: every block of the target equals the origin's
	local n
	n=$(cmp -l <(dd if="$D" bs=64k iflag=direct status=none) \
		<(dd if="$O" bs=64k iflag=direct status=none) 2>/dev/null | head -n 1000000 |
		awk '{ b[int(($1 - 1) / 4096)] = 1 } END { print length(b) }')
	ic_log "$1: $n blocks of the target differ from the origin"
	((n == 0)) || ic_fail "$1: $n blocks of the target differ from the origin (stale)"
}

verify() { # verify WHAT: crash_io verify against $prev, then cmp_all
	local -a w
	if [[ $MODE == writeback ]]; then
		cio_verify "$prev" || ic_fail "$1: crash_io verify of the target alone failed: $CIO_VLINE"
		dmsetup message "$RG_NAME" 0 flush || ic_fail "$1: flush failed"
		read -r -a w <<<"$(dmsetup status "$RG_NAME")"
		((${#w[@]} >= 30)) || ic_fail "$1: no writeback status fields: ${w[*]}"
		((w[23] == 0)) || ic_fail "$1: ${w[23]} dirty blocks after the flush returned"
		ic_log "$1: flushed; the recovered table wrote back ${w[25]} blocks"
		rg_result wb_loaded "${w[25]}"
	fi
	cio_verify "$prev" "$O" || ic_fail "$1: crash_io verify failed: $CIO_VLINE"
	cmp_all "$1"
}

[[ $prev == - ]] && rg_zero_sb
ic_mark "create"
rg_create "${base[@]}"
((RG_PERSIST)) || ic_log "no persistent metadata in this module: the target starts cold"
if [[ $prev != - ]]; then
	[[ -s $prev ]] || ic_fail "no state file $prev"
	if ((RG_PERSIST)); then
		line=$(load_log)
		ic_log "recover: ${line:-no load message}"
		[[ $line == *'unclean shutdown'* ]] || ic_fail "after a crash the load message must say 'unclean shutdown'"
		read -r loaded dropped < <(rg_words 21 22)
	else
		loaded=- dropped=-
	fi
	rg_result loaded "$loaded"
	rg_result dropped "$dropped"
	verify "after the crash"
	rg_result verify "${CIO_VLINE#*crash_io: verify }"
	ic_show "$RG_NAME"
fi

if [[ $round == final ]]; then
	ic_snap "$RG_NAME"
	cached=${IC_ST[cached]}
	ic_remove "$RG_NAME" || ic_fail "dmsetup remove failed"
	ic_mark "clean re-create"
	rg_create "${base[@]}"
	if ((RG_PERSIST)); then
		line=$(load_log)
		ic_log "clean re-create: ${line:-no load message}"
		[[ $line == *' (clean shutdown'* ]] || ic_fail "after a remove the load message must say 'clean shutdown'"
		ic_expect "loaded after a clean remove" "$(rg_words 21)" -eq "$cached"
	fi
	cmp_all "after the clean re-create"
	rg_result clean_loaded "$( ((RG_PERSIST)) && rg_words 21 || echo -)"
	ic_remove "$RG_NAME" || ic_fail "dmsetup remove failed"
	exit 0
fi

d1=${4:?delay1} d2=${5:?delay2}
if ((RG_PERSIST && ${#opts[@]} > ${#base[@]})); then
	dmsetup reload "$RG_NAME" --table "0 $(blockdev --getsz "$O") infercache $C $O ${#opts[@]} ${opts[*]}" ||
		ic_fail "reload with ${opts[*]} failed"
	dmsetup resume "$RG_NAME" || ic_fail "resume after the reload failed"
else
	opts=("${base[@]}")
fi
ic_log "round $round: ${opts[*]:-default options}; crash_io $d1 ms, then the crash $d2 ms later"
cio_start "$IC_OUT/state"
fio --output="$IC_TMP/fio-b.log" --name=b --filename="$D" --offset="$BOFF" --size="$BSIZE" \
	--rw=randrw --rwmixread=60 --bs=4k --ioengine=libaio --direct=1 --iodepth=4 \
	--fsync=32 --randseed="$round" --time_based --runtime=600 >/dev/null 2>&1 &
FIO_PID=$!
ms_sleep "$d1"
cio_stop "$IC_OUT/state"
ms_sleep "$d2"
kill -0 "$FIO_PID" 2>/dev/null || ic_fail "the fio load died: $(tail -n 5 "$IC_TMP/fio-b.log" 2>/dev/null)"
if [[ $MODE == writeback ]]; then
	# the recovery must find dirty blocks: crash while some are (status
	# $24; a few, as one may be written back any moment)
	for ((i = 0; i < 200; i++)); do
		(($(rg_words 24) >= 8)) && break
		sleep 0.05
	done
	# and have them on disk: a DIRTY entry not yet committed is (rightly)
	# forgotten by a crash; fio keeps writing, so the crash still comes
	# with writes, fills and commits in flight
	dmsetup message "$RG_NAME" 0 commit || ic_fail "the commit message failed"
	ic_log "round $round: $(rg_words 24) dirty blocks after $((i * 50)) ms more and a commit"
fi
ic_show "$RG_NAME"
ic_log "round $round: crashing now"
echo c >/proc/sysrq-trigger
sleep 5
ic_fail "the guest did not crash"
