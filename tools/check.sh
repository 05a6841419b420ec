#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check` / `make check-full`: install dependencies, build the module,
# run the host unit tests, the selftest suite in the VM and the reboot tests
# (selftests/reboot: several boots each), and summarise.
# The last line is always "N passed, N failed, N skipped": the top-level KTAP
# results of the unit tests, of the VM suite and of the reboot tests, plus
# one failure for each part that broke without reporting a failed test
# (build, crash, timeout, kernel warnings). Exit status is non-zero if
# anything failed.
#
# Usage: tools/check.sh [--full]
# Time limits: the VM suite 1800 s (--full 7200 s), each suite test 600 s
# (--full 1800 s), each reboot test 1200 s (--full 10800 s), each boot of
# a reboot test 300 s. CI (.ci/run) runs the first tier.
# Environment: IC_SUITE_TIMEOUT=<s> overrides the VM suite time limit;
# IC_TEST_TIMEOUT=<s> the limit of each suite test;
# IC_SUITE_DIR=<dir> runs another kselftest collection (rig self-tests);
# IC_REBOOT=0|1 leaves out / runs the reboot tests (default 1, but 0 when
# IC_SUITE_DIR is set).
set -euo pipefail

ic_prog=check.sh
# shellcheck source=tools/vm/lib.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/vm/lib.sh"

full=0
case "${1:-}" in
--full) full=1 ;;
'') ;;
-h|--help) sed -n '3,21p' "$0"; exit 0 ;;
*) echo "usage: tools/check.sh [--full]" >&2; exit 2 ;;
esac

logdir="$IC_BUILD/check"
mkdir -p "$logdir"
tot_p=0 tot_f=0 tot_s=0
parts=()

part() { # part NAME PASS FAIL SKIP NOTE
	tot_p=$((tot_p + $2)) tot_f=$((tot_f + $3)) tot_s=$((tot_s + $4))
	parts+=("$(printf '  %-8s %4d passed %4d failed %4d skipped  %s' "$1" "$2" "$3" "$4" "$5")")
}

summary() {
	echo
	echo "== summary =="
	printf '%s\n' "${parts[@]}"
	echo "$tot_p passed, $tot_f failed, $tot_s skipped"
	((tot_f == 0))
}

# has_target TARGET: the top Makefile defines TARGET (read from make's
# database without running anything; "make -q" would run $(MAKE) lines)
has_target() {
	[[ -f "$IC_REPO/Makefile" || -f "$IC_REPO/makefile" || -f "$IC_REPO/GNUmakefile" ]] || return 1
	local db
	db=$(make -C "$IC_REPO" -npq .DEFAULT </dev/null 2>/dev/null || true)
	grep -q -E "^$1:([^=]|$)" <<<"$db"
}

# KTAP part: count top-level results of LOG; a failed command or results
# missing from the plan count as failures.
ktap_part() { # ktap_part NAME LOG STATUS
	local p f s plan note="" missing
	read -r p f s plan < <(ic_ktap_count "$2")
	missing=$((plan - p - f - s))
	if ((missing > 0)); then
		f=$((f + missing))
		note="$missing planned tests did not report; "
	fi
	if (($3 != 0 && f == 0)); then
		f=1
		note+="exit status $3 without a failed test; "
	fi
	part "$1" "$p" "$f" "$s" "${note}log: ${2#"$IC_REPO"/}"
}

# ------------------------------------------------------------------ deps
echo "== deps =="
if ! "$IC_REPO/tools/vm/deps.sh" </dev/null; then
	part deps 0 1 0 "tools/vm/deps.sh failed"
	summary
	exit 1
fi

# ------------------------------------------------------------------ build
echo "== build =="
built=1
target=''
if has_target modules; then
	target=modules
elif has_target all; then
	target=all
fi
if [[ -n "$target" ]]; then
	st=0
	make -C "$IC_REPO" "$target" </dev/null 2>&1 | tee "$logdir/build.log" || st=$?
	if ((st == 0)); then
		part build 0 0 0 "ok (make $target)"
	else
		part build 0 1 0 "make $target failed (status $st), log: build/check/build.log"
		built=0
	fi
else
	echo "no Makefile with a modules/all target yet: skipping the module build"
	part build 0 0 0 "no make target"
fi

# ------------------------------------------------------------------ unit
echo "== unit =="
if has_target unit; then
	st=0
	make -C "$IC_REPO" unit </dev/null 2>&1 | tee "$logdir/unit.log" || st=$?
	ktap_part unit "$logdir/unit.log" "$st"
else
	echo "no 'unit' make target yet: nothing to run"
fi

# ------------------------------------------------------------------ suite
echo "== vm suite =="
if ((built)); then
	mkdir -p "$logdir/vm"
	args=(--suite --out "$logdir/vm")
	((full)) && args+=(--full)
	[[ -n "${IC_SUITE_TIMEOUT:-}" ]] && args+=(--timeout "$IC_SUITE_TIMEOUT")
	[[ -n "${IC_TEST_TIMEOUT:-}" ]] && args+=(--test-timeout "$IC_TEST_TIMEOUT")
	[[ -n "${IC_SUITE_DIR:-}" ]] && args+=(--suite-dir "$IC_SUITE_DIR")
	st=0
	"$IC_REPO/tools/vm/vm-run" "${args[@]}" </dev/null || st=$?
	ktap=$logdir/vm/ktap.log
	[[ -s "$ktap" ]] || ktap=$logdir/vm/output.log
	[[ -f "$ktap" ]] || : >"$ktap"
	ktap_part suite "$ktap" "$st"
else
	echo "skipped: the module did not build"
	part suite 0 0 0 "not run: the module did not build"
fi

# ------------------------------------------------------------------ reboot
echo "== reboot =="
reboot=${IC_REBOOT:-1}
[[ -n "${IC_SUITE_DIR:-}" && -z "${IC_REBOOT:-}" ]] && reboot=0
if ((!reboot)); then
	echo "skipped (IC_REBOOT=0, or IC_SUITE_DIR set)"
elif ((built)); then
	args=()
	((full)) && args+=(--full)
	st=0
	"$IC_REPO/selftests/reboot/run.sh" "${args[@]}" </dev/null 2>&1 | tee "$logdir/reboot.log" || st=$?
	ktap_part reboot "$logdir/reboot.log" "$st"
else
	echo "skipped: the module did not build"
	part reboot 0 0 0 "not run: the module did not build"
fi

summary
