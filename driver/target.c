// SPDX-License-Identifier: GPL-2.0-only
/*
 * dm-infercache: a cache on a fast device (NVMe) in front of slow storage,
 * for the small random reads of AI inference.
 *
 * Glossary
 *   origin   the slow device; it always holds every written byte
 *            (write-through)
 *   oblock   an origin block: a cache-block-sized, aligned piece of the
 *            target
 *   set      the IC_WAYS slots an oblock may live in (see index.h)
 *   slot     one cache block on the cache device: set * IC_WAYS + way
 *   hit      a read of a VALID slot: remapped to the cache device in ->map
 *   fill     after a read miss, the block read from the origin for the
 *            caller, copied into our own pages and written to a slot
 *
 * Theory of operation
 *   dm core splits bios at cache-block boundaries (max_io_len), so every
 *   data bio here lies inside one block. A read hit is remapped in place;
 *   nothing is allocated. A read miss of a block that policy admits reserves
 *   a way (FILLING), reads the whole block from the origin into pages of our
 *   own, copies the caller's part out, completes the caller, and then
 *   writes the pages to the slot from a worker. The fill is dropped if the
 *   block was written or discarded meanwhile (STALE), and no fill starts in
 *   a set while a write to that set is in flight, so a fill never installs
 *   data older than a write that completed. A write goes to the origin; if
 *   the block is cached it also goes to the slot, and the caller completes
 *   when both are done. A second write racing the first on the same cached
 *   block drops the block instead. A slot is reused only once no I/O that
 *   looked it up is in flight (ic_index inflight counts).
 *
 *   Errors on the cache device never fail a caller: a failed hit is retried
 *   on the origin, a failed write-through copy drops the block, and the
 *   target turns degraded (everything goes to the origin) until reloaded.
 *
 * Persistence (metadata.c): the index is loaded from the cache device at
 *   the first resume and described there again by commits (periodic, on
 *   every flush, on suspend). On disk a slot is VALID only while its data
 *   and the origin's agree and are both stable: a commit flushes both
 *   devices before it writes new entries, and any write or discard whose
 *   set may still have an entry for the block on disk (DURABLE ways, or
 *   RECLAIM: a way taken by a fill whose old entry is not yet removed) is
 *   deferred to a worker that removes those entries (FUA) before the write
 *   is issued. A fill into such a way does the same before writing its data.
 *   So after any crash every entry that checks out may be served.
 */
#include <linux/module.h>
#include <linux/init.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/device-mapper.h>
#include <linux/mempool.h>
#include <linux/percpu.h>
#include <linux/workqueue.h>
#include <linux/highmem.h>
#include <linux/sizes.h>
#include <linux/wait_bit.h>
#include <linux/ctype.h>
#include <linux/bitmap.h>
#include <linux/sched/mm.h>
#include <linux/ioprio.h>
#include <linux/ktime.h>

#include <linux/dm-infercache.h>
#include "geometry.h"
#include "index.h"
#include "policy.h"
#include "metadata.h"

#define DM_MSG_PREFIX "infercache"

#define IC_DEFAULT_BLOCK_SIZE	4096
#define IC_MAX_OPT_ARGS		(2 * IC_NR_OPTS - 1)	/* format has no value */
/* Misses of a stream longer than this are not filled (bcache's default). */
#define IC_DEFAULT_SEQ_THRESHOLD	SZ_4M
#define IC_MAX_SEQ_THRESHOLD		SZ_1G
#define IC_SEQ_THRESHOLD_ERROR \
	"Invalid sequential_threshold: must be 0 (off) to 1073741824 bytes"
#define IC_BLOCK_SIZE_ERROR \
	"Invalid block_size: must be a power of two from 4096 to 65536"
/* Fills in flight at most; more misses are served without a fill. */
#define IC_MAX_FILLS		512
#define IC_MIN_POOL_PAGES	64
#define IC_DEFAULT_COMMIT_MS	1000
#define IC_MAX_COMMIT_MS	600000
#define IC_COMMIT_INTERVAL_ERROR \
	"Invalid commit_interval: must be 0 (only on flush) to 600000 ms"
#define IC_ORIGIN_TAG_ERROR \
	"Invalid origin_tag: 1 to 31 characters of A-Z a-z 0-9 . _ : -"
/* Why a cache device is refused (ti->error). */
#define IC_SB_DAMAGED_ERROR \
	"Cache superblock is damaged (run infercache-check); add 'format' to re-format"
#define IC_SB_FOREIGN_ERROR \
	"Cache device holds no infercache superblock but is not blank: zero its first 8 KiB or add 'format'"
#define IC_SB_ORIGIN_ERROR \
	"Cache was formatted for an origin of another size; add 'format' to re-format"
#define IC_SB_SHRUNK_ERROR \
	"Cache device is smaller than when it was formatted; add 'format' to re-format"
#define IC_SB_BLOCK_ERROR \
	"Cache was formatted with another block_size; add 'format' to re-format"
#define IC_SB_TAG_ERROR \
	"Cache was formatted with another origin_tag; add 'format' to re-format"
#define IC_MAX_BLOCK_PAGES	DIV_ROUND_UP(IC_MAX_BLOCK_SECTORS << SECTOR_SHIFT, \
					     PAGE_SIZE)

/* Slots of the largest cache: its way words fit one kvmalloc. */
#define IC_MAX_SLOTS		(INT_MAX / sizeof(u64))
#define IC_TOO_LARGE_ERROR \
	"Cache too large for this block_size: over 268435455 blocks; use a larger block_size"

/* Writeback. */
#define IC_WB_MAX_BYTES		SZ_256K		/* one coalesced batch at most */
#define IC_WB_MAX_BLOCKS	(IC_WB_MAX_BYTES / (IC_MIN_BLOCK_SECTORS << SECTOR_SHIFT))
/* A block takes whole pages (one, if pages are larger): never more. */
#define IC_WB_MAX_PAGES		IC_WB_MAX_BLOCKS
#define IC_WB_MAX_INFLIGHT	256
#define IC_WB_TICK_MS		100		/* controller window */
#define IC_WB_MIN_SAMPLES	50		/* reads for a p99 to count */
#define IC_WB_MAX_CARRY		10		/* windows to gather them in */
#define IC_WB_IDLE_TICKS	3		/* windows without reads: idle */
#define IC_WB_PROBE_TICKS	50		/* measure the baseline this often */
#define IC_WB_CHUNK		64		/* ring entries per time stamp */
#define IC_WB_POP_MAX		256		/* entries looked at per batch */
#define IC_LAT_BUCKETS		88		/* 4 per power of two, to 4 s */

enum ic_mode {
	IC_MODE_WRITETHROUGH,
	IC_MODE_WRITEBACK,
};

/* The optional arguments, in the order the table gave them. */
enum ic_opt {
	IC_OPT_MODE,
	IC_OPT_BLOCK_SIZE,
	IC_OPT_SEQ_THRESHOLD,
	IC_OPT_COMMIT_INTERVAL,
	IC_OPT_ORIGIN_TAG,
	IC_OPT_FORMAT,
	/* Writeback tunables: also messages; see ic_tunables[]. */
	IC_OPT_MAX_DIRTY_AGE,
	IC_OPT_DIRTY_HIGH,
	IC_OPT_READ_TARGET,
	IC_OPT_WB_INFLIGHT,
	IC_OPT_WB_RATE,
	IC_NR_OPTS,
};

#define IC_FIRST_TUN	IC_OPT_MAX_DIRTY_AGE
#define IC_NR_TUN	(IC_NR_OPTS - IC_FIRST_TUN)

struct ic_tunable {
	const char *name;
	u32 min, max, def;
	const char *error;
};

static const struct ic_tunable ic_tunables[IC_NR_TUN] = {
	[IC_OPT_MAX_DIRTY_AGE - IC_FIRST_TUN] = {
		"max_dirty_age", 100, 3600000, 10000,
		"Invalid max_dirty_age: must be 100 to 3600000 ms" },
	[IC_OPT_DIRTY_HIGH - IC_FIRST_TUN] = {
		"dirty_high", 1, 90, 50,
		"Invalid dirty_high: must be 1 to 90 (percent of the cache)" },
	[IC_OPT_READ_TARGET - IC_FIRST_TUN] = {
		"read_latency_target", 0, 10000000, 0,
		"Invalid read_latency_target: must be 0 (auto) to 10000000 us" },
	[IC_OPT_WB_INFLIGHT - IC_FIRST_TUN] = {
		"writeback_inflight", 1, IC_WB_MAX_INFLIGHT, 32,
		"Invalid writeback_inflight: must be 1 to 256" },
	[IC_OPT_WB_RATE - IC_FIRST_TUN] = {
		"writeback_rate", 0, 100000, 0,
		"Invalid writeback_rate: must be 0 (no ceiling) to 100000 MB/s" },
};

/* Counters, in status order (the uapi header's). */
enum ic_stat {
	IC_STAT_READS = DM_INFERCACHE_READS,
	IC_STAT_READ_HITS = DM_INFERCACHE_READ_HITS,
	IC_STAT_READ_MISSES = DM_INFERCACHE_READ_MISSES,
	IC_STAT_FILLS = DM_INFERCACHE_FILLS,
	IC_STAT_WRITES = DM_INFERCACHE_WRITES,
	IC_STAT_WRITE_HITS = DM_INFERCACHE_WRITE_HITS,
	IC_STAT_EVICTIONS = DM_INFERCACHE_EVICTIONS,
	IC_STAT_DISCARDS = DM_INFERCACHE_DISCARDS,
	IC_STAT_BYPASSES = DM_INFERCACHE_BYPASSES,
	IC_STAT_FILL_ABORTS = DM_INFERCACHE_FILL_ABORTS,
	IC_STAT_CACHE_ERRORS = DM_INFERCACHE_CACHE_ERRORS,
	IC_STAT_REJECTS = DM_INFERCACHE_REJECTS,
	IC_STAT_SEQUENTIAL = DM_INFERCACHE_SEQUENTIAL,
	IC_NR_STATS = DM_INFERCACHE_NR_COUNTERS,
};

struct ic_stats {
	u64 count[IC_NR_STATS];
};

/* Bits in infercache.flags. */
#define IC_DEGRADED		0	/* a cache device error: origin only */
#define IC_ERRORS_RECORDED	1	/* the superblock says so */
#define IC_SUSPENDED		2	/* no periodic commits */
#define IC_WB_PAUSED		3	/* writeback paused by message */

/* Read latencies of one CPU, in ic_lat_bucket() buckets. */
struct ic_lat {
	u32 count[IC_LAT_BUCKETS];
};

/*
 * Writeback state. The queue is a ring of slot numbers in the order blocks
 * became dirty, so its head always has the earliest deadline; a time stamp
 * per IC_WB_CHUNK entries (the oldest of the chunk's) dates the head, early
 * rather than late. Blocks the engine queues again keep their old stamp,
 * and the oldest of those still queued is watched apart (requeued_stamp).
 * Entries go stale when their block is written back early (coalesced) or
 * forgotten; the engine skips them. Allocated only for a target that may
 * hold dirty blocks (ring != NULL).
 */
struct ic_wb {
	spinlock_t lock;		/* ring, ios */
	u32 *ring;
	unsigned long *stamps;		/* per chunk: jiffies of its oldest entry */
	u64 cap;			/* entries; a multiple of IC_WB_CHUNK */
	u64 map_cap;			/* what writes may fill; the rest is */
					/* for the engine's re-queueing */
	u64 head, tail;			/* positions, only ever growing */
	u64 requeued_end;		/* re-queued entries lie before this */
	unsigned long requeued_stamp;	/* the oldest stamp among them */
	struct list_head ios;		/* batches in flight */
	atomic_t nr_ios;
	atomic_t flushing;		/* flush messages waiting */
	unsigned int window;		/* batches the controller allows */
	unsigned long next_tick;	/* jiffies of the next window */
	unsigned long retry_after;	/* after an error: jiffies */
	u64 rate_next_ns;		/* rate ceiling: next batch not before */
	unsigned int ticks;
	unsigned int carried;		/* windows with too few reads so far */
	unsigned int idle_ticks;	/* windows without reads in a row */
	bool active;			/* writeback ran in this window */
	bool probing;			/* this window measures the baseline */
	bool backoff;			/* the last window backed off */
	bool rescan;			/* a re-queueing found the ring full */
	bool suspect;			/* the last run found dirty blocks lost */
	u32 p99_us, base_us;		/* last window's p99; baseline p99 */
	u32 seen[IC_LAT_BUCKETS];	/* latency counts at the last window */
	atomic64_t written_back, ios_issued, backoffs, errors;
	struct delayed_work work;
	wait_queue_head_t wait;		/* flush waiters; discards */
	struct ic_lat __percpu *lat;
	struct bio_set bs;
};

struct infercache {
	struct dm_target *ti;
	struct dm_dev *cache_dev;
	struct dm_dev *origin_dev;

	struct ic_geometry geo;
	struct ic_index index;
	unsigned int block_shift;	/* log2 of the block size in sectors */
	u64 origin_blocks;		/* whole blocks in the target */
	bool discard_passdown;
	unsigned long flags;

	atomic_t nr_fills;		/* fills allocated and not yet freed */
	atomic_t discards_inflight;
	atomic64_t cached;		/* VALID slots */
	u64 seq_threshold;		/* sectors; 0: no sequential bypass */
	spinlock_t streams_lock;	/* protects streams */
	struct ic_streams streams;

	spinlock_t retry_lock;		/* protects retry_bios */
	struct bio_list retry_bios;	/* failed hits, to reissue to origin */
	struct work_struct retry_work;

	/* Persistence. */
	struct ic_meta meta;
	bool format;			/* format at the first resume */
	bool activated;			/* loaded or formatted */
	struct ic_sb sb;		/* the superblock ctr chose */
	u64 loaded, dropped;		/* by the load */
	unsigned int commit_ms;		/* 0: no periodic commits */
	struct delayed_work commit_work;
	struct mutex errors_lock;	/* recording IC_SB_ERRORS */
	unsigned long errors_tried;	/* jiffies of the last failed try */
	struct mutex discard_lock;	/* protects discard_sets */
	unsigned long *discard_sets;	/* sets a discard must sync */
	spinlock_t defer_lock;		/* protects deferred and flushes */
	struct bio_list deferred;	/* writes and discards to sync first */
	struct bio_list flushes;	/* empty flushes waiting for a commit */
	struct bio_list alloc_wait;	/* writes waiting for an install */
	struct work_struct defer_work;

	struct workqueue_struct *wq;
	struct workqueue_struct *wb_wq;	/* writeback batches' origin writes */
	struct bio_set wt_bs;		/* write-through copies to the cache */
	struct bio_set fill_bs;		/* fills; front_pad is struct ic_fill */
	mempool_t page_pool;
	struct ic_stats __percpu *stats;

	/* Writeback. */
	enum ic_mode mode_now;		/* may differ from the table's */
	u32 tun[IC_NR_TUN];		/* current tunables */
	u32 tun_table[IC_NR_TUN];	/* as the table gave them */
	atomic64_t nr_dirty;		/* DIRTY ways */
	u64 dirty_limit;		/* blocks: dirty_high of the slots */
	bool dirty_only;		/* errors recorded: load dirty only */
	struct mutex mode_lock;		/* mode switches, ring allocation */
	struct ic_wb wb;
	struct ic_sysfs *sysfs;		/* while resumed */

	/* The table as given, for STATUSTYPE_TABLE. */
	enum ic_mode mode;
	unsigned int block_size;
	unsigned int seq_threshold_bytes;
	char origin_tag[IC_ORIGIN_TAG_BYTES];
	unsigned int commit_ms_table;
	unsigned int nr_opts;
	enum ic_opt opts[IC_NR_OPTS];
};

/* /sys/block/dm-N/infercache: exists while the target is resumed. */
struct ic_sysfs {
	struct kobject kobj;
	struct infercache *ic;
};

/* What ->map did with a bio, so ->end_io knows what to undo. */
enum ic_bio_kind {
	IC_BIO_PASS,		/* remapped to one device, nothing held */
	IC_BIO_HIT_READ,	/* holds inflight on its slot */
	IC_BIO_HIT_WRITE,	/* holds inflight, WRITING and writes_inflight */
	IC_BIO_MISS_WRITE,	/* holds writes_inflight of its set */
	IC_BIO_DISCARD,		/* holds discards_inflight */
	IC_BIO_FILLED,		/* completed by a fill; nothing held */
	IC_BIO_DIRTY_WRITE,	/* to the slot alone: inflight, writes_inflight */
};

struct ic_bio {
	enum ic_bio_kind kind;
	unsigned int way;
	u64 set;
	bool cache_failed;		/* the write-through copy failed */
	bool no_copy;			/* the copy was not issued */
	bool alloc;			/* a dirty write that took the way */
	bool timed;			/* a read: record its latency */
	u64 start_ns;
	struct bvec_iter iter;		/* of a hit, to retry on the origin */
};

/* A writeback batch: origin-contiguous dirty blocks, one origin write. */
struct ic_wb_io {
	struct infercache *ic;
	struct list_head list;		/* in ic->wb.ios */
	u64 first;			/* oblock of slots[0] */
	unsigned int nr;		/* blocks */
	unsigned int nr_pages;
	bool urgent;			/* deadline, watermark or flush */
	unsigned long stamp;		/* of the queue entry it was taken for */
	bool gathering;			/* blocks not known yet: overlaps all */
	atomic_t pending;		/* reads from the cache in flight */
	blk_status_t read_status;
	struct work_struct work;
	u32 slots[IC_WB_MAX_BLOCKS];
	struct page *pages[IC_WB_MAX_PAGES];
};

struct ic_fill {
	struct infercache *ic;
	struct bio *caller;
	unsigned int caller_offset;	/* bytes into the block */
	u64 oblock;
	u64 set;
	unsigned int way;
	unsigned int nr_pages;
	struct work_struct work;
	struct page *pages[IC_MAX_BLOCK_PAGES];
	struct bio bio;			/* last: bio_set front_pad */
};

static void ic_stat_inc(struct infercache *ic, enum ic_stat stat)
{
	this_cpu_inc(ic->stats->count[stat]);
}

static sector_t ic_block_sectors(struct infercache *ic)
{
	return ic->geo.block_sectors;
}

static struct ic_set *ic_set(struct infercache *ic, u64 set)
{
	return &ic->index.sets[set];
}

static bool ic_degraded(struct infercache *ic)
{
	return test_bit(IC_DEGRADED, &ic->flags);
}

static void ic_cache_error(struct infercache *ic)
{
	ic_stat_inc(ic, IC_STAT_CACHE_ERRORS);
	if (!test_and_set_bit(IC_DEGRADED, &ic->flags))
		DMERR("%s: cache device I/O error; serving everything from the origin",
		      ic->cache_dev->name);
}

static void ic_remap_origin(struct infercache *ic, struct bio *bio)
{
	bio_set_dev(bio, ic->origin_dev->bdev);
	if (bio_sectors(bio))
		bio->bi_iter.bi_sector =
			dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
}

static void ic_remap_cache(struct infercache *ic, struct bio *bio, u64 set,
			   unsigned int way, sector_t offset)
{
	sector_t in_block = offset & (ic_block_sectors(ic) - 1);

	bio_set_dev(bio, ic->cache_dev->bdev);
	bio->bi_iter.bi_sector =
		ic_slot_sector(&ic->geo, ic_index_slot(set, way)) + in_block;
}

/* ---- Writeback ---- */

static u32 ic_tun(struct infercache *ic, enum ic_opt opt)
{
	return READ_ONCE(ic->tun[opt - IC_FIRST_TUN]);
}

/* May this target hold dirty blocks (a writeback queue exists)? */
static bool ic_wb_capable(struct infercache *ic)
{
	/* Pairs with ic_wb_alloc(): the queue is ready once seen. */
	return smp_load_acquire(&ic->wb.ring);
}

static void ic_set_dirty_limit(struct infercache *ic)
{
	WRITE_ONCE(ic->dirty_limit,
		   div_u64(ic->geo.nr_slots * ic_tun(ic, IC_OPT_DIRTY_HIGH),
			   100));
}

/* Read latency buckets: exact below 4 us, then 4 per power of two. */
static unsigned int ic_lat_bucket(u64 us)
{
	unsigned int e;

	if (us < 4)
		return us;
	e = ilog2(us);
	return min_t(unsigned int, IC_LAT_BUCKETS - 1,
		     4 + (e - 2) * 4 + ((us >> (e - 2)) & 3));
}

/* The largest latency, in us, that bucket @b holds. */
static u32 ic_lat_bucket_max(unsigned int b)
{
	unsigned int e;

	if (b < 4)
		return b;
	e = (b - 4) / 4 + 2;
	return ((5 + (b - 4) % 4) << (e - 2)) - 1;
}

static void ic_lat_record(struct infercache *ic, u64 start_ns)
{
	u64 us = div_u64(ktime_get_ns() - start_ns, NSEC_PER_USEC);

	this_cpu_inc(ic->wb.lat->count[ic_lat_bucket(us)]);
}

/*
 * The p99 of the reads since the last measured window, in us. Returns 0
 * with *samples 0 when there were no reads (idle), and 0 with *samples
 * non-zero when there were too few to tell: they are kept for the next
 * call, for up to IC_WB_MAX_CARRY windows, so sparse reads still count.
 */
static u32 ic_lat_window_p99(struct infercache *ic, u32 *samples)
{
	struct ic_wb *wb = &ic->wb;
	u32 delta[IC_LAT_BUCKETS], total = 0, want, acc = 0;
	unsigned int b;
	int cpu;

	for (b = 0; b < IC_LAT_BUCKETS; b++) {
		u32 sum = 0;

		for_each_possible_cpu(cpu)
			sum += READ_ONCE(per_cpu_ptr(wb->lat, cpu)->count[b]);
		delta[b] = sum - wb->seen[b];
		total += delta[b];
	}
	*samples = total;
	/* Too few: leave them counted for the next window. */
	if (total && total < IC_WB_MIN_SAMPLES &&
	    ++wb->carried < IC_WB_MAX_CARRY)
		return 0;
	wb->carried = 0;
	for (b = 0; b < IC_LAT_BUCKETS; b++)
		wb->seen[b] += delta[b];
	if (!total)
		return 0;
	want = total - total / 100;
	for (b = 0; b < IC_LAT_BUCKETS - 1; b++) {
		acc += delta[b];
		if (acc >= want)
			break;
	}
	return ic_lat_bucket_max(b);
}

/* The read p99 writeback must not push reads past (0: none known yet). */
static u32 ic_wb_target(struct infercache *ic)
{
	u32 target = ic_tun(ic, IC_OPT_READ_TARGET);

	return target ?: READ_ONCE(ic->wb.base_us) * 6 / 5;
}

/* Append @slot to the queue, unless that would pass @limit entries. */
static bool ic_wb_push_locked(struct ic_wb *wb, u64 slot, u64 limit,
			      unsigned long stamp)
{
	u64 i;

	if (wb->tail - wb->head >= limit)
		return false;
	i = wb->tail % wb->cap;
	/*
	 * A chunk's stamp is the oldest dirty time of its entries. An empty
	 * queue starts anew: the chunk's earlier entries are gone and its
	 * stamp would make the new ones look due.
	 */
	if (!(i % IC_WB_CHUNK) || wb->head == wb->tail ||
	    time_before(stamp, wb->stamps[i / IC_WB_CHUNK]))
		wb->stamps[i / IC_WB_CHUNK] = stamp;
	wb->ring[i] = slot;
	wb->tail++;
	return true;
}

/*
 * The engine's own re-queueing, of a block dirty since @stamp (or earlier):
 * uses the slack writes may not fill. The entry goes to the tail, behind
 * younger ones, so its deadline is watched apart until the head passes it.
 */
static void ic_wb_requeue(struct infercache *ic, u64 slot,
			  unsigned long stamp)
{
	struct ic_wb *wb = &ic->wb;
	unsigned long flags;

	spin_lock_irqsave(&wb->lock, flags);
	if (ic_wb_push_locked(wb, slot, wb->cap - IC_WB_CHUNK, stamp)) {
		if (wb->head >= wb->requeued_end ||
		    time_before(stamp, wb->requeued_stamp))
			wb->requeued_stamp = stamp;
		wb->requeued_end = wb->tail;
	} else {
		/* Stale entries filled it: the engine will look for it. */
		wb->rescan = true;
	}
	spin_unlock_irqrestore(&wb->lock, flags);
}

/*
 * Count a new dirty block of @slot and queue it, if it stays under the
 * high watermark and the queue has room. Set lock held.
 */
static bool ic_dirty_get(struct infercache *ic, u64 slot)
{
	struct ic_wb *wb = &ic->wb;
	bool ok;

	if (atomic64_inc_return(&ic->nr_dirty) <= READ_ONCE(ic->dirty_limit)) {
		spin_lock(&wb->lock);
		ok = ic_wb_push_locked(wb, slot, wb->map_cap, jiffies);
		spin_unlock(&wb->lock);
		if (ok)
			return true;
	}
	atomic64_dec(&ic->nr_dirty);
	return false;
}

/* Run the engine within @delay, unless it is already due sooner. */
static void ic_wb_kick(struct infercache *ic, unsigned long delay)
{
	if (!test_bit(IC_SUSPENDED, &ic->flags))
		queue_delayed_work(ic->wq, &ic->wb.work, delay);
}

/* Run the engine now, even if a later run is pending: a batch ended. */
static void ic_wb_kick_now(struct infercache *ic)
{
	if (!test_bit(IC_SUSPENDED, &ic->flags))
		mod_delayed_work(ic->wq, &ic->wb.work, 0);
}

/*
 * Queue every dirty block again: after a load, or when a re-queueing found
 * the ring full of stale entries (a block queued twice is harmless: the
 * second entry is skipped once it is clean).
 */
static void ic_wb_rescan(struct infercache *ic, unsigned long stamp)
{
	u64 slot;

	for (slot = 0; slot < ic->geo.nr_slots; slot++) {
		if (READ_ONCE(ic->index.ways[slot]) & IC_WAY_DIRTY)
			ic_wb_requeue(ic, slot, stamp);
		if (!(slot % 65536))
			cond_resched();
	}
}

/* Is a writeback batch of a block in [first, last) in flight? */
static bool ic_wb_overlaps(struct infercache *ic, u64 first, u64 last)
{
	struct ic_wb *wb = &ic->wb;
	struct ic_wb_io *io;
	bool overlap = false;

	spin_lock_irq(&wb->lock);
	list_for_each_entry(io, &wb->ios, list)
		if (io->gathering ||
		    (io->first < last && io->first + io->nr > first))
			overlap = true;
	spin_unlock_irq(&wb->lock);
	return overlap;
}

/*
 * Drop a VALID block, or mark a fill of it STALE. Set lock held. Its entry
 * stays on disk (still true) until the next image of the set. A dirty
 * block is forgotten too: only discards and errors come here with one.
 */
static void ic_invalidate_slot(struct infercache *ic, u64 slot)
{
	u64 word = ic->index.ways[slot];

	if (ic_index_invalidate(&ic->index, slot))
		atomic64_dec(&ic->cached);
	if (word & IC_WAY_DIRTY)
		atomic64_dec(&ic->nr_dirty);
	if (ic->index.ways[slot] & IC_WAY_ON_DISK)
		ic_meta_set_dirty(&ic->meta, slot / IC_WAYS);
}

/* ---- Fills ---- */

static void ic_fill_free(struct ic_fill *fill)
{
	struct infercache *ic = fill->ic;
	unsigned int i;

	for (i = 0; i < fill->nr_pages; i++)
		mempool_free(fill->pages[i], &ic->page_pool);
	bio_put(&fill->bio);

	/*
	 * Nothing below may touch @ic: a waiter that sees 0 may free it.
	 * wake_up_var() only uses the address as a key.
	 */
	if (atomic_dec_and_test(&ic->nr_fills))
		wake_up_var(&ic->nr_fills);
}

static void ic_wait_for_fills(struct infercache *ic)
{
	wait_var_event(&ic->nr_fills, !atomic_read(&ic->nr_fills));
}

/*
 * A fill with its pages and origin read bio, or NULL when memory is short or
 * too many fills are in flight: a fill is an optimisation, never worth
 * blocking a miss for.
 */
static struct ic_fill *ic_fill_alloc(struct infercache *ic)
{
	unsigned int bytes = ic_block_sectors(ic) << SECTOR_SHIFT;
	unsigned int nr_pages = DIV_ROUND_UP(bytes, PAGE_SIZE);
	struct ic_fill *fill;
	struct bio *bio;
	unsigned int i;

	if (atomic_inc_return(&ic->nr_fills) > IC_MAX_FILLS)
		goto out_dec;

	bio = bio_alloc_bioset(ic->origin_dev->bdev, nr_pages, REQ_OP_READ,
			       GFP_NOWAIT | __GFP_NOWARN, &ic->fill_bs);
	if (!bio)
		goto out_dec;

	fill = container_of(bio, struct ic_fill, bio);
	fill->ic = ic;
	fill->nr_pages = 0;
	for (i = 0; i < nr_pages; i++) {
		struct page *page = mempool_alloc(&ic->page_pool,
						  GFP_NOWAIT | __GFP_NOWARN);

		if (!page) {
			ic_fill_free(fill);	/* drops nr_fills */
			return NULL;
		}
		fill->pages[fill->nr_pages++] = page;
	}
	return fill;

out_dec:
	if (atomic_dec_and_test(&ic->nr_fills))
		wake_up_var(&ic->nr_fills);
	return NULL;
}

static void ic_fill_add_pages(struct ic_fill *fill)
{
	unsigned int left = ic_block_sectors(fill->ic) << SECTOR_SHIFT;
	unsigned int i;

	for (i = 0; i < fill->nr_pages; i++) {
		unsigned int len = min_t(unsigned int, left, PAGE_SIZE);

		/* Cannot fail: the bio was sized for these pages. */
		__bio_add_page(&fill->bio, fill->pages[i], len, 0);
		left -= len;
	}
}

/* Copy the caller's part of the block from the fill's pages. */
static void ic_fill_copy_to_caller(struct ic_fill *fill)
{
	unsigned int offset = fill->caller_offset;
	struct bvec_iter iter;
	struct bio_vec bv;

	bio_for_each_segment(bv, fill->caller, iter) {
		char *dst = bvec_kmap_local(&bv);
		unsigned int done = 0;

		while (done < bv.bv_len) {
			unsigned int in_page = offset & ~PAGE_MASK;
			unsigned int len = min(bv.bv_len - done,
					       (unsigned int)PAGE_SIZE - in_page);

			memcpy(dst + done,
			       page_address(fill->pages[offset >> PAGE_SHIFT]) +
			       in_page, len);
			done += len;
			offset += len;
		}
		kunmap_local(dst);
	}
}

/* Release the way a fill reserved: install the block or drop it. */
static void ic_fill_finish(struct ic_fill *fill, blk_status_t status)
{
	struct infercache *ic = fill->ic;
	struct ic_set *s = ic_set(ic, fill->set);
	u64 slot = ic_index_slot(fill->set, fill->way);
	unsigned long flags;
	bool installed = false;
	u64 word;

	spin_lock_irqsave(&s->lock, flags);
	word = ic->index.ways[slot];
	WARN_ON_ONCE(!(word & IC_WAY_FILLING) ||
		     (word & IC_OBLOCK_MASK) != fill->oblock);
	/* The data write waited for the old entry to leave the disk. */
	if (WARN_ON_ONCE(!status && (word & IC_WAY_ON_DISK)))
		status = BLK_STS_IOERR;
	if (!status && !(word & IC_WAY_STALE) && !ic_degraded(ic)) {
		ic->index.ways[slot] = fill->oblock | IC_WAY_VALID;
		installed = true;
	} else {
		ic->index.ways[slot] = word & IC_WAY_ON_DISK;
	}
	spin_unlock_irqrestore(&s->lock, flags);
	ic_meta_set_dirty(&ic->meta, fill->set);

	if (installed) {
		atomic64_inc(&ic->cached);
		ic_stat_inc(ic, IC_STAT_FILLS);
	} else {
		ic_stat_inc(ic, IC_STAT_FILL_ABORTS);
	}
	ic_fill_free(fill);
}

static void ic_fill_write_endio(struct bio *bio)
{
	struct ic_fill *fill = container_of(bio, struct ic_fill, bio);

	if (bio->bi_status)
		ic_cache_error(fill->ic);
	ic_fill_finish(fill, bio->bi_status);
}

static void ic_fill_write_work(struct work_struct *work)
{
	struct ic_fill *fill = container_of(work, struct ic_fill, work);
	struct infercache *ic = fill->ic;
	struct ic_set *s = ic_set(ic, fill->set);
	struct bio *bio = &fill->bio;
	unsigned long flags;
	bool on_disk;

	/* The way's old entry must leave the disk before its data changes. */
	spin_lock_irqsave(&s->lock, flags);
	on_disk = ic->index.ways[ic_index_slot(fill->set, fill->way)] &
		  IC_WAY_ON_DISK;
	spin_unlock_irqrestore(&s->lock, flags);
	if (on_disk && ic_meta_sync_set(&ic->meta, fill->set)) {
		ic_cache_error(ic);
		ic_fill_finish(fill, BLK_STS_IOERR);
		return;
	}

	bio_reset(bio, ic->cache_dev->bdev, REQ_OP_WRITE);
	bio->bi_iter.bi_sector =
		ic_slot_sector(&ic->geo, ic_index_slot(fill->set, fill->way));
	bio->bi_end_io = ic_fill_write_endio;
	ic_fill_add_pages(fill);
	submit_bio_noacct(bio);
}

/*
 * The origin read of a fill is done: serve the caller from our pages now,
 * and write them to the cache later from process context.
 */
static void ic_fill_read_endio(struct bio *bio)
{
	struct ic_fill *fill = container_of(bio, struct ic_fill, bio);
	struct bio *caller = fill->caller;
	blk_status_t status = bio->bi_status;

	if (!status)
		ic_fill_copy_to_caller(fill);
	fill->caller = NULL;
	caller->bi_status = status;
	bio_endio(caller);

	if (status) {
		ic_fill_finish(fill, status);
		return;
	}
	INIT_WORK(&fill->work, ic_fill_write_work);
	queue_work(fill->ic->wq, &fill->work);
}

/* ---- Mapping ---- */

static int ic_map_bypass(struct infercache *ic, struct bio *bio)
{
	ic_stat_inc(ic, IC_STAT_BYPASSES);
	ic_remap_origin(ic, bio);
	return DM_MAPIO_REMAPPED;
}

/*
 * Should a miss of @oblock in @set fill the cache? Called with the set lock
 * held, after ic_policy_miss() counted the miss as @freq. Returns the way
 * reserved for the fill (marked FILLING) or -1.
 */
static int ic_fill_reserve(struct infercache *ic, struct bio *bio, u64 set,
			   u64 oblock, unsigned int freq, sector_t offset)
{
	struct ic_set *s = ic_set(ic, set);
	unsigned long flags;
	bool evicted;
	u64 slot, word;
	int way;

	/*
	 * A write in flight to this set may be older than the data we would
	 * read: do not fill until it is done. Same for any discard.
	 */
	if (s->writes_inflight || atomic_read(&ic->discards_inflight) ||
	    atomic_read(&ic->nr_fills) >= IC_MAX_FILLS)
		return -1;

	if (READ_ONCE(ic->seq_threshold)) {
		u64 run;

		spin_lock_irqsave(&ic->streams_lock, flags);
		run = ic_stream_note(&ic->streams, offset, bio_sectors(bio));
		spin_unlock_irqrestore(&ic->streams_lock, flags);
		if (run > READ_ONCE(ic->seq_threshold)) {
			ic_stat_inc(ic, IC_STAT_SEQUENTIAL);
			return -1;
		}
	}

	way = ic_policy_victim(&ic->index, set, freq, false);
	if (way == IC_VICTIM_REJECT)
		ic_stat_inc(ic, IC_STAT_REJECTS);
	if (way < 0)
		return -1;

	slot = ic_index_slot(set, way);
	word = ic->index.ways[slot];
	evicted = word & IC_WAY_VALID;
	/* An old entry on disk now names a block we no longer know. */
	ic->index.ways[slot] = oblock | IC_WAY_FILLING |
			       (word & IC_WAY_ON_DISK ? IC_WAY_ON_DISK : 0);
	if (evicted) {
		atomic64_dec(&ic->cached);
		ic_stat_inc(ic, IC_STAT_EVICTIONS);
	}
	return way;
}

/* Give up a reserved way whose fill could not start. */
static void ic_fill_unreserve(struct infercache *ic, u64 set,
			      unsigned int way)
{
	struct ic_set *s = ic_set(ic, set);
	unsigned long flags;
	u64 *word = &ic->index.ways[ic_index_slot(set, way)];

	spin_lock_irqsave(&s->lock, flags);
	*word &= IC_WAY_ON_DISK;
	spin_unlock_irqrestore(&s->lock, flags);
}

/* Start the fill of a reserved way from the origin read for @bio. */
static int ic_fill_start(struct infercache *ic, struct bio *bio,
			 struct ic_bio *pb, u64 set, unsigned int way,
			 u64 oblock, sector_t offset)
{
	struct ic_fill *fill = ic_fill_alloc(ic);

	if (!fill) {
		ic_fill_unreserve(ic, set, way);
		return ic_map_bypass(ic, bio);
	}

	pb->kind = IC_BIO_FILLED;
	fill->caller = bio;
	fill->caller_offset = (offset & (ic_block_sectors(ic) - 1)) <<
			      SECTOR_SHIFT;
	fill->oblock = oblock;
	fill->set = set;
	fill->way = way;

	fill->bio.bi_iter.bi_sector = oblock << ic->block_shift;
	fill->bio.bi_ioprio = bio->bi_ioprio;
	fill->bio.bi_end_io = ic_fill_read_endio;
	ic_fill_add_pages(fill);
	submit_bio_noacct(&fill->bio);
	return DM_MAPIO_SUBMITTED;
}

static int ic_map_read(struct infercache *ic, struct bio *bio,
		       struct ic_bio *pb)
{
	sector_t offset = dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
	u64 oblock = offset >> ic->block_shift;
	bool degraded = ic_degraded(ic);
	unsigned long flags;
	struct ic_set *s;
	u64 set, slot;
	int way;

	ic_stat_inc(ic, IC_STAT_READS);
	if (ic_wb_capable(ic)) {
		/* What the writeback controller watches. */
		pb->timed = true;
		pb->start_ns = ktime_get_ns();
	}
	/* Degraded, only dirty blocks are still read from the cache. */
	if (unlikely(oblock >= ic->origin_blocks ||
		     (degraded && !ic_wb_capable(ic)))) {
		ic_stat_inc(ic, IC_STAT_READ_MISSES);
		return ic_map_bypass(ic, bio);
	}

	set = ic_index_set(&ic->index, oblock);
	s = ic_set(ic, set);

	spin_lock_irqsave(&s->lock, flags);
	way = ic_index_find(&ic->index, set, oblock);
	if (way >= 0) {
		u64 word;

		slot = ic_index_slot(set, way);
		word = ic->index.ways[slot];
		if ((word & IC_WAY_VALID) &&
		    (!degraded || (word & IC_WAY_DIRTY)) &&
		    ic->index.inflight[slot] < IC_INFLIGHT_MAX) {
			ic->index.inflight[slot]++;
			ic_policy_hit(&ic->index, set, way);
			spin_unlock_irqrestore(&s->lock, flags);

			ic_stat_inc(ic, IC_STAT_READ_HITS);
			pb->kind = IC_BIO_HIT_READ;
			pb->set = set;
			pb->way = way;
			pb->iter = bio->bi_iter;
			ic_remap_cache(ic, bio, set, way, offset);
			return DM_MAPIO_REMAPPED;
		}
		/*
		 * Being filled (or written whole, dirty: a read racing an
		 * unfinished write may see the old data), or too busy to
		 * count: no second fill.
		 */
		way = -1;
	} else if (!degraded) {
		unsigned int freq = ic_policy_miss(&ic->index, set, oblock);

		way = ic_fill_reserve(ic, bio, set, oblock, freq, offset);
	}
	spin_unlock_irqrestore(&s->lock, flags);

	ic_stat_inc(ic, IC_STAT_READ_MISSES);
	if (way < 0)
		return ic_map_bypass(ic, bio);
	return ic_fill_start(ic, bio, pb, set, way, oblock, offset);
}

/* The write-through copy on the cache device is done. */
static void ic_wt_endio(struct bio *clone)
{
	struct bio *bio = clone->bi_private;
	struct ic_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	if (clone->bi_status)
		pb->cache_failed = true;
	bio_put(clone);
	bio_endio(bio);		/* drops the count bio_inc_remaining took */
}

/*
 * Send a write on: to the origin, and for a hit also to its slot. The
 * slot is held by WRITING and inflight, so sleeping is fine here.
 */
static void ic_issue_write(struct infercache *ic, struct bio *bio,
			   struct ic_bio *pb)
{
	sector_t offset = dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
	struct bio *clone;

	if (pb->kind == IC_BIO_HIT_WRITE && !pb->no_copy) {
		clone = bio_alloc_clone(ic->cache_dev->bdev, bio, GFP_NOIO,
					&ic->wt_bs);
		clone->bi_iter.bi_sector =
			ic_slot_sector(&ic->geo,
				       ic_index_slot(pb->set, pb->way)) +
			(offset & (ic_block_sectors(ic) - 1));
		clone->bi_private = bio;
		clone->bi_end_io = ic_wt_endio;
		bio_inc_remaining(bio);
		submit_bio_noacct(clone);
	}
	ic_remap_origin(ic, bio);
}

/* Hand a bio to the worker that removes stale entries from disk first. */
static int ic_defer(struct infercache *ic, struct bio *bio)
{
	unsigned long flags;

	spin_lock_irqsave(&ic->defer_lock, flags);
	bio_list_add(&ic->deferred, bio);
	spin_unlock_irqrestore(&ic->defer_lock, flags);
	queue_work(ic->wq, &ic->defer_work);
	return DM_MAPIO_SUBMITTED;
}

/* Does @bio write all of its block? */
static bool ic_whole_block(struct infercache *ic, struct bio *bio,
			   sector_t offset)
{
	return !(offset & (ic_block_sectors(ic) - 1)) &&
	       bio_sectors(bio) == ic_block_sectors(ic);
}

/* Degraded: is @oblock dirty, or may disk still say it is? */
static bool ic_block_dirty(struct infercache *ic, u64 oblock)
{
	u64 set = ic_index_set(&ic->index, oblock);
	unsigned long flags;
	bool dirty = false;
	int way;

	spin_lock_irqsave(&ic_set(ic, set)->lock, flags);
	/* Present or not: a forgotten way may still be DIRTY on disk. */
	for (way = 0; way < IC_WAYS; way++) {
		u64 word = ic->index.ways[ic_index_slot(set, way)];

		if ((word & IC_OBLOCK_MASK) == oblock &&
		    (word & (IC_WAY_DIRTY | IC_WAY_DISK_DIRTY)))
			dirty = true;
	}
	spin_unlock_irqrestore(&ic_set(ic, set)->lock, flags);
	return dirty;
}

/*
 * Writeback: take a way for a whole-block write of @oblock that missed, if
 * admission gives one and the block may become dirty. Set lock held.
 * Returns the way (FILLING | DIRTY until the write lands) or -1.
 */
static int ic_dirty_alloc(struct infercache *ic, u64 set, u64 oblock)
{
	unsigned int freq = ic_policy_miss(&ic->index, set, oblock);
	int way = ic_policy_victim(&ic->index, set, freq, false);
	u64 slot, word;

	if (way == IC_VICTIM_REJECT)
		ic_stat_inc(ic, IC_STAT_REJECTS);
	if (way < 0)
		return -1;
	slot = ic_index_slot(set, way);
	if (!ic_dirty_get(ic, slot))
		return -1;
	word = ic->index.ways[slot];
	if (word & IC_WAY_VALID) {
		atomic64_dec(&ic->cached);
		ic_stat_inc(ic, IC_STAT_EVICTIONS);
	}
	/* An old entry on disk must leave before the data lands: sync. */
	ic->index.ways[slot] = oblock | IC_WAY_FILLING | IC_WAY_DIRTY |
			       (word & IC_WAY_ON_DISK ? IC_WAY_ON_DISK : 0);
	return way;
}

static int ic_map_write(struct infercache *ic, struct bio *bio,
			struct ic_bio *pb)
{
	sector_t offset = dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
	u64 oblock = offset >> ic->block_shift;
	bool hit = false, dropped = false, dirty = false, newly = false;
	bool sync, writeback;
	unsigned long flags;
	struct ic_set *s;
	u64 set, slot = 0;
	int way;

	ic_stat_inc(ic, IC_STAT_WRITES);
	pb->cache_failed = false;
	pb->no_copy = false;
	pb->alloc = false;
	if (unlikely(oblock >= ic->origin_blocks)) {
		ic_remap_origin(ic, bio);
		return DM_MAPIO_REMAPPED;
	}
	if (unlikely(ic_degraded(ic))) {
		/* The cache holds the only copy; a reload would serve it. */
		if (ic_wb_capable(ic) && ic_block_dirty(ic, oblock))
			return DM_MAPIO_KILL;
		/* Entries on disk may go stale: say so there first. */
		if (!test_bit(IC_ERRORS_RECORDED, &ic->flags))
			return ic_defer(ic, bio);
		ic_remap_origin(ic, bio);
		return DM_MAPIO_REMAPPED;
	}

	writeback = READ_ONCE(ic->mode_now) == IC_MODE_WRITEBACK &&
		    ic_wb_capable(ic);
	set = ic_index_set(&ic->index, oblock);
	s = ic_set(ic, set);

	spin_lock_irqsave(&s->lock, flags);
	s->writes_inflight++;
	way = ic_index_find(&ic->index, set, oblock);
	if (way >= 0) {
		u64 word;

		slot = ic_index_slot(set, way);
		word = ic->index.ways[slot];
		if (ic->index.inflight[slot] >= IC_INFLIGHT_MAX) {
			if (word & IC_WAY_DIRTY) {
				/* Cannot be dropped, cannot count one more. */
				s->writes_inflight--;
				spin_unlock_irqrestore(&s->lock, flags);
				return DM_MAPIO_REQUEUE;
			}
			dropped = ic_index_invalidate(&ic->index, slot);
		} else if ((word & IC_WAY_DIRTY) ||
			   (writeback && (word & IC_WAY_VALID) &&
			    !(word & IC_WAY_WRITING) && ic_dirty_get(ic, slot))) {
			/*
			 * To the slot alone: it holds (or is being written
			 * with) the newest copy. Writes may overlap: the
			 * slot orders them, as a disk would.
			 */
			newly = !(word & IC_WAY_DIRTY);
			ic->index.ways[slot] = word | IC_WAY_DIRTY |
				(word & IC_WAY_WB ? IC_WAY_REDIRTY : 0);
			ic->index.inflight[slot]++;
			ic_policy_hit(&ic->index, set, way);
			dirty = true;
		} else if (!(word & IC_WAY_VALID) || (word & IC_WAY_WRITING)) {
			/*
			 * Being filled (the fill turns STALE), or another
			 * write is on the slot: two writes could land on the
			 * two devices in different orders, so drop the block.
			 */
			dropped = ic_index_invalidate(&ic->index, slot);
		} else {
			/* The data changes: not what a commit flushed. */
			ic->index.ways[slot] = (word | IC_WAY_WRITING) &
					       ~IC_WAY_COMMITTING;
			ic->index.inflight[slot]++;
			ic_policy_hit(&ic->index, set, way);
			hit = true;
		}
	} else if (writeback && ic_whole_block(ic, bio, offset)) {
		way = ic_dirty_alloc(ic, set, oblock);
		if (way >= 0) {
			slot = ic_index_slot(set, way);
			ic->index.inflight[slot]++;
			pb->alloc = true;
			dirty = true;
			newly = true;
		}
	}
	if (dirty) {
		u64 word = ic->index.ways[slot];

		/*
		 * Disk may say CLEAN for the block: say DIRTY first. Or the
		 * slot's old entry names another block: remove it first.
		 */
		sync = word & IC_WAY_VALID ? ic_meta_needs_promote(word) :
					     !!(word & IC_WAY_ON_DISK);
	} else {
		sync = ic_meta_needs_sync(&ic->index, set, oblock);
	}
	spin_unlock_irqrestore(&s->lock, flags);

	if (dropped)
		atomic64_dec(&ic->cached);

	pb->set = set;
	if (dirty) {
		pb->kind = IC_BIO_DIRTY_WRITE;
		pb->way = way;
		if (!pb->alloc)
			ic_stat_inc(ic, IC_STAT_WRITE_HITS);
		if (newly)
			ic_wb_kick(ic, msecs_to_jiffies(IC_WB_TICK_MS));
		if (sync)
			return ic_defer(ic, bio);
		ic_remap_cache(ic, bio, set, way, offset);
		return DM_MAPIO_REMAPPED;
	}
	pb->way = hit ? way : 0;
	pb->kind = hit ? IC_BIO_HIT_WRITE : IC_BIO_MISS_WRITE;
	if (hit)
		ic_stat_inc(ic, IC_STAT_WRITE_HITS);
	if (sync)
		return ic_defer(ic, bio);
	ic_issue_write(ic, bio, pb);
	return DM_MAPIO_REMAPPED;
}

/*
 * Should a discard leave the block of @word alone? Its data may exist only
 * in the slot, and its entry may say DIRTY: dropping that entry before the
 * discard is durable on the origin would, after a crash, bring back the
 * origin's older copy. So a dirty (or written back, not yet committed)
 * block stays; ic_discard_zero_way() zeroes the part the discard covers,
 * and writeback carries the zeroes to the origin.
 */
static bool ic_discard_keeps(u64 word)
{
	return word & (IC_WAY_DIRTY | IC_WAY_DISK_DIRTY | IC_WAY_WB);
}

/*
 * Zero the part of [begin, end) that falls in the slot of a kept dirty
 * block (see ic_discard_keeps()), as a write to the slot alone would: the
 * block is (made) dirty, writeback cannot take it meanwhile, and a
 * writeback in flight re-queues it.
 */
static void ic_discard_zero_way(struct infercache *ic, u64 set,
				unsigned int way, sector_t begin, sector_t end)
{
	u64 slot = ic_index_slot(set, way);
	struct ic_set *s = ic_set(ic, set);
	sector_t bs = ic_block_sectors(ic), b0, from, to;
	bool promote;
	u64 word;
	int r;

	spin_lock_irq(&s->lock);
	word = ic->index.ways[slot];
	b0 = (word & IC_OBLOCK_MASK) << ic->block_shift;
	if (!(word & IC_WAY_VALID) ||
	    !(word & (IC_WAY_DIRTY | IC_WAY_DISK_DIRTY)) ||
	    b0 + bs <= begin || b0 >= end ||
	    ic->index.inflight[slot] >= IC_INFLIGHT_MAX) {
		spin_unlock_irq(&s->lock);
		return;
	}
	if (!(word & IC_WAY_DIRTY) && ic_dirty_get(ic, slot))
		word |= IC_WAY_DIRTY;
	if (word & IC_WAY_WB)
		word |= IC_WAY_REDIRTY;
	ic->index.ways[slot] = word & ~IC_WAY_COMMITTING;
	ic->index.inflight[slot]++;
	s->writes_inflight++;
	promote = ic_meta_needs_promote(word);
	spin_unlock_irq(&s->lock);

	from = max(begin, b0);
	to = min(end, b0 + bs);
	r = promote ? ic_meta_sync_set(&ic->meta, set) : 0;
	if (!r)
		r = blkdev_issue_zeroout(ic->cache_dev->bdev,
					 ic_slot_sector(&ic->geo, slot) +
					 (from - b0), to - from, GFP_NOIO, 0);
	if (r)
		ic_cache_error(ic);

	spin_lock_irq(&s->lock);
	ic->index.inflight[slot]--;
	s->writes_inflight--;
	spin_unlock_irq(&s->lock);
	ic_meta_set_dirty(&ic->meta, set);
	ic_wb_kick(ic, msecs_to_jiffies(IC_WB_TICK_MS));
}

/* Zero what a discard covers of every dirty block it kept. */
static void ic_discard_zero_dirty(struct infercache *ic, sector_t begin,
				  sector_t end, u64 first, u64 last)
{
	struct ic_index *idx = &ic->index;
	unsigned int w;
	u64 set, oblock;

	if (last - first <= idx->nr_sets) {
		for (oblock = first; oblock < last; oblock++) {
			set = ic_index_set(idx, oblock);
			for (w = 0; w < IC_WAYS; w++)
				if ((READ_ONCE(idx->ways[ic_index_slot(set, w)]) &
				     IC_OBLOCK_MASK) == oblock)
					ic_discard_zero_way(ic, set, w, begin, end);
		}
		return;
	}
	for (set = 0; set < idx->nr_sets; set++) {
		for (w = 0; w < IC_WAYS; w++)
			ic_discard_zero_way(ic, set, w, begin, end);
		if (!(set % 1024))
			cond_resched();
	}
}

/*
 * Forget every cached block in [begin, end) but the dirty ones (see
 * ic_discard_keeps()); mark in @sync the sets whose entries on disk may
 * still vouch for one of them.
 */
static void ic_invalidate_range(struct infercache *ic, u64 begin, u64 end,
				unsigned long *sync)
{
	struct ic_index *idx = &ic->index;
	unsigned long flags;
	u64 set, oblock;

	if (end - begin <= idx->nr_sets) {
		for (oblock = begin; oblock < end; oblock++) {
			int way;

			set = ic_index_set(idx, oblock);
			spin_lock_irqsave(&idx->sets[set].lock, flags);
			way = ic_index_find(idx, set, oblock);
			if (way >= 0 &&
			    !ic_discard_keeps(idx->ways[ic_index_slot(set, way)]))
				ic_invalidate_slot(ic, ic_index_slot(set, way));
			if (ic_meta_needs_sync(idx, set, oblock))
				set_bit(set, sync);
			spin_unlock_irqrestore(&idx->sets[set].lock, flags);
		}
		return;
	}

	/* A range larger than the cache: visit every way once instead. */
	for (set = 0; set < idx->nr_sets; set++) {
		unsigned int way;

		spin_lock_irqsave(&idx->sets[set].lock, flags);
		for (way = 0; way < IC_WAYS; way++) {
			u64 slot = ic_index_slot(set, way);
			u64 word = idx->ways[slot];

			oblock = word & IC_OBLOCK_MASK;
			if ((word & IC_WAY_PRESENT) &&
			    oblock >= begin && oblock < end &&
			    !ic_discard_keeps(word))
				ic_invalidate_slot(ic, slot);
			if ((word & IC_WAY_RECLAIM) ||
			    ((word & IC_WAY_DURABLE) &&
			     oblock >= begin && oblock < end))
				set_bit(set, sync);
		}
		spin_unlock_irqrestore(&idx->sets[set].lock, flags);
		if (!(set % 1024))
			cond_resched();
	}
}

static int ic_map_discard(struct infercache *ic, struct bio *bio,
			  struct ic_bio *pb)
{
	sector_t begin = dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
	sector_t end = begin + bio_sectors(bio);
	u64 first = begin >> ic->block_shift;
	u64 last = min_t(u64, DIV_ROUND_UP_ULL(end, ic_block_sectors(ic)),
			 ic->origin_blocks);

	ic_stat_inc(ic, IC_STAT_DISCARDS);
	/* Before invalidating, so no fill can start and read old data. */
	atomic_inc(&ic->discards_inflight);
	pb->kind = IC_BIO_DISCARD;
	if (first >= last && !ic_degraded(ic)) {
		ic_remap_origin(ic, bio);
		return DM_MAPIO_REMAPPED;
	}
	/* The invalidation may have to write metadata: in the worker. */
	return ic_defer(ic, bio);
}

/* Worker: invalidate what a discard covers, on disk too. */
static void ic_discard_prepare(struct infercache *ic, struct bio *bio)
{
	sector_t begin = dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
	sector_t end = begin + bio_sectors(bio);
	u64 first = begin >> ic->block_shift;
	u64 last = min_t(u64, DIV_ROUND_UP_ULL(end, ic_block_sectors(ic)),
			 ic->origin_blocks);

	if (first >= last)
		return;
	mutex_lock(&ic->discard_lock);
	ic_invalidate_range(ic, first, last, ic->discard_sets);
	if (ic_degraded(ic))
		bitmap_zero(ic->discard_sets, ic->geo.nr_sets);
	else if (ic_meta_sync_sets(&ic->meta, ic->discard_sets))
		ic_cache_error(ic);
	mutex_unlock(&ic->discard_lock);
	/* A writeback copy of old data must not land after the discard. */
	if (ic_wb_capable(ic)) {
		wait_event(ic->wb.wait, !ic_wb_overlaps(ic, first, last));
		if (!ic_degraded(ic))
			ic_discard_zero_dirty(ic, begin, end, first, last);
	}
}

/*
 * Note a cache error in the superblock before any write goes to the origin
 * alone: the next load must not trust entries that may now be stale.
 * Returns whether the superblock says so. A failed try is repeated at most
 * once a second (a transient error may pass).
 */
static bool ic_record_errors(struct infercache *ic)
{
	if (test_bit(IC_ERRORS_RECORDED, &ic->flags))
		return true;
	mutex_lock(&ic->errors_lock);
	if (!test_bit(IC_ERRORS_RECORDED, &ic->flags) &&
	    (!ic->errors_tried || time_after(jiffies, ic->errors_tried + HZ))) {
		if (!ic_meta_write_sb(&ic->meta, IC_SB_ERRORS, IC_SB_CLEAN,
				      false)) {
			set_bit(IC_ERRORS_RECORDED, &ic->flags);
		} else {
			if (!ic->errors_tried)
				DMERR("%s: cannot mark the cache untrusted: %s",
				      ic->cache_dev->name,
				      "writes to blocks it holds fail");
			ic->errors_tried = jiffies ?: 1;
		}
	}
	mutex_unlock(&ic->errors_lock);
	return test_bit(IC_ERRORS_RECORDED, &ic->flags);
}

/*
 * Degraded, and the superblock cannot say so: may the cache device still
 * hold an entry for the block @bio writes? Then the write must fail, or a
 * later load could serve the old copy.
 */
static bool ic_write_vouched(struct infercache *ic, struct bio *bio)
{
	sector_t offset = dm_target_offset(ic->ti, bio->bi_iter.bi_sector);
	u64 oblock = offset >> ic->block_shift;
	unsigned long flags;
	bool vouched;
	u64 set;

	if (oblock >= ic->origin_blocks)
		return false;
	set = ic_index_set(&ic->index, oblock);
	spin_lock_irqsave(&ic->index.sets[set].lock, flags);
	vouched = ic_meta_needs_sync(&ic->index, set, oblock);
	spin_unlock_irqrestore(&ic->index.sets[set].lock, flags);
	return vouched;
}

static void ic_defer_work(struct work_struct *work)
{
	struct infercache *ic = container_of(work, struct infercache,
					     defer_work);
	struct bio_list bios;
	struct bio *bio;

	spin_lock_irq(&ic->defer_lock);
	bios = ic->deferred;
	bio_list_init(&ic->deferred);
	spin_unlock_irq(&ic->defer_lock);

	while ((bio = bio_list_pop(&bios))) {
		struct ic_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

		if (pb->kind == IC_BIO_DIRTY_WRITE) {
			sector_t offset = dm_target_offset(ic->ti,
						bio->bi_iter.bi_sector);

			if (ic_meta_sync_set(&ic->meta, pb->set)) {
				ic_cache_error(ic);
				bio_io_error(bio);
				continue;
			}
			ic_remap_cache(ic, bio, pb->set, pb->way, offset);
			submit_bio_noacct(bio);
			continue;
		}
		switch (pb->kind) {
		case IC_BIO_HIT_WRITE:
		case IC_BIO_MISS_WRITE:
			if (!ic_degraded(ic) &&
			    ic_meta_sync_set(&ic->meta, pb->set))
				ic_cache_error(ic);
			if (ic_degraded(ic))
				pb->no_copy = true;
			break;
		case IC_BIO_DISCARD:
			ic_discard_prepare(ic, bio);
			break;
		default:
			break;
		}
		if (ic_degraded(ic) && !ic_record_errors(ic)) {
			if (pb->kind == IC_BIO_DISCARD) {
				/* Advisory: the origin keeps what the cache has. */
				bio_endio(bio);
				continue;
			}
			if (ic_write_vouched(ic, bio)) {
				bio_io_error(bio);
				continue;
			}
		}
		ic_issue_write(ic, bio, pb);
		submit_bio_noacct(bio);
	}
}

/*
 * Make everything settled stable on both devices and described on the
 * cache device. Returns the origin's flush error; a cache error degrades.
 */
static int ic_commit(struct infercache *ic)
{
	bool cache_error;
	int r;

	if (!ic->activated)
		return blkdev_issue_flush(ic->origin_dev->bdev);
	if (ic_degraded(ic)) {
		/*
		 * Dirty blocks have no other copy: still try to describe them
		 * (clean entries are ignored after an error once the
		 * superblock says so), or no durability can be promised.
		 */
		if (!atomic64_read(&ic->nr_dirty))
			return blkdev_issue_flush(ic->origin_dev->bdev);
		if (!ic_record_errors(ic))
			return -EIO;
		r = ic_meta_commit(&ic->meta, &cache_error);
		return r ?: cache_error ? -EIO : 0;
	}
	r = ic_meta_commit(&ic->meta, &cache_error);
	if (cache_error) {
		ic_cache_error(ic);
		ic_record_errors(ic);
		/* The only copy of dirty blocks may not be stable. */
		if (!r && atomic64_read(&ic->nr_dirty))
			r = -EIO;
	}
	return r;
}

/* Periodic commits, and the group commit of waiting flushes. */
static void ic_commit_work(struct work_struct *work)
{
	struct infercache *ic = container_of(to_delayed_work(work),
					     struct infercache, commit_work);
	struct bio_list flushes;
	struct bio *bio;
	bool degraded;
	int r = 0;

	spin_lock_irq(&ic->defer_lock);
	flushes = ic->flushes;
	bio_list_init(&ic->flushes);
	spin_unlock_irq(&ic->defer_lock);

	degraded = ic_degraded(ic) && ic->activated;
	if (degraded)
		ic_record_errors(ic);	/* retried until it works */
	/* Degraded, only dirty blocks still need describing. */
	if (!bio_list_empty(&flushes) ||
	    (atomic_read(&ic->meta.nr_dirty) &&
	     (!degraded || atomic64_read(&ic->nr_dirty))))
		r = ic_commit(ic);
	while ((bio = bio_list_pop(&flushes))) {
		bio->bi_status = errno_to_blk_status(r);
		bio_endio(bio);
	}

	if (!test_bit(IC_SUSPENDED, &ic->flags) && READ_ONCE(ic->commit_ms))
		queue_delayed_work(ic->wq, &ic->commit_work,
				   msecs_to_jiffies(READ_ONCE(ic->commit_ms)));
}

/* ---- Writeback engine ---- */

/* Must writeback run now whatever reads see? */
static bool ic_wb_urgent(struct infercache *ic)
{
	struct ic_wb *wb = &ic->wb;
	unsigned long age = msecs_to_jiffies(ic_tun(ic, IC_OPT_MAX_DIRTY_AGE));
	bool due = false;

	if (atomic_read(&wb->flushing))
		return true;
	if (atomic64_read(&ic->nr_dirty) * 4 >= READ_ONCE(ic->dirty_limit) * 3)
		return true;
	spin_lock_irq(&wb->lock);
	if (wb->head != wb->tail)
		due = time_after_eq(jiffies,
				    wb->stamps[(wb->head % wb->cap) /
					       IC_WB_CHUNK] + age) ||
		      (wb->head < wb->requeued_end &&
		       time_after_eq(jiffies, wb->requeued_stamp + age));
	spin_unlock_irq(&wb->lock);
	return due;
}

/* One controller window has passed: adjust how much writeback may run. */
static void ic_wb_tick(struct infercache *ic)
{
	struct ic_wb *wb = &ic->wb;
	u32 cap = ic_tun(ic, IC_OPT_WB_INFLIGHT);
	unsigned long tick = msecs_to_jiffies(IC_WB_TICK_MS);
	/* Windows since the last tick: the engine sleeps while clean. */
	unsigned long gap = (jiffies - wb->next_tick) / tick + 1;
	u32 samples, p99, target;

	p99 = ic_lat_window_p99(ic, &samples);
	if (gap > 1) {
		/*
		 * Back from a pause: what was allowed then says nothing
		 * about now. Reads meanwhile: start again from one batch;
		 * none: idle all along.
		 */
		if (samples)
			wb->window = min_t(u32, wb->window, 1);
		else
			wb->idle_ticks += gap - 1;
	}
	if (!p99 && samples) {
		/* Reads, but too few to tell yet: change nothing. */
		wb->next_tick = jiffies + msecs_to_jiffies(IC_WB_TICK_MS);
		return;
	}
	WRITE_ONCE(wb->p99_us, p99);
	if (p99)
		wb->idle_ticks = 0;
	/*
	 * A window without writeback tells what reads cost without it. Such
	 * windows can be slow for other reasons (foreground writes): the
	 * baseline moves half way to a faster window and 1/16 of the way to
	 * a slower one, so it tracks the quiet case.
	 */
	if (p99 && (!wb->active || wb->probing)) {
		u32 base = wb->base_us;

		if (!base)
			base = p99;
		else if (p99 <= base)
			base -= (base - p99) / 2;
		else
			base += (p99 - base) / 16;
		WRITE_ONCE(wb->base_us, base);
	}
	target = ic_wb_target(ic);

	wb->backoff = false;
	if (!p99) {
		/*
		 * No read completed: idle, once it lasts (a reader can be
		 * stalled for a window, by the scheduler or a slow device).
		 */
		if (++wb->idle_ticks >= IC_WB_IDLE_TICKS)
			wb->window = cap;
	} else if (target && p99 > target) {
		wb->window /= 2;
		wb->backoff = true;
		atomic64_inc(&wb->backoffs);
	} else {
		wb->window = min(cap, wb->window + 1);
	}

	/* Measure the baseline first, and again now and then. */
	wb->probing = p99 && wb->active &&
		      (!wb->base_us || !(++wb->ticks % IC_WB_PROBE_TICKS));
	wb->active = false;
	wb->next_tick = jiffies + msecs_to_jiffies(IC_WB_TICK_MS);
}

enum ic_wb_take { IC_WB_TAKEN, IC_WB_STALE, IC_WB_BUSY };

/* May an entry of a way of @slot's set other than @slot vouch for @oblock? */
static bool ic_wb_vouched_elsewhere(struct infercache *ic, u64 slot,
				    u64 oblock)
{
	u64 base = slot - slot % IC_WAYS;
	unsigned int w;

	for (w = 0; w < IC_WAYS; w++) {
		u64 word = ic->index.ways[base + w];

		if (base + w == slot)
			continue;
		if ((word & IC_WAY_RECLAIM) ||
		    ((word & IC_WAY_DURABLE) &&
		     (word & IC_OBLOCK_MASK) == oblock))
			return true;
	}
	return false;
}

/*
 * Take the way of @slot for writeback if it is dirty and nothing writes to
 * its set (a write in flight may land after our read of the slot). Set
 * lock held.
 */
static enum ic_wb_take ic_wb_take_way(struct infercache *ic, u64 slot)
{
	struct ic_set *s = ic_set(ic, slot / IC_WAYS);
	u64 word = ic->index.ways[slot];

	if (!(word & IC_WAY_DIRTY))
		return IC_WB_STALE;
	if (!(word & IC_WAY_VALID) || (word & IC_WAY_WB) ||
	    s->writes_inflight ||
	    ic->index.inflight[slot] >= IC_INFLIGHT_MAX)
		return IC_WB_BUSY;
	/*
	 * Another way's old entry may still name the block (a fill or a
	 * write took that way and has not removed it yet): the origin's copy
	 * must not change under it.
	 */
	if (ic_wb_vouched_elsewhere(ic, slot, word & IC_OBLOCK_MASK))
		return IC_WB_BUSY;
	ic->index.ways[slot] = word | IC_WAY_WB;
	ic->index.inflight[slot]++;
	return IC_WB_TAKEN;
}

static enum ic_wb_take ic_wb_take_slot(struct infercache *ic, u64 slot,
				       u64 *oblock)
{
	struct ic_set *s = ic_set(ic, slot / IC_WAYS);
	enum ic_wb_take r;

	spin_lock_irq(&s->lock);
	r = ic_wb_take_way(ic, slot);
	*oblock = ic->index.ways[slot] & IC_OBLOCK_MASK;
	spin_unlock_irq(&s->lock);
	return r;
}

/* Take the dirty block @oblock, to extend a batch. */
static bool ic_wb_take_block(struct infercache *ic, u64 oblock, u32 *slot)
{
	u64 set;
	int way;
	bool taken = false;

	if (oblock >= ic->origin_blocks)
		return false;
	set = ic_index_set(&ic->index, oblock);
	spin_lock_irq(&ic_set(ic, set)->lock);
	way = ic_index_find(&ic->index, set, oblock);
	if (way >= 0) {
		*slot = ic_index_slot(set, way);
		taken = ic_wb_take_way(ic, *slot) == IC_WB_TAKEN;
	}
	spin_unlock_irq(&ic_set(ic, set)->lock);
	return taken;
}

/*
 * Pop the oldest dirty block that can go now and gather its dirty
 * origin-contiguous neighbours into @io. Returns false if there is none.
 */
static bool ic_wb_gather(struct infercache *ic, struct ic_wb_io *io)
{
	unsigned int max = IC_WB_MAX_BYTES >> (ic->block_shift + SECTOR_SHIFT);
	struct ic_wb *wb = &ic->wb;
	u32 back[IC_WB_MAX_BLOCKS], slot = 0;
	unsigned int looked, nb = 0, i;
	unsigned long stamp = 0;
	u64 oblock = 0;
	bool found = false;

	for (looked = 0; looked < IC_WB_POP_MAX && !found; looked++) {
		spin_lock_irq(&wb->lock);
		if (wb->head == wb->tail) {
			spin_unlock_irq(&wb->lock);
			break;
		}
		slot = wb->ring[wb->head % wb->cap];
		stamp = wb->stamps[(wb->head % wb->cap) / IC_WB_CHUNK];
		if (wb->head < wb->requeued_end &&
		    time_before(wb->requeued_stamp, stamp))
			stamp = wb->requeued_stamp;
		wb->head++;
		spin_unlock_irq(&wb->lock);

		switch (ic_wb_take_slot(ic, slot, &oblock)) {
		case IC_WB_TAKEN:
			found = true;
			break;
		case IC_WB_BUSY:
			ic_wb_requeue(ic, slot, stamp);
			break;
		case IC_WB_STALE:
			break;
		}
	}
	if (!found)
		return false;

	io->stamp = stamp;
	while (nb + 1 < max && oblock > nb &&
	       ic_wb_take_block(ic, oblock - nb - 1, &back[nb]))
		nb++;
	for (i = 0; i < nb; i++)
		io->slots[i] = back[nb - 1 - i];
	io->slots[nb] = slot;
	io->first = oblock - nb;
	io->nr = nb + 1;
	while (io->nr < max &&
	       ic_wb_take_block(ic, io->first + io->nr, &io->slots[io->nr]))
		io->nr++;
	return true;
}

/* Take a batch that never started off the list. */
static void ic_wb_unlist(struct ic_wb_io *io)
{
	struct ic_wb *wb = &io->ic->wb;

	spin_lock_irq(&wb->lock);
	list_del(&io->list);
	spin_unlock_irq(&wb->lock);
	wake_up_all(&wb->wait);
}

/* Done with the blocks of a batch: clean, or dirty and queued again. */
static void ic_wb_release(struct ic_wb_io *io, blk_status_t status)
{
	struct infercache *ic = io->ic;
	struct ic_wb *wb = &ic->wb;
	unsigned long flags;
	unsigned int i, cleaned = 0;

	for (i = 0; i < io->nr; i++) {
		u64 slot = io->slots[i], set = slot / IC_WAYS;
		struct ic_set *s = ic_set(ic, set);
		bool clean = false, again = false;
		u64 word;

		spin_lock_irqsave(&s->lock, flags);
		word = ic->index.ways[slot] & ~IC_WAY_WB;
		ic->index.inflight[slot]--;
		if (word & IC_WAY_DIRTY) {
			if (!status && !(word & IC_WAY_REDIRTY)) {
				/*
				 * Clean once a commit has flushed the origin.
				 * A commit may be flushing now with the block
				 * COMMITTING but not on disk: its flush may
				 * miss our write, so it must still say DIRTY.
				 */
				word &= ~IC_WAY_DIRTY;
				if (!(word & IC_WAY_DURABLE) &&
				    (word & IC_WAY_COMMITTING))
					word |= IC_WAY_DISK_DIRTY;
				else
					word &= ~IC_WAY_COMMITTING;
				clean = true;
			} else {
				word &= ~IC_WAY_REDIRTY;
				again = true;
			}
		}
		ic->index.ways[slot] = word;
		spin_unlock_irqrestore(&s->lock, flags);

		if (clean) {
			atomic64_dec(&ic->nr_dirty);
			ic_meta_set_dirty(&ic->meta, set);
			cleaned++;
		}
		if (again)
			ic_wb_requeue(ic, slot, io->stamp);
	}
	atomic64_add(cleaned, &wb->written_back);
	for (i = 0; i < io->nr_pages; i++)
		__free_page(io->pages[i]);
}

/* A batch is over. Nothing may touch @ic after nr_ios drops. */
static void ic_wb_io_done(struct ic_wb_io *io, blk_status_t status)
{
	struct infercache *ic = io->ic;
	struct ic_wb *wb = &ic->wb;
	unsigned long flags;

	ic_wb_release(io, status);
	if (status) {
		atomic64_inc(&wb->errors);
		WRITE_ONCE(wb->retry_after, jiffies + HZ);
	}
	spin_lock_irqsave(&wb->lock, flags);
	list_del(&io->list);
	spin_unlock_irqrestore(&wb->lock, flags);
	kfree(io);

	wake_up_all(&wb->wait);
	ic_wb_kick_now(ic);
	if (atomic_dec_and_test(&wb->nr_ios))
		wake_up_var(&wb->nr_ios);
}

static void ic_wb_write_endio(struct bio *bio)
{
	struct ic_wb_io *io = bio->bi_private;
	blk_status_t status = bio->bi_status;

	bio_put(bio);
	ic_wb_io_done(io, status);
}

/* Pages of a block in a batch, and the bytes used of each. */
static unsigned int ic_wb_pages_per_block(struct infercache *ic)
{
	return DIV_ROUND_UP(ic->block_size, PAGE_SIZE);
}

static unsigned int ic_wb_page_len(struct infercache *ic)
{
	return min_t(unsigned int, ic->block_size, PAGE_SIZE);
}

static unsigned short ic_wb_prio(struct ic_wb_io *io)
{
	/* Behind foreground I/O, unless a deadline or the watermark says. */
	return io->urgent ? IOPRIO_DEFAULT : IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7);
}

/* All of the batch has been read from the cache: one origin write. */
static void ic_wb_write_work(struct work_struct *work)
{
	struct ic_wb_io *io = container_of(work, struct ic_wb_io, work);
	struct infercache *ic = io->ic;
	struct bio *bio;
	unsigned int i;

	if (io->read_status) {
		ic_cache_error(ic);
		ic_wb_io_done(io, io->read_status);
		return;
	}
	bio = bio_alloc_bioset(ic->origin_dev->bdev, io->nr_pages, REQ_OP_WRITE,
			       GFP_NOIO, &ic->wb.bs);
	bio->bi_iter.bi_sector = io->first << ic->block_shift;
	bio->bi_ioprio = ic_wb_prio(io);
	bio->bi_private = io;
	bio->bi_end_io = ic_wb_write_endio;
	for (i = 0; i < io->nr_pages; i++)
		__bio_add_page(bio, io->pages[i], ic_wb_page_len(ic), 0);
	submit_bio_noacct(bio);
}

static void ic_wb_read_endio(struct bio *bio)
{
	struct ic_wb_io *io = bio->bi_private;

	if (bio->bi_status)
		WRITE_ONCE(io->read_status, bio->bi_status);
	bio_put(bio);
	if (atomic_dec_and_test(&io->pending))
		queue_work(io->ic->wb_wq, &io->work);
}

/* Read every block of the batch from its slot. */
static void ic_wb_submit(struct infercache *ic, struct ic_wb_io *io)
{
	unsigned int ppb = ic_wb_pages_per_block(ic);
	struct ic_wb *wb = &ic->wb;
	unsigned int i, p;

	INIT_WORK(&io->work, ic_wb_write_work);
	atomic_set(&io->pending, io->nr);
	spin_lock_irq(&wb->lock);
	io->gathering = false;
	spin_unlock_irq(&wb->lock);
	atomic_inc(&wb->nr_ios);
	atomic64_inc(&wb->ios_issued);
	wb->active = true;

	for (i = 0; i < io->nr; i++) {
		struct bio *bio = bio_alloc_bioset(ic->cache_dev->bdev, ppb,
						   REQ_OP_READ, GFP_NOIO,
						   &wb->bs);

		bio->bi_iter.bi_sector = ic_slot_sector(&ic->geo, io->slots[i]);
		bio->bi_ioprio = ic_wb_prio(io);
		bio->bi_private = io;
		bio->bi_end_io = ic_wb_read_endio;
		for (p = 0; p < ppb; p++)
			__bio_add_page(bio, io->pages[i * ppb + p],
				       ic_wb_page_len(ic), 0);
		submit_bio_noacct(bio);
	}
}

static int ic_wb_alloc_pages(struct infercache *ic, struct ic_wb_io *io)
{
	unsigned int n = io->nr * ic_wb_pages_per_block(ic);

	for (io->nr_pages = 0; io->nr_pages < n; io->nr_pages++) {
		io->pages[io->nr_pages] = alloc_page(GFP_NOIO | __GFP_NOWARN);
		if (!io->pages[io->nr_pages])
			return -ENOMEM;
	}
	return 0;
}

/* Dirty blocks, none queued, none in flight: find them again. */
static void ic_wb_check_lost(struct infercache *ic)
{
	struct ic_wb *wb = &ic->wb;
	bool lost;

	spin_lock_irq(&wb->lock);
	lost = wb->head == wb->tail && !atomic_read(&wb->nr_ios) &&
	       atomic64_read(&ic->nr_dirty);
	/*
	 * A write counts its dirty block just before queueing it: believe
	 * an empty queue only when the next run (a tick later) agrees.
	 */
	if (lost && !wb->suspect) {
		wb->suspect = true;
		lost = false;
	} else if (lost) {
		if (!wb->rescan)
			DMWARN_LIMIT("%s: writeback queue lost dirty blocks: rescanning",
				     ic->cache_dev->name);
		wb->rescan = false;
		wb->suspect = false;
	} else {
		wb->suspect = false;
	}
	spin_unlock_irq(&wb->lock);
	/* When they became dirty is lost too: they may be due. */
	if (lost)
		ic_wb_rescan(ic, jiffies -
			     msecs_to_jiffies(ic_tun(ic, IC_OPT_MAX_DIRTY_AGE)));
}

/*
 * The engine: start batches, oldest first, as far as the in-flight cap,
 * the rate ceiling and the read-latency controller allow; urgent work
 * (deadlines, watermark, flush) ignores the controller.
 */
static void ic_wb_work(struct work_struct *work)
{
	struct infercache *ic = container_of(to_delayed_work(work),
					     struct infercache, wb.work);
	unsigned long delay = msecs_to_jiffies(IC_WB_TICK_MS);
	struct ic_wb *wb = &ic->wb;

	if (!ic_wb_capable(ic) || test_bit(IC_SUSPENDED, &ic->flags))
		return;
	if (time_after_eq(jiffies, wb->next_tick))
		ic_wb_tick(ic);

	while (!time_before(jiffies, READ_ONCE(wb->retry_after))) {
		bool urgent = ic_wb_urgent(ic);
		u32 rate = ic_tun(ic, IC_OPT_WB_RATE);
		unsigned int limit = ic_tun(ic, IC_OPT_WB_INFLIGHT);
		struct ic_wb_io *io;
		u64 now = 0;

		if (test_bit(IC_WB_PAUSED, &ic->flags) &&
		    !atomic_read(&wb->flushing))
			break;
		if (!urgent)
			limit = wb->probing ? 0 : min(limit, wb->window);
		if (atomic_read(&wb->nr_ios) >= limit)
			break;
		if (rate) {
			now = ktime_get_ns();
			if (now < wb->rate_next_ns) {
				delay = min(delay, nsecs_to_jiffies(wb->rate_next_ns -
								    now) + 1);
				break;
			}
		}
		io = kzalloc(sizeof(*io), GFP_NOIO | __GFP_NOWARN);
		if (!io)
			break;
		/*
		 * Listed before any block is taken: a discard must not miss
		 * a batch it cannot see the blocks of yet.
		 */
		io->ic = ic;
		io->urgent = urgent;
		io->gathering = true;
		spin_lock_irq(&wb->lock);
		list_add_tail(&io->list, &wb->ios);
		spin_unlock_irq(&wb->lock);
		if (!ic_wb_gather(ic, io)) {
			ic_wb_unlist(io);
			kfree(io);
			ic_wb_check_lost(ic);
			break;
		}
		if (ic_wb_alloc_pages(ic, io)) {
			ic_wb_release(io, BLK_STS_RESOURCE);
			ic_wb_unlist(io);
			kfree(io);
			break;
		}
		if (rate)
			wb->rate_next_ns = max(now, wb->rate_next_ns) +
				div_u64((u64)io->nr * ic->block_size * 1000, rate);
		ic_wb_submit(ic, io);
	}
	if (atomic64_read(&ic->nr_dirty) || atomic_read(&wb->nr_ios))
		ic_wb_kick(ic, delay);
}

/*
 * Set up the writeback queue (once): sized for every slot plus the slack
 * the engine re-queues into. May run in the I/O-free activation.
 */
static int ic_wb_alloc(struct infercache *ic)
{
	struct ic_wb *wb = &ic->wb;
	u64 map_cap = ic->geo.nr_slots;
	u64 cap = round_up(map_cap + IC_WB_MAX_INFLIGHT * IC_WB_MAX_BLOCKS,
			   IC_WB_CHUNK) + IC_WB_CHUNK;
	unsigned long *stamps;
	u32 *ring;
	int r;

	if (wb->ring)
		return 0;
	wb->lat = alloc_percpu(struct ic_lat);
	if (!wb->lat)
		return -ENOMEM;
	r = bioset_init(&wb->bs, BIO_POOL_SIZE, 0, BIOSET_NEED_BVECS);
	if (r)
		goto out_lat;
	ring = kvmalloc_array(cap, sizeof(*ring), GFP_KERNEL);
	stamps = kvcalloc(cap / IC_WB_CHUNK, sizeof(*stamps), GFP_KERNEL);
	if (!ring || !stamps) {
		kvfree(ring);
		kvfree(stamps);
		r = -ENOMEM;
		goto out_bs;
	}
	wb->stamps = stamps;
	wb->cap = cap;
	wb->map_cap = map_cap;
	wb->head = 0;
	wb->tail = 0;
	wb->requeued_end = 0;
	wb->window = 1;
	wb->next_tick = jiffies;
	/* Publish: ic_wb_capable() sees a ready queue. */
	smp_store_release(&wb->ring, ring);
	return 0;

out_bs:
	bioset_exit(&wb->bs);
out_lat:
	free_percpu(wb->lat);
	wb->lat = NULL;
	return r;
}

static void ic_wb_free(struct infercache *ic)
{
	struct ic_wb *wb = &ic->wb;

	if (!wb->ring)
		return;
	kvfree(wb->ring);
	kvfree(wb->stamps);
	bioset_exit(&wb->bs);
	free_percpu(wb->lat);
	wb->ring = NULL;
}

/* After a load: count the dirty blocks and queue them. */
static int ic_wb_load(struct infercache *ic)
{
	struct ic_index *idx = &ic->index;
	u64 slot, dirty = 0;
	int r;

	for (slot = 0; slot < ic->geo.nr_slots; slot++)
		if (idx->ways[slot] & IC_WAY_DIRTY)
			dirty++;
	if (!dirty)
		return 0;
	/* The superblock should have said so; be safe anyway. */
	r = ic_wb_alloc(ic);
	if (r)
		return r;
	/* Their deadlines count from the load. */
	ic_wb_rescan(ic, jiffies);
	atomic64_set(&ic->nr_dirty, dirty);
	return 0;
}

/*
 * Write back everything and commit, so that the origin alone holds every
 * block. Returns when nothing is dirty; a signal interrupts the wait.
 */
static int ic_wb_flush(struct infercache *ic)
{
	struct ic_wb *wb = &ic->wb;
	long t;
	int r = 0;

	if (!ic_wb_capable(ic) ||
	    (!atomic64_read(&ic->nr_dirty) && !atomic_read(&wb->nr_ios)))
		return ic_commit(ic);
	if (test_bit(IC_SUSPENDED, &ic->flags)) {
		DMERR("%s: flush: the device is suspended: no writeback runs",
		      ic->cache_dev->name);
		return -EBUSY;
	}
	atomic_inc(&wb->flushing);
	for (;;) {
		mod_delayed_work(ic->wq, &wb->work, 0);
		t = wait_event_interruptible_timeout(wb->wait,
						     !atomic64_read(&ic->nr_dirty) &&
						     !atomic_read(&wb->nr_ios),
						     HZ);
		if (t < 0) {
			r = -EINTR;
			break;
		}
		if (!atomic64_read(&ic->nr_dirty) && !atomic_read(&wb->nr_ios))
			break;
		if (test_bit(IC_SUSPENDED, &ic->flags)) {
			r = -EBUSY;
			break;
		}
		if (ic_degraded(ic) && atomic64_read(&wb->errors)) {
			DMERR("%s: flush: cache device errors, %lld blocks still dirty",
			      ic->cache_dev->name,
			      (long long)atomic64_read(&ic->nr_dirty));
			r = -EIO;
			break;
		}
	}
	atomic_dec(&wb->flushing);
	if (!r)
		r = ic_commit(ic);
	/*
	 * Blocks written back while that commit flushed are on the origin
	 * but still DIRTY on disk: one more commit says they are clean.
	 */
	if (!r && atomic_read(&ic->meta.nr_dirty))
		r = ic_commit(ic);
	return r;
}

static void ic_wb_pause(struct infercache *ic, bool pause)
{
	if (pause) {
		set_bit(IC_WB_PAUSED, &ic->flags);
		return;
	}
	clear_bit(IC_WB_PAUSED, &ic->flags);
	if (ic_wb_capable(ic))
		ic_wb_kick_now(ic);
}

/* Make @mode the current one; writethrough drains first. */
static int ic_set_mode(struct infercache *ic, enum ic_mode mode)
{
	int r = 0;

	mutex_lock(&ic->mode_lock);
	if (mode == IC_MODE_WRITEBACK) {
		if (!ic->activated) {
			DMERR("mode: the target has not been resumed yet");
			r = -EINVAL;
		} else if (ic_degraded(ic)) {
			/* No block can become dirty on a failed cache. */
			DMERR("%s: mode writeback: the cache device has failed",
			      ic->cache_dev->name);
			r = -EIO;
		}
		if (!r) {
			/* The device may be suspended: no reclaim I/O to it. */
			unsigned int noio = memalloc_noio_save();

			r = ic_wb_alloc(ic);
			memalloc_noio_restore(noio);
		}
		/* Before the first DIRTY entry can reach the disk. */
		if (!r)
			r = ic_meta_enable_dirty(&ic->meta);
		if (!r)
			WRITE_ONCE(ic->mode_now, mode);
		mutex_unlock(&ic->mode_lock);
		return r;
	}
	if (test_bit(IC_SUSPENDED, &ic->flags) && atomic64_read(&ic->nr_dirty)) {
		DMERR("mode: dirty blocks cannot drain while the device is suspended");
		mutex_unlock(&ic->mode_lock);
		return -EBUSY;
	}
	WRITE_ONCE(ic->mode_now, mode);
	mutex_unlock(&ic->mode_lock);
	return ic_wb_flush(ic);
}

static int infercache_map(struct dm_target *ti, struct bio *bio)
{
	struct infercache *ic = ti->private;
	struct ic_bio *pb = dm_per_bio_data(bio, sizeof(*pb));

	pb->kind = IC_BIO_PASS;
	pb->timed = false;

	if (bio->bi_opf & REQ_PREFLUSH) {
		unsigned long flags;

		/*
		 * dm core sends data separately: this is an empty flush. A
		 * commit flushes both devices and describes what they hold.
		 */
		spin_lock_irqsave(&ic->defer_lock, flags);
		bio_list_add(&ic->flushes, bio);
		spin_unlock_irqrestore(&ic->defer_lock, flags);
		mod_delayed_work(ic->wq, &ic->commit_work, 0);
		return DM_MAPIO_SUBMITTED;
	}

	switch (bio_op(bio)) {
	case REQ_OP_READ:
		return ic_map_read(ic, bio, pb);
	case REQ_OP_WRITE:
		return ic_map_write(ic, bio, pb);
	case REQ_OP_DISCARD:
		return ic_map_discard(ic, bio, pb);
	default:
		return DM_MAPIO_KILL;
	}
}

/* ---- Completion ---- */

static void ic_retry_work(struct work_struct *work)
{
	struct infercache *ic = container_of(work, struct infercache,
					     retry_work);
	struct bio_list bios;
	struct bio *bio;

	spin_lock_irq(&ic->retry_lock);
	bios = ic->retry_bios;
	bio_list_init(&ic->retry_bios);
	spin_unlock_irq(&ic->retry_lock);

	while ((bio = bio_list_pop(&bios)))
		submit_bio_noacct(bio);
}

/* A hit failed on the cache device: reissue it to the origin. */
static int ic_retry_on_origin(struct infercache *ic, struct bio *bio,
			      struct ic_bio *pb)
{
	unsigned long flags;

	bio->bi_iter = pb->iter;
	bio->bi_status = BLK_STS_OK;
	ic_remap_origin(ic, bio);
	pb->kind = IC_BIO_PASS;

	spin_lock_irqsave(&ic->retry_lock, flags);
	bio_list_add(&ic->retry_bios, bio);
	spin_unlock_irqrestore(&ic->retry_lock, flags);
	queue_work(ic->wq, &ic->retry_work);
	return DM_ENDIO_INCOMPLETE;
}

/*
 * A write that took its way is over: writes that overlapped one end once
 * their way is installed (FUA ones through the commit worker), and fail if
 * it was dropped (their data went with it).
 */
static void ic_alloc_release(struct infercache *ic)
{
	struct bio_list keep, ready, done, failed;
	unsigned long flags;
	struct bio *bio;

	bio_list_init(&keep);
	bio_list_init(&ready);
	bio_list_init(&done);
	bio_list_init(&failed);
	spin_lock_irqsave(&ic->defer_lock, flags);
	while ((bio = bio_list_pop(&ic->alloc_wait))) {
		struct ic_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
		u64 word = READ_ONCE(ic->index.ways[ic_index_slot(pb->set,
								   pb->way)]);

		if ((word & IC_WAY_FILLING) && (word & IC_WAY_DIRTY))
			bio_list_add(&keep, bio);
		else if (!(word & IC_WAY_VALID) || !(word & IC_WAY_DIRTY))
			bio_list_add(&failed, bio);
		else if (bio->bi_opf & REQ_FUA)
			bio_list_add(&ready, bio);
		else
			bio_list_add(&done, bio);
	}
	ic->alloc_wait = keep;
	bio_list_merge(&ic->flushes, &ready);
	spin_unlock_irqrestore(&ic->defer_lock, flags);
	if (!bio_list_empty(&ready))
		mod_delayed_work(ic->wq, &ic->commit_work, 0);
	while ((bio = bio_list_pop(&done)))
		bio_endio(bio);
	while ((bio = bio_list_pop(&failed)))
		bio_io_error(bio);
}

/*
 * A write to a slot alone is done. A whole-block write that took its way
 * installs the block. Returns true when the bio waits: for a commit (FUA:
 * the entry must be on disk too before it is acknowledged), or for the
 * write that takes its way.
 */
static bool ic_dirty_write_done(struct infercache *ic, struct bio *bio,
				struct ic_bio *pb, blk_status_t *error)
{
	u64 slot = ic_index_slot(pb->set, pb->way);
	struct ic_set *s = ic_set(ic, pb->set);
	bool installed = false, lost = false, wait = false;
	bool fua = bio->bi_opf & REQ_FUA;
	unsigned long flags;
	u64 word;

	/* Degraded before the way can go: racing writes see it (lost). */
	if (*error)
		ic_cache_error(ic);
	spin_lock_irqsave(&s->lock, flags);
	ic->index.inflight[slot]--;
	s->writes_inflight--;
	word = ic->index.ways[slot];
	if (pb->alloc && (word & IC_WAY_FILLING)) {
		if (!*error && !(word & IC_WAY_STALE) &&
		    (word & IC_WAY_DIRTY)) {
			WARN_ON_ONCE(word & IC_WAY_ON_DISK);
			ic->index.ways[slot] = (word & ~IC_WAY_FILLING) |
					       IC_WAY_VALID;
			installed = true;
		} else {
			if (word & IC_WAY_DIRTY)
				atomic64_dec(&ic->nr_dirty);
			ic->index.ways[slot] = word & IC_WAY_ON_DISK;
		}
	} else if (!(word & IC_WAY_DIRTY)) {
		/* Forgotten meanwhile: by a discard, or a failed cache. */
		lost = ic_degraded(ic);
	} else if ((word & IC_WAY_FILLING) && !*error) {
		/*
		 * Overlapping the write that takes the way: no commit can
		 * describe the block before that one lands, and if it fails
		 * this data goes with the slot. So this write ends with it.
		 * Queued under the set lock, so that its ic_alloc_release()
		 * sees this bio.
		 */
		pb->kind = IC_BIO_PASS;
		spin_lock(&ic->defer_lock);
		bio_list_add(&ic->alloc_wait, bio);
		spin_unlock(&ic->defer_lock);
		wait = true;
	}
	spin_unlock_irqrestore(&s->lock, flags);

	ic_meta_set_dirty(&ic->meta, pb->set);
	if (installed)
		atomic64_inc(&ic->cached);
	if (pb->alloc)
		ic_alloc_release(ic);
	if (wait)
		return true;
	if (!*error && lost)
		*error = BLK_STS_IOERR;
	if (*error || !fua)
		return false;

	/* Acknowledged by the commit worker, after the next commit. */
	pb->kind = IC_BIO_PASS;
	spin_lock_irqsave(&ic->defer_lock, flags);
	bio_list_add(&ic->flushes, bio);
	spin_unlock_irqrestore(&ic->defer_lock, flags);
	mod_delayed_work(ic->wq, &ic->commit_work, 0);
	return true;
}

static int infercache_end_io(struct dm_target *ti, struct bio *bio,
			     blk_status_t *error)
{
	struct infercache *ic = ti->private;
	struct ic_bio *pb = dm_per_bio_data(bio, sizeof(*pb));
	bool failed = false, only_copy = false;
	u64 slot;
	unsigned long flags;
	struct ic_set *s;

	if (pb->timed) {
		pb->timed = false;
		ic_lat_record(ic, pb->start_ns);
	}

	switch (pb->kind) {
	case IC_BIO_HIT_READ:
		slot = ic_index_slot(pb->set, pb->way);
		s = ic_set(ic, pb->set);
		spin_lock_irqsave(&s->lock, flags);
		ic->index.inflight[slot]--;
		if (*error && *error != BLK_STS_AGAIN) {
			u64 word = ic->index.ways[slot];

			/* A dirty block has no other copy: keep it, fail. */
			only_copy = word & IC_WAY_DIRTY;
			/*
			 * Written back: the origin has it, but the entry may
			 * say DIRTY until a commit: forgetting the way would
			 * hide that from writes (ic_block_dirty()).
			 */
			if (!(word & (IC_WAY_DIRTY | IC_WAY_DISK_DIRTY)))
				ic_invalidate_slot(ic, slot);
			failed = true;
		}
		spin_unlock_irqrestore(&s->lock, flags);
		if (failed) {
			ic_cache_error(ic);
			if (only_copy)
				break;
			*error = BLK_STS_OK;
			return ic_retry_on_origin(ic, bio, pb);
		}
		break;

	case IC_BIO_DIRTY_WRITE:
		if (ic_dirty_write_done(ic, bio, pb, error))
			return DM_ENDIO_INCOMPLETE;
		break;

	case IC_BIO_HIT_WRITE:
		slot = ic_index_slot(pb->set, pb->way);
		s = ic_set(ic, pb->set);
		spin_lock_irqsave(&s->lock, flags);
		ic->index.inflight[slot]--;
		ic->index.ways[slot] &= ~IC_WAY_WRITING;
		s->writes_inflight--;
		if ((pb->cache_failed || pb->no_copy) &&
		    (ic->index.ways[slot] & IC_WAY_DISK_DIRTY)) {
			/*
			 * Disk may say DIRTY for the old copy in the slot and
			 * cannot be rewritten now: keep the way (writes to it
			 * fail from now on) and fail this write, whose data
			 * is on the origin alone.
			 */
			*error = BLK_STS_IOERR;
		} else if (*error || pb->cache_failed || pb->no_copy) {
			ic_invalidate_slot(ic, slot);
		}
		spin_unlock_irqrestore(&s->lock, flags);
		ic_meta_set_dirty(&ic->meta, pb->set);
		if (pb->cache_failed)
			ic_cache_error(ic);
		break;

	case IC_BIO_MISS_WRITE:
		s = ic_set(ic, pb->set);
		spin_lock_irqsave(&s->lock, flags);
		s->writes_inflight--;
		spin_unlock_irqrestore(&s->lock, flags);
		break;

	case IC_BIO_DISCARD:
		atomic_dec(&ic->discards_inflight);
		break;

	case IC_BIO_PASS:
	case IC_BIO_FILLED:
		break;
	}
	return DM_ENDIO_DONE;
}

/* ---- Table, status and messages ---- */

static int ic_parse_seq_threshold(const char *val, unsigned int *bytes)
{
	unsigned int v;

	if (kstrtouint(val, 10, &v) || v > IC_MAX_SEQ_THRESHOLD)
		return -EINVAL;
	*bytes = v;
	return 0;
}

static int ic_parse_commit_ms(const char *val, unsigned int *ms)
{
	unsigned int v;

	if (kstrtouint(val, 10, &v) || v > IC_MAX_COMMIT_MS)
		return -EINVAL;
	*ms = v;
	return 0;
}

static int ic_parse_origin_tag(const char *val, char *tag)
{
	size_t len = strlen(val), i;

	if (!len || len >= IC_ORIGIN_TAG_BYTES)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!isalnum(val[i]) && !strchr("._:-", val[i]))
			return -EINVAL;
	memset(tag, 0, IC_ORIGIN_TAG_BYTES);
	memcpy(tag, val, len);
	return 0;
}

static int ic_parse_mode(const char *val, enum ic_mode *mode)
{
	if (!strcasecmp(val, "writethrough"))
		*mode = IC_MODE_WRITETHROUGH;
	else if (!strcasecmp(val, "writeback"))
		*mode = IC_MODE_WRITEBACK;
	else
		return -EINVAL;
	return 0;
}

/* The index in ic_tunables[] of the tunable called @name, or -1. */
static int ic_find_tunable(const char *name)
{
	int i;

	for (i = 0; i < IC_NR_TUN; i++)
		if (!strcasecmp(name, ic_tunables[i].name))
			return i;
	return -1;
}

static int ic_parse_tunable(int t, const char *val, u32 *out)
{
	u32 v;

	if (kstrtou32(val, 10, &v) || v < ic_tunables[t].min ||
	    v > ic_tunables[t].max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void ic_set_seq_threshold(struct infercache *ic, unsigned int bytes)
{
	ic->seq_threshold_bytes = bytes;
	WRITE_ONCE(ic->seq_threshold, bytes >> SECTOR_SHIFT);
}

static int ic_parse_opts(struct infercache *ic, struct dm_arg_set *as,
			 char **error)
{
	static const struct dm_arg nr_opts_arg = {
		0, IC_MAX_OPT_ARGS, "Invalid number of optional arguments"
	};
	unsigned int nr_args, seen = 0;
	int r;

	r = dm_read_arg_group(&nr_opts_arg, as, &nr_args, error);
	if (r)
		return r;
	if (as->argc != nr_args) {
		*error = "Invalid argument count";
		return -EINVAL;
	}

	while (as->argc) {
		const char *key = dm_shift_arg(as);
		const char *val = NULL;
		enum ic_opt opt;

		if (!strcasecmp(key, "mode")) {
			opt = IC_OPT_MODE;
		} else if (!strcasecmp(key, "block_size")) {
			opt = IC_OPT_BLOCK_SIZE;
		} else if (!strcasecmp(key, "sequential_threshold")) {
			opt = IC_OPT_SEQ_THRESHOLD;
		} else if (!strcasecmp(key, "commit_interval")) {
			opt = IC_OPT_COMMIT_INTERVAL;
		} else if (!strcasecmp(key, "origin_tag")) {
			opt = IC_OPT_ORIGIN_TAG;
		} else if (!strcasecmp(key, "format")) {
			opt = IC_OPT_FORMAT;
		} else {
			int t = ic_find_tunable(key);

			if (t < 0) {
				*error = "Unknown optional argument";
				return -EINVAL;
			}
			opt = IC_FIRST_TUN + t;
		}
		if (opt != IC_OPT_FORMAT)
			val = dm_shift_arg(as);
		if (!val && opt != IC_OPT_FORMAT) {
			*error = "Missing value for optional argument";
			return -EINVAL;
		}
		if (seen & BIT(opt)) {
			*error = "Optional argument given twice";
			return -EINVAL;
		}
		seen |= BIT(opt);
		ic->opts[ic->nr_opts++] = opt;

		switch (opt) {
		case IC_OPT_MODE:
			if (ic_parse_mode(val, &ic->mode)) {
				*error = "Invalid cache mode: writethrough or writeback";
				return -EINVAL;
			}
			break;
		case IC_OPT_BLOCK_SIZE:
			if (kstrtouint(val, 10, &ic->block_size) ||
			    ic->block_size < IC_MIN_BLOCK_SECTORS << SECTOR_SHIFT ||
			    ic->block_size > IC_MAX_BLOCK_SECTORS << SECTOR_SHIFT ||
			    !is_power_of_2(ic->block_size)) {
				*error = IC_BLOCK_SIZE_ERROR;
				return -EINVAL;
			}
			break;
		case IC_OPT_SEQ_THRESHOLD:
			if (ic_parse_seq_threshold(val, &ic->seq_threshold_bytes)) {
				*error = IC_SEQ_THRESHOLD_ERROR;
				return -EINVAL;
			}
			break;
		case IC_OPT_COMMIT_INTERVAL:
			if (ic_parse_commit_ms(val, &ic->commit_ms_table)) {
				*error = IC_COMMIT_INTERVAL_ERROR;
				return -EINVAL;
			}
			break;
		case IC_OPT_ORIGIN_TAG:
			if (ic_parse_origin_tag(val, ic->origin_tag)) {
				*error = IC_ORIGIN_TAG_ERROR;
				return -EINVAL;
			}
			break;
		case IC_OPT_FORMAT:
			ic->format = true;
			break;
		default:
			if (ic_parse_tunable(opt - IC_FIRST_TUN, val,
					     &ic->tun_table[opt - IC_FIRST_TUN])) {
				*error = (char *)ic_tunables[opt - IC_FIRST_TUN].error;
				return -EINVAL;
			}
			break;
		}
	}
	return 0;
}

static bool ic_has_opt(struct infercache *ic, enum ic_opt opt)
{
	unsigned int i;

	for (i = 0; i < ic->nr_opts; i++)
		if (ic->opts[i] == opt)
			return true;
	return false;
}

static void ic_free(struct infercache *ic)
{
	if (ic->wq)
		destroy_workqueue(ic->wq);
	if (ic->wb_wq)
		destroy_workqueue(ic->wb_wq);
	ic_wb_free(ic);
	ic_meta_exit(&ic->meta);
	kvfree(ic->discard_sets);
	mempool_exit(&ic->page_pool);
	bioset_exit(&ic->fill_bs);
	bioset_exit(&ic->wt_bs);
	free_percpu(ic->stats);
	ic_index_exit(&ic->index);
	if (ic->origin_dev)
		dm_put_device(ic->ti, ic->origin_dev);
	if (ic->cache_dev)
		dm_put_device(ic->ti, ic->cache_dev);
	kfree(ic);
}

static int ic_open_devices(struct infercache *ic, struct dm_arg_set *as,
			   char **error)
{
	struct dm_target *ti = ic->ti;
	fmode_t mode = dm_table_get_mode(ti->table);
	int r;

	r = dm_get_device(ti, dm_shift_arg(as), mode, &ic->cache_dev);
	if (r) {
		*error = "Error opening cache device";
		return r;
	}
	r = dm_get_device(ti, dm_shift_arg(as), mode, &ic->origin_dev);
	if (r) {
		*error = "Error opening origin device";
		return r;
	}
	if (ic->cache_dev->bdev == ic->origin_dev->bdev) {
		*error = "Cache and origin must be different devices";
		return -EINVAL;
	}
	if (bdev_nr_sectors(ic->origin_dev->bdev) < ti->len) {
		*error = "Origin device is smaller than the target";
		return -EINVAL;
	}
	return 0;
}

/*
 * The cache had I/O errors when last used: its clean entries may be stale.
 * Without writeback re-format; with it, dirty entries are the only copy of
 * their blocks, so load those alone.
 */
static void ic_check_errors_flag(struct infercache *ic)
{
	const char *name = ic->cache_dev->name;

	ic->dirty_only = false;
	if (!(ic->sb.flags & IC_SB_ERRORS))
		return;
	if (ic->sb.incompat & IC_FEATURE_INCOMPAT_DIRTY) {
		DMWARN("%s: the cache had I/O errors when last used: keeping its dirty blocks only",
		       name);
		ic->dirty_only = true;
		return;
	}
	DMWARN("%s: the cache device had I/O errors when last used: re-formatting it",
	       name);
	ic->format = true;
}

/*
 * Read the superblock and decide: load it, format a blank device, or refuse
 * one that belongs to another origin or block size (unless "format").
 */
static int ic_check_superblock(struct infercache *ic, char **error)
{
	struct block_device *cache = ic->cache_dev->bdev;
	const char *name = ic->cache_dev->name;
	enum ic_sb_status st[IC_SB_COPIES];
	struct ic_sb sb[IC_SB_COPIES];
	const char *why[IC_SB_COPIES];
	int r, best, i;

	if (bdev_nr_sectors(cache) <
	    ic_geometry_min_sectors(IC_MIN_BLOCK_SECTORS)) {
		*error = "Cache device too small";
		return -EINVAL;
	}
	if (bdev_logical_block_size(cache) >
	    IC_SB_SLOT_SECTORS << SECTOR_SHIFT) {
		*error = "Cache device logical block size above 4096 bytes is not supported";
		return -EINVAL;
	}
	r = ic_meta_read_sb(cache, st, sb, why);
	if (r) {
		*error = "Cannot read the cache device superblock";
		return r;
	}
	if (ic->format)
		return 0;

	best = ic_sb_choose(st, sb);
	if (best < 0) {
		if (st[0] == IC_SB_BLANK && st[1] == IC_SB_BLANK) {
			ic->format = true;
			return 0;
		}
		if (st[0] == IC_SB_CORRUPT || st[1] == IC_SB_CORRUPT) {
			DMERR("%s: superblock copy 0: %s; copy 1: %s", name,
			      why[0] ?: "blank", why[1] ?: "blank");
			*error = IC_SB_DAMAGED_ERROR;
			return -EINVAL;
		}
		*error = IC_SB_FOREIGN_ERROR;
		return -EINVAL;
	}
	for (i = 0; i < IC_SB_COPIES; i++)
		if (st[i] != IC_SB_OK)
			DMWARN("%s: superblock copy %d is bad (%s): using copy %d",
			       name, i, why[i] ?: "blank", best);
	ic->sb = sb[best];

	if (ic_has_opt(ic, IC_OPT_BLOCK_SIZE) &&
	    ic->block_size != ic->sb.block_sectors << SECTOR_SHIFT) {
		*error = IC_SB_BLOCK_ERROR;
		return -EINVAL;
	}
	ic->block_size = ic->sb.block_sectors << SECTOR_SHIFT;
	if (ic->sb.origin_sectors != ic->ti->len) {
		DMERR("%s: formatted for an origin of %llu sectors, the table has %llu",
		      name, ic->sb.origin_sectors, (u64)ic->ti->len);
		*error = IC_SB_ORIGIN_ERROR;
		return -EINVAL;
	}
	if (memcmp(ic->sb.origin_tag, ic->origin_tag, IC_ORIGIN_TAG_BYTES)) {
		DMERR("%s: formatted with origin_tag '%.*s', the table has '%s'",
		      name, IC_ORIGIN_TAG_BYTES, ic->sb.origin_tag,
		      ic->origin_tag);
		*error = IC_SB_TAG_ERROR;
		return -EINVAL;
	}
	if (bdev_nr_sectors(cache) < ic->sb.cache_sectors) {
		*error = IC_SB_SHRUNK_ERROR;
		return -EINVAL;
	}
	ic_check_errors_flag(ic);
	return 0;
}

static int ic_setup_geometry(struct infercache *ic, char **error)
{
	u64 cache_sectors = bdev_nr_sectors(ic->cache_dev->bdev);
	u32 block_sectors = ic->block_size >> SECTOR_SHIFT;
	int r = 0;

	if (ic->format)
		r = ic_geometry_init(&ic->geo, cache_sectors, block_sectors);
	else
		ic_sb_geometry(&ic->sb, &ic->geo);	/* the layout on disk */
	if (r) {
		*error = "Cache device too small";
		return r;
	}
	/*
	 * The in-core index is one array of u64 way words, which kvmalloc
	 * caps at INT_MAX bytes (about 2^28 blocks, 1 TiB of 4 KiB blocks);
	 * the writeback queue holds slot numbers as u32.
	 */
	if (ic->geo.nr_slots > IC_MAX_SLOTS) {
		*error = IC_TOO_LARGE_ERROR;
		return -EINVAL;
	}
	ic->block_shift = ilog2(block_sectors);
	ic->origin_blocks = ic->ti->len >> ic->block_shift;
	if (ic->origin_blocks > IC_OBLOCK_MASK) {
		*error = "Origin device too large for this block size";
		return -EINVAL;
	}
	return 0;
}

static int ic_alloc_runtime(struct infercache *ic, char **error)
{
	unsigned int nr_pages = DIV_ROUND_UP(ic->block_size, PAGE_SIZE);
	int r;

	r = ic_index_init(&ic->index, ic->geo.nr_sets);
	if (r) {
		*error = "Cannot allocate the cache index";
		return r;
	}

	ic->stats = alloc_percpu(struct ic_stats);
	if (!ic->stats) {
		*error = "Cannot allocate statistics";
		return -ENOMEM;
	}

	r = bioset_init(&ic->wt_bs, BIO_POOL_SIZE, 0, 0);
	if (!r)
		r = bioset_init(&ic->fill_bs, BIO_POOL_SIZE,
				offsetof(struct ic_fill, bio),
				BIOSET_NEED_BVECS);
	if (!r)
		r = mempool_init_page_pool(&ic->page_pool,
					   max_t(unsigned int, IC_MIN_POOL_PAGES,
						 4 * nr_pages), 0);
	if (r) {
		*error = "Cannot allocate I/O pools";
		return r;
	}

	ic->wq = alloc_workqueue("dm-" DM_MSG_PREFIX, WQ_MEM_RECLAIM, 0);
	/* Discards on ic->wq wait for batches: those must not wait on it. */
	ic->wb_wq = alloc_workqueue("dm-" DM_MSG_PREFIX "-wb", WQ_MEM_RECLAIM,
				    0);
	if (!ic->wq || !ic->wb_wq) {
		*error = "Cannot allocate workqueue";
		return -ENOMEM;
	}

	ic->discard_sets = kvcalloc(BITS_TO_LONGS(ic->geo.nr_sets),
				    sizeof(unsigned long), GFP_KERNEL);
	r = ic->discard_sets ? 0 : -ENOMEM;
	if (!r)
		r = ic_meta_init(&ic->meta, ic->cache_dev->bdev,
				 ic->origin_dev->bdev, &ic->index, &ic->geo);
	if (r) {
		*error = "Cannot allocate metadata state";
		return r;
	}
	if (ic->mode == IC_MODE_WRITEBACK ||
	    (!ic->format && (ic->sb.incompat & IC_FEATURE_INCOMPAT_DIRTY))) {
		r = ic_wb_alloc(ic);
		if (r) {
			*error = "Cannot allocate the writeback queue";
			return r;
		}
	}
	return 0;
}

static const char *ic_wb_state(struct infercache *ic)
{
	struct ic_wb *wb = &ic->wb;

	if (!ic_wb_capable(ic))
		return "idle";
	if (atomic_read(&wb->flushing))
		return "flushing";
	if (test_bit(IC_WB_PAUSED, &ic->flags))
		return "paused";
	if (!atomic64_read(&ic->nr_dirty) && !atomic_read(&wb->nr_ios))
		return "idle";
	return READ_ONCE(wb->backoff) ? "backoff" : "running";
}

static const char *ic_mode_name(enum ic_mode mode)
{
	return mode == IC_MODE_WRITEBACK ? "writeback" : "writethrough";
}

/* ---- sysfs: /sys/block/dm-N/infercache ---- */

struct ic_attr {
	struct attribute attr;
	int tun;			/* ic_tunables[] index, or -1 */
	ssize_t (*show)(struct infercache *ic, char *buf);
	ssize_t (*store)(struct infercache *ic, const char *buf);
};

static ssize_t ic_attr_show(struct kobject *kobj, struct attribute *attr,
			    char *buf)
{
	struct infercache *ic = container_of(kobj, struct ic_sysfs, kobj)->ic;
	struct ic_attr *a = container_of(attr, struct ic_attr, attr);

	if (a->tun >= 0)
		return sysfs_emit(buf, "%u\n", ic_tun(ic, IC_FIRST_TUN + a->tun));
	return a->show ? a->show(ic, buf) : -EIO;
}

static ssize_t ic_attr_store(struct kobject *kobj, struct attribute *attr,
			     const char *buf, size_t count)
{
	struct infercache *ic = container_of(kobj, struct ic_sysfs, kobj)->ic;
	struct ic_attr *a = container_of(attr, struct ic_attr, attr);
	char val[24];
	ssize_t r;

	/* One word, as a message would take it. */
	if (count >= sizeof(val))
		return -EINVAL;
	memcpy(val, buf, count);
	val[count] = 0;
	strim(val);
	if (a->tun >= 0) {
		u32 v;

		if (ic_parse_tunable(a->tun, val, &v)) {
			DMERR("%s", ic_tunables[a->tun].error);
			return -EINVAL;
		}
		WRITE_ONCE(ic->tun[a->tun], v);
		ic_set_dirty_limit(ic);
		if (ic_wb_capable(ic))
			ic_wb_kick_now(ic);
		return count;
	}
	if (!a->store)
		return -EIO;
	r = a->store(ic, val);
	return r < 0 ? r : count;
}

static ssize_t ic_mode_show(struct infercache *ic, char *buf)
{
	return sysfs_emit(buf, "%s\n", ic_mode_name(READ_ONCE(ic->mode_now)));
}

static ssize_t ic_mode_store(struct infercache *ic, const char *val)
{
	enum ic_mode mode;

	if (ic_parse_mode(val, &mode)) {
		DMERR("Invalid cache mode: writethrough or writeback");
		return -EINVAL;
	}
	return ic_set_mode(ic, mode);
}

static ssize_t ic_paused_show(struct infercache *ic, char *buf)
{
	return sysfs_emit(buf, "%d\n", test_bit(IC_WB_PAUSED, &ic->flags));
}

static ssize_t ic_paused_store(struct infercache *ic, const char *val)
{
	bool pause;

	if (kstrtobool(val, &pause))
		return -EINVAL;
	ic_wb_pause(ic, pause);
	return 0;
}

static ssize_t ic_flush_store(struct infercache *ic, const char *val)
{
	if (strcmp(val, "1"))
		return -EINVAL;
	return ic_wb_flush(ic);
}

static ssize_t ic_dirty_show(struct infercache *ic, char *buf)
{
	return sysfs_emit(buf, "%lld\n", (long long)atomic64_read(&ic->nr_dirty));
}

static ssize_t ic_wb_state_show(struct infercache *ic, char *buf)
{
	return sysfs_emit(buf, "%s\n", ic_wb_state(ic));
}

static ssize_t ic_read_p99_show(struct infercache *ic, char *buf)
{
	return sysfs_emit(buf, "%u\n", READ_ONCE(ic->wb.p99_us));
}

#define IC_ATTR(_name, _mode, _show, _store) \
	static struct ic_attr ic_attr_##_name = { \
		.attr = { .name = #_name, .mode = _mode }, .tun = -1, \
		.show = _show, .store = _store, \
	}
#define IC_TUN_ATTR(_name, _opt) \
	static struct ic_attr ic_attr_##_name = { \
		.attr = { .name = #_name, .mode = 0644 }, \
		.tun = (_opt) - IC_FIRST_TUN, \
	}

IC_ATTR(mode, 0644, ic_mode_show, ic_mode_store);
IC_ATTR(writeback_paused, 0644, ic_paused_show, ic_paused_store);
IC_ATTR(flush, 0200, NULL, ic_flush_store);
IC_ATTR(dirty, 0444, ic_dirty_show, NULL);
IC_ATTR(writeback_state, 0444, ic_wb_state_show, NULL);
IC_ATTR(read_p99_us, 0444, ic_read_p99_show, NULL);
IC_TUN_ATTR(max_dirty_age, IC_OPT_MAX_DIRTY_AGE);
IC_TUN_ATTR(dirty_high, IC_OPT_DIRTY_HIGH);
IC_TUN_ATTR(read_latency_target, IC_OPT_READ_TARGET);
IC_TUN_ATTR(writeback_inflight, IC_OPT_WB_INFLIGHT);
IC_TUN_ATTR(writeback_rate, IC_OPT_WB_RATE);

static struct attribute *ic_attrs[] = {
	&ic_attr_mode.attr,
	&ic_attr_writeback_paused.attr,
	&ic_attr_flush.attr,
	&ic_attr_dirty.attr,
	&ic_attr_writeback_state.attr,
	&ic_attr_read_p99_us.attr,
	&ic_attr_max_dirty_age.attr,
	&ic_attr_dirty_high.attr,
	&ic_attr_read_latency_target.attr,
	&ic_attr_writeback_inflight.attr,
	&ic_attr_writeback_rate.attr,
	NULL,
};
ATTRIBUTE_GROUPS(ic);

static const struct sysfs_ops ic_sysfs_ops = {
	.show = ic_attr_show,
	.store = ic_attr_store,
};

static void ic_sysfs_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct ic_sysfs, kobj));
}

static struct kobj_type ic_ktype = {
	.sysfs_ops = &ic_sysfs_ops,
	.default_groups = ic_groups,
	.release = ic_sysfs_release,
};

/* Not fatal: the messages do the same. */
static void ic_sysfs_add(struct infercache *ic)
{
	struct mapped_device *md = dm_table_get_md(ic->ti->table);
	struct ic_sysfs *k;
	int r;

	if (ic->sysfs)
		return;
	k = kzalloc(sizeof(*k), GFP_KERNEL);
	if (!k)
		return;
	k->ic = ic;
	r = kobject_init_and_add(&k->kobj, &ic_ktype,
				 &disk_to_dev(dm_disk(md))->kobj,
				 DM_MSG_PREFIX);
	if (r) {
		DMWARN("%s: no sysfs directory: error %d", dm_device_name(md), r);
		kobject_put(&k->kobj);
		return;
	}
	ic->sysfs = k;
}

/* Returns once no sysfs call is running (kernfs drains them). */
static void ic_sysfs_del(struct infercache *ic)
{
	if (!ic->sysfs)
		return;
	kobject_del(&ic->sysfs->kobj);
	kobject_put(&ic->sysfs->kobj);
	ic->sysfs = NULL;
}

/*
 * Construct an infercache mapping:
 *   <cache dev> <origin dev> <#opt args> [<opt arg>...]
 * Optional arguments, key and value:
 *   mode writethrough|writeback   (writethrough default)
 *   block_size <bytes>    (4096 default; a power of two, 4 KiB to 64 KiB)
 *   sequential_threshold <bytes>
 *                         (4 MiB default; 0 is off) misses of a sequential
 *                         stream past this many bytes are not filled
 *   commit_interval <ms>  (1000 default; 0: only on flush and suspend)
 *   origin_tag <tag>      identity of the origin, kept in the superblock
 *   format                (no value) re-format the cache device
 *   max_dirty_age <ms>, dirty_high <percent>, read_latency_target <us>,
 *   writeback_inflight <n>, writeback_rate <MB/s>
 *                         writeback tunables (ic_tunables[]); also messages
 * A blank cache device (first 8 KiB zero) is formatted; a formatted one is
 * loaded at the first resume.
 */
static int infercache_ctr(struct dm_target *ti, unsigned int argc,
			  char **argv)
{
	struct dm_arg_set as = { .argc = argc, .argv = argv };
	struct infercache *ic;
	int r;

	if (argc < 3) {
		ti->error = "Invalid argument count";
		return -EINVAL;
	}

	ic = kzalloc(sizeof(*ic), GFP_KERNEL);
	if (!ic) {
		ti->error = "Cannot allocate infercache context";
		return -ENOMEM;
	}
	ic->ti = ti;
	ic->mode = IC_MODE_WRITETHROUGH;
	for (r = 0; r < IC_NR_TUN; r++)
		ic->tun_table[r] = ic_tunables[r].def;
	mutex_init(&ic->mode_lock);
	atomic64_set(&ic->nr_dirty, 0);
	spin_lock_init(&ic->wb.lock);
	INIT_LIST_HEAD(&ic->wb.ios);
	atomic_set(&ic->wb.nr_ios, 0);
	atomic_set(&ic->wb.flushing, 0);
	init_waitqueue_head(&ic->wb.wait);
	INIT_DELAYED_WORK(&ic->wb.work, ic_wb_work);
	ic->block_size = IC_DEFAULT_BLOCK_SIZE;
	ic->seq_threshold_bytes = IC_DEFAULT_SEQ_THRESHOLD;
	ic->commit_ms_table = IC_DEFAULT_COMMIT_MS;
	set_bit(IC_SUSPENDED, &ic->flags);
	mutex_init(&ic->errors_lock);
	mutex_init(&ic->discard_lock);
	spin_lock_init(&ic->defer_lock);
	bio_list_init(&ic->deferred);
	bio_list_init(&ic->flushes);
	bio_list_init(&ic->alloc_wait);
	INIT_WORK(&ic->defer_work, ic_defer_work);
	INIT_DELAYED_WORK(&ic->commit_work, ic_commit_work);
	spin_lock_init(&ic->streams_lock);
	atomic_set(&ic->nr_fills, 0);
	atomic_set(&ic->discards_inflight, 0);
	atomic64_set(&ic->cached, 0);
	spin_lock_init(&ic->retry_lock);
	bio_list_init(&ic->retry_bios);
	INIT_WORK(&ic->retry_work, ic_retry_work);

	r = ic_open_devices(ic, &as, &ti->error);
	if (!r)
		r = ic_parse_opts(ic, &as, &ti->error);
	if (!r)
		ic_set_seq_threshold(ic, ic->seq_threshold_bytes);
	if (!r)
		r = ic_check_superblock(ic, &ti->error);
	if (!r)
		r = ic_setup_geometry(ic, &ti->error);
	if (!r)
		r = ic_alloc_runtime(ic, &ti->error);
	if (!r)
		r = dm_set_target_max_io_len(ti, ic_block_sectors(ic));
	if (r) {
		ic_free(ic);
		return r;
	}

	ti->private = ic;
	ti->per_io_data_size = sizeof(struct ic_bio);
	ic->commit_ms = ic->commit_ms_table;
	ic->mode_now = ic->mode;
	memcpy(ic->tun, ic->tun_table, sizeof(ic->tun));
	ic_set_dirty_limit(ic);
	ti->num_flush_bios = 1;
	/*
	 * Say "write back" even over devices without a volatile cache: in
	 * writeback mode (or after a mode message) an acknowledged write is
	 * only durable once a commit describes it, so PREFLUSH and FUA must
	 * reach the target, not be stripped by the block layer.
	 */
	ti->flush_supported = true;
	if (bdev_max_discard_sectors(ic->origin_dev->bdev)) {
		ic->discard_passdown = true;
		ti->num_discard_bios = 1;
		ti->discards_supported = true;
	}
	return 0;
}

/*
 * Stop what runs on its own (sysfs writers, the commit and writeback
 * workers, writeback I/O, fills) and keep it stopped: SUSPENDED is set.
 */
static void ic_quiesce(struct infercache *ic)
{
	set_bit(IC_SUSPENDED, &ic->flags);
	/* A flush waiting there sees SUSPENDED within a second. */
	ic_sysfs_del(ic);
	cancel_delayed_work_sync(&ic->commit_work);
	/* Writeback stops; what is dirty stays so, on disk too. */
	cancel_delayed_work_sync(&ic->wb.work);
	wait_var_event(&ic->wb.nr_ios, !atomic_read(&ic->wb.nr_ios));
	/* The last completions may have queued it again. */
	cancel_delayed_work_sync(&ic->wb.work);
	/* dm core drained our callers; fills may outlive them. */
	ic_wait_for_fills(ic);
	flush_workqueue(ic->wq);
	flush_workqueue(ic->wb_wq);
}

static void infercache_dtr(struct dm_target *ti)
{
	struct infercache *ic = ti->private;

	/*
	 * Suspended (or never resumed): postsuspend wrote what there was.
	 * But a table whose other target failed its preresume is destroyed
	 * without a postsuspend: stop what our resume started.
	 */
	ic_quiesce(ic);
	ic_free(ic);
}

static void ic_load_policy(struct infercache *ic)
{
	struct ic_index *idx = &ic->index;
	unsigned int w;
	u64 set;

	/* Give loaded blocks the standing of one hit against newcomers. */
	for (set = 0; set < idx->nr_sets; set++) {
		for (w = 0; w < IC_WAYS; w++)
			if (idx->ways[ic_index_slot(set, w)] & IC_WAY_VALID)
				ic_policy_hit(idx, set, w);
		if (!(set % 1024))
			cond_resched();
	}
}

/*
 * Between the constructor and the first resume the table this one replaces
 * may have committed, recorded an error or even re-formatted: read the
 * superblock again and load only what it says now.
 */
static int ic_recheck_superblock(struct infercache *ic)
{
	const char *name = ic->cache_dev->name;
	enum ic_sb_status st[IC_SB_COPIES];
	struct ic_sb sb[IC_SB_COPIES], *now;
	const char *why[IC_SB_COPIES];
	int r, best;

	r = ic_meta_read_sb(ic->cache_dev->bdev, st, sb, why);
	if (r) {
		DMERR("%s: cannot read the superblock: error %d", name, r);
		return r;
	}
	best = ic_sb_choose(st, sb);
	if (best < 0) {
		DMERR("%s: the superblock went bad since the table was loaded (%s)",
		      name, why[0] ?: "blank");
		return -EINVAL;
	}
	now = &sb[best];
	if (now->block_sectors != ic->sb.block_sectors ||
	    now->nr_sets != ic->sb.nr_sets ||
	    now->cache_sectors != ic->sb.cache_sectors ||
	    now->origin_sectors != ic->sb.origin_sectors ||
	    memcmp(now->origin_tag, ic->sb.origin_tag, IC_ORIGIN_TAG_BYTES)) {
		DMERR("%s: the cache was re-formatted since the table was loaded",
		      name);
		return -EINVAL;
	}
	ic->sb = *now;
	ic_check_errors_flag(ic);
	return 0;
}

/* First resume: format or load the cache device. */
static int ic_activate(struct infercache *ic)
{
	const char *name = ic->cache_dev->name;
	int r;

	if (!ic->format) {
		r = ic_recheck_superblock(ic);
		if (r)
			return r;
	}

	if (ic->format) {
		struct ic_sb id = { .origin_sectors = ic->ti->len };

		memcpy(id.origin_tag, ic->origin_tag, IC_ORIGIN_TAG_BYTES);
		r = ic_meta_format(&ic->meta, &id);
		if (r) {
			DMERR("%s: cannot format the cache device: error %d",
			      name, r);
			return r;
		}
		DMINFO("%s: formatted: %llu slots of %u bytes for an origin of %llu sectors",
		       name, ic->geo.nr_slots, ic->block_size,
		       (u64)ic->ti->len);
	} else {
		r = ic_meta_load(&ic->meta, &ic->sb, ic->origin_blocks,
				 ic->dirty_only, &ic->loaded, &ic->dropped);
		if (!r)
			r = ic_wb_load(ic);
		/* Clean entries of a failed cache leave before it is used. */
		if (!r && ic->dirty_only) {
			bool cache_error;

			r = ic_meta_commit(&ic->meta, &cache_error);
			if (!r && cache_error)
				r = -EIO;
			if (!r)
				ic->meta.sb.flags &= ~IC_SB_ERRORS;
		}
		if (r) {
			DMERR("%s: cannot read the cache metadata: error %d",
			      name, r);
			memset(ic->index.ways, 0,
			       ic->geo.nr_slots * sizeof(*ic->index.ways));
			atomic64_set(&ic->nr_dirty, 0);
			return r;
		}
		ic_load_policy(ic);
		atomic64_set(&ic->cached, ic->loaded);
		DMINFO("%s: loaded %llu blocks, dropped %llu damaged entries (%s shutdown)",
		       name, ic->loaded, ic->dropped,
		       ic->sb.flags & IC_SB_CLEAN ? "clean" : "unclean");
		if (atomic64_read(&ic->nr_dirty))
			DMINFO("%s: %lld of the blocks loaded are dirty",
			       name, (long long)atomic64_read(&ic->nr_dirty));
	}
	ic->activated = true;
	return 0;
}

static int infercache_preresume(struct dm_target *ti)
{
	struct infercache *ic = ti->private;
	bool first = !ic->activated;
	unsigned int noio;
	int r;

	if (first) {
		/*
		 * Our device is suspended: reclaim must not write to it while
		 * the load or format allocates (vmalloc, dm-io, zeroout).
		 */
		noio = memalloc_noio_save();
		r = ic_activate(ic);
		memalloc_noio_restore(noio);
		if (r)
			return r;
	}
	if (!ic_degraded(ic)) {
		/* Before the first DIRTY entry can reach the disk. */
		if (ic->mode_now == IC_MODE_WRITEBACK)
			ic->meta.sb.incompat |= IC_FEATURE_INCOMPAT_DIRTY;
		/* In use: not clean until the next suspend says so. */
		r = ic_meta_write_sb(&ic->meta, 0, IC_SB_CLEAN, first);
		if (r) {
			DMERR("%s: cannot write the superblock: error %d",
			      ic->cache_dev->name, r);
			return r;
		}
	}
	clear_bit(IC_SUSPENDED, &ic->flags);
	if (ic->commit_ms)
		queue_delayed_work(ic->wq, &ic->commit_work,
				   msecs_to_jiffies(ic->commit_ms));
	if (ic_wb_capable(ic))
		ic_wb_kick_now(ic);
	/* Still suspended: no reclaim I/O to ourselves while allocating. */
	noio = memalloc_noio_save();
	ic_sysfs_add(ic);
	memalloc_noio_restore(noio);
	return 0;
}

static void infercache_postsuspend(struct dm_target *ti)
{
	struct infercache *ic = ti->private;

	ic_quiesce(ic);
	if (!ic->activated)
		return;

	/* Describe everything, then say the shutdown was clean. */
	if (!ic_degraded(ic) && !ic_commit(ic) && !ic_degraded(ic) &&
	    ic_meta_write_sb(&ic->meta, IC_SB_CLEAN, 0, false))
		ic_cache_error(ic);
	if (ic_degraded(ic))
		ic_record_errors(ic);
}

static void ic_sum_stats(struct infercache *ic, u64 *sum)
{
	unsigned int i;
	int cpu;

	memset(sum, 0, IC_NR_STATS * sizeof(*sum));
	for_each_possible_cpu(cpu) {
		struct ic_stats *s = per_cpu_ptr(ic->stats, cpu);

		for (i = 0; i < IC_NR_STATS; i++)
			sum[i] += READ_ONCE(s->count[i]);
	}
}

/*
 * Status, STATUSTYPE_INFO (fields are only ever appended):
 *   <block size> <cached>/<total blocks> <reads> <read hits> <read misses>
 *   <fills> <writes> <write hits> <evictions> <discards> <bypasses>
 *   <fill aborts> <cache errors> <mode> <ok|degraded> <rejects>
 *   <sequential> <loaded> <dropped> <commits> <dirty>
 *   <idle|running|backoff|paused|flushing> <written back> <writeback ios>
 *   <backoffs> <read p99 us> <read latency target us>
 * STATUSTYPE_TABLE: the table line, optional arguments as given except
 * the one-shot "format".
 */
static void infercache_status(struct dm_target *ti, status_type_t type,
			      unsigned int status_flags, char *result,
			      unsigned int maxlen)
{
	struct infercache *ic = ti->private;
	u64 st[IC_NR_STATS];
	unsigned int sz = 0;
	unsigned int i;

	switch (type) {
	case STATUSTYPE_INFO:
		ic_sum_stats(ic, st);
		DMEMIT("%u %llu/%llu", ic->block_size,
		       (unsigned long long)atomic64_read(&ic->cached),
		       ic->geo.nr_slots);
		for (i = 0; i < DM_INFERCACHE_NR_COUNTERS_V0; i++)
			DMEMIT(" %llu", st[i]);
		DMEMIT(" %s %s", ic_mode_name(READ_ONCE(ic->mode_now)),
		       ic_degraded(ic) ? "degraded" : "ok");
		for (; i < IC_NR_STATS; i++)
			DMEMIT(" %llu", st[i]);
		DMEMIT(" %llu %llu %llu", ic->loaded, ic->dropped,
		       READ_ONCE(ic->meta.commits));
		DMEMIT(" %lld %s %lld %lld %lld %u %u",
		       (long long)atomic64_read(&ic->nr_dirty), ic_wb_state(ic),
		       (long long)atomic64_read(&ic->wb.written_back),
		       (long long)atomic64_read(&ic->wb.ios_issued),
		       (long long)atomic64_read(&ic->wb.backoffs),
		       READ_ONCE(ic->wb.p99_us), ic_wb_target(ic));
		break;

	case STATUSTYPE_TABLE:
		DMEMIT("%s %s %u", ic->cache_dev->name, ic->origin_dev->name,
		       2 * (ic->nr_opts - ic_has_opt(ic, IC_OPT_FORMAT)));
		for (i = 0; i < ic->nr_opts; i++) {
			switch (ic->opts[i]) {
			case IC_OPT_MODE:
				DMEMIT(" mode %s", ic_mode_name(ic->mode));
				break;
			case IC_OPT_BLOCK_SIZE:
				DMEMIT(" block_size %u", ic->block_size);
				break;
			case IC_OPT_SEQ_THRESHOLD:
				DMEMIT(" sequential_threshold %u",
				       ic->seq_threshold_bytes);
				break;
			case IC_OPT_COMMIT_INTERVAL:
				DMEMIT(" commit_interval %u",
				       ic->commit_ms_table);
				break;
			case IC_OPT_ORIGIN_TAG:
				DMEMIT(" origin_tag %s", ic->origin_tag);
				break;
			case IC_OPT_FORMAT:	/* one-shot: never shown */
			case IC_NR_OPTS:
				break;
			default:
				DMEMIT(" %s %u",
				       ic_tunables[ic->opts[i] - IC_FIRST_TUN].name,
				       ic->tun_table[ic->opts[i] - IC_FIRST_TUN]);
				break;
			}
		}
		break;

	case STATUSTYPE_IMA:
		DMEMIT_TARGET_NAME_VERSION(ti->type);
		DMEMIT(",cache_mode=%s,block_size=%u;",
		       ic_mode_name(READ_ONCE(ic->mode_now)), ic->block_size);
		break;
	}
}

/*
 * Messages:
 *   clear_stats                    zero the counters (not the cached count)
 *   sequential_threshold <bytes>   retune the sequential bypass (0: off);
 *                                  the table keeps what it was created with
 *   commit_interval <ms>           retune periodic commits (0: off); ditto
 *   commit                         commit the metadata now
 *   flush                          write every dirty block back and commit;
 *                                  returns when none is left (a signal
 *                                  interrupts the wait)
 *   writeback_pause, writeback_resume
 *   mode writethrough|writeback    switch; to writethrough drains first
 *   <tunable> <value>              max_dirty_age, dirty_high,
 *                                  read_latency_target, writeback_inflight,
 *                                  writeback_rate (see ic_tunables[])
 */
static int infercache_message(struct dm_target *ti, unsigned int argc,
			      char **argv, char *result, unsigned int maxlen)
{
	struct infercache *ic = ti->private;
	int cpu;

	if (argc == 1 && !strcasecmp(argv[0], "clear_stats")) {
		for_each_possible_cpu(cpu)
			memset(per_cpu_ptr(ic->stats, cpu), 0,
			       sizeof(struct ic_stats));
		return 0;
	}
	if (argc == 2 && !strcasecmp(argv[0], "sequential_threshold")) {
		unsigned int bytes;

		if (ic_parse_seq_threshold(argv[1], &bytes)) {
			DMERR("%s", IC_SEQ_THRESHOLD_ERROR);
			return -EINVAL;
		}
		ic_set_seq_threshold(ic, bytes);
		return 0;
	}
	if (argc == 2 && !strcasecmp(argv[0], "commit_interval")) {
		unsigned int ms;

		if (ic_parse_commit_ms(argv[1], &ms)) {
			DMERR("%s", IC_COMMIT_INTERVAL_ERROR);
			return -EINVAL;
		}
		WRITE_ONCE(ic->commit_ms, ms);
		if (ms && !test_bit(IC_SUSPENDED, &ic->flags))
			mod_delayed_work(ic->wq, &ic->commit_work,
					 msecs_to_jiffies(ms));
		return 0;
	}
	if (argc == 1 && !strcasecmp(argv[0], "commit")) {
		if (!ic->activated) {
			DMERR("commit: the target has not been resumed yet");
			return -EINVAL;
		}
		return ic_commit(ic);
	}
	if (argc == 1 && !strcasecmp(argv[0], "flush")) {
		if (!ic->activated) {
			DMERR("flush: the target has not been resumed yet");
			return -EINVAL;
		}
		return ic_wb_flush(ic);
	}
	if (argc == 1 && !strcasecmp(argv[0], "writeback_pause")) {
		ic_wb_pause(ic, true);
		return 0;
	}
	if (argc == 1 && !strcasecmp(argv[0], "writeback_resume")) {
		ic_wb_pause(ic, false);
		return 0;
	}
	if (argc == 2 && !strcasecmp(argv[0], "mode")) {
		enum ic_mode mode;

		if (ic_parse_mode(argv[1], &mode)) {
			DMERR("Invalid cache mode: writethrough or writeback");
			return -EINVAL;
		}
		return ic_set_mode(ic, mode);
	}
	if (argc == 2 && ic_find_tunable(argv[0]) >= 0) {
		int t = ic_find_tunable(argv[0]);
		u32 v;

		if (ic_parse_tunable(t, argv[1], &v)) {
			DMERR("%s", ic_tunables[t].error);
			return -EINVAL;
		}
		WRITE_ONCE(ic->tun[t], v);
		ic_set_dirty_limit(ic);
		if (ic_wb_capable(ic))
			ic_wb_kick_now(ic);
		return 0;
	}

	DMERR("Unrecognised message received: %s (%u argument%s)",
	      argc ? argv[0] : "", argc, argc == 1 ? "" : "s");
	return -EINVAL;
}

static int infercache_iterate_devices(struct dm_target *ti,
				      iterate_devices_callout_fn fn, void *data)
{
	struct infercache *ic = ti->private;
	int r;

	r = fn(ti, ic->cache_dev, 0, ic->geo.cache_sectors, data);
	if (!r)
		r = fn(ti, ic->origin_dev, 0, ti->len, data);
	return r;
}

static void infercache_io_hints(struct dm_target *ti,
				struct queue_limits *limits)
{
	struct infercache *ic = ti->private;
	struct queue_limits *origin_limits =
		&bdev_get_queue(ic->origin_dev->bdev)->limits;

	if (limits->io_opt < ic->block_size ||
	    limits->io_opt % ic->block_size)
		blk_limits_io_opt(limits, ic->block_size);

	if (!ic->discard_passdown)
		return;
	/* Discards go to the origin only: take its limits, not the stack's. */
	limits->max_discard_sectors = origin_limits->max_discard_sectors;
	limits->max_hw_discard_sectors = origin_limits->max_hw_discard_sectors;
	limits->discard_granularity = origin_limits->discard_granularity;
	limits->discard_alignment = origin_limits->discard_alignment;
	limits->discard_misaligned = origin_limits->discard_misaligned;
}

static struct target_type infercache_target = {
	.name = DM_INFERCACHE_TARGET_NAME,
	.version = {0, 3, 0},
	.module = THIS_MODULE,
	.ctr = infercache_ctr,
	.dtr = infercache_dtr,
	.map = infercache_map,
	.end_io = infercache_end_io,
	.preresume = infercache_preresume,
	.postsuspend = infercache_postsuspend,
	.status = infercache_status,
	.message = infercache_message,
	.iterate_devices = infercache_iterate_devices,
	.io_hints = infercache_io_hints,
};

static int __init dm_infercache_init(void)
{
	int r;

	r = dm_register_target(&infercache_target);
	if (r)
		DMERR("register failed %d", r);
	return r;
}

static void __exit dm_infercache_exit(void)
{
	dm_unregister_target(&infercache_target);
}

module_init(dm_infercache_init);
module_exit(dm_infercache_exit);

MODULE_DESCRIPTION(DM_NAME " persistent NVMe cache for inference reads");
MODULE_AUTHOR("dm-infercache developers");
MODULE_LICENSE("GPL");
