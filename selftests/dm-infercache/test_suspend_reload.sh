#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Suspend/resume and table reloads under I/O. In the background: fio write
# generations over one region, each with its own pattern and verified while
# and after it is written, plus a random reader. Meanwhile a loop suspends
# and resumes the target, reloads its table with the same or another block
# size, and does noflush suspends with a reload. Every generation must
# verify, the reader must see no error, and table and state must be right.
# The cache device takes 1 ms per I/O, so that fills are still being
# written to it when the target suspends (they outlive the callers).
. "$(dirname "$0")/lib.sh"
ic_init
ic_require fio timeout

CYCLES=$(ic_full 6 30) MB=$(ic_full 16 64)
ic_origin "${IC_ID}o" "$MB" 50000
ic_cache "${IC_ID}c" 8 512 irqmode=2 completion_nsec=1000000
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID SZ=$(blockdev --getsz "$O")
ic_create_ok "$IC_ID" "$C" "$O"

writer() { # write and verify generations until $IC_TMP/stop exists
	local g=1
	while [[ ! -e $IC_TMP/stop ]]; do
		ic_fio "gen$g" --name="g$g" --filename="$D" "${IC_FIO_IO[@]}" --size="${MB}M" \
			--rw=randwrite --bsrange=4k-64k --randseed="$g" --verify=pattern \
			--verify_pattern="$(ic_pattern "$g")" --verify_backlog=32 --verify_fatal=1 ||
			{ ic_log "generation $g failed"; return 1; }
		echo "$g" >"$IC_TMP/gens"
		g=$((g + 1))
	done
}
ic_bg writer
writer_pid=$IC_BGPID
ic_bg fio --output="$IC_TMP/reader.log" "${IC_FIO_IO[@]}" --filename="$D" --name=r \
	--rw=randread --bs=4k --time_based --runtime=3600
reader_pid=$IC_BGPID

sizes=(4096 16384 65536 8192)
want="0 $SZ infercache $(ic_majmin "$C") $(ic_majmin "$O") 0"
dms() { timeout 120 dmsetup "$@" || ic_fail "dmsetup $* failed or hung (cycle $c)"; }
sleep 1
for ((c = 0; c < CYCLES; c++)); do
	kill -0 "$writer_pid" 2>/dev/null || break
	case $((c % 3)) in
	0)	dms suspend "$IC_ID"; sleep 0.2; dms resume "$IC_ID" ;;
	1)	bs=${sizes[$((c / 3 % ${#sizes[@]}))]}
		want="0 $SZ infercache $(ic_majmin "$C") $(ic_majmin "$O") 2 block_size $bs"
		# another block size needs "format" (never shown by table)
		dms reload "$IC_ID" --table "0 $SZ infercache $C $O 3 block_size $bs format"
		dms suspend "$IC_ID"; dms resume "$IC_ID" ;;
	2)	dms suspend --noflush "$IC_ID"
		dms reload "$IC_ID" --table "$(dmsetup table "$IC_ID")"
		dms resume "$IC_ID" ;;
	esac
	[[ $(dmsetup table "$IC_ID") == "$want" ]] || ic_fail "table after cycle $c: $(dmsetup table "$IC_ID"), wanted $want"
	sleep 0.5
done
touch "$IC_TMP/stop"
wait "$writer_pid" || ic_fail "a write generation failed verification under suspend/reload"
kill -INT "$reader_pid"
wait "$reader_pid"
ic_log "$c suspend/reload cycles, $(cat "$IC_TMP/gens" 2>/dev/null || echo 0) generations verified"
ic_expect "cycles" "$c" -eq "$CYCLES"
grep -E 'err=|error' "$IC_TMP/reader.log" | sed 's/^/#   reader: /'
grep -qE 'err= *[1-9]|error=' "$IC_TMP/reader.log" && ic_fail "the reader saw I/O errors"
ic_show "$IC_ID"
[[ ${IC_ST[state]} == ok ]] || ic_fail "state is ${IC_ST[state]}"
ic_want cache_errors -eq 0
exit 0
