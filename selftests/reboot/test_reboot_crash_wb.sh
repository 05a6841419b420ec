#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_reboot_crash.sh in writeback mode (issue 4): guest crashes (sysrq c)
# in the middle of the write+read workload, the target with "mode writeback
# max_dirty_age 1000 dirty_high 20". After each crash: crash_io verify of
# the target alone (no acknowledged durable write lost, nothing corrupt or
# changed), "flush" (dirty 0 after it), then crash_io verify against the
# origin and every block of the target equal to the origin; the recoveries
# must have found dirty blocks to write back. Cut points: 1 (RB_FULL=1: 50,
# or RB_CUTS).
RB_CRASH_MODE=writeback
# shellcheck source=test_reboot_crash.sh
. "$(dirname "$0")/test_reboot_crash.sh"
