# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the dm-infercache VM rig (sourced, not executed).
# shellcheck shell=bash

# Repository top: tools/vm/lib.sh -> ../..
IC_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
IC_BUILD="$IC_REPO/build"
# shellcheck disable=SC2034 # used by the scripts that source this file
IC_VMDIR="$IC_BUILD/vm"

ic_prog=${ic_prog:-$(basename "$0")}

ic_msg() { printf '%s: %s\n' "$ic_prog" "$*" >&2; }
ic_die() { printf '%s: error: %s\n' "$ic_prog" "$*" >&2; exit "${IC_DIE_RC:-125}"; }

# The guest kernel version: newest /lib/modules/*-amd64 that has a `build`
# link (never `uname -r`: the host may run another kernel). IC_KVER overrides.
ic_kver() {
	if [[ -n "${IC_KVER:-}" ]]; then
		printf '%s\n' "$IC_KVER"
		return
	fi
	local d best=""
	while IFS= read -r d; do
		if [[ -e "$d/build" && -f "/boot/vmlinuz-${d##*/}" ]]; then
			best=${d##*/}
			break
		fi
	done < <(find /lib/modules -mindepth 1 -maxdepth 1 -name '*-amd64' 2>/dev/null | sort -rV)
	[[ -n "$best" ]] || ic_die "no guest kernel found: need /lib/modules/<ver>-amd64/build and /boot/vmlinuz-<ver> (run tools/vm/deps.sh)"
	printf '%s\n' "$best"
}

# Kernel log lines that mean a test must fail. Extended regex for grep -E.
IC_BAD_KLOG='WARNING:|BUG:|kernel BUG|Oops|general protection fault|INFO: task .* blocked for more than|hung_task: blocked|possible circular locking|possible recursive locking|inconsistent lock state|UBSAN|KASAN|list_add corruption|list_del corruption|[Ss]lab.*corrupt|BUG [^ ]+ \((Not tainted|Tainted)|(Redzone|Poison|Object padding|Padding) overwritten|Freepointer corrupt|Object already free|Slab cache still has objects|Modules linked in:|Kernel panic|detected stalls? on CPU|stack-protector|stack guard page'

# Print the offending kernel log lines of FILE (none: status 1).
# Skipped: the kernel's echo of its command line, and guest-init's own
# messages (they quote the command being run).
ic_bad_klog_lines() {
	tr -d '\r' < "$1" | grep -E -- "$IC_BAD_KLOG" |
		grep -v -E '[Cc]ommand line:|\] guest-init: ' || return 1
}

# Count KTAP/TAP top-level results of the given files (or stdin).
# Only lines that start in column 0 count: "# " prefixed and indented
# (nested) lines are ignored. Prints "pass fail skip plan".
ic_ktap_count() {
	tr -d '\r' < "${1:-/dev/stdin}" | awk '
		/^ok [0-9]+/ {
			if ($0 ~ /#[ \t]*[Ss][Kk][Ii][Pp]/) skip++; else pass++
			next
		}
		/^not ok [0-9]+/ { fail++; next }
		/^1\.\.[0-9]+/ { split($0, a, "."); plan += a[3] + 0; next }
		END { printf "%d %d %d %d\n", pass, fail, skip, plan }'
}
