# SPDX-License-Identifier: GPL-2.0
# Host side of the reboot tests (sourced by selftests/reboot/test_*.sh).
#
# A test runs ON THE HOST and boots the guest several times with
# tools/vm/vm-run, with the same --nvme/--virtio disk files each time: a
# reboot (or, with --expect-panic, a crash and a reboot). Each boot runs a
# guest-side script (guest_*.sh here; never below /tmp, which is an empty
# tmpfs in the guest) that hands values back in $IC_OUT/result (KEY=VALUE
# lines; rb_result reads them).
#
#   rb_init                      fresh work dir build/reboot/<test>/
#   rb_disk nvme|virtio NAME SIZE   a new sparse disk file, used by every boot
#   rb_boot [--expect-panic] [--] CMD...   one boot; status of vm-run
#   rb_result KEY [BOOT]         a value the guest handed back
#
# Output: "# " diagnostics; the guest's output and vm-run's messages are
# shown as they come. Exit status 0 pass, 1 fail, 4 skip (selftests/reboot/
# run.sh turns that into KTAP). Environment: RB_FULL=1 (or IC_FULL=1) long
# counts, RB_BOOT_TIMEOUT (seconds per boot, default 300: a hung guest
# fails the test instead of hanging it), RB_MEM (guest MB, default 1024:
# init_on_free zeroes it all at every boot), RB_SEED (random seed),
# RB_KO (the module the guest loads, default the repository's
# dm-infercache.ko; not below /tmp, which the guest does not see).
# shellcheck shell=bash disable=SC2034

RB_SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ic_prog=$(basename "$0")
# shellcheck source=tools/vm/lib.sh
. "$RB_SELF/../../tools/vm/lib.sh"

RB_FULL=${RB_FULL:-${IC_FULL:-0}}
RB_BOOT_TIMEOUT=${RB_BOOT_TIMEOUT:-300}
RB_MEM=${RB_MEM:-1024}
RB_KO=$(readlink -f "${RB_KO:-$IC_REPO/dm-infercache.ko}")
RB_TEST=$(basename "$0" .sh)
RB_WORK=$IC_BUILD/reboot/$RB_TEST
RB_VMRUN=$IC_REPO/tools/vm/vm-run
RB_SEED=${RB_SEED:-$(( $(date +%s) % 100000 ))}
RB_DISKS=()		# vm-run disk options
RB_BOOTS=0		# boots so far
RB_OUT=''		# out dir of the last boot
RB_TIMES=()		# "N:seconds:status" per boot

rb_log() { echo "# $*"; }
rb_fail() { echo "# FAIL: $*"; exit 1; }
rb_skip() { echo "# SKIP: $*"; exit 4; }
rb_full() { if [[ "$RB_FULL" == 1 ]]; then echo "$2"; else echo "$1"; fi; }

rb__exit() {
	local rc=$? t
	trap - EXIT
	for t in "${RB_TIMES[@]}"; do
		IFS=: read -r n s st <<<"$t"
		rb_log "boot $n: ${s}s, status $st"
	done
	case $rc in
	0) rb_log "PASS: $RB_TEST ($RB_BOOTS boots, ${SECONDS}s, seed $RB_SEED, logs build/reboot/$RB_TEST)" ;;
	4) rb_log "SKIP: $RB_TEST (${SECONDS}s)" ;;
	*) rb_log "FAIL: $RB_TEST (status $rc, $RB_BOOTS boots, ${SECONDS}s, seed $RB_SEED, logs build/reboot/$RB_TEST)"; rc=1 ;;
	esac
	exit "$rc"
}

rb_init() {
	trap rb__exit EXIT
	trap 'rb_log "interrupted"; exit 130' INT
	trap 'rb_log "terminated (runner timeout?)"; exit 124' TERM
	[[ -f "$RB_KO" ]] || rb_fail "module not built: $RB_KO (run make)"
	case $RB_KO in /tmp/*|/run/*|/var/tmp/*) rb_fail "RB_KO=$RB_KO: the guest has its own /tmp, /run, /var/tmp" ;; esac
	[[ -x "$RB_VMRUN" ]] || rb_fail "no $RB_VMRUN"
	rm -rf -- "$RB_WORK"
	mkdir -p "$RB_WORK"
	RANDOM=$RB_SEED
	rb_log "$RB_TEST: RB_FULL=$RB_FULL seed $RB_SEED, module $RB_KO, work dir ${RB_WORK#"$IC_REPO"/}"
}

rb_disk() { # rb_disk nvme|virtio NAME SIZE: new sparse file, kept for all boots
	local f=$RB_WORK/$2.img
	rm -f -- "$f"
	truncate -s "$3" "$f" || rb_fail "cannot create $f"
	RB_DISKS+=("--$1" "$f")
}

# rb_boot [--expect-panic] [--] CMD...: boot once with the test's disks and
# run CMD in the guest (RB_BOOT=<n> in its environment). The results go to
# $RB_WORK/boot<n> (RB_OUT). Status: vm-run's (0: the command succeeded,
# or, with --expect-panic, the guest crashed through sysrq as expected).
rb_boot() {
	local vmargs=() st=0 t0
	while [[ $# -gt 0 ]]; do
		case $1 in
		--expect-panic) vmargs+=("$1"); shift ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	RB_BOOTS=$((RB_BOOTS + 1))
	RB_OUT=$RB_WORK/boot$RB_BOOTS
	rb_log "---- boot $RB_BOOTS: $*"
	t0=$SECONDS
	"$RB_VMRUN" "${RB_DISKS[@]}" "${vmargs[@]}" --out "$RB_OUT" --timeout "$RB_BOOT_TIMEOUT" --mem "$RB_MEM" \
		-- env RB_BOOT="$RB_BOOTS" IC_KO="$RB_KO" "$@" </dev/null 2>&1 || st=$?
	RB_TIMES+=("$RB_BOOTS:$((SECONDS - t0)):$st")
	return "$st"
}

rb_result() { # rb_result KEY [BOOT]: a KEY=VALUE the guest wrote (last boot's)
	local f=${2:+$RB_WORK/boot$2}
	f=${f:-$RB_OUT}/result
	[[ -f $f ]] || { echo "# rb_result: no $f" >&2; return 1; }
	awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { if (v == "") exit 1; print v }' "$f"
}
