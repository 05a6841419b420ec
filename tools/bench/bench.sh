#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: infercache beside the raw devices and its peers (dm-linear,
# dm-cache, bcache), in ONE QEMU guest boot. Installs what is missing from
# Debian's packages, builds the module and the embed_lookup client, boots the
# guest with four emulated NVMe disks, runs tools/bench/guest-bench.sh in it,
# and turns the raw results into Documentation/benchmarks/{results.md,
# results.json,*.png} (tools/bench/report.py + gnuplot).
#
# `make bench-writeback` (= BENCH_PARTS=w tools/bench/bench.sh) runs only the
# writeback workload (tools/bench/guest-writeback.sh) and writes
# Documentation/benchmarks/writeback.{md,json,png}, leaving results.* alone.
# `make bench-scaling` (= BENCH_PARTS=s tools/bench/bench.sh) runs only the
# 1- vs 2-CPU hit scaling workload (tools/bench/guest-scaling.sh) and writes
# Documentation/benchmarks/scaling.{md,json,png}.
#
# Usage: tools/bench/bench.sh [--quick] [--no-report] [--out DIR]
#   --quick      one repetition, short runs (a smoke test of the harness;
#                results go to build/bench/quick, never to Documentation/)
#   --no-report  only run the guest (raw results in build/bench/out/raw)
#   --report-only  skip the guest, rebuild the report from build/bench/out
#   --out DIR    results directory (default Documentation/benchmarks)
# Environment: every BENCH_* knob of tools/bench/guest-bench.sh (see
# tools/bench/README.md), BENCH_TIMEOUT (guest time limit, s, default 1750;
# 720 for s alone), BENCH_MEM (guest MB, default 3072), IC_BENCH_VM_ARGS
# (extra vm-run options).
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd -P)
cd "$repo"
prog=bench.sh
msg() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { msg "error: $*"; exit 1; }

parts=${BENCH_PARTS:-ab ce d f}
wb=0
[[ " $parts " == *" w "* ]] && wb=1
cmdline="$0${*:+ $*}"
[[ -n ${BENCH_PARTS:-} ]] && cmdline="BENCH_PARTS=${BENCH_PARTS@Q} $cmdline"
if [[ -n "${MAKELEVEL:-}" ]]; then
	cmdline="make bench${*:+ $*}"
	[[ $parts == w ]] && cmdline="make bench-writeback${*:+ $*}"
	[[ $parts == s ]] && cmdline="make bench-scaling${*:+ $*}"
fi
quick=0 report=1 guest=1 docs=$repo/Documentation/benchmarks
while [[ $# -gt 0 ]]; do
	case "$1" in
	--quick) quick=1; shift ;;
	--no-report) report=0; shift ;;
	--report-only) guest=0; shift ;;
	--out) docs=$(readlink -f "$2"); shift 2 ;;
	-h|--help) sed -n '3,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (try --help)" ;;
	esac
done

bdir=$repo/build/bench
out=$bdir/out
# the writeback workload alone keeps its raw results apart, so that
# --report-only of the read workloads still finds theirs
[[ $parts == w ]] && out=$bdir/out-wb
[[ $parts == s ]] && out=$bdir/out-scale
if ((quick)); then
	out=$bdir/quick-${out##*/}
	[[ $docs == "$repo/Documentation/benchmarks" ]] && docs=$bdir/quick
	: "${BENCH_REPS:=1}" "${BENCH_AB_REPS:=1}" "${BENCH_AB_ROUNDS:=2}" "${BENCH_RUNTIME:=1}" "${BENCH_ZIPF_WARM:=4000}" "${BENCH_ZIPF_IOS:=1000}"
	: "${BENCH_F_ROWS:=8192}" "${BENCH_F_WARM:=1000}" "${BENCH_F_OPS:=1000}" "${BENCH_PASSES:=2}"
	: "${BENCH_WARM_MB:=2}" "${BENCH_HOT_MB:=4}" "${BENCH_LATS:=500}"
	export BENCH_REPS BENCH_AB_REPS BENCH_AB_ROUNDS BENCH_RUNTIME BENCH_ZIPF_WARM BENCH_ZIPF_IOS BENCH_F_ROWS BENCH_F_WARM BENCH_F_OPS
	export BENCH_PASSES BENCH_WARM_MB BENCH_HOT_MB BENCH_LATS
	: "${BENCH_WB_BASE_S:=3}" "${BENCH_WB_BURST_MB:=8}" "${BENCH_WB_WINDOW_S:=15}" "${BENCH_WB_DRAIN_MB:=8}"
	export BENCH_WB_BASE_S BENCH_WB_BURST_MB BENCH_WB_WINDOW_S BENCH_WB_DRAIN_MB
	: "${BENCH_SCALE_REPS:=1}" "${BENCH_SCALE_RUNTIME:=1}"
	export BENCH_SCALE_REPS BENCH_SCALE_RUNTIME
fi
cache_mb=${BENCH_CACHE_MB:-64}
origin_mb=${BENCH_ORIGIN_MB:-$((cache_mb * 4))}
start=$(date +%s)
# the host is shared: say how busy it was (other guests cost the emulated CPU)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
guests0=$(pgrep -c qemu-system || true)
# what was measured: the commit, and whether the driver differed from it
gitrev=$(git -C "$repo" log -1 --format='%h %s' 2>/dev/null || echo unknown)
if [[ -n "$(git -C "$repo" status --porcelain -- driver Kbuild 2>/dev/null)" ]]; then
	gitrev+=" + uncommitted driver changes"
fi
if [[ -n ${BENCH_IC_KO:-} ]]; then
	[[ -r $BENCH_IC_KO ]] || die "BENCH_IC_KO=$BENCH_IC_KO: no such module"
	gitrev+=", but the module measured is $BENCH_IC_KO (md5 $(md5sum <"$BENCH_IC_KO" | cut -c1-12)), not this tree's"
fi

if ((guest)); then
	msg "dependencies (tools/vm/deps.sh + bcache-tools gnuplot-nox python3)"
	IC_EXTRA_PKGS="bcache-tools gnuplot-nox python3 ${IC_EXTRA_PKGS:-}" tools/vm/deps.sh
	msg "building dm-infercache.ko"
	mkdir -p "$bdir"
	make -C "$repo" modules >"$bdir/build.log" 2>&1 || { tail -n 30 "$bdir/build.log" >&2; die "module build failed"; }
	msg "building embed_lookup"
	cc -O2 -Wall -pthread -o "$bdir/embed_lookup" tools/bench/embed_lookup.c -lm

	# Fresh sparse disk images every run: raw (big enough for workload f's
	# table), then one per caching system. vm-run creates them.
	rm -f "$bdir"/nvme-{raw,ic,dmc,bc,bc0}.img
	nv=(--nvme "$bdir/nvme-raw.img:$((origin_mb + 64))M")
	for s in ic dmc bc; do nv+=(--nvme "$bdir/nvme-$s.img:${cache_mb}M"); done
	# workload w: a fifth identical controller for bcache writeback_percent 0
	((wb)) && nv+=(--nvme "$bdir/nvme-bc0.img:${cache_mb}M")

	envs=()
	while IFS='=' read -r k _; do envs+=("$k=${!k}"); done < <(env | grep -E '^BENCH_[A-Z_]+=' | sort)
	rm -rf "$out"
	mkdir -p "$out"
	msg "booting the guest once for everything (TCG: expect ~25 minutes for make bench, ~10 for w alone, ~8 for s alone; progress below)"
	# s alone is short: a hung guest (CPU hotplug) should not hold the host long
	timeout_s=${BENCH_TIMEOUT:-1750}
	[[ $parts == s ]] && timeout_s=${BENCH_TIMEOUT:-720}
	# No slub_debug / init_on_free: they make every slab allocation slow, and
	# dm clones bios from slabs (tools/vm/README.md: IC_GUEST_DEBUG_ARGS).
	st=0
	# shellcheck disable=SC2086 # IC_BENCH_VM_ARGS is a list of options
	IC_GUEST_DEBUG_ARGS="" tools/vm/vm-run "${nv[@]}" --mem "${BENCH_MEM:-3072}" --smp 2 \
		--timeout "$timeout_s" --out "$out" ${IC_BENCH_VM_ARGS:-} \
		-- env "${envs[@]}" "$repo/tools/bench/guest-bench.sh" || st=$?
	rm -f "$bdir"/nvme-{raw,ic,dmc,bc,bc0}.img
	((st == 0)) || msg "the guest run failed (status $st); reporting what it measured"
	[[ -s $out/raw/records.jsonl ]] || die "no results in $out/raw (see $out/output.log, console.log)"
	# what --report-only needs to describe this run later
	{
		printf 'run_cmdline=%q\nrun_elapsed=%q\nrun_status=%q\nrun_git=%q\nrun_date=%q\nrun_load=%q\n' \
			"$cmdline" "$(($(date +%s) - start))" "$st" "$gitrev" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
			"load average $load0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; other QEMU guests running at the start: $guests0"
	} >"$out/run.env"
else
	[[ -s $out/run.env ]] || die "no previous run in $out (run without --report-only first)"
fi
run_cmdline='' run_elapsed=0 run_status=0 run_git='' run_date='' run_load=''
# shellcheck source=/dev/null
. "$out/run.env"

if ((report)); then
	mkdir -p "$docs"
	stamp=$out/report.stamp
	touch "$stamp"
	sleep 1 # the plots this report writes are newer than the stamp
	python3 tools/bench/report.py --raw "$out/raw" --out "$docs" --command "$run_cmdline" \
		--wall "$run_elapsed" --vm-status "$run_status" --host "$(uname -srm), $(nproc) CPUs${run_load:+ ($run_load)}" \
		--qemu "$(qemu-system-x86_64 --version | head -n 1)" --git "$run_git" --date "$run_date" \
		--guest-rc "$(cat "$out/rc" 2>/dev/null || echo none)"
	msg "plots (gnuplot)"
	pngs=()
	while IFS= read -r gp; do
		(cd "$docs" && gnuplot "$(basename "$gp")") || msg "gnuplot failed on $gp"
		pngs+=("$(basename "${gp%.gp}.png")")
	done < <(find "$docs" -maxdepth 1 -name '*.gp' -newer "$stamp" | sort)
	md=$(find "$docs" -maxdepth 1 -name '*.md' -newer "$stamp" -printf '%f ')
	msg "results in $docs: ${md}${pngs[*]}"
fi
msg "done in $(($(date +%s) - start)) s"
((guest)) || exit 0
exit "$run_status"
