# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash disable=SC2034,SC2153
# (sourced: the variables are used and set by guest-bench.sh)
#
# Workload w of tools/bench (issue 4): writeback. Sourced by guest-bench.sh,
# which provides the devices, sys_up/sys_down, stat_line, record, log, die.
# Run alone with `make bench-writeback` (= BENCH_PARTS=w tools/bench/bench.sh).
#
# Systems, each on its own identical QEMU NVMe controller and null_blk origin:
#   icw   infercache, `mode writeback`, default controller settings
#   wc    dm-writecache, SSD mode, 4 KiB blocks, BENCH_WC_OPTS
#   bcw   bcache, cache_mode writeback, writeback_percent 10 (the default)
#   bcw0  bcache, cache_mode writeback, writeback_percent 0 (no rate limit)
#
# w1 (read latency under writeback), WB_REPS repetitions, systems in a
# rotated order; per run:
#   read   one fio process: Zipf(1.1) 4 KiB random reads over the first
#          WB_READ_MB MiB (warmed first: the caching systems hold all of it),
#          QD WB_QD, direct, from start to end; every I/O logged with its
#          completion time (unix ms)
#   burst  after WB_BASE_S s of reads, a second fio process: WB_BURST_MB MiB
#          of 4 KiB writes at QD16, each block once, random order, scattered
#          over a region 4x that size (WB_BURST=rand), or sequential 128 KiB
#          writes (seq). With WB_HOLD=1 (default) writeback is held back while
#          it runs (icw writeback_pause, bcache writeback_running 0, wc: its
#          default watermarks, which the burst stays under) and let go when
#          it ends (writeback_resume, writeback_running 1, wc `cleaner`): every
#          system starts (b) with the whole burst dirty.
# A poller samples the origin's read/write sectors every 0.1 s; 0.5 s after
# the origin has received the whole burst (= everything written back) the
# reads are stopped; at the latest WB_WINDOW_S s after the release.
# report_wb.py cuts the read log into (a) before the burst, the burst, and (b)
# from the release until the origin has it all.
#
# w2 (drain rate, no reads), WB_REPS repetitions: dirty WB_DRAIN_MB MiB with
# writeback held back, then let it go and time until the origin has it all
# (samples every 20 ms); seq and rand patterns as above. How each is held
# back and let go:
#   icw  writeback_pause, then writeback_resume (idle drain) -- or `flush`
#   wc   defaults (high_watermark 50: the burst stays below it), then the
#        `cleaner` message (write back everything; a fresh wc every run)
#   bcw0 writeback_running 0, then 1 (writeback_percent 0: no rate limit)
# against the origin alone written with fio in the same patterns at QD16 and
# QD32 (bs 256k for seq: infercache's largest batch). All of w2 is done once
# per WB_ORIGIN_MBPS value (fresh origins with that bandwidth limit).
#
# Knobs (environment, defaults in brackets):
#   BENCH_WB_SYSTEMS "icw wc bcw bcw0"   BENCH_WB_REPS [BENCH_REPS]
#   BENCH_WB_READ_MB 16   BENCH_WB_QD 1   BENCH_WB_BASE_S 6
#   BENCH_WB_BURST_MB 16 (a quarter of the cache)   BENCH_WB_BURST rand
#   BENCH_WB_WINDOW_S 40  BENCH_WB_DRAIN_MB 24   BENCH_WB_PATTERNS "seq rand"
#   BENCH_WB_PARTS "w1 w2"   BENCH_WB_HOLD 1
#   BENCH_WB_ORIGIN_MBPS "0 20"  w2 once per value: the origins' null_blk
#     bandwidth limit in MiB/s (0: none, the timer alone; a limit makes the
#     origin, not the emulated cache device, the bottleneck, as in real use)
#   BENCH_WC_OPTS "high_watermark 10 low_watermark 0" (w1 with WB_HOLD=0; with
#     the defaults 50/45 a burst of a quarter of the cache is never written
#     back)
#   BENCH_WC_DRAIN_OPTS "" (w2, and w1 with WB_HOLD=1)
#   BENCH_IC_WB_OPTS "" (extra infercache table options)

WB_SYSTEMS=${BENCH_WB_SYSTEMS:-icw wc bcw bcw0}
WB_REPS=${BENCH_WB_REPS:-$REPS}
WB_READ_MB=${BENCH_WB_READ_MB:-16}
WB_QD=${BENCH_WB_QD:-1}
WB_BASE_S=${BENCH_WB_BASE_S:-6}
WB_BURST_MB=${BENCH_WB_BURST_MB:-$((CACHE_MB / 4))}
WB_BURST=${BENCH_WB_BURST:-rand}
WB_WINDOW_S=${BENCH_WB_WINDOW_S:-40}
WB_DRAIN_MB=${BENCH_WB_DRAIN_MB:-$((CACHE_MB * 3 / 8))}
WB_PATTERNS=${BENCH_WB_PATTERNS:-seq rand}
WB_ORIGIN_MBPS=${BENCH_WB_ORIGIN_MBPS:-0 20}
WB_PARTS=${BENCH_WB_PARTS:-w1 w2}
WB_HOLD=${BENCH_WB_HOLD:-1}
WB_WC_OPTS=${BENCH_WC_OPTS-high_watermark 10 low_watermark 0}
WB_WC_DRAIN_OPTS=${BENCH_WC_DRAIN_OPTS:-}
IC_WB_OPTS=${BENCH_IC_WB_OPTS:-}
WB_OFF_MB=$((WB_READ_MB * 2)) # the burst region starts here (after the read region)
WB_BURST_CAP_S=30             # the burst itself must end within this

exec {WB_SFD}<> <(:) # read -t on this fd = sleep without a fork

# wb_pattern PATTERN MB: the fio options of a burst of MB MiB
wb_pattern() {
	case $1 in
	seq) echo "--rw=write --bs=128k --offset=${WB_OFF_MB}M --size=${2}M" ;;
	rand) echo "--rw=randwrite --bs=4k --offset=${WB_OFF_MB}M --size=$((4 * $2))M --io_size=${2}M" ;;
	*) die "unknown burst pattern $1" ;;
	esac
}

# ic_wb_fields STATUS-WORDS...: the writeback fields of infercache's status
# (Documentation/admin-guide/dm-infercache.rst: after commits, <dirty>
# <wb_state> <written_back> <writeback_ios> <backoffs> <read_p99_us>
# <target_us>), found by the wb_state word, so that another layout still
# parses; part_w1 logs where it was found. Prints "N dirty=..,...".
ic_wb_fields() {
	local f=("$@") i
	for ((i = 16; i < ${#f[@]}; i++)); do
		case ${f[i]} in
		idle | running | backoff | paused | flushing)
			echo "$((i - 2)) dirty=${f[i - 1]},wb_state=${f[i]},written_back=${f[i + 1]:-},wb_ios=${f[i + 2]:-},backoffs=${f[i + 3]:-},read_p99_us=${f[i + 4]:-},target_us=${f[i + 5]:-},mode=${f[16]}"
			return 0
			;;
		esac
	done
	echo "0 dirty=?,wb_state=?,mode=${f[16]:-?}"
}

# wb_stat_line SYS ORIGIN_READ_IOS ORIGIN_READ_SECTORS (for stat_line)
wb_stat_line() {
	local s=$1 oi=$2 os=$3 st f r dd
	case $s in
	icw)
		st=$(dmsetup status b_icw) || die "status icw"
		read -r -a f <<<"$st"
		st=$(ic_wb_fields "${f[@]}")
		echo "${f[5]} ${f[6]} $oi $os writes=${f[9]},write_hits=${f[10]},${st#* },cached=${f[4]}" ;;
	wc)
		# <error> <blocks> <free> <under writeback> <read blocks> <read hits> <write blocks> ...
		st=$(dmsetup status b_wc) || die "status wc"
		read -r -a f <<<"$st"
		echo "${f[7]:-0} ${f[8]:-0} $oi $os error=${f[3]},blocks=${f[4]},free=${f[5]},under_wb=${f[6]},writes=${f[9]:-}" ;;
	bcw | bcw0)
		read -r _ _ r _ <"/sys/block/${DEV[$s]##*/}/stat"
		read -r dd <"/sys/block/${DEV[$s]##*/}/bcache/dirty_data"
		echo "$((r / 8)) $(((r - os) / 8)) $oi $os dirty_data=$dd" ;;
	esac
}

# wb_dirty_kib SYS: what the system holds dirty, KiB (bcache: rounded, it
# prints 3 digits)
wb_dirty_kib() {
	local s=$1 st f dd n u
	case $s in
	icw)
		st=$(dmsetup status b_icw) || die "status icw"
		read -r -a f <<<"$st"
		st=$(ic_wb_fields "${f[@]}")
		n=${st#* dirty=}
		n=${n%%,*}
		if [[ $n =~ ^[0-9]+$ ]]; then
			echo $((n * f[3] / 1024))
		else
			log "warning: cannot read infercache's dirty count: $st" >&2
			echo -1
		fi ;;
	wc)
		st=$(dmsetup status b_wc) || die "status wc"
		read -r -a f <<<"$st"
		echo $(((f[4] - f[5]) * 4)) ;;
	bcw | bcw0)
		read -r dd <"/sys/block/${DEV[$s]##*/}/bcache/dirty_data"
		n=${dd%[kMGT]}
		u=${dd:${#n}}
		n=${n%.*}
		case $u in M) n=$((n * 1024)) ;; G) n=$((n * 1048576)) ;; esac
		echo "$n" ;;
	*) echo 0 ;;
	esac
}

# wb_settle SYS: nothing dirty, nothing being written back (timeout 120 s)
wb_settle() {
	local s=$1 i d dev=${DEV[$1]##*/}
	d=$(wb_dirty_kib "$s")
	if ((d > 0)); then
		case $s in
		icw) timeout 120 dmsetup message b_icw 0 flush || log "warning: icw flush failed" ;;
		bcw) echo 0 >"/sys/block/$dev/bcache/writeback_percent" ;;
		esac
		[[ $s == bcw* ]] && echo 1 >"/sys/block/$dev/bcache/writeback_running" # a wake-up
		for ((i = 0; i < 1200; i++)); do
			d=$(wb_dirty_kib "$s")
			((d == 0)) && break
			read -r -t 0.1 -u "$WB_SFD"
		done
		[[ $s == bcw ]] && echo 10 >"/sys/block/$dev/bcache/writeback_percent"
		((d == 0)) || log "warning: $s still holds $d KiB dirty after 120 s"
	fi
	read -r -t 1 -u "$WB_SFD" # let the last writeback and commits settle
}

# ------------------------------------------------------------------ w1
# wb_hold SYS / wb_release SYS: keep the burst dirty while it is written, then
# let writeback go (WB_HOLD=1; dm-writecache holds by itself: it was created
# with its default watermarks, which the burst stays under)
wb_hold() {
	case $1 in
	icw) dmsetup message b_icw 0 writeback_pause || die "icw: writeback_pause refused" ;;
	bcw | bcw0) echo 0 >"/sys/block/${DEV[$1]##*/}/bcache/writeback_running" ;;
	esac
}
wb_release() {
	case $1 in
	icw) dmsetup message b_icw 0 writeback_resume || die "icw: writeback_resume refused" ;;
	wc) dmsetup message b_wc 0 cleaner || die "wc: cleaner refused" ;;
	bcw | bcw0) echo 1 >"/sys/block/${DEV[$1]##*/}/bcache/writeback_running" ;;
	esac
}

wb_run() { # SYS REP: one run on SYS: reads throughout, a burst, its writeback
	local s=$1 rep=$2 id dev=${DEV[$1]} o=${ORIG[$1]##*/} pre rpid bpid st now rs=0 ws=0 ws0 r0 r
	local done_t=0 killed=0 t_launch t_rel
	local bsec=$((WB_BURST_MB * 2048)) eng=(--ioengine=psync) burst trace dsys
	local lg=(--log_avg_msec=0 --log_unix_epoch=1 --disable_slat=1 --disable_clat=1)
	read -r -a burst <<<"$(wb_pattern "$WB_BURST" "$WB_BURST_MB")"
	((WB_QD > 1)) && eng=(--ioengine=libaio --iodepth="$WB_QD")
	# the device's own counters (a /dev/mapper node is no symlink without udev)
	dsys=$(stat -L -c '%t %T' "$dev") || die "stat $dev"
	dsys=$(printf '/sys/dev/block/%d:%d/stat' "0x${dsys% *}" "0x${dsys#* }")
	[[ -r $dsys ]] || die "no $dsys for $dev"
	wb_settle "$s"
	SEQ=$((SEQ + 1))
	id=$(printf '%04d-wb-%s' "$SEQ" "$s")
	trace=$W/wb/$id.trace
	: >"$trace"
	pre=$(stat_line "$s")
	read -r _ _ _ _ _ _ ws0 _ <"/sys/block/$o/stat"
	read -r r0 _ <"$dsys"
	# the reads: until the poller stops them
	fio --eta=never --direct=1 --output-format=json --output="$W/fio/$id.json" \
		--name=read --filename="$dev" --rw=randread --bs=4k --size="${WB_READ_MB}M" \
		--random_distribution=zipf:1.1 --norandommap --randrepeat=0 --randseed=$((600 + rep)) "${eng[@]}" \
		--time_based --runtime=$((WB_BASE_S + 60 + WB_BURST_CAP_S + WB_WINDOW_S)) \
		--write_lat_log="$W/wb/$id.read" "${lg[@]}" &
	rpid=$!
	wb_sample() {
		read -r _ _ rs _ _ _ ws _ <"/sys/block/$o/stat"
		now=${EPOCHREALTIME/./}
		echo "$((now / 1000)) $rs $ws" >>"$trace"
	}
	# (a): WB_BASE_S s of reads once they have started (fio starts slowly)
	for ((r = 0; r < 600; r++)); do
		read -r rs _ <"$dsys"
		((rs > r0)) && break
		read -r -t 0.1 -u "$WB_SFD"
	done
	for ((r = 0; r < WB_BASE_S * 10; r++)); do
		wb_sample
		read -r -t 0.1 -u "$WB_SFD"
	done
	# the burst (its own fio process; the poller keeps sampling)
	((WB_HOLD)) && wb_hold "$s"
	t_launch=${EPOCHREALTIME/./}
	fio --eta=never --direct=1 --output-format=json --output="$W/fio/$id.burst.json" \
		--name=burst --filename="$dev" "${burst[@]}" --randrepeat=0 --randseed=700 \
		--ioengine=libaio --iodepth=16 --write_lat_log="$W/wb/$id.burst" "${lg[@]}" &
	bpid=$!
	while kill -0 "$bpid" 2>/dev/null; do
		wb_sample
		read -r -t 0.1 -u "$WB_SFD"
	done
	wait "$bpid" || die "fio $id burst failed"
	t_rel=${EPOCHREALTIME/./}
	((WB_HOLD)) && wb_release "$s"
	# (b): until the origin has the whole burst (+0.5 s), at most WB_WINDOW_S
	while kill -0 "$rpid" 2>/dev/null; do
		wb_sample
		((done_t == 0 && ws - ws0 >= bsec)) && done_t=$now
		if ((!killed && ((done_t && now - done_t >= 500000) || now - t_rel >= WB_WINDOW_S * 1000000))); then
			kill -INT "$rpid" 2>/dev/null
			killed=1
		fi
		read -r -t 0.1 -u "$WB_SFD"
	done
	wait "$rpid"
	st=$?
	((st == 0 || killed)) || die "fio $id failed (status $st)"
	local tags=$TAGS
	TAGS="$tags\"ws0\":$ws0,\"burst_sectors\":$bsec,\"clean_seen\":$((done_t > 0)),\"hold\":$WB_HOLD,"
	TAGS+="\"t_launch_ms\":$((t_launch / 1000)),\"t_release_ms\":$((t_rel / 1000)),"
	record wb "$s" "$pre" "$(stat_line "$s")" "$id"
	TAGS=$tags
	gzip -1 -f "$W/wb/$id".*.log
	log "w1 $s rep $rep: $(tail -n 1 "$REC" | sed -E 's/.*"extra":"([^"]*)".*/\1/') $( ((done_t)) && echo "clean $(((done_t - t_rel) / 1000)) ms after the burst" || echo "NOT clean ${WB_WINDOW_S}s after the burst")"
}

part_w1() {
	local s rep sys=() warm=()
	for s in $WB_SYSTEMS; do
		if [[ -z ${CDEV[nvme:$s]:-} ]]; then
			log "warning: no NVMe device for $s (bench.sh adds a fifth for bcw0): skipped"
			continue
		fi
		sys+=("$s")
		[[ $s == wc ]] || warm+=("$s") # dm-writecache does not cache reads
	done
	log "== w1: read latency while a burst is written back (${sys[*]})"
	ORIGIN_PREFILL_MB=$((WB_OFF_MB + 4 * WB_BURST_MB + 1))
	WC_OPTS=$WB_WC_OPTS
	((WB_HOLD)) && WC_OPTS=$WB_WC_DRAIN_OPTS
	for s in "${sys[@]}"; do sys_up "$s" nvme "$LAT0"; done
	if [[ -n ${DEV[icw]:-} ]]; then
		local st f
		st=$(dmsetup status b_icw)
		read -r -a f <<<"$st"
		st=$(ic_wb_fields "${f[@]}")
		log "infercache status: ${#f[@]} words, wb_state is field \$${st%% *} (the rst's list: \$22)"
	fi
	((${#warm[@]})) && warm_all "$WB_READ_MB" "\"wl\":\"wb_warm\",\"cache\":\"nvme\",\"lat_us\":$LAT0," "${warm[@]}"
	for s in "${warm[@]}"; do log "w1 $s warm after ${WARM_PASSES[$s]} pass(es): $(stat_line "$s")"; done
	for ((rep = 1; rep <= WB_REPS; rep++)); do
		for s in $(rotate "$rep" "${sys[@]}"); do
			# the cleaner message (the release) is for good: a fresh
			# dm-writecache for every run (it holds no reads to warm)
			if [[ $s == wc ]] && ((WB_HOLD && rep > 1)); then
				sys_down wc
				sys_up wc nvme "$LAT0"
			fi
			TAGS="\"wl\":\"wb\",\"cache\":\"nvme\",\"lat_us\":$LAT0,\"rep\":$rep,\"passes\":${WARM_PASSES[$s]:-0},"
			wb_run "$s" "$rep"
			checkpoint
		done
	done
	WC_OPTS='' ORIGIN_PREFILL_MB=0
	for s in "${sys[@]}"; do sys_down "$s"; done
	TAGS=''
	checkpoint
}

# ------------------------------------------------------------------ w2
# wb_drain SYS METHOD PATTERN REP: one drain measurement (one JSON record)
wb_drain() {
	local s=$1 how=$2 pat=$3 rep=$4 id dev=${DEV[$1]} o=${ORIG[$1]##*/} bdev=${DEV[$1]##*/} burst
	local dsec=$((WB_DRAIN_MB * 2048)) ws ws0 wsb ws1 t0 t1 now i left=0 bw
	read -r -a burst <<<"$(wb_pattern "$pat" "$WB_DRAIN_MB")"
	wb_settle "$s"
	SEQ=$((SEQ + 1))
	id=$(printf '%04d-drain-%s-%s-%s' "$SEQ" "$s" "$how" "$pat")
	case $s in
	icw) dmsetup message b_icw 0 writeback_pause || die "icw: writeback_pause refused" ;;
	bcw0) echo 0 >"/sys/block/$bdev/bcache/writeback_running" ;;
	esac
	read -r _ _ _ _ _ _ ws0 _ <"/sys/block/$o/stat"
	fio --eta=never --direct=1 --output-format=json --output="$W/fio/$id.json" --name=burst --filename="$dev" \
		"${burst[@]}" --randrepeat=0 --randseed=800 --ioengine=libaio --iodepth=16 ||
		die "fio $id failed"
	read -r _ _ _ _ _ _ wsb _ <"/sys/block/$o/stat"
	local dirty0
	dirty0=$(wb_dirty_kib "$s")
	local trace=$W/wb/$id.trace
	t0=${EPOCHREALTIME/./}
	echo "$((t0 / 1000)) 0 $wsb" >"$trace"
	case $how in
	idle) dmsetup message b_icw 0 writeback_resume || die "icw: writeback_resume refused" ;;
	flush) timeout 300 dmsetup message b_icw 0 flush || die "icw: flush failed" ;;
	cleaner) dmsetup message b_wc 0 cleaner || die "wc: cleaner refused" ;;
	wp0) echo 1 >"/sys/block/$bdev/bcache/writeback_running" ;;
	*) die "unknown drain method $how" ;;
	esac
	t1=0
	for ((i = 0; i < 6000; i++)); do # at most 120 s
		read -r _ _ _ _ _ _ ws _ <"/sys/block/$o/stat"
		now=${EPOCHREALTIME/./}
		echo "$((now / 1000)) 0 $ws" >>"$trace"
		if ((ws - ws0 >= dsec)); then
			t1=$now ws1=$ws
			break
		fi
		[[ $how == flush ]] && { t1=$now ws1=$ws; break; } # flush returned: done
		read -r -t 0.02 -u "$WB_SFD"
	done
	[[ $how == flush ]] && dmsetup message b_icw 0 writeback_resume
	# the system's own account: clean?
	for ((i = 0; i < 50; i++)); do
		left=$(wb_dirty_kib "$s")
		((left == 0)) && break
		read -r -t 0.1 -u "$WB_SFD"
	done
	bw=$(sed -nE 's/.*"bw_bytes" : ([0-9]+).*/\1/p' "$W/fio/$id.json" | sort -n | tail -n 1)
	printf '{%s"wl":"drain","sys":"%s","method":"%s","pattern":"%s","rep":%d,"id":"%s","drain_mb":%d,"dirty_before_kib":%d,"written_in_burst_sectors":%d,"drained_sectors":%d,"drain_us":%d,"done":%d,"dirty_after_kib":%d,"burst_bw_bytes":%d,"extra":"%s","t":%s}\n' \
		"$TAGS" "$s" "$how" "$pat" "$rep" "$id" "$WB_DRAIN_MB" "$dirty0" $((wsb - ws0)) $((${ws1:-$ws} - wsb)) \
		$(((${t1:-0} > 0 ? t1 : now) - t0)) $((t1 > 0)) "$left" "${bw:-0}" "$(stat_line "$s" | cut -d' ' -f5-)" "$(elapsed)" >>"$REC"
	log "w2 $s $how $pat rep $rep: dirty ${dirty0} KiB, $(((${ws1:-$ws} - wsb) / 2)) KiB to the origin in $(((${t1:-0} > 0 ? t1 : now) - t0)) us$( ((t1)) || echo ' (NOT done)'), left $left KiB"
}

wb_raw() { # REP: the origin alone, written in the drain patterns
	local rep=$1 pat qd id jobs=() burst
	SEQ=$((SEQ + 1))
	id=$(printf '%04d-wb-raw' "$SEQ")
	for pat in $WB_PATTERNS; do
		read -r -a burst <<<"$(wb_pattern "$pat" "$WB_DRAIN_MB")"
		[[ $pat == seq ]] && burst=("${burst[@]/--bs=128k/--bs=256k}")
		for qd in 16 32; do
			jobs+=(--name="$pat.$qd" --filename="${DEV[origin]}" "${burst[@]}" --randrepeat=0 --randseed=800
				--ioengine=libaio --iodepth="$qd" --stonewall)
		done
	done
	fio --eta=never --direct=1 --output-format=json --output="$W/fio/$id.json" "${jobs[@]}" || die "fio $id failed"
	printf '{%s"wl":"wb_raw","sys":"origin","rep":%d,"fio":"%s","drain_mb":%d,"t":%s}\n' "$TAGS" "$rep" "$id" "$WB_DRAIN_MB" "$(elapsed)" >>"$REC"
}

part_w2() {
	local mbps
	for mbps in $WB_ORIGIN_MBPS; do
		NB_MBPS=$mbps part_w2_one "$mbps"
	done
}

part_w2_one() { # MBPS
	local rep s pat how runs=() r sys=() mb=$1
	log "== w2: drain rate with no reads (${WB_DRAIN_MB} MiB dirty; patterns $WB_PATTERNS; origin limit ${mb} MiB/s)"
	# (a bandwidth-limited origin is not prefilled: too slow, and its limit,
	# not the first-write page allocation, sets the pace)
	ORIGIN_PREFILL_MB=$((WB_OFF_MB + 4 * WB_DRAIN_MB + 1))
	((mb)) && ORIGIN_PREFILL_MB=0
	for s in $WB_SYSTEMS; do
		case $s in
		icw) runs+=(icw:idle icw:flush) ;;
		wc) runs+=(wc:cleaner) ;;
		bcw0) [[ -n ${CDEV[nvme:bcw0]:-} ]] && runs+=(bcw0:wp0) ;;
		esac
	done
	for r in "${runs[@]}"; do
		s=${r%%:*}
		[[ $s == wc || " ${sys[*]} " == *" $s "* ]] || { sys+=("$s"); sys_up "$s" nvme "$LAT0"; }
	done
	sys_up origin nvme "$LAT0"
	local tags=$TAGS
	TAGS="\"mbps\":$mb,"
	for ((rep = 1; rep <= WB_REPS; rep++)); do
		wb_raw "$rep"
		for pat in $WB_PATTERNS; do
			for r in $(rotate "$rep" "${runs[@]}"); do
				s=${r%%:*} how=${r#*:}
				if [[ $s == wc ]]; then # cleaner is for good: a fresh one each time
					WC_OPTS=$WB_WC_DRAIN_OPTS
					sys_up wc nvme "$LAT0"
					WC_OPTS=''
				fi
				wb_drain "$s" "$how" "$pat" "$rep"
				[[ $s == wc ]] && sys_down wc
			done
		done
		checkpoint
	done
	TAGS=$tags
	ORIGIN_PREFILL_MB=0
	for s in "${sys[@]}" origin; do sys_down "$s"; done
	checkpoint
}

part_w() {
	mkdir -p "$W/wb"
	local k
	for k in WB_SYSTEMS WB_REPS WB_READ_MB WB_QD WB_BASE_S WB_BURST_MB WB_BURST WB_WINDOW_S WB_DRAIN_MB WB_PATTERNS WB_ORIGIN_MBPS \
		WB_PARTS WB_HOLD WB_WC_OPTS WB_WC_DRAIN_OPTS IC_WB_OPTS WB_OFF_MB; do
		echo "$k=${!k}"
	done >>"$W/env.txt"
	[[ " $WB_PARTS " == *" w1 "* ]] && part_w1
	[[ " $WB_PARTS " == *" w2 "* ]] && part_w2
	return 0
}
