#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Warm across a reboot (issue 3 item 4): boot 1 creates the target on a
# file-backed NVMe cache and virtio origin, reads a hot set twice so it is
# cached, removes the target (clean shutdown) and powers off; boot 2, same
# disk files, re-creates the same table: it must load >= 99% of what was
# cached and the first pass over the hot set must hit >= 99% of it.
# See selftests/reboot/guest_warm.sh.
. "$(dirname "$0")/lib.sh"
set -uo pipefail
rb_init

N=$(rb_full 1000 8000)			# hot blocks
rb_disk nvme cache "$(rb_full 64M 512M)"	# 16x the hot set
rb_disk virtio origin "$(rb_full 16M 128M)"
# the origin's pattern, written here: under TCG it takes the guest 10+ s
pattern=$(. "$IC_REPO/selftests/dm-infercache/lib.sh" && ic_pattern 9)
fio --name=prep --filename="$RB_WORK/origin.img" --rw=write --bs=4k --ioengine=psync \
	--verify=pattern --verify_pattern="$pattern" --do_verify=0 --output="$RB_WORK/prep.log" >/dev/null ||
	rb_fail "writing the origin's pattern failed"

rb_boot -- bash "$RB_SELF/guest_warm.sh" warm "$N" || rb_fail "boot 1 (warm) failed"
cached=$(rb_result cached) || rb_fail "boot 1 did not report the cached count"
rb_log "boot 1: $cached of $N hot blocks cached"

rb_boot -- bash "$RB_SELF/guest_warm.sh" check "$N" "$cached" || rb_fail "boot 2 (check) failed"
rb_log "boot 2: loaded $(rb_result loaded), first pass $(rb_result hits) hits of $(rb_result reads) reads ($cached were cached)"
exit 0
