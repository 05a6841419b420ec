#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `vm-run --suite`: run the kselftest install tree that vm-run
# prepared in $IC_OUT/ksft, from a writable copy in /tmp. KTAP goes to stdout
# and to $IC_OUT/ktap.log. Arguments: optional COLLECTION:TEST names.
# The 6.1 runner exits 0 even when tests fail, so the status is computed
# from the top-level "not ok" lines.
set -euo pipefail

: "${IC_OUT:?IC_OUT is not set (run through tools/vm/vm-run --suite)}"
rm -rf /tmp/ksft
cp -a "$IC_OUT/ksft" /tmp/ksft
cd /tmp/ksft
args=()
for t in "$@"; do
	args+=(-t "$t")
done
./run_kselftest.sh "${args[@]}" 2>&1 | tee "$IC_OUT/ktap.log"
if grep -q '^not ok ' "$IC_OUT/ktap.log"; then
	exit 1
fi
exit 0
