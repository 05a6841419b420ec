#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest crashes (issue 3 item 5, third leg): the guest crashes with
# `echo c >/proc/sysrq-trigger` in the middle of a write+read workload
# through the target (file-backed NVMe cache smaller than the working set,
# so there are evictions, and virtio origin), then boots again over the same disk
# files, re-creates the target and verifies with crash_io's state, which
# went to the host before the crash: nothing lost, nothing stale, nothing
# corrupt, every block through the target equal to the origin; the loaded
# count ($21) of each recovery is logged. The boots form a chain: boot k
# verifies the crash of boot k-1 and then crashes again, the last one only
# verifies, removes the target cleanly and checks a clean re-load.
# Cut points: 1 (make check), 50 (RB_FULL=1, make check-full), or RB_CUTS;
# RB_SEED reproduces the random delays. See selftests/reboot/guest_crash.sh.
# RB_CRASH_MODE=writeback (test_reboot_crash_wb.sh): the same in writeback
# mode (guest_crash.sh's CRASH_MODE), and the recoveries must have found
# dirty blocks to write back.
. "$(dirname "$0")/lib.sh"
set -uo pipefail
rb_init
MODE=${RB_CRASH_MODE:-writethrough}
rb_log "cache mode: $MODE"

src=$IC_REPO/selftests/dm-infercache/crash_io.c
[[ -f $src ]] || rb_skip "no $src in this tree"
CUTS=${RB_CUTS:-$(rb_full 1 50)}
NA=$(rb_full 1024 2048)		# crash_io's blocks; the fio region is 512 more
gcc -O2 -g -Wall -Wextra -std=gnu11 -pthread -o "$RB_WORK/crash_io" "$src" >"$RB_WORK/gcc.log" 2>&1 ||
	{ sed 's/^/#   /' "$RB_WORK/gcc.log"; rb_fail "building crash_io failed"; }
rb_disk nvme cache "$(rb_full 6M 8M)"	# about 1270 or 1780 slots
rb_disk virtio origin "$(rb_full 8M 12M)"

wb_note() { # in writeback mode: the dirty blocks the last recovery wrote back
	local n
	[[ $MODE == writeback ]] || return 0
	n=$(rb_result wb_loaded) || rb_fail "boot $RB_BOOTS handed back no wb_loaded"
	wbs+=("$n")
	wbsum=$((wbsum + n))
}
prev=- loads=() wbs=() wbsum=0
for ((k = 1; k <= CUTS; k++)); do
	d1=$((200 + RANDOM % 2800)) d2=$((RANDOM % 1500))
	rb_boot --expect-panic -- env CRASH_IO="$RB_WORK/crash_io" CRASH_MODE="$MODE" \
		bash "$RB_SELF/guest_crash.sh" "$NA" "$k" "$prev" "$d1" "$d2" ||
		rb_fail "boot $RB_BOOTS (round $k) did not end in the expected crash"
	if [[ $prev != - ]]; then
		loads+=("$(rb_result loaded)")
		rb_log "round $((k - 1)) recovered: loaded $(rb_result loaded), dropped $(rb_result dropped); $(rb_result verify)"
		wb_note
	fi
	[[ -s $RB_OUT/state ]] || rb_fail "boot $RB_BOOTS left no crash_io state"
	prev=$RB_OUT/state
done
rb_boot -- env CRASH_IO="$RB_WORK/crash_io" CRASH_MODE="$MODE" bash "$RB_SELF/guest_crash.sh" "$NA" final "$prev" ||
	rb_fail "boot $RB_BOOTS (last verification) failed"
loads+=("$(rb_result loaded)")
rb_log "round $CUTS recovered: loaded $(rb_result loaded), dropped $(rb_result dropped); $(rb_result verify)"
wb_note
rb_log "clean re-create loaded $(rb_result clean_loaded)"
rb_log "$CUTS crashes, loaded counts after them: ${loads[*]}"
if [[ $MODE == writeback ]]; then
	rb_log "dirty blocks the recoveries wrote back: ${wbs[*]}"
	((wbsum > 0)) || rb_fail "writeback mode, but no crash left a dirty block for the recovery"
fi
exit 0
