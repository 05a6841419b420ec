# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034,SC2153
# (sourced: the variables are used and set by guest-bench.sh)
#
# Workload s of tools/bench (issue 5, item 3): how warm-cache read hits scale
# from one CPU to two. Sourced by guest-bench.sh, which provides the devices,
# sys_up/sys_down, warm_all, stat_line, record, rotate, log, die. Run alone
# with `make bench-scaling` (= BENCH_PARTS=s tools/bench/bench.sh).
#
# Systems (BENCH_SCALE_SYSTEMS), per cache kind (brd, then QEMU NVMe):
#   raw     the cache device itself (ram0 / NVMe controller 0)
#   linear  dm-linear over that same device
#   ic      infercache, default table (writethrough), its own identical device
#           (ram1 / controller 1) and a null_blk origin
#   icw     (not in the default list) infercache `mode writeback`, reads
#           only: adds the per-CPU read-latency histogram to every read
#           (ram2 / controller 2)
#   null    fio's null engine, no I/O at all (BENCH_SCALE_NULL=1): how far
#           the emulator lets a pure CPU load scale at that moment
#   nullclk the same with fio's per-I/O clock reads (with BENCH_SCALE_NULL=1):
#           under TCG the guest's clocksource is the HPET (the TSC is marked
#           unstable), and every HPET read is an MMIO exit that QEMU serves
#           under its global lock, so clock reads serialise the vCPUs
#
# 4 KiB random reads (fio, direct=1, libaio, norandommap, gtod_reduce: fio
# reads the clock rarely, for the reason above) over the first SC_HOT_MB MiB,
# which every cache holds (warmed first until a pass had >= 99% hits; the
# raw device's copy is written once), time based. Configurations:
#   c1     one job, cpus_allowed=0, iodepth SC_QD; cpu1 online but idle
#   c2     two jobs at the same time, cpus_allowed=0 and 1, iodepth SC_QD/2
#          each (same total queue depth), different seeds
#   c1off  one job, cpus_allowed=0, iodepth SC_QD, with cpu1 taken offline
#          (/sys/devices/system/cpu/cpu1/online): a one-vCPU guest
# One round (SC_REPS of them) = one fio process with c1 and c2 of every system
# (systems in a rotated order; c1 before c2 in odd rounds, after it in even
# ones), and one fio process with c1off of every system while cpu1 is
# offline (before the other in even rounds). Every job has its own
# stonewall group, except that the two c2 jobs of a system run together.
#
# Knobs (environment, defaults in brackets):
#   BENCH_SCALE_SYSTEMS "raw linear ic"   BENCH_SCALE_CACHES "brd nvme"
#   BENCH_SCALE_REPS 5   BENCH_SCALE_QD 32 (total, even)
#   BENCH_SCALE_RUNTIME 2 (s per run, + 0.2 s ramp)
#   BENCH_SCALE_HOT_MB [BENCH_HOT_MB, 16]   BENCH_SCALE_OFFLINE 1
#   BENCH_SCALE_NULL 1 (the null and nullclk references)

SC_SYSTEMS=${BENCH_SCALE_SYSTEMS:-raw linear ic}
SC_CACHES=${BENCH_SCALE_CACHES:-brd nvme}
SC_REPS=${BENCH_SCALE_REPS:-5}
SC_QD=${BENCH_SCALE_QD:-32}
SC_RUNTIME=${BENCH_SCALE_RUNTIME:-2}
SC_HOT_MB=${BENCH_SCALE_HOT_MB:-$HOT_MB}
SC_OFFLINE=${BENCH_SCALE_OFFLINE:-1}
SC_NULL=${BENCH_SCALE_NULL:-1}
SC_CPU1=/sys/devices/system/cpu/cpu1/online

# sc_jobs SYS CFG REP: append the fio job(s) of one configuration to SC_JOBS
sc_jobs() {
	local s=$1 cfg=$2 rep=$3 f eng=(--gtod_reduce=1)
	case $s in
	null | nullclk)
		f=/tmp/bench-null # never opened: the null engine does no I/O
		eng=(--ioengine=null)
		[[ $s == null ]] && eng+=(--gtod_reduce=1) ;;
	*) f=${DEV[$s]} ;;
	esac
	case $cfg in
	c1 | c1off)
		SC_JOBS+=(--name="$s.$cfg.r$rep" --filename="$f" "${eng[@]}" --cpus_allowed=0 --iodepth="$SC_QD"
			--randseed=$((600 + rep)) --stonewall) ;;
	c2)
		SC_JOBS+=(--name="$s.c2a.r$rep" --filename="$f" "${eng[@]}" --cpus_allowed=0 --iodepth=$((SC_QD / 2))
			--randseed=$((600 + rep)) --stonewall
			--name="$s.c2b.r$rep" --filename="$f" "${eng[@]}" --cpus_allowed=1 --iodepth=$((SC_QD / 2))
			--randseed=$((700 + rep))) ;;
	*) die "sc_jobs: unknown configuration $cfg" ;;
	esac
}

# sc_run LABEL "SYS..." CFG...: one fio process, per system (in the order
# given) its configurations in the order given; counters read around it
sc_run() {
	local label=$1 id s c systems cfgs
	read -r -a systems <<<"$2"
	shift 2
	cfgs=("$@")
	SEQ=$((SEQ + 1))
	id=$(printf '%04d-%s' "$SEQ" "$label")
	SC_JOBS=()
	for s in "${systems[@]}"; do
		for c in "${cfgs[@]}"; do sc_jobs "$s" "$c" "$REP"; done
	done
	local -A pre
	for s in "${systems[@]}"; do pre[$s]=$(stat_line "$s"); done
	fio "${FIO_COMMON[@]}" --rw=randread --size="${SC_HOT_MB}M" --ioengine=libaio --norandommap \
		--time_based --runtime="$SC_RUNTIME" --ramp_time=200ms "${SC_JOBS[@]}" --output="$W/fio/$id.json" ||
		die "fio $id failed"
	for s in "${systems[@]}"; do record scale "$s" "${pre[$s]}" "$(stat_line "$s")" "$id"; done
}

# sc_cpu1 0|1: take cpu1 offline or bring it back; returns non-zero if the
# guest's online CPUs are not then what was asked for
sc_cpu1() {
	local want=0-1 on i
	(($1)) || want=0
	echo "$1" >"$SC_CPU1" 2>/dev/null
	for i in $(seq 50); do
		read -r on </sys/devices/system/cpu/online
		[[ $on == "$want" ]] && return 0
		sleep 0.1
	done
	log "warning: cpu1 online=$1 asked, online CPUs: $on"
	return 1
}

# sc_offline_round "SYS...": the c1off runs of one round, cpu1 offline
sc_offline_round() {
	if ! sc_cpu1 0; then
		sc_cpu1 1
		log "warning: round $REP: cpu1 did not go offline; no c1off runs in this round"
		return 0
	fi
	TAGS="$SC_TAGS\"phase\":\"offline\",\"online_cpus\":\"$(cat /sys/devices/system/cpu/online)\","
	sc_run "s-$SC_KIND-off" "$1" c1off
	sc_cpu1 1 || die "cpu1 did not come back online"
	sleep 0.5 # the NVMe queue of cpu1 and its interrupt come back
}

part_s() {
	local kind s rep sys=() all=() caching=() order cfgs k
	read -r -a sys <<<"$SC_SYSTEMS"
	((SC_QD >= 2 && SC_QD % 2 == 0)) || die "BENCH_SCALE_QD must be even and >= 2 (split over 2 CPUs): $SC_QD"
	(($(nproc) >= 2)) || die "workload s needs 2 CPUs, the guest has $(nproc)"
	for k in SC_SYSTEMS SC_CACHES SC_REPS SC_QD SC_RUNTIME SC_HOT_MB SC_OFFLINE SC_NULL; do
		echo "$k=${!k}"
	done >>"$W/env.txt"
	if ((SC_OFFLINE)) && [[ ! -w $SC_CPU1 ]]; then
		log "warning: $SC_CPU1 is not writable: no c1off runs"
		SC_OFFLINE=0
	fi
	all=("${sys[@]}")
	((SC_NULL)) && all+=(null nullclk)
	for s in "${sys[@]}"; do [[ $s == ic || $s == icw ]] && caching+=("$s"); done
	# icw on a device of its own (in workload w it shares ic's)
	local icw_nvme=${CDEV[nvme:icw]} icw_brd=${CDEV[brd:icw]:-}
	CDEV[nvme:icw]=${NV[2]}
	CDEV[brd:icw]=/dev/ram2
	for kind in $SC_CACHES; do
		log "== s on $kind"
		SC_KIND=$kind
		for s in "${sys[@]}"; do sys_up "$s" "$kind" "$LAT0"; done
		if [[ " ${sys[*]} " == *" raw "* || " ${sys[*]} " == *" linear "* ]]; then
			# the raw device reads real data, as the caches will
			fio --name=prep --filename="${DEV[raw]:-${CDEV[$kind:raw]}}" --direct=1 --rw=write --bs=1M \
				--size="${SC_HOT_MB}M" --ioengine=libaio --iodepth=4 --eta=never --output=/dev/null ||
				die "prep raw"
		fi
		if ((${#caching[@]})); then
			warm_all "$SC_HOT_MB" "\"wl\":\"s_warm\",\"cache\":\"$kind\"," "${caching[@]}"
			for s in "${caching[@]}"; do
				TAGS="\"wl\":\"s_warm_done\",\"cache\":\"$kind\",\"passes\":${WARM_PASSES[$s]},"
				record note "$s" "0 0 0 0" "0 0 0 0 -" ""
				log "$s on $kind: warm after ${WARM_PASSES[$s]} pass(es): $(stat_line "$s")"
			done
		fi
		cp /proc/interrupts "$W/s-$kind-interrupts-before.txt"
		for ((rep = 1; rep <= SC_REPS; rep++)); do
			REP=$rep
			order=$(rotate "$rep" "${all[@]}")
			SC_TAGS="\"wl\":\"scale\",\"cache\":\"$kind\",\"rep\":$rep,\"order\":\"${order% }\","
			cfgs=(c1 c2)
			((rep % 2)) || cfgs=(c2 c1)
			((SC_OFFLINE && rep % 2 == 0)) && sc_offline_round "$order"
			TAGS="$SC_TAGS\"phase\":\"online\",\"online_cpus\":\"$(cat /sys/devices/system/cpu/online)\","
			sc_run "s-$kind" "$order" "${cfgs[@]}"
			((SC_OFFLINE && rep % 2 == 1)) && sc_offline_round "$order"
			TAGS=''
			log "s $kind round $rep done (${order% }; ${cfgs[*]})"
			checkpoint
		done
		cp /proc/interrupts "$W/s-$kind-interrupts-after.txt"
		for s in "${sys[@]}"; do sys_down "$s"; done
		checkpoint
	done
	CDEV[nvme:icw]=$icw_nvme
	CDEV[brd:icw]=$icw_brd
	return 0
}
