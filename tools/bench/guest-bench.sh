#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make bench` (started by tools/bench/bench.sh through
# tools/vm/vm-run, one boot for everything). Builds identical emulated
# devices for every system, runs workloads a-f and writes raw results to
# $IC_OUT/raw: records.jsonl (one JSON object per measured run, with the hit
# counters read around it), fio/*.json (fio's own output), env.txt, log.txt.
# tools/bench/report.py turns them into the tables, JSON and plots.
#
# Systems: raw (the cache device itself), origin (the slow device alone),
# linear (dm-linear over the cache device), ic (infercache), dmc (dm-cache,
# smq, 32 KiB blocks, writethrough, metadata on the fast device), bc (bcache,
# writethrough, sequential_cutoff 0, congestion bypass off); for workload w
# (tools/bench/guest-writeback.sh) the writeback-mode systems icw
# (infercache, mode writeback), wc (dm-writecache), bcw and bcw0 (bcache,
# cache_mode writeback, writeback_percent 10 and 0); workload s
# (tools/bench/guest-scaling.sh) measures raw, linear and ic hits with one
# CPU and with two.
#
# Devices: NVMe disks in the order bench.sh gives them: raw+linear, ic, dmc,
# bc (each caching system gets its own identical controller, so all systems
# can stand side by side and their runs can be interleaved); brd ram0..ram3
# in the same roles; one null_blk origin per system, recreated empty for
# every experiment (timer completion: BENCH_LATS microseconds).
#
# Knobs (environment; bench.sh passes them through, defaults in brackets):
#   BENCH_PARTS "ab ce d f"  workloads to run (a+b, c+e, d, f; w = writeback,
#                            see tools/bench/guest-writeback.sh for its knobs;
#                            s = 1- vs 2-CPU hit scaling, guest-scaling.sh)
#   BENCH_CACHES "nvme brd"  cache device kinds for a/b (c-f use nvme)
#   BENCH_LATS "500 2000"   origin latencies in us (a/b and f use the first)
#   BENCH_REPS 3             repetitions of every measured figure
#   BENCH_AB_REPS 3          fio processes for each of a and b, each with
#   BENCH_AB_ROUNDS 4        rounds of one short run per system (interleaved)
#   BENCH_CACHE_MB 64        cache device size (ic, dmc, bc)
#   BENCH_ORIGIN_MB 256      origin size (d reads all of it: 4x the cache)
#   BENCH_HOT_MB 16          a/b hot set;  BENCH_RUNTIME 1 (s per a/b run)
#   BENCH_WARM_MB 4          c/e hot set;  BENCH_PASSES 4 (c passes)
#   BENCH_SCAN_MB 2*cache    e scan size;  BENCH_SCAN_BS 128k
#   BENCH_ZIPF_WARM 400000   d warm-up I/Os (QD16); BENCH_ZIPF_IOS 5000 per
#                            measured QD1 window
#   BENCH_F_ROWS 32768       f table rows (4 KiB each: 128 MiB, 2x the cache)
#   BENCH_F_WARM 12000       f warm-up lookups; BENCH_F_OPS 6000 per window
#   BENCH_F_THREADS 2        f lookup threads (= vCPUs: more measures the scheduler)
set -uo pipefail
export DM_DISABLE_UDEV=1 LC_ALL=C

IC_SRC=${IC_SRC:-$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd -P)}
# BENCH_IC_KO: measure another build of the module (an A/B test of a patch)
IC_KO=${BENCH_IC_KO:-${IC_KO:-$IC_SRC/dm-infercache.ko}}
IC_OUT=${IC_OUT:-/tmp/bench-out}
EMBED=${BENCH_EMBED:-$IC_SRC/build/bench/embed_lookup}

PARTS=${BENCH_PARTS:-ab ce d f}
CACHES=${BENCH_CACHES:-nvme brd}
LATS=${BENCH_LATS:-500 2000}
REPS=${BENCH_REPS:-3}
AB_REPS=${BENCH_AB_REPS:-3}
AB_ROUNDS=${BENCH_AB_ROUNDS:-4}
CACHE_MB=${BENCH_CACHE_MB:-64}
ORIGIN_MB=${BENCH_ORIGIN_MB:-$((CACHE_MB * 4))}
HOT_MB=${BENCH_HOT_MB:-16}
RUNTIME=${BENCH_RUNTIME:-1}
WARM_MB=${BENCH_WARM_MB:-4}
PASSES=${BENCH_PASSES:-4}
SCAN_MB=${BENCH_SCAN_MB:-$((CACHE_MB * 2))}
SCAN_BS=${BENCH_SCAN_BS:-128k}
ZIPF_WARM=${BENCH_ZIPF_WARM:-400000}
ZIPF_IOS=${BENCH_ZIPF_IOS:-5000}
F_ROWS=${BENCH_F_ROWS:-32768}
F_WARM=${BENCH_F_WARM:-12000}
F_OPS=${BENCH_F_OPS:-6000}
F_THREADS=${BENCH_F_THREADS:-2}
LAT0=${LATS%% *}

W=/tmp/bench            # guest tmpfs; copied to $IC_OUT/raw at checkpoints
RAW=$IC_OUT/raw
mkdir -p "$W/fio" "$RAW"
REC=$W/records.jsonl
: >"$REC"
T0=${EPOCHREALTIME/./}

elapsed() { # seconds since the start, one decimal, no fork
	local t=$(((${EPOCHREALTIME/./} - T0) / 100000))
	printf '%d.%d' $((t / 10)) $((t % 10))
}
log() { printf '[%7s] %s\n' "$(elapsed)" "$*" | tee -a "$W/log.txt"; }
die() { log "FATAL: $*"; checkpoint; exit 1; }
checkpoint() { cp -au "$W/." "$RAW/" 2>/dev/null || true; }
getsz() { blockdev --getsz "$1"; }

# ------------------------------------------------------------------ devices
modprobe dm-mod
if [[ ! -d /sys/module/dm_infercache ]]; then
	modprobe libcrc32c
	insmod "$IC_KO" || die "cannot insmod $IC_KO"
fi
{ modprobe dm-cache && modprobe dm-cache-smq; } || die "no dm-cache"
modprobe bcache || die "no bcache"
modprobe null_blk nr_devices=0 || die "no null_blk"
if [[ " $PARTS " == *" w "* ]]; then modprobe dm-writecache || die "no dm-writecache"; fi
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
modprobe brd rd_nr=4 rd_size=$((CACHE_MB * 1024)) || die "no brd"

read -r -a NV <<<"${IC_NVME_DEVS:-}"
((${#NV[@]} >= 4)) || die "need 4 NVMe disks (raw, ic, dmc, bc), have: ${IC_NVME_DEVS:-none}"
# the writeback systems (workload w) use the same controllers (ic, dmc, bc)
# and a fifth one for bcw0, which bench.sh adds when w is selected
declare -A CDEV=(
	[nvme:raw]=${NV[0]} [nvme:ic]=${NV[1]} [nvme:dmc]=${NV[2]} [nvme:bc]=${NV[3]}
	[nvme:icw]=${NV[1]} [nvme:wc]=${NV[2]} [nvme:bcw]=${NV[3]} [nvme:bcw0]=${NV[4]:-}
	[brd:raw]=/dev/ram0 [brd:ic]=/dev/ram1 [brd:dmc]=/dev/ram2 [brd:bc]=/dev/ram3
)
for d in "${NV[@]}" /dev/ram0 /dev/ram1 /dev/ram2 /dev/ram3; do
	b=$(basename "$d")
	[[ -w /sys/block/$b/queue/scheduler ]] && echo none >"/sys/block/$b/queue/scheduler" 2>/dev/null
done
# brd allocates pages on first write: touch every page once (only a/b and s
# use it)
if [[ " $PARTS " == *" ab "* || " $PARTS " == *" s "* ]]; then
	for i in 0 1 2 3; do
		dd if=/dev/zero of=/dev/ram$i bs=1M count="$CACHE_MB" oflag=direct status=none || die "dd ram$i"
	done
fi
for ((i = 1; i < ${#NV[@]}; i++)); do
	(($(getsz "${NV[$i]}") >= CACHE_MB * 2048)) || die "${NV[$i]} is smaller than $CACHE_MB MiB"
done

# null_blk origin NAME LAT_US: memory backed (reads of unwritten blocks return
# zeroes without allocating), timer completion, 32 tags, no I/O scheduler.
NB=/sys/kernel/config/nullb
nb_up() {
	local d=$NB/$1
	nb_down "$1"
	mkdir "$d" || die "mkdir $d"
	echo "$ORIGIN_MB" >"$d/size"
	echo 4096 >"$d/blocksize"
	echo 1 >"$d/memory_backed"
	echo 2 >"$d/irqmode"
	echo $(($2 * 1000)) >"$d/completion_nsec"
	echo 32 >"$d/hw_queue_depth"
	echo 1 >"$d/no_sched" 2>/dev/null
	# NB_MBPS (workload w): a bandwidth limit, MiB/s, for all of its I/O
	if ((${NB_MBPS:-0})); then echo "$NB_MBPS" >"$d/mbps" || die "mbps on $1"; fi
	echo 1 >"$d/power" || die "power on $1"
	local i
	for i in $(seq 100); do [[ -b /dev/$1 ]] && return 0; sleep 0.05; done
	die "/dev/$1 did not appear"
}
nb_down() {
	[[ -d $NB/$1 ]] || return 0
	echo 0 >"$NB/$1/power"
	rmdir "$NB/$1"
}

# ------------------------------------------------------------------ systems
# sys_up SYS KIND LAT_US: build SYS over the KIND cache device and a fresh
# origin; sets DEV[SYS] (what the workload reads) and ORIG[SYS].
declare -A DEV ORIG BCSET
sys_up() {
	local s=$1 kind=$2 lat=$3 c o
	c=${CDEV[$kind:$s]:-${CDEV[$kind:raw]}}
	case $s in
	raw) DEV[$s]=$c; return 0 ;;
	linear)
		dmsetup create b_linear --table "0 $(getsz "$c") linear $c 0" || die "dm-linear"
		DEV[$s]=/dev/mapper/b_linear; return 0 ;;
	esac
	[[ -n $c ]] || die "no $kind cache device for $s"
	o=/dev/b_o_$s
	nb_up "b_o_$s" "$lat"
	ORIG[$s]=$o
	# workload w writes its bursts over regions the origin already holds
	# (null_blk allocates a page on a block's first write: a cost the raw
	# origin runs would otherwise not pay alike)
	if ((${ORIGIN_PREFILL_MB:-0})); then
		dd if=/dev/zero of="$o" bs=1M count="$ORIGIN_PREFILL_MB" oflag=direct status=none || die "prefill $o"
	fi
	case $s in
	origin) DEV[$s]=$o ;;
	icw)
		# infercache in writeback mode, default controller settings
		# (plus BENCH_IC_WB_OPTS)
		local io
		read -r -a io <<<"mode writeback ${IC_WB_OPTS:-}"
		dd if=/dev/zero of="$c" bs=1M count=4 oflag=direct status=none
		dmsetup create b_icw --table "0 $(getsz "$o") infercache $c $o ${#io[@]} ${io[*]}" ||
			die "infercache (mode writeback) create"
		DEV[$s]=/dev/mapper/b_icw ;;
	wc)
		# dm-writecache, SSD mode, 4 KiB blocks; options from WC_OPTS
		# (writecache.rst: origin first, then the cache device; the first
		# sector of the cache zeroed = a new cache)
		local wo
		read -r -a wo <<<"${WC_OPTS:-}"
		dd if=/dev/zero of="$c" bs=1M count=4 oflag=direct status=none
		dmsetup create b_wc --table "0 $(getsz "$o") writecache s $o $c 4096 ${#wo[@]} ${wo[*]}" ||
			die "dm-writecache create (options: ${wo[*]})"
		DEV[$s]=/dev/mapper/b_wc ;;
	ic)
		# a blank cache: infercache keeps no metadata yet, but do not rely on it
		dd if=/dev/zero of="$c" bs=1M count=4 oflag=direct status=none
		dmsetup create b_ic --table "0 $(getsz "$o") infercache $c $o 0" || die "infercache create"
		DEV[$s]=/dev/mapper/b_ic ;;
	dmc)
		local meta=8192 sz
		sz=$(getsz "$c")
		dmsetup create b_dmc_meta --table "0 $meta linear $c 0" || die "dmc meta"
		dmsetup create b_dmc_data --table "0 $((sz - meta)) linear $c $meta" || die "dmc data"
		dd if=/dev/zero of=/dev/mapper/b_dmc_meta bs=1M count=1 oflag=direct status=none
		dmsetup create b_dmc --table "0 $(getsz "$o") cache /dev/mapper/b_dmc_meta /dev/mapper/b_dmc_data $o 64 1 writethrough smq 0" ||
			die "dm-cache create"
		DEV[$s]=/dev/mapper/b_dmc ;;
	bc | bcw | bcw0)
		# bc: writethrough; bcw: writeback, writeback_percent 10 (the
		# default); bcw0: writeback, writeback_percent 0 (no rate limit)
		local out uuid dev i mode=writethrough
		[[ $s == bc ]] || mode=writeback
		dd if=/dev/zero of="$c" bs=1M count=4 oflag=direct status=none
		out=$(make-bcache --wipe-bcache --bucket "$((BC_BUCKET / 1024))k" -C "$c" -B "$o" 2>&1) || die "make-bcache: $out"
		uuid=$(awk '/^Set UUID:/ { print $3; exit }' <<<"$out")
		[[ -n $uuid ]] || die "make-bcache printed no set uuid: $out"
		echo "$c" >/sys/fs/bcache/register 2>/dev/null
		echo "$o" >/sys/fs/bcache/register 2>/dev/null
		for i in $(seq 100); do [[ -e /sys/block/b_o_$s/bcache/dev ]] && break; sleep 0.1; done
		dev=$(basename "$(readlink -f "/sys/block/b_o_$s/bcache/dev")")
		[[ -b /dev/$dev ]] || die "bcache device did not appear (set $uuid)"
		BCSET[$s]=$uuid
		[[ -d /sys/fs/bcache/$uuid ]] || die "bcache cache set $uuid not registered (see dmesg)"
		for i in $(seq 50); do [[ $(cat "/sys/block/$dev/bcache/state") != "no cache" ]] && break; sleep 0.1; done
		[[ $(cat "/sys/block/$dev/bcache/state") != "no cache" ]] || die "bcache: backing device not attached to $uuid"
		echo $mode >"/sys/block/$dev/bcache/cache_mode"
		echo 0 >"/sys/block/$dev/bcache/sequential_cutoff"
		echo 0 >"/sys/fs/bcache/$uuid/congested_read_threshold_us"
		echo 0 >"/sys/fs/bcache/$uuid/congested_write_threshold_us"
		grep -q "\\[$mode\\]" "/sys/block/$dev/bcache/cache_mode" || die "bcache mode $mode"
		case $s in
		bcw) echo 10 >"/sys/block/$dev/bcache/writeback_percent" ;;
		bcw0) echo 0 >"/sys/block/$dev/bcache/writeback_percent" ;;
		esac
		# writeback_delay (default 30 s) is a sleep after every pass over
		# the index that a wake-up does not cut short: a burst written
		# during it waits up to a minute, which would swamp what the
		# writeback benchmark measures
		[[ $s == bc ]] || echo 0 >"/sys/block/$dev/bcache/writeback_delay"
		DEV[$s]=/dev/$dev ;;
	*) die "unknown system $s" ;;
	esac
}

sys_down() {
	local s=$1 i
	case $s in
	raw) ;;
	linear) dmsetup remove b_linear ;;
	origin) nb_down b_o_origin ;;
	ic) dmsetup remove b_ic; nb_down b_o_ic ;;
	icw) dmsetup remove b_icw; nb_down b_o_icw ;;
	wc) dmsetup remove b_wc; nb_down b_o_wc ;;
	dmc)
		dmsetup remove b_dmc; dmsetup remove b_dmc_meta; dmsetup remove b_dmc_data
		nb_down b_o_dmc ;;
	bc | bcw | bcw0)
		local dev=${DEV[$s]##*/} cset=${BCSET[$s]}
		echo 1 >"/sys/block/$dev/bcache/stop" 2>/dev/null
		echo 1 >"/sys/fs/bcache/$cset/stop" 2>/dev/null
		for i in $(seq 100); do [[ -e /sys/fs/bcache/$cset || -e /sys/block/$dev ]] || break; sleep 0.1; done
		[[ -e /sys/fs/bcache/$cset ]] && log "warning: bcache set $cset still registered"
		nb_down "b_o_$s" ;;
	esac
	unset "DEV[$s]" "ORIG[$s]"
}

# ------------------------------------------------------------------ counters
# stat_line SYS -> "reads hits origin_read_ios origin_read_sectors extra"
# reads/hits from the system's own counters: infercache and dm-cache status;
# bcache's stats_total is only updated every ~14 s, so for bcache reads and
# misses are counted in 4 KiB units from the sectors read from its front
# device and from the origin (a read miss reads exactly the missed range from
# the origin, readahead is 0; counting bios would not do: bcache splits them).
# Bash builtins only where possible: every fork is slow under TCG.
stat_line() {
	local s=$1 oi=0 os=0 st f r
	[[ -n ${ORIG[$s]:-} ]] && read -r oi _ os _ <"/sys/block/${ORIG[$s]##*/}/stat"
	case $s in
	ic)
		st=$(dmsetup status b_ic) || die "status ic"
		read -r -a f <<<"$st"
		echo "${f[5]} ${f[6]} $oi $os fills=${f[8]},bypasses=${f[13]},rejects=${f[18]:-},sequential=${f[19]:-},evictions=${f[11]},fill_aborts=${f[14]},cached=${f[4]}" ;;
	dmc)
		st=$(dmsetup status b_dmc) || die "status dmc"
		read -r -a f <<<"$st"
		echo "$((f[7] + f[8])) ${f[7]} $oi $os promotions=${f[12]},demotions=${f[11]},cached=${f[6]}" ;;
	bc)
		read -r _ _ r _ <"/sys/block/${DEV[bc]##*/}/stat"
		echo "$((r / 8)) $(((r - os) / 8)) $oi $os -" ;;
	icw | wc | bcw | bcw0) wb_stat_line "$s" "$oi" "$os" ;;
	*) echo "0 0 $oi $os -" ;;
	esac
}

# ------------------------------------------------------------------ runs
SEQ=0
TAGS=''
# record KIND SYS PRE POST FIO_ID -> one JSON line in records.jsonl
record() {
	local kind=$1 s=$2 pre=$3 post=$4 id=$5 r0 h0 oi0 os0 r1 h1 oi1 os1 x1
	read -r r0 h0 oi0 os0 _ <<<"$pre"
	read -r r1 h1 oi1 os1 x1 <<<"$post"
	printf '{%s"sys":"%s","run":"%s","fio":"%s","reads":%d,"hits":%d,"origin_ios":%d,"origin_kib":%d,"extra":"%s","t":%s}\n' \
		"$TAGS" "$s" "$kind" "$id" $((r1 - r0)) $((h1 - h0)) $((oi1 - oi0)) $(((os1 - os0) / 2)) "$x1" \
		"$(elapsed)" >>"$REC"
}

# [JOBARG=fio-option] run_batch LABEL "SYS..." FIO-ARGS...: one fio process
# with one job per
# system (named after it, its device given by --filename or JOBARG), run one
# after the other (stonewall) with the same
# options and seed, so every system sees the same request stream. Every
# system's counters are read before and after (each only moves during its
# own job). fio starts slowly under TCG: batching saves most of that.
#
# ROUNDS=n: n rounds of jobs named SYS.1 .. SYS.n, the systems in a rotated
# order each round: short runs of all systems close together in time (the
# records then carry "rounds", and the counters cover all rounds).
# PARALLEL=1: the jobs run at the same time instead (warm-ups only).
FIO_COMMON=(--eta=never --direct=1 --bs=4k --lat_percentiles=1 --percentile_list=50:90:99:99.9
	--output-format=json)
run_batch() {
	local label=$1 id s r jobs=() systems rounds=${ROUNDS:-1} sw=(--stonewall) rtag=''
	read -r -a systems <<<"$2"
	shift 2
	SEQ=$((SEQ + 1))
	id=$(printf '%04d-%s' "$SEQ" "$label")
	[[ ${PARALLEL:-0} == 1 ]] && sw=()
	local -A pre
	for s in "${systems[@]}"; do pre[$s]=$(stat_line "$s"); done
	if ((rounds > 1)); then
		rtag="\"rounds\":$rounds,"
		for ((r = 1; r <= rounds; r++)); do
			for s in $(rotate "$r" "${systems[@]}"); do
				jobs+=(--name="$s.$r" "--${JOBARG:-filename}=${DEV[$s]}")
			done
		done
	else
		for s in "${systems[@]}"; do jobs+=(--name="$s" "--${JOBARG:-filename}=${DEV[$s]}"); done
	fi
	fio "${FIO_COMMON[@]}" "${sw[@]}" "$@" "${jobs[@]}" --output="$W/fio/$id.json" || die "fio $id failed"
	local tags=$TAGS
	TAGS="$tags$rtag"
	for s in "${systems[@]}"; do record fio "$s" "${pre[$s]}" "$(stat_line "$s")" "$id"; done
	TAGS=$tags
}

# hot_batch LABEL "SYS..." MB QD SEED: a QD-n random-read pass over the first
# MB MiB (every block once, random order)
hot_batch() {
	local eng=(--ioengine=psync)
	(($4 > 1)) && eng=(--ioengine=libaio --iodepth="$4")
	run_batch "$1" "$2" --rw=randread --size="$3M" --randseed="$5" "${eng[@]}"
}

# warm_all MB TAGS SYS...: QD16 passes over the hot set until every system
# had a pass with >= 99% hits; WARM_PASSES[SYS] = the first such pass.
declare -A WARM_PASSES
warm_all() {
	local mb=$1 tags=$2 p s left=() reads hits
	shift 2
	left=("$@")
	for s in "$@"; do WARM_PASSES[$s]=99; done
	for p in $(seq 1 10); do
		TAGS="$tags\"pass\":$p,"
		hot_batch warm "${left[*]}" "$mb" 16 $((900 + p))
		sleep 0.5
		local still=()
		for s in "${left[@]}"; do
			read -r reads hits < <(grep "\"sys\":\"$s\"" "$REC" | tail -n 1 |
				sed -E 's/.*"reads":([0-9]+),"hits":(-?[0-9]+).*/\1 \2/')
			if ((reads > 0 && hits * 100 >= reads * 99)); then
				WARM_PASSES[$s]=$p
			else
				still+=("$s")
			fi
		done
		((${#still[@]})) || return 0
		left=("${still[@]}")
	done
	log "warning: ${left[*]} did not reach 99% hits in 10 warm passes"
}

rotate() { # rotate N LIST...: the list rotated left by N
	local n=$1; shift
	local a=("$@") i
	for ((i = 0; i < ${#a[@]}; i++)); do printf '%s ' "${a[(i + n) % ${#a[@]}]}"; done
}

CACHING=(ic dmc bc)
# bcache refuses a cache of 512 buckets or fewer: use 2048, of at most 512 KiB
BC_BUCKET=4096
while ((BC_BUCKET * 2 * 2048 <= CACHE_MB * 1048576 && BC_BUCKET < 524288)); do BC_BUCKET=$((BC_BUCKET * 2)); done

# ------------------------------------------------------------------ env
{
	echo "kernel=$(uname -r)"
	echo "cmdline=$(cat /proc/cmdline)"
	echo "cpus=$(nproc)"
	echo "cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)"
	echo "fio=$(fio --version)"
	echo "bcache_tools=$(dpkg-query -W -f='${Version}' bcache-tools 2>/dev/null)"
	echo "nvme=${NV[*]}"
	echo "ic_module=$(md5sum <"$IC_KO" | cut -c1-12)"
	echo "bc_bucket_kib=$((BC_BUCKET / 1024))"
	for k in PARTS CACHES LATS REPS AB_REPS AB_ROUNDS CACHE_MB ORIGIN_MB HOT_MB RUNTIME WARM_MB PASSES SCAN_MB SCAN_BS ZIPF_WARM ZIPF_IOS F_ROWS F_WARM F_OPS F_THREADS; do
		echo "$k=${!k}"
	done
} >"$W/env.txt"
log "start: $(tr '\n' ' ' <"$W/env.txt")"

# ------------------------------------------------------------------ a + b
# Warm QD1 and QD32 4 KiB random reads over a hot set held by every cache.
# All five systems stand side by side (own devices) and their runs are
# interleaved, in a rotated order each repetition, so that drift in the
# emulator's speed hits all of them alike.
part_ab() {
	local kind s rep lat sys=(raw linear ic dmc bc) tm
	tm=(--time_based --runtime="$RUNTIME" --ramp_time=100ms)
	for kind in $CACHES; do
		log "== a/b on $kind"
		for s in "${sys[@]}"; do sys_up "$s" "$kind" "$LAT0"; done
		# the raw device reads real data, as the caches will
		fio --name=prep --filename="${DEV[raw]}" --direct=1 --rw=write --bs=1M --size="${HOT_MB}M" \
			--ioengine=libaio --iodepth=4 --eta=never --output=/dev/null || die "prep raw"
		warm_all "$HOT_MB" "\"wl\":\"warm\",\"cache\":\"$kind\",\"lat_us\":$LAT0," "${CACHING[@]}"
		for s in "${CACHING[@]}"; do
			TAGS="\"wl\":\"warm_done\",\"cache\":\"$kind\",\"lat_us\":$LAT0,\"passes\":${WARM_PASSES[$s]},"
			record note "$s" "0 0 0 0" "0 0 0 0 -" ""
			log "$s on $kind: warm after ${WARM_PASSES[$s]} pass(es): $(stat_line "$s")"
		done
		for ((rep = 1; rep <= AB_REPS; rep++)); do
			TAGS="\"wl\":\"a\",\"cache\":\"$kind\",\"lat_us\":$LAT0,\"rep\":$rep,"
			ROUNDS=$AB_ROUNDS run_batch a "$(rotate "$rep" "${sys[@]}")" --rw=randread --size="${HOT_MB}M" --ioengine=psync \
				"${tm[@]}" --randseed=$((100 + rep))
			TAGS="\"wl\":\"b\",\"cache\":\"$kind\",\"lat_us\":$LAT0,\"rep\":$rep,"
			ROUNDS=$AB_ROUNDS run_batch b "$(rotate "$rep" "${sys[@]}")" --rw=randread --size="${HOT_MB}M" --ioengine=libaio \
				--iodepth=32 "${tm[@]}" --randseed=$((200 + rep))
			log "a/b $kind rep $rep done"
		done
		for s in "${sys[@]}"; do sys_down "$s"; done
		checkpoint
	done
	# the slow origin alone, at every latency (reference)
	for lat in $LATS; do
		sys_up origin nvme "$lat"
		for ((rep = 1; rep <= REPS; rep++)); do
			TAGS="\"wl\":\"a\",\"cache\":\"none\",\"lat_us\":$lat,\"rep\":$rep,"
			run_batch a origin --rw=randread --size="${HOT_MB}M" --ioengine=psync "${tm[@]}" --randseed=$((100 + rep))
			TAGS="\"wl\":\"b\",\"cache\":\"none\",\"lat_us\":$lat,\"rep\":$rep,"
			run_batch b origin --rw=randread --size="${HOT_MB}M" --ioengine=libaio --iodepth=32 "${tm[@]}" \
				--randseed=$((200 + rep))
		done
		sys_down origin
		log "origin $lat us done"
	done
	checkpoint
}

# ------------------------------------------------------------------ c + e
# c: QD1 passes over a hot set that fits the cache, from cold.
# e: then a one-pass sequential scan of twice the cache size (outside the
#    hot set), then two more hot-set passes.
part_ce() {
	local lat rep p s
	for lat in $LATS; do
		sys_up origin nvme "$lat"
		TAGS="\"wl\":\"c\",\"cache\":\"none\",\"lat_us\":$lat,\"rep\":1,\"pass\":1,"
		hot_batch c origin "$WARM_MB" 1 301
		sys_down origin
		for ((rep = 1; rep <= REPS; rep++)); do
			log "== c/e origin ${lat}us rep $rep"
			for s in "${CACHING[@]}"; do sys_up "$s" nvme "$lat"; done
			for ((p = 1; p <= PASSES; p++)); do
				TAGS="\"wl\":\"c\",\"cache\":\"nvme\",\"lat_us\":$lat,\"rep\":$rep,\"pass\":$p,"
				hot_batch c "$(rotate $((rep + p)) "${CACHING[@]}")" "$WARM_MB" 1 $((300 + p))
			done
			TAGS="\"wl\":\"e\",\"phase\":\"scan\",\"cache\":\"nvme\",\"lat_us\":$lat,\"rep\":$rep,"
			run_batch scan "$(rotate "$rep" "${CACHING[@]}")" --rw=read --bs="$SCAN_BS" --offset="${WARM_MB}M" \
				--size="${SCAN_MB}M" --ioengine=libaio --iodepth=4
			for p in 1 2; do
				TAGS="\"wl\":\"e\",\"phase\":\"after$p\",\"cache\":\"nvme\",\"lat_us\":$lat,\"rep\":$rep,"
				hot_batch e "$(rotate $((rep + p)) "${CACHING[@]}")" "$WARM_MB" 1 $((400 + p))
			done
			for s in "${CACHING[@]}"; do sys_down "$s"; done
			checkpoint
		done
	done
}

# ------------------------------------------------------------------ d
# Zipf(1.1) 4 KiB random reads over the whole origin (4x the cache). The
# request stream is generated once (fio's own Zipf generator, null engine,
# write_iolog) and replayed on every system, so all see exactly the same
# reads: a QD16 warm-up of ZIPF_WARM reads (the three systems at the same time:
# it is not timed), then REPS measured QD1 windows (one system at a time) of
# ZIPF_IOS reads that continue the same stream. (fio's Zipf generator cannot
# be continued across processes: randseed also moves the hot set, and with
# randrepeat=1 it is seeded from the file name.)
part_d() {
	local lat rep s n=$((ZIPF_WARM + REPS * ZIPF_IOS)) z=/tmp/zipf
	mkdir -p "$z"
	truncate -s $((ORIGIN_MB - 1))M "$z/dev"
	fio --name=zgen --filename="$z/dev" --ioengine=null --rw=randread --random_distribution=zipf:1.1 \
		--norandommap --randrepeat=0 --randseed=500 --bs=4k --size=$((ORIGIN_MB - 1))M \
		--io_size=$((n * 4))k --number_ios="$n" --write_iolog="$z/all.log" --eta=never --output=/dev/null ||
		die "generating the Zipf stream failed"
	# split: 3 header lines (version, add, open), then one line per read
	awk -v w="$ZIPF_WARM" -v k="$ZIPF_IOS" -v dir="$z" 'NR <= 3 { hdr = hdr $0 "\n"; next }
		$3 == "read" { i++; f = (i <= w) ? "warm" : "win" int((i - w - 1) / k + 1)
			if (!(f in seen)) { seen[f] = 1; printf "%s", hdr > (dir "/" f ".log") }
			print > (dir "/" f ".log") }' "$z/all.log"
	[[ -s $z/warm.log && -s $z/win$REPS.log ]] || die "splitting the Zipf stream failed"
	# the offsets in replay order, for the report's bounds (report.py zipf_bounds)
	awk 'NR > 3 && $3 == "read" { print $4 }' "$z/all.log" >"$W/d_stream.txt"
	local rp=(--replay_no_stall=1)
	for lat in $LATS; do
		log "== d origin ${lat}us"
		for s in "${CACHING[@]}" origin; do sys_up "$s" nvme "$lat"; done
		TAGS="\"wl\":\"d\",\"phase\":\"warmup\",\"cache\":\"nvme\",\"lat_us\":$lat,"
		JOBARG=replay_redirect PARALLEL=1 run_batch dwarm "${CACHING[*]}" --read_iolog="$z/warm.log" "${rp[@]}" \
			--ioengine=libaio --iodepth=16
		for s in "${CACHING[@]}"; do log "d warm $s: $(stat_line "$s")"; done
		for ((rep = 1; rep <= REPS; rep++)); do
			TAGS="\"wl\":\"d\",\"phase\":\"measure\",\"cache\":\"nvme\",\"lat_us\":$lat,\"rep\":$rep,"
			JOBARG=replay_redirect run_batch d "$(rotate "$rep" "${CACHING[@]}")" --read_iolog="$z/win$rep.log" \
				"${rp[@]}" --ioengine=psync
		done
		TAGS="\"wl\":\"d\",\"phase\":\"measure\",\"cache\":\"none\",\"lat_us\":$lat,\"rep\":1,"
		JOBARG=replay_redirect run_batch d origin --read_iolog="$z/win1.log" "${rp[@]}" --ioengine=psync
		for s in "${CACHING[@]}" origin; do sys_down "$s"; done
		checkpoint
	done
	rm -rf "$z"
}

# ------------------------------------------------------------------ f
# Embedding-table lookups (tools/bench/embed_lookup.c) on ext4 over each
# system: a table of F_ROWS 4 KiB rows written through the system, page cache
# dropped, F_THREADS threads doing O_DIRECT pread lookups of Zipf(1.1)-chosen
# rows (popular rows scattered over the file): a warm-up phase, then REPS
# measured windows.
run_embed() { # SYS LABEL SEED OPS
	local s=$1 pre id
	SEQ=$((SEQ + 1))
	id=$(printf '%04d-%s-%s' "$SEQ" "$2" "$s")
	pre=$(stat_line "$s")
	"$EMBED" lookup /tmp/bmnt/table.emb -t "$F_THREADS" -n "$4" -d zipf:1.1 -s "$3" -l "$2" \
		>"$W/fio/$id.embed.json" || die "embed_lookup $id failed (status $?)"
	record embed "$s" "$pre" "$(stat_line "$s")" "$id"
}
part_f() {
	local s rep
	[[ -x $EMBED ]] || die "$EMBED not built (bench.sh builds it)"
	mkdir -p /tmp/bmnt
	log "== f"
	for s in raw origin ic dmc bc; do
		sys_up "$s" nvme "$LAT0"
		# 4 KiB blocks (mke2fs would pick 1 KiB for a small device), few inodes
		# and a small journal: fast to make, nothing left for ext4lazyinit
		mkfs.ext4 -q -F -b 4096 -N 256 -J size=4 -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 \
			"${DEV[$s]}" || die "mkfs $s"
		mount -o noatime "${DEV[$s]}" /tmp/bmnt || die "mount $s"
		"$EMBED" create /tmp/bmnt/table.emb "$F_ROWS" >/dev/null || die "create table on $s"
		sync
		echo 3 >/proc/sys/vm/drop_caches
		TAGS="\"wl\":\"f\",\"phase\":\"warmup\",\"cache\":\"nvme\",\"lat_us\":$LAT0,"
		run_embed "$s" fwarm 700 "$F_WARM"
		for ((rep = 1; rep <= REPS; rep++)); do
			TAGS="\"wl\":\"f\",\"phase\":\"measure\",\"cache\":\"nvme\",\"lat_us\":$LAT0,\"rep\":$rep,"
			run_embed "$s" f $((700 + rep)) "$F_OPS"
		done
		umount /tmp/bmnt
		sys_down "$s"
		log "f $s done"
		checkpoint
	done
}

# workload w: tools/bench/guest-writeback.sh (part_w)
# shellcheck source=tools/bench/guest-writeback.sh
. "$IC_SRC/tools/bench/guest-writeback.sh"
# workload s: tools/bench/guest-scaling.sh (part_s)
# shellcheck source=tools/bench/guest-scaling.sh
. "$IC_SRC/tools/bench/guest-scaling.sh"

for part in $PARTS; do
	case $part in
	ab) part_ab ;;
	ce) part_ce ;;
	d) part_d ;;
	f) part_f ;;
	w) part_w ;;
	s) part_s ;;
	*) die "unknown part $part" ;;
	esac
done
log "all done"
elapsed >"$W/guest_seconds"
checkpoint
