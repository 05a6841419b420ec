#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: install what is missing, build dm-infercache.ko, boot the Debian
# 6.1 guest under QEMU with an emulated NVMe disk as the cache, and run an
# inference-like read workload over a slow origin, cold then warm
# (tools/demo-guest.sh). Needs root for the package install only when a
# package is missing. Output: a small table; logs in build/demo/out.
#
# Environment: IC_DEMO_HOT_MB (hot set, default 32), IC_DEMO_ORIGIN_MB
# (origin size, default 1024), IC_DEMO_LAT_US (origin latency per I/O,
# default 5000: under QEMU TCG every emulated I/O, the NVMe cache's too,
# costs about 1.5 ms, so a 1 ms origin would barely differ from the
# cache; 5 ms is a disk seek or a remote store), IC_DEMO_DEPTH (fio
# iodepth, default 4).
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd -P)
cd "$repo"

echo "== dependencies (tools/vm/deps.sh)"
tools/vm/deps.sh
echo "== building dm-infercache.ko"
make -C "$repo" all
mkdir -p build/demo
echo "== booting the guest (QEMU; under TCG this takes a few minutes)"
exec tools/vm/vm-run --nvme build/demo/cache.img:2G --out build/demo/out --timeout 1500 \
	-- env IC_DEMO_HOT_MB="${IC_DEMO_HOT_MB:-32}" IC_DEMO_ORIGIN_MB="${IC_DEMO_ORIGIN_MB:-1024}" \
	IC_DEMO_LAT_US="${IC_DEMO_LAT_US:-5000}" IC_DEMO_DEPTH="${IC_DEMO_DEPTH:-4}" \
	"$repo/tools/demo-guest.sh"
