#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for the dm-infercache selftests (sourced by test_*.sh).
#
# A test calls ic_init first. From then on every device made through these
# helpers (dm devices, null_blk devices) and every background job started
# with ic_bg is removed by an EXIT trap, also when the test fails or is
# killed by the runner's timeout; the trap also fails the test when the
# kernel log since the test started has warnings, BUGs, oopses, hung tasks,
# lockdep reports or slab corruption. Diagnostics are "# " lines; exit
# status 0 pass, 1 fail, 4 skip.
#
# Environment: IC_SRC (repository), IC_KO (module path), IC_FULL=1 (long
# counts), IC_OUT (writable results directory), IC_WAIT_SECS (bound of the
# counter polls, default 5).
# shellcheck shell=bash disable=SC2034

IC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
IC_SRC=${IC_SRC:-$(cd "$IC_DIR/../.." && pwd -P)}
IC_KO=${IC_KO:-$IC_SRC/dm-infercache.ko}
IC_FULL=${IC_FULL:-0}
IC_WAIT_SECS=${IC_WAIT_SECS:-5}
IC_MODNAME=dm_infercache
IC_TEST=$(basename "$0" .sh)
IC_ID=ic$$			# prefix of every device name this test makes
export DM_DISABLE_UDEV=1

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

IC_DMS=()			# dm devices made, in creation order
IC_NULLBS=()			# null_blk configfs names made
IC_PIDS=()			# background jobs
IC_TMP=''
IC_MARK=''			# last /dev/kmsg marker written
IC_MARK0=''			# marker written by ic_init

# Kernel log lines that fail a test (extended regex).
IC_BAD_KLOG='WARNING:|BUG:|kernel BUG|Oops|general protection|INFO: task .* blocked|hung_task|circular locking|recursive locking|inconsistent lock state|list_add corruption|list_del corruption|BUG [^ ]+ \((Not tainted|Tainted)|(Redzone|Poison|Object padding|Padding) overwritten|Freepointer corrupt|Object already free|Slab cache still has objects|Objects remaining|Call Trace:|Kernel panic|stalls? on CPU'

ic_log() { echo "# $*"; }
ic_fail() { echo "# FAIL: $*"; exit "$KSFT_FAIL"; }
ic_skip() { echo "# SKIP: $*"; exit "$KSFT_SKIP"; }

# ic_full SMALL FULL: echo the count for the current tier.
ic_full() { if [[ "$IC_FULL" == 1 ]]; then echo "$2"; else echo "$1"; fi; }

ic_require() { # ic_require CMD...: skip unless every command exists
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || ic_skip "$c not installed"
	done
}

# ic_mark [TEXT]: write a marker line to the kernel log; ic_klog_since
# prints what came after the newest one.
ic_mark() {
	IC_MARK="ic-selftest: $IC_TEST pid $$ mark $RANDOM$RANDOM ${1:-}"
	echo "$IC_MARK" >/dev/kmsg
}
ic_klog_since() { # ic_klog_since [MARK]
	local m=${1:-$IC_MARK}
	dmesg | awk -v m="$m" 'seen { print } index($0, m) { seen = 1 }'
}

ic_load_module() {
	[[ -d /sys/module/$IC_MODNAME ]] && return 0
	[[ -f "$IC_KO" ]] || ic_fail "module not built: $IC_KO (run make)"
	modprobe dm-mod 2>/dev/null
	modprobe libcrc32c 2>/dev/null
	insmod "$IC_KO" || ic_fail "insmod $IC_KO failed"
}

# ic_init [noload]: root check, marker, trap, temp dir, module.
ic_init() {
	[[ $(id -u) -eq 0 ]] || ic_skip "must run as root"
	ic_require dmsetup blockdev dmesg awk
	[[ -w /dev/kmsg ]] || ic_skip "/dev/kmsg not writable"
	IC_TMP=$(mktemp -d /tmp/"$IC_TEST".XXXXXX) || ic_fail "mktemp failed"
	trap ic__exit EXIT
	trap 'ic_log "interrupted"; exit 130' INT
	trap 'ic_log "terminated (runner timeout?)"; exit 124' TERM
	ic_mark "start"
	IC_MARK0=$IC_MARK
	ic_log "$IC_TEST: IC_FULL=$IC_FULL module=$IC_KO"
	[[ "${1:-}" == noload ]] || ic_load_module
}

ic__cleanup() { # remove what the test made; status 1 if something stayed
	local rc=0 i d p
	for p in "${IC_PIDS[@]}"; do
		pkill -P "$p" 2>/dev/null	# e.g. the fio of a background function
		kill "$p" 2>/dev/null
	done
	for p in "${IC_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	for ((i = ${#IC_DMS[@]} - 1; i >= 0; i--)); do
		d=${IC_DMS[$i]}
		dmsetup info "$d" >/dev/null 2>&1 || continue
		dmsetup resume "$d" >/dev/null 2>&1
		if ! dmsetup remove --retry "$d" >/dev/null 2>&1; then
			ic_log "cleanup: dm device $d is busy; forcing"
			dmsetup remove --force "$d" >/dev/null 2>&1
			dmsetup info "$d" >/dev/null 2>&1 && rc=1
		fi
	done
	for d in "${IC_NULLBS[@]}"; do
		p=/sys/kernel/config/nullb/$d
		[[ -d $p ]] || continue
		echo 0 >"$p/power" 2>/dev/null
		rmdir "$p" 2>/dev/null || { ic_log "cleanup: cannot remove null_blk $d"; rc=1; }
	done
	[[ -n "$IC_TMP" ]] && rm -rf -- "$IC_TMP"
	return $rc
}

ic__exit() {
	local rc=$? bad
	trap - EXIT INT TERM
	set +e
	ic__cleanup || { ic_log "FAIL: cleanup left devices behind"; [[ $rc == 0 || $rc == 4 ]] && rc=1; }
	bad=$(ic_klog_since "$IC_MARK0" | grep -E -- "$IC_BAD_KLOG")
	if [[ -n "$bad" ]]; then
		ic_log "FAIL: kernel log has problems since the test started:"
		printf '%s\n' "$bad" | head -n 40 | sed 's/^/#   /'
		ic_klog_since "$IC_MARK0" | tail -n 60 | sed 's/^/#   klog: /'
		rc=1
	fi
	case $rc in
	0) ic_log "PASS: $IC_TEST (${SECONDS}s)" ;;
	4) ic_log "SKIP: $IC_TEST (${SECONDS}s)" ;;
	*) ic_log "FAIL: $IC_TEST (status $rc, ${SECONDS}s)"; rc=1 ;;
	esac
	exit "$rc"
}

ic_bg() { # ic_bg CMD...: run in the background, killed at exit; sets IC_BGPID
	"$@" &
	IC_BGPID=$!
	IC_PIDS+=("$IC_BGPID")
}

# ---------------------------------------------------------------- devices

# ic_nullb NAME ATTR=VALUE...: configfs null_blk disk /dev/NAME (size is in
# MB). Not to be called in $(...): the device must be recorded for cleanup.
ic_nullb() {
	local name=$1 d kv i
	shift
	modprobe configfs 2>/dev/null
	if ! mountpoint -q /sys/kernel/config; then
		mount -t configfs configfs /sys/kernel/config || ic_fail "cannot mount configfs"
	fi
	if [[ ! -d /sys/kernel/config/nullb ]]; then
		modprobe null_blk nr_devices=0 || ic_skip "null_blk not available"
	fi
	d=/sys/kernel/config/nullb/$name
	mkdir "$d" || ic_fail "mkdir $d failed"
	IC_NULLBS+=("$name")
	for kv in "$@"; do
		echo "${kv#*=}" >"$d/${kv%%=*}" || ic_fail "null_blk $name: cannot set $kv"
	done
	echo 1 >"$d/power" || ic_fail "null_blk $name: power on failed"
	for ((i = 0; i < 50; i++)); do
		[[ -b /dev/$name ]] && return 0
		sleep 0.1
	done
	ic_fail "/dev/$name did not appear"
}

ic_nullb_power() { # ic_nullb_power NAME 0|1: power a null_blk off or on
	local i
	echo "$2" >"/sys/kernel/config/nullb/$1/power" || ic_fail "null_blk $1: power $2 failed"
	for ((i = 0; i < 50; i++)); do
		if [[ $2 == 1 ]]; then [[ -b /dev/$1 ]] && return 0
		else [[ -b /dev/$1 ]] || return 0; fi
		sleep 0.1
	done
	ic_fail "null_blk $1: /dev/$1 did not follow power $2"
}

# ic_origin NAME SIZE_MB [COMPLETION_NS [BLOCKSIZE [ATTR=VALUE...]]]: a slow
# origin: memory backed, discard, every I/O completes after a timer.
ic_origin() {
	local name=$1 mb=$2 ns=${3:-50000} bs=${4:-512}
	shift $(($# < 4 ? $# : 4))
	ic_nullb "$name" size="$mb" blocksize="$bs" memory_backed=1 discard=1 \
		irqmode=2 completion_nsec="$ns" hw_queue_depth=64 "$@"
}

# ic_cache NAME SIZE_MB [BLOCKSIZE [ATTR=VALUE...]]: a fast memory-backed
# cache device (later ATTR=VALUE override the defaults).
ic_cache() {
	local name=$1 mb=$2 bs=${3:-512}
	shift $(($# < 3 ? $# : 3))
	ic_nullb "$name" size="$mb" blocksize="$bs" memory_backed=1 irqmode=0 \
		hw_queue_depth=64 "$@"
}

ic_nvme() { # ic_nvme: print the guest's first NVMe disk, status 1 if none
	local d
	for d in ${IC_NVME_DEVS:-}; do
		[[ -b $d ]] && { echo "$d"; return 0; }
	done
	modprobe nvme 2>/dev/null
	for d in /dev/nvme0n1 /dev/nvme1n1; do
		[[ -b $d ]] && { echo "$d"; return 0; }
	done
	return 1
}

ic_track() { IC_DMS+=("$@"); } # ic_track NAME...: remove these dm devices at exit

ic_linear() { # ic_linear NAME DEV SECTORS [OFFSET]: /dev/mapper/NAME
	ic_track "$1"
	dmsetup create "$1" --table "0 $3 linear $2 ${4:-0}" || ic_fail "dmsetup create $1 (linear) failed"
}

ic_majmin() { # ic_majmin DEV -> MAJ:MIN
	local n
	n=$(stat -L -c '%t %T' "$1") || return 1
	# shellcheck disable=SC2086
	set -- $n
	echo "$((16#$1)):$((16#$2))"
}

# ic_create NAME CACHE ORIGIN [OPT...]: table over the whole origin with
# the optional arguments OPT... (their count is added). Status of dmsetup.
ic_create() {
	local name=$1 cache=$2 origin=$3 sz
	shift 3
	sz=$(blockdev --getsz "$origin") || ic_fail "blockdev --getsz $origin failed"
	IC_DMS+=("$name")
	dmsetup create "$name" --table "0 $sz infercache $cache $origin $# $*"
}

ic_create_ok() { # like ic_create, but a failure fails the test
	ic_mark "create $1"
	ic_create "$@" || ic_fail "dmsetup create $1 failed: $(ic_klog_since | grep -m1 infercache)"
}

ic_remove() { # ic_remove NAME: dmsetup remove; status of dmsetup
	dmsetup remove "$1"
}

ic_exists() { dmsetup info "$1" >/dev/null 2>&1; }

ic_dev_of() { # ic_dev_of DEV -> kernel name (dm-3, nullb0, nvme0n1)
	local mm
	mm=$(ic_majmin "$1") || return 1
	basename "$(readlink -f "/sys/dev/block/$mm")"
}

# ic_stat DEV FIELD: one field of /sys/block/<dev>/stat; FIELD is
# rsect (sectors read), wsect (sectors written), rios, wios, dios
# (discards), fios (flushes).
ic_stat() {
	local i
	case $2 in
	rios) i=1 ;; rsect) i=3 ;; wios) i=5 ;; wsect) i=7 ;;
	dios) i=12 ;; fios) i=16 ;; *) echo "# ic_stat: bad field $2" >&2; return 1 ;;
	esac
	awk -v i=$i '{ print $i + 0 }' "/sys/block/$(ic_dev_of "$1")/stat"
}

# ------------------------------------------------------------------ status

# status fields in order; rejects (misses admission did not fill) and
# sequential (misses of sequential streams, not filled) were appended later,
# then the persistence fields ($21-$23 of the dmsetup status line) and
# the writeback ones ($24-$30); a module without them leaves them empty
IC_FIELDS='block_size cached total reads read_hits read_misses fills writes write_hits evictions discards bypasses fill_aborts cache_errors mode state rejects sequential'
IC_FIELDS+=' loaded dropped commits dirty wb_state written_back writeback_ios backoffs read_p99_us target_us'

declare -A IC_ST		# the last status snapshot, by field name

# ic_snap NAME: take a status snapshot into IC_ST (one dmsetup call; under
# TCG every command costs a fraction of a second). Status 1 if none.
ic_snap() {
	local -a w
	local f i=3
	IC_ST=()
	read -r -a w <<<"$(dmsetup status "$1" 2>/dev/null)"
	[[ "${w[2]:-}" == infercache ]] || return 1
	w[3]="${w[3]} ${w[4]%%/*}"
	w[4]=${w[4]#*/}
	read -r -a w <<<"${w[*]}"
	for f in $IC_FIELDS; do
		IC_ST[$f]=${w[$i]:-}
		i=$((i + 1))
	done
}

ic_field() { # ic_field NAME FIELD: echo one status field ("ERR" if none)
	if ic_snap "$1" && [[ -n "${IC_ST[$2]:-}" ]]; then
		echo "${IC_ST[$2]}"
	else
		echo ERR
		return 1
	fi
}

ic_show() { # ic_show NAME: take a snapshot and log it with field names
	local f line=''
	ic_snap "$1" || { ic_log "status $1: unavailable"; return 1; }
	for f in $IC_FIELDS; do
		[[ -n "${IC_ST[$f]}" ]] && line+=" $f=${IC_ST[$f]}"
	done
	ic_log "status $1:$line"
}

# ic_want FIELD OP VALUE...: check fields of the last snapshot, e.g.
# ic_want reads -eq 5 read_misses -eq 0 (fails the test, naming the field)
ic_want() {
	while [[ $# -ge 3 ]]; do
		test "${IC_ST[$1]:-ERR}" "$2" "$3" 2>/dev/null ||
			ic_fail "$1: got ${IC_ST[$1]:-nothing}, expected $2 $3"
		shift 3
	done
}

# ic_wait NAME FIELD OP VALUE [SECS]: poll until "FIELD OP VALUE" holds
# (OP: -eq -ge -le ...), at most SECS (IC_WAIT_SECS) seconds. Status 1 on
# timeout.
ic_wait() {
	local name=$1 field=$2 op=$3 want=$4 end=$((SECONDS + ${5:-$IC_WAIT_SECS}))
	while :; do
		ic_snap "$name" && test "${IC_ST[$field]}" "$op" "$want" 2>/dev/null && return 0
		((SECONDS < end)) || break
		sleep 0.1
	done
	ic_log "timeout after ${5:-$IC_WAIT_SECS}s: $field=${IC_ST[$field]:-?}, wanted $op $want"
	return 1
}

ic_expect() { # ic_expect WHAT GOT OP WANT: fail unless [ GOT OP WANT ]
	test "$2" "$3" "$4" 2>/dev/null || ic_fail "$1: got $2, expected $3 $4"
}

# ---------------------------------------------------------- bad table lines

# ic_bad_table NAME SECTORS REGEX TABLE-ARGS: "dmsetup create NAME" with
# the table "0 SECTORS infercache TABLE-ARGS" must be refused and leave no
# device (NAME is the caller's to ic_track). Status 1, logged, if not. The
# kernel message is checked later by ic_bad_tables_check, for every case in
# one read of the kernel log (each command costs a fraction of a second
# under TCG): the first "infercache: " line after the case must match the
# extended regex REGEX.
IC_BAD_CASES=()			# "REGEX<tab>TABLE-ARGS" of each case
IC_BAD_DONE=0			# cases ic_bad_tables_check has seen
IC_BAD_MISSES=0			# cases its last call found wrong
ic_bad_table() {
	local k=${#IC_BAD_CASES[@]}
	IC_BAD_CASES+=("$3"$'\t'"$4")
	echo "ic-selftest: $IC_TEST pid $$ case $k" >/dev/kmsg
	if dmsetup create "$1" --table "0 $2 infercache $4" >/dev/null 2>&1; then
		ic_log "accepted: '$4' (wanted: /$3/)"
		dmsetup remove "$1"
		return 1
	elif [[ -e /dev/mapper/$1 ]]; then
		ic_log "device left behind by '$4'"
		dmsetup remove "$1"
		return 1
	fi
	return 0
}

# ic_bad_tables_check: check the kernel message of each ic_bad_table case
# since the last call; IC_BAD_MISSES counts those that do not match (each
# logged). Status 1 if any.
ic_bad_tables_check() {
	local -A got
	local k msg want args n=$((${#IC_BAD_CASES[@]} - IC_BAD_DONE))
	while IFS=$'\t' read -r k msg; do
		got[$k]=$msg
	done < <(dmesg | awk -v p="ic-selftest: $IC_TEST pid $$ case " '
		(i = index($0, p)) { k = substr($0, i + length(p)) + 0; w = 1; next }
		w && (j = index($0, "infercache: ")) { print k "\t" substr($0, j); w = 0 }')
	IC_BAD_MISSES=0
	for ((k = IC_BAD_DONE; k < ${#IC_BAD_CASES[@]}; k++)); do
		want=${IC_BAD_CASES[$k]%%$'\t'*} args=${IC_BAD_CASES[$k]#*$'\t'}
		if ! [[ "${got[$k]:-}" =~ $want ]]; then
			ic_log "'$args': got '${got[$k]:-no message}', wanted /$want/"
			IC_BAD_MISSES=$((IC_BAD_MISSES + 1))
		fi
	done
	IC_BAD_DONE=${#IC_BAD_CASES[@]}
	ic_log "$n bad table lines tried"
	((IC_BAD_MISSES == 0))
}

# ---------------------------------------------------------------------- fio

# ic_fio LOG ARGS...: run fio; fail the test on a non-zero status or any
# verify error in its output (fio exits 0 on pattern verify errors unless
# verify_fatal is set, so both are checked).
ic_fio() {
	local log=$IC_TMP/$1.log rc
	shift
	fio --output="$log" --verify_state_save=0 "$@" >/dev/null 2>>"$log.err"
	rc=$?
	cat "$log.err" >>"$log" 2>/dev/null
	if ((rc != 0)) || grep -qiE 'verify failed|bad (magic|header|pattern)|got pattern|err= *[1-9]|error=' "$log"; then
		ic_log "fio $* -> status $rc"
		grep -iE 'verify|pattern|err|error' "$log" | head -n 20 | sed 's/^/#   /'
		return 1
	fi
	return 0
}

# ic_pattern GEN: an fio verify_pattern that names the write generation
# and the offset of each block, so a stale block (older generation) or a
# misplaced one fails. (fio 3.33 --verify_only with crc32c headers only
# checks self-consistency: it accepts a complete block of an older run.)
ic_pattern() { printf '0x1cca%04x%%o' "$1"; }

# Common fio options for direct I/O on a block device.
IC_FIO_IO=(--ioengine=libaio --direct=1 --iodepth=4 --group_reporting --randrepeat=1 --verify_state_save=0)

# Job strings for ic_fio (options separated by blanks; one fio run takes
# several, run one after another). fio seeds a job's random offsets from
# its position in the run, so a --verify_only job must sit at the same
# position as the job that wrote the data: fill the others with ic_pad.
#   ic_gen G DEV ARGS...: random writes of generation G with its pattern
#   ic_pad DEV: a 4 KiB read
ic_gen() {
	echo "--name=g$1 --stonewall --filename=$2 --rw=randwrite --randseed=$1 --verify=pattern" \
		"--verify_pattern=$(ic_pattern "$1") --verify_fatal=1 ${*:3}"
}
ic_pad() { echo "--name=pad --stonewall --filename=$1 --rw=read --bs=4k --size=4k"; }
