#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of test_reboot_warm.sh.
#   guest_warm.sh warm N    boot 1: blank the cache, create the target, read
#                           a hot set of N random 4 KiB blocks twice, remove
#                           the target (clean shutdown); result: cached=...
#                           The host wrote the origin with fio's pattern
#                           $(ic_pattern 9) in 4 KiB blocks (faster than TCG).
#   guest_warm.sh check N C boot 2: re-create the same table; it must load
#                           >= 99% of the C cached blocks and the first pass
#                           over the hot set must hit >= 99% of C;
#                           results: loaded, dropped, hits, reads
# The hot set is fio's random map with a fixed seed: the same N distinct
# blocks in every pass and boot. Every read is checked against the pattern.
# shellcheck disable=SC2119 # ic_init and rg_create take no script arguments
. "$(dirname "$0")/guest-lib.sh"
ic_init
ic_require fio dd
rg_disks

phase=${1:?phase} N=${2:?N}
SZ=$(blockdev --getsz "$O")
pat() { echo "--verify=pattern --verify_pattern=$(ic_pattern 9) --verify_fatal=1"; }
# shellcheck disable=SC2046 # option strings are split on purpose
hot() { # hot NAME: one verified pass over the hot set
	ic_fio "$1" "${IC_FIO_IO[@]}" --name=hot --filename="$D" --rw=randread --bs=4k \
		--size=$((SZ / 2048))M --io_size=$((N * 4))k --randseed=4242 $(pat) ||
		ic_fail "hot-set pass $1 failed"
}

case $phase in
warm)
	rg_zero_sb
	rg_create
	rg_klog_load
	ic_expect "loaded at format" "$(rg_words 21)" -eq 0
	hot warm1
	hot warm2
	ic_wait "$RG_NAME" cached -ge "$N" 10 || true
	ic_show "$RG_NAME"
	cached=${IC_ST[cached]}
	ic_expect "cached after two passes (100 x)" $((cached * 100)) -ge $((N * 95))
	rg_result cached "$cached"
	ic_remove "$RG_NAME" || ic_fail "dmsetup remove failed"
	ic_log "warm: $cached blocks cached, target removed"
	;;
check)
	c0=${3:?cached}
	ic_mark "re-create"
	rg_create
	rg_klog_load
	read -r loaded dropped < <(rg_words 21 22)
	rg_result loaded "$loaded"
	rg_result dropped "$dropped"
	ic_log "re-created: loaded $loaded, dropped $dropped ($c0 were cached)"
	ic_klog_since | grep -q -E 'infercache: .*clean shutdown' ||
		ic_log "no 'clean shutdown' in the load message"
	ic_klog_since | grep -q -E 'infercache: .*unclean shutdown' &&
		ic_fail "the load message says 'unclean shutdown' after a clean remove"
	dmsetup message "$RG_NAME" 0 clear_stats || ic_fail "clear_stats failed"
	hot first
	read -r reads hits < <(rg_words 6 7)
	rg_result reads "$reads"
	rg_result hits "$hits"
	ic_show "$RG_NAME"
	ic_log "first pass after the reboot: $hits hits of $reads reads, $c0 were cached"
	ic_expect "reads" "$reads" -eq "$N"
	ic_expect "loaded (100 x)" $((loaded * 100)) -ge $((c0 * 99))
	ic_expect "dropped" "$dropped" -eq 0
	ic_expect "hits (100 x)" $((hits * 100)) -ge $((c0 * 99))
	ic_remove "$RG_NAME" || ic_fail "dmsetup remove failed"
	;;
*) ic_fail "unknown phase $phase" ;;
esac
exit 0
