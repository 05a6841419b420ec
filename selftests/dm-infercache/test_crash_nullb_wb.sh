#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_crash_nullb.sh in writeback mode (issue 4): the same power cuts of
# volatile write caches (both orders, one cut in three with the legs
# running), the target with "mode writeback max_dirty_age 200 dirty_high
# 20", so that blocks are dirty, written back and held at the watermark
# while the power goes. After each reload: crash_io verify of the target
# alone (no acknowledged durable write lost, nothing corrupt or changed; the
# origin may lack the dirty blocks), then "flush" (dirty 0), then target ==
# origin. Also: writeback ran during the workloads, and the cuts left dirty
# blocks that the reloads found and wrote back. The same negative controls.
# Cut points: 4 (IC_FULL=1: 50).
IC_CRASH_MODE=writeback
# shellcheck source=test_crash_nullb.sh
. "$(dirname "$0")/test_crash_nullb.sh"
