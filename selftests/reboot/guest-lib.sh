# SPDX-License-Identifier: GPL-2.0
# Guest side of the reboot tests (sourced by selftests/reboot/guest_*.sh,
# which a host-side test_*.sh runs through tools/vm/vm-run, once per boot).
# Builds on the selftests' lib.sh: ic_init, ic_create, ic_snap, the EXIT
# trap that removes what the script made and fails it on kernel warnings.
# The disks are the vm-run's --nvme (the cache) and --virtio (the origin)
# files, which keep their content from one boot to the next.
# shellcheck shell=bash disable=SC2034

. "${IC_SRC:?run through tools/vm/vm-run}/selftests/dm-infercache/lib.sh"

# rg_disks: C (cache: the first NVMe disk) and O (origin: the first virtio
# disk); D is the target's device, named "icrb" in every boot.
rg_disks() {
	read -r C _ <<<"${IC_NVME_DEVS:-}"
	read -r O _ <<<"${IC_VIRTIO_DEVS:-}"
	[[ -n "${C:-}" && -b $C ]] || ic_fail "no NVMe disk (vm-run --nvme FILE)"
	[[ -n "${O:-}" && -b $O ]] || ic_fail "no virtio disk (vm-run --virtio FILE)"
	RG_NAME=icrb
	D=/dev/mapper/$RG_NAME
	ic_log "boot ${RB_BOOT:-?}: cache $C ($(blockdev --getsz "$C") sectors), origin $O ($(blockdev --getsz "$O") sectors)"
}

# rg_words N...: status words N... of the target ($1 is the start sector;
# $5 "cached/total" counts as cached), blank separated.
rg_words() {
	dmsetup status "$RG_NAME" | awk -v f="$*" 'BEGIN { n = split(f, a, " ") }
		{ sub(/\/.*/, "", $5); s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? " " : "") $(a[i]); print s }'
}

# rg_create OPT...: create the target over the whole origin; RG_PERSIST=1
# if the module has persistent metadata (status words $21-$23). Without,
# the script fails unless RG_NEED_PERSIST=0.
RG_NEED_PERSIST=1 RG_PERSIST=0
rg_create() {
	local w
	ic_create_ok "$RG_NAME" "$C" "$O" "$@"
	read -r -a w <<<"$(dmsetup status "$RG_NAME")"
	RG_PERSIST=$((${#w[@]} >= 23))
	((RG_PERSIST || !RG_NEED_PERSIST)) || ic_fail "status has ${#w[@]} words, no loaded/dropped/commits" \
		"(\$21-\$23): this module has no persistent metadata"
}

# rg_klog_load: the driver's load/format messages since the last ic_mark
rg_klog_load() {
	ic_klog_since | grep -E 'infercache: .*(loaded|formatted)' | sed 's/^/#   klog: /'
}

# rg_result KEY VALUE: hand a value to the host ($IC_OUT/result)
rg_result() { echo "$1=$2" >>"$IC_OUT/result"; }

# rg_zero_sb: zero the superblock copies (first 8 KiB): blank cache
rg_zero_sb() {
	dd if=/dev/zero of="$C" bs=4096 count=2 oflag=direct status=none ||
		ic_fail "zeroing the superblocks of $C failed"
}
