#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Create and remove: the device has the origin's size, claims both legs
# (holders), reports a sane status, and "dmsetup remove" is refused while
# the device is open and works once it is closed, releasing both legs.
. "$(dirname "$0")/lib.sh"
ic_init

ic_origin "${IC_ID}o" 64
ic_cache "${IC_ID}c" 16
O=/dev/${IC_ID}o C=/dev/${IC_ID}c D=/dev/mapper/$IC_ID

ic_create_ok "$IC_ID" "$C" "$O"
[[ -b $D ]] || ic_fail "$D does not exist"
ic_expect "device size (sectors)" "$(blockdev --getsz "$D")" -eq "$(blockdev --getsz "$O")"
dm=$(ic_dev_of "$D")
for leg in "$C" "$O"; do
	[[ -e /sys/block/$(ic_dev_of "$leg")/holders/$dm ]] || ic_fail "$leg is not held by $dm"
done

ic_show "$IC_ID"
read -r -a w <<<"$(dmsetup status "$IC_ID")"
ic_expect "number of status words" "${#w[@]}" -ge 18	# fields are appended over time
ic_want block_size -eq 4096 cached -eq 0 total -ge 16 total -le 4096
for f in reads read_hits read_misses fills writes write_hits evictions discards bypasses fill_aborts cache_errors \
	$( ((${#w[@]} > 18)) && echo rejects sequential); do
	ic_want "$f" -eq 0
done
[[ ${IC_ST[mode]} == writethrough ]] || ic_fail "mode is ${IC_ST[mode]}"
[[ ${IC_ST[state]} == ok ]] || ic_fail "state is ${IC_ST[state]}"

# held open by this shell: remove must be refused
exec 3<"$D"
ic_remove "$IC_ID" 2>/dev/null && ic_fail "dmsetup remove succeeded while the device is open"
ic_exists "$IC_ID" || ic_fail "device vanished while open"
exec 3<&-
# held open by a sleeping process (fd 3: a background job's stdin is /dev/null)
ic_bg sleep 60 3<"$D"
sleep 0.2
ic_remove "$IC_ID" 2>/dev/null && ic_fail "dmsetup remove succeeded while another process holds it open"
kill "$IC_BGPID"; wait "$IC_BGPID" 2>/dev/null

ic_remove "$IC_ID" || ic_fail "dmsetup remove failed once the device was closed"
ic_exists "$IC_ID" && ic_fail "device still exists after remove"
[[ -e $D ]] && ic_fail "$D still exists after remove"
for leg in "$C" "$O"; do
	[[ -z $(ls "/sys/block/$(ic_dev_of "$leg")/holders") ]] || ic_fail "$leg still held after remove"
done
# both legs are free again: a second create works
ic_create_ok "$IC_ID" "$C" "$O"
ic_remove "$IC_ID" || ic_fail "second remove failed"
exit 0
