#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Helpers of the crash-consistency tests (test_crash_*.sh), sourced after
# lib.sh and ic_init. They drive crash_io (see crash_io.c): start its
# workload, freeze its record of durable writes just before a cut, stop it,
# verify what survived, and prove now and then that the oracle can fail.
#
# Environment: IC_CRASH_SEED reproduces the random choices of a run (the
# cut instants, the order of the legs), not the workload's own randomness.
# IC_CRASH_MODE=writeback runs a test in writeback mode (the *_wb.sh
# wrappers): a short max_dirty_age and a low dirty_high, so that dirty
# blocks, their writeback and the watermark all happen during the workload;
# after a cut the target alone is verified (the origin may lack dirty
# blocks), then flushed, then verified again against the origin.
# shellcheck shell=bash disable=SC2034

CR_IO=''			# the crash_io binary
CR_PID=''			# the running crash_io workload
CR_OPTS=()			# optional table arguments of the target
CR_PERSIST=0			# the target has persistent metadata (23+ status fields)
CR_MODE=${IC_CRASH_MODE:-writethrough}	# cache mode of the target
CR_WB_OPTS=(mode writeback max_dirty_age 200 dirty_high 20)
CR_WB_BASE=0			# written_back of the target after its last flush
CR_WB_LOADED=0			# blocks the reloads found dirty and wrote back
CR_WB_RELOADS=0			# reloads that found dirty blocks
CR_WB_RUN=0			# blocks written back while workloads ran (sampled)

cr_init() { # cr_init: find or build crash_io, seed $RANDOM
	local c
	for c in "$IC_DIR/crash_io" "$IC_SRC/build/selftests/dm-infercache/crash_io"; do
		if [[ -x $c && ! $IC_DIR/crash_io.c -nt $c && ! $IC_DIR/stamp.h -nt $c ]]; then CR_IO=$c; break; fi
	done
	if [[ -z $CR_IO ]]; then
		command -v gcc >/dev/null || ic_skip "crash_io not built (make -C selftests/dm-infercache) and no gcc"
		CR_IO=$IC_TMP/crash_io
		gcc -O2 -Wall -pthread -o "$CR_IO" "$IC_DIR/crash_io.c" || ic_fail "cannot build crash_io"
	fi
	exec {CR_NAPFD}<> <(:)		# a pipe nobody writes: cr_nap's clock
	CR_SEED=${IC_CRASH_SEED:-$(( $(date +%s%N) % 32768 ))}
	RANDOM=$CR_SEED
	ic_log "cut points from IC_CRASH_SEED=$CR_SEED"
}

# cr_nap SECONDS: sleep without a process (under TCG every fork counts)
cr_nap() { read -r -t "$1" -u "$CR_NAPFD" _ || :; }

# cr_dm ACTION...: dm table swaps by ioctl in one process (see crash_io dm)
cr_dm() { "$CR_IO" dm "$@" || ic_fail "crash_io dm $* failed"; }

# cr_dms ARGS...: dmsetup, failing the test on an error. No timeout(1)
# around it: under TCG every process start counts, and a dmsetup stuck in
# the kernel would not die of it anyway (the runner's timeout and the
# hung-task check of the exit trap catch that).
cr_dms() {
	dmsetup "$@" || ic_fail "dmsetup $* failed"
}

# cr_detect NAME: after the first creation of target NAME, decide whether
# the module persists its metadata (status has loaded/dropped/commits) and
# choose the table options: a short commit interval, to commit often.
cr_detect() {
	local -a w
	read -r -a w <<<"$(dmsetup status "$1" 2>/dev/null)"
	if ((${#w[@]} >= 23)); then
		CR_PERSIST=1
		CR_OPTS=(commit_interval 100)
		ic_log "persistent metadata (${#w[@]} status fields): commit_interval 100"
	else
		CR_PERSIST=0
		CR_OPTS=()
		ic_log "no persistent metadata yet (${#w[@]} status fields): every reload starts cold"
	fi
	if [[ $CR_MODE == writeback ]]; then
		((${#w[@]} >= 30)) || ic_fail "writeback mode, but the status has ${#w[@]} fields, no dirty/written_back (\$24..)"
		CR_OPTS+=("${CR_WB_OPTS[@]}")
		ic_log "writeback mode: ${CR_WB_OPTS[*]}"
	elif [[ $CR_MODE != writethrough ]]; then
		ic_fail "IC_CRASH_MODE=$CR_MODE: writethrough or writeback"
	fi
}

# cr_create NAME CACHE ORIGIN: the target over the whole of ORIGIN with
# CR_OPTS (the caller ic_tracks NAME)
declare -A CR_SIZE		# sectors of each origin, asked once
cr_create() {
	if [[ -z ${CR_SIZE[$3]:-} ]]; then
		CR_SIZE[$3]=$(blockdev --getsz "$3") || ic_fail "blockdev --getsz $3 failed"
	fi
	dmsetup create "$1" --table \
		"0 ${CR_SIZE[$3]} infercache $2 $3 ${#CR_OPTS[@]} ${CR_OPTS[*]}" ||
		ic_fail "dmsetup create $1 failed: $(ic_klog_since | grep -m1 infercache)"
}

CR_WARM=0			# reloads that found cached blocks
CR_NF=0				# status fields of the last reload

# cr_reload NAME CACHE ORIGIN ROUND: create the target again after a cut
# and log what it loaded; fails if a load after a cut reports a clean
# shutdown (its last commit was lost, so the superblock cannot say clean)
cr_reload() {
	local mark line
	local -a w
	ic_mark "reload after cut $4"
	mark=$IC_MARK
	cr_create "$1" "$2" "$3"
	CR_WB_BASE=0
	read -r -a w <<<"$(dmsetup status "$1" 2>/dev/null)"
	CR_NF=${#w[@]}
	if ((CR_NF < 23)); then
		ic_log "cut $4: reload: no loaded counter ($CR_NF status fields)"
		return 0
	fi
	line=$(dmesg)			# one process: the rest is bash
	line=${line##*"$mark"}
	[[ $line =~ (infercache: [^$'\n']*loaded [0-9]+ blocks[^$'\n']*) ]] &&
		line=${BASH_REMATCH[1]} || line=''
	ic_log "cut $4: reload: loaded ${w[20]}, dropped ${w[21]}${w[23]:+, dirty ${w[23]}}: ${line:-no load line in the kernel log}"
	((w[20] > 0)) && CR_WARM=$((CR_WARM + 1))
	[[ $line == *"(clean shutdown)"* ]] &&
		ic_fail "cut $4: the load after a power cut reports a clean shutdown"
	return 0
}

# cr_check_warm CUTS: with persistent metadata most reloads must be warm
cr_check_warm() {
	if ((CR_NF >= 23 && CR_WARM * 2 <= $1)); then
		ic_fail "persistent metadata, but only $CR_WARM of $1 reloads found cached blocks"
	fi
}

# cr_lap [NAME]: without NAME start timing a round, with it note the time
# since the last lap under NAME in CR_LAPS (logged per round)
cr_lap() {
	local now=${EPOCHREALTIME/./}
	if [[ -n ${1:-} ]]; then
		CR_LAPS+=" $1 $(((now - CR_LAST) / 1000)) ms,"
	else
		CR_LAPS=''
	fi
	CR_LAST=$now
}

# cr_rand_ms LO HI: set CR_MS to a random number of milliseconds in [LO, HI]
cr_rand_ms() { CR_MS=$(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1))); }
cr_sleep_ms() { local s; printf -v s '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); cr_nap "$s"; }

# cr_start DEV NBLOCKS STATE [ARGS...]: start the workload in the background
# (ARGS: more crash_io run options, e.g. the cut actions -C) and wait until
# it has written, flushed and warmed its blocks.
cr_start() {
	local dev=$1 n=$2 state=$3 i
	shift 3
	rm -f "$state" "$state.ready" "$state.frozen"
	"$CR_IO" run -d "$dev" -n "$n" -o "$state" -R "$state.ready" \
		-F "$state.frozen" -t 300 "$@" >"$state.log" 2>&1 &
	CR_PID=$!
	IC_PIDS+=("$CR_PID")
	for ((i = 0; i < 2400; i++)); do
		[[ -e $state.ready ]] && return 0
		cr_alive "$CR_PID" || break
		cr_nap 0.02
	done
	cr_show "$state.log"
	ic_fail "crash_io did not get ready"
}

# cr_freeze STATE: from now on no acknowledgement counts as durable; returns
# once crash_io has frozen its record and done its cut actions (-C of
# cr_start; a cut made by the caller must come after this).
cr_freeze() {
	local i
	kill -USR1 "$CR_PID" || ic_fail "crash_io is gone before the cut"
	for ((i = 0; i < 1000; i++)); do
		[[ -e $1.frozen ]] && return 0
		cr_nap 0.01
	done
	ic_fail "crash_io did not freeze"
}

# cr_stop STATE: stop the workload, which saves STATE; fail on a bad read
# or an I/O error before the freeze, or if it hangs (I/O stuck in a target).
cr_stop() {
	local i rc
	kill -TERM "$CR_PID" 2>/dev/null
	for ((i = 0; i < 3000; i++)); do
		cr_alive "$CR_PID" || break
		cr_nap 0.02
	done
	if cr_alive "$CR_PID"; then
		cr_hang_report "$1"
		ic_fail "crash_io does not stop: I/O hangs after the cut"
	fi
	wait "$CR_PID"
	rc=$?
	cr_forget "$CR_PID"
	cr_show "$1.log"
	((rc == 0)) || ic_fail "crash_io run: status $rc (bad read or I/O error before the cut)"
	[[ -s $1 ]] || ic_fail "crash_io saved no state"
}

# cr_alive PID: the process runs (a zombie does not: kill -0 would say it
# does, and bash may not have reaped it yet)
cr_alive() {
	local -a f
	read -r -a f 2>/dev/null <"/proc/$1/stat" || return 1
	[[ ${f[2]} != Z ]]
}

# cr_hang_report STATE: what the stuck workload and the devices are doing
cr_hang_report() {
	local t
	ic_log "crash_io ($CR_PID) output so far:"
	cr_show "$1.log"
	for t in /proc/"$CR_PID"/task/*; do
		ic_log "thread ${t##*/}: $(awk '{ print "state " $3 }' "$t/stat" 2>/dev/null), wchan $(cat "$t/wchan" 2>/dev/null)"
		sed 's/^/#     /' "$t/stack" 2>/dev/null
	done
	dmsetup info -c 2>&1 | sed 's/^/#   /'
	dmsetup status 2>&1 | sed 's/^/#   /'
	echo w >/proc/sysrq-trigger 2>/dev/null
	dmesg | tail -n 40 | sed 's/^/#   klog: /'
}

cr_forget() { # cr_forget PID: a reaped job, no longer for ic__cleanup to kill
	local p keep=()
	for p in "${IC_PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	IC_PIDS=("${keep[@]}")
}

cr_show() { # cr_show FILE: log FILE's lines, indented
	local l
	while IFS= read -r l; do echo "#   $l"; done <"$1"
}

# cr_verify STATE DEV ORIGIN: run the oracle; sets CR_VLINE to its summary;
# status of crash_io verify
cr_verify() {
	local rc l
	"$CR_IO" verify "$@" >"$IC_TMP/verify.log" 2>&1
	rc=$?
	cr_show "$IC_TMP/verify.log"
	CR_VLINE=''
	while IFS= read -r l; do
		[[ $l == *"crash_io: verify "* ]] && CR_VLINE=$l
	done <"$IC_TMP/verify.log"
	return $rc
}

# cr_check NAME STATE DEV ORIGIN WHAT: the oracle after a reload. In
# writethrough mode one verify, DEV against ORIGIN. In writeback mode the
# origin legitimately lacks the dirty blocks, so first DEV alone (nothing
# lost, corrupt or changed), then a flush (the target must come out of it
# with no dirty block), then DEV against ORIGIN: the origin alone holds
# what the target shows. The target's written_back after the flush counts
# the dirty blocks the reload found (CR_WB_LOADED, CR_WB_RELOADS).
cr_check() {
	local -a w
	if [[ $CR_MODE == writeback ]]; then
		cr_verify "$2" "$3" ||
			ic_fail "$5: lost, corrupt or changed blocks through the target before the flush"
		cr_dms message "$1" 0 flush
		read -r -a w <<<"$(dmsetup status "$1" 2>/dev/null)"
		((${#w[@]} >= 30)) || ic_fail "$5: no writeback status after the flush: ${w[*]}"
		((w[23] == 0)) || ic_fail "$5: $((w[23])) dirty blocks after the flush returned"
		ic_log "$5: flushed: the reload had written back ${w[25]} blocks"
		CR_WB_LOADED=$((CR_WB_LOADED + w[25]))
		((w[25] > 0)) && CR_WB_RELOADS=$((CR_WB_RELOADS + 1))
		CR_WB_BASE=${w[25]}
	fi
	cr_verify "$2" "$3" "$4" || ic_fail "$5: lost, stale or corrupt blocks after the reload"
}

# cr_wb_note: in writeback mode, after a snapshot of the target (ic_snap)
# taken after a workload: add what it wrote back since the last flush to
# CR_WB_RUN and set CR_WB_NOTE to a few words for the log
cr_wb_note() {
	CR_WB_NOTE=''
	[[ $CR_MODE == writeback ]] || return 0
	local n=$((${IC_ST[written_back]:-0} - CR_WB_BASE))
	CR_WB_RUN=$((CR_WB_RUN + n))
	CR_WB_NOTE=", dirty ${IC_ST[dirty]}, written back $n since the last flush, writeback_ios ${IC_ST[writeback_ios]}, backoffs ${IC_ST[backoffs]}"
}

# cr_wb_done CUTS: in writeback mode, the workloads made dirty blocks and
# wrote them back, and the cuts left dirty blocks that the reloads found
cr_wb_done() {
	[[ $CR_MODE == writeback ]] || return 0
	ic_log "writeback: $CR_WB_RUN blocks written back during the sampled workloads;" \
		"$CR_WB_RELOADS of $1 reloads found dirty blocks, $CR_WB_LOADED in all"
	((CR_WB_RUN > 0)) || ic_fail "writeback mode, but no block was written back while the workloads ran"
	((CR_WB_RELOADS > 0)) || ic_fail "writeback mode, but no cut ever left a dirty block for the reload"
}

cr_count() { # cr_count WORD: set CR_N to the count after WORD in CR_VLINE
	CR_N=-1
	[[ $CR_VLINE =~ \ $1\ ([0-9]+) ]] && CR_N=${BASH_REMATCH[1]}
}

# cr_oracle_lost STATE DEV ORIGIN: prove that verify fails on lost writes:
# a copy of STATE claims a newer durable version of 3 blocks than they hold.
cr_oracle_lost() {
	local st=$IC_TMP/state.inflated
	awk 'NR > 1 && $1 >= 10 && $1 < 13 { $2 = $4 + 1 } { print }' "$1" >"$st"
	ic_log "oracle check: 3 blocks claimed durable at a version never written"
	if cr_verify "$st" "$2" "$3"; then
		ic_fail "crash_io verify passed a state with an inflated durable version"
	fi
	cr_count lost
	((CR_N == 3)) || ic_fail "oracle check: expected lost 3: $CR_VLINE"
}

# cr_oracle_stale STATE DEV ORIGIN: prove that verify sees a cache that
# disagrees with its origin: write newer versions of many blocks straight
# to ORIGIN behind the target's back; the cached ones must read as stale.
# Breaks the coherence of the target over ORIGIN: remove it afterwards.
cr_oracle_stale() {
	local st=$IC_TMP/state.poked n
	cp "$1" "$st"
	# shellcheck disable=SC2046
	"$CR_IO" poke "$st" "$3" $(seq 0 7 "$(($(sed -n '1s/.* blocks //p' "$1") - 1))") ||
		ic_fail "crash_io poke failed"
	ic_log "oracle check: every 7th block rewritten on the origin behind the target"
	if cr_verify "$st" "$2" "$3"; then
		ic_fail "crash_io verify saw no stale block after writes behind the target (nothing cached?)"
	fi
	cr_count stale
	n=$CR_N
	((n > 0)) || ic_fail "oracle check: expected stale blocks: $CR_VLINE"
	cr_count lost
	((CR_N == 0)) || ic_fail "oracle check: only stale blocks expected: $CR_VLINE"
	cr_count corrupt
	((CR_N == 0)) || ic_fail "oracle check: only stale blocks expected: $CR_VLINE"
	ic_log "oracle check: $n cached blocks seen stale, as they must"
}
