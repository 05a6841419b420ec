#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the host-driven reboot tests (selftests/reboot/test_*.sh, each of
# which boots the guest several times) one after another, with KTAP output
# like the kselftest runner: a plan, each test's output as "# " lines, and
# "ok N selftests: reboot: test_x.sh" / "not ok ..." / "ok ... # SKIP".
#
# Usage: selftests/reboot/run.sh [--full] [test_x.sh...]
# Environment: RB_TEST_TIMEOUT (seconds per test, default 1200, --full
# 10800: a backstop; each boot has its own vm-run limit, RB_BOOT_TIMEOUT),
# and the RB_* variables of lib.sh. Exit status 1 if a test failed.
set -uo pipefail

self=$(cd "$(dirname "$(readlink -f "$0")")" && pwd -P)
full=0
tests=()
for a in "$@"; do
	case $a in
	--full) full=1 ;;
	-h|--help) sed -n '3,12p' "$0"; exit 0 ;;
	-*) echo "usage: $0 [--full] [test_x.sh...]" >&2; exit 2 ;;
	*) tests+=("$(basename "$a")") ;;
	esac
done
if [[ ${#tests[@]} -eq 0 ]]; then
	for t in "$self"/test_*.sh; do tests+=("$(basename "$t")"); done
fi
export RB_FULL=$full
limit=${RB_TEST_TIMEOUT:-$((full ? 10800 : 1200))}

echo "TAP version 13"
echo "1..${#tests[@]}"
n=0 failed=0
for t in "${tests[@]}"; do
	n=$((n + 1))
	echo "# selftests: reboot: $t"
	if [[ ! -f $self/$t ]]; then
		echo "# no such test: $self/$t"
		echo "not ok $n selftests: reboot: $t # no such test"
		failed=1
		continue
	fi
	timeout -k 30 "$limit" bash "$self/$t" </dev/null 2>&1 | sed -u 's/^/# /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) echo "ok $n selftests: reboot: $t" ;;
	4) echo "ok $n selftests: reboot: $t # SKIP" ;;
	124) echo "not ok $n selftests: reboot: $t # TIMEOUT ${limit} seconds"; failed=1 ;;
	*) echo "not ok $n selftests: reboot: $t # exit=$rc"; failed=1 ;;
	esac
done
exit "$failed"
