#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Module load and unload: insmod registers the "infercache" target, rmmod
# is refused while a table uses it and works once the table is gone; a few
# load/unload rounds leave no slab leaks or warnings in the kernel log.
. "$(dirname "$0")/lib.sh"
ic_init noload

listed() { dmsetup targets | awk '$1 == "infercache" { f = 1 } END { exit !f }'; }
loaded() { [[ -d /sys/module/$IC_MODNAME ]]; }

[[ -f "$IC_KO" ]] || ic_fail "module not built: $IC_KO"
modprobe dm-mod 2>/dev/null
modprobe libcrc32c 2>/dev/null	# insmod does not load what the module needs
if loaded; then
	rmmod "$IC_MODNAME" || ic_fail "rmmod refused with no table (leftover devices? $(dmsetup ls))"
fi
loaded && ic_fail "module still loaded after rmmod"
listed && ic_fail "dmsetup targets lists infercache with the module unloaded"

rounds=$(ic_full 3 20)
for ((i = 1; i <= rounds; i++)); do
	insmod "$IC_KO" || ic_fail "insmod failed (round $i)"
	listed || ic_fail "dmsetup targets does not list infercache after insmod"
	rmmod "$IC_MODNAME" || ic_fail "rmmod failed (round $i)"
	listed && ic_fail "infercache still listed after rmmod"
done
ic_log "$rounds load/unload rounds"

insmod "$IC_KO" || ic_fail "insmod failed"
ic_log "target: $(dmsetup targets | grep '^infercache')"
insmod "$IC_KO" 2>/dev/null && ic_fail "a second insmod succeeded"

ic_origin "${IC_ID}o" 64
ic_cache "${IC_ID}c" 16
ic_create_ok "${IC_ID}" "/dev/${IC_ID}c" "/dev/${IC_ID}o"
ref=$(cat "/sys/module/$IC_MODNAME/refcnt")
ic_expect "module refcount with a table" "$ref" -ge 1
rmmod "$IC_MODNAME" 2>/dev/null && ic_fail "rmmod succeeded while a table uses the target"
loaded || ic_fail "module gone while a table uses it"
ic_remove "${IC_ID}" || ic_fail "dmsetup remove failed"
rmmod "$IC_MODNAME" || ic_fail "rmmod refused after the table was removed"
listed && ic_fail "infercache still listed after rmmod"

# leave the module loaded for the tests that follow
insmod "$IC_KO" || ic_fail "insmod failed"
exit 0
