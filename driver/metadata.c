// SPDX-License-Identifier: GPL-2.0-only
/*
 * Metadata I/O: superblock, load, set images and commits (see metadata.h).
 */
#include <linux/device-mapper.h>
#include <linux/ioprio.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/timekeeping.h>
#include <linux/uuid.h>
#include <linux/vmalloc.h>
#include <linux/wait_bit.h>

#include "metadata.h"

#define DM_MSG_PREFIX "infercache"

#define IC_SB_AREA_SECTORS	(IC_SB_COPIES * IC_SB_SLOT_SECTORS)
#define IC_LOAD_CHUNK_SECTORS	2048	/* 1 MiB of entries per read */
#define IC_META_POOL_MIN	16	/* images in flight at most */
#define IC_META_OPF		(REQ_OP_WRITE | REQ_SYNC | REQ_META | \
				 REQ_PRIO | REQ_FUA)

/* Images written together; the submitter waits for all of them. */
struct ic_batch {
	atomic_t pending;
	int error;
	struct completion done;
};

/* A set image in flight: the metadata block, then this header. */
struct ic_image {
	struct ic_meta *m;
	struct ic_batch *batch;
	void *buf;			/* the start of the pool element */
	u64 mb;
	/* Per set of the block: ways left out that disk may still have, */
	u16 drop[IC_SB_SLOT_SECTORS];
	/* ways written DIRTY, and ways written clean that disk had DIRTY. */
	u16 dirty[IC_SB_SLOT_SECTORS];
	u16 cleaned[IC_SB_SLOT_SECTORS];
	/* It drops an entry that may say DIRTY: flush the origin first. */
	bool flush_origin;
};

static int ic_io_sync(struct dm_io_client *io, struct block_device *bdev,
		      blk_opf_t opf, sector_t sector, sector_t count,
		      enum dm_io_mem_type type, void *buf)
{
	struct dm_io_region where = {
		.bdev = bdev, .sector = sector, .count = count,
	};
	struct dm_io_request req = {
		.bi_opf = opf,
		.mem.type = type,
		.mem.ptr.addr = buf,
		.client = io,
	};

	return dm_io(&req, 1, &where, NULL, IOPRIO_DEFAULT);
}

int ic_meta_read_sb(struct block_device *cache, enum ic_sb_status *st,
		    struct ic_sb *sb, const char **why)
{
	struct dm_io_client *io;
	void *buf;
	int r, i;

	buf = kmalloc(IC_SB_AREA_SECTORS << SECTOR_SHIFT, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	io = dm_io_client_create();
	if (IS_ERR(io)) {
		kfree(buf);
		return PTR_ERR(io);
	}

	r = ic_io_sync(io, cache, REQ_OP_READ | REQ_SYNC | REQ_META, 0,
		       IC_SB_AREA_SECTORS, DM_IO_KMEM, buf);
	for (i = 0; !r && i < IC_SB_COPIES; i++) {
		void *slot = buf + i * (IC_SB_SLOT_SECTORS << SECTOR_SHIFT);

		st[i] = ic_sb_decode(slot, &sb[i], &why[i]);
		/* Blank means the whole 4 KiB slot: a label may sit past 512. */
		if (st[i] == IC_SB_BLANK &&
		    memchr_inv(slot, 0, IC_SB_SLOT_SECTORS << SECTOR_SHIFT)) {
			st[i] = IC_SB_NOT_OURS;
			why[i] = "not blank";
		}
	}
	dm_io_client_destroy(io);
	kfree(buf);
	return r;
}

static unsigned long *ic_bitmap_alloc(u64 bits)
{
	return kvcalloc(BITS_TO_LONGS(bits), sizeof(unsigned long),
			GFP_KERNEL);
}

int ic_meta_init(struct ic_meta *m, struct block_device *cache,
		 struct block_device *origin, struct ic_index *idx,
		 const struct ic_geometry *geo)
{
	unsigned int lbs = bdev_logical_block_size(cache);
	int r;

	m->cache = cache;
	m->origin = origin;
	m->idx = idx;
	m->geo = geo;
	m->mb_sectors = max_t(unsigned int, 1, lbs >> SECTOR_SHIFT);
	if (m->mb_sectors > IC_SB_SLOT_SECTORS)
		return -EINVAL;
	m->nr_mbs = DIV_ROUND_UP(geo->nr_sets, m->mb_sectors);
	mutex_init(&m->lock);
	atomic_set(&m->nr_dirty, 0);
	atomic64_set(&m->seq, 0);

	m->busy = ic_bitmap_alloc(m->nr_mbs);
	m->dirty = ic_bitmap_alloc(geo->nr_sets);
	m->commit_sets = ic_bitmap_alloc(geo->nr_sets);
	if (!m->busy || !m->dirty || !m->commit_sets)
		return -ENOMEM;

	m->io = dm_io_client_create();
	if (IS_ERR(m->io)) {
		r = PTR_ERR(m->io);
		m->io = NULL;
		return r;
	}
	/* The block first (kmalloc aligns it naturally), the header after. */
	return mempool_init_kmalloc_pool(&m->buf_pool, IC_META_POOL_MIN,
					 (m->mb_sectors << SECTOR_SHIFT) +
					 sizeof(struct ic_image));
}

/* Safe on a zeroed or partly initialised struct ic_meta. */
void ic_meta_exit(struct ic_meta *m)
{
	mempool_exit(&m->buf_pool);
	if (m->io)
		dm_io_client_destroy(m->io);
	kvfree(m->busy);
	kvfree(m->dirty);
	kvfree(m->commit_sets);
	m->io = NULL;
	m->busy = NULL;
	m->dirty = NULL;
	m->commit_sets = NULL;
}

/* ---- Superblock ---- */

static int ic_write_sb_locked(struct ic_meta *m)
{
	unsigned int bytes = IC_SB_SLOT_SECTORS << SECTOR_SHIFT;
	void *buf;
	int r = 0, i;

	buf = kzalloc(bytes, GFP_NOIO);
	if (!buf)
		return -ENOMEM;
	m->sb.sb_seq++;
	m->sb.commit_seq = atomic64_read(&m->seq);
	ic_sb_encode(&m->sb, buf);
	/* One copy after the other: a torn write leaves the other intact. */
	for (i = 0; i < IC_SB_COPIES && !r; i++)
		r = ic_io_sync(m->io, m->cache, IC_META_OPF,
			       i * IC_SB_SLOT_SECTORS, IC_SB_SLOT_SECTORS,
			       DM_IO_KMEM, buf);
	kfree(buf);
	return r;
}

int ic_meta_write_sb(struct ic_meta *m, u32 set_flags, u32 clear_flags,
		     bool count_load)
{
	int r;

	mutex_lock(&m->lock);
	m->sb.flags = (m->sb.flags | set_flags) & ~clear_flags;
	if (count_load)
		m->sb.load_count++;
	r = ic_write_sb_locked(m);
	mutex_unlock(&m->lock);
	return r;
}

int ic_meta_format(struct ic_meta *m, const struct ic_sb *id)
{
	const struct ic_geometry *geo = m->geo;
	enum ic_sb_status st[IC_SB_COPIES];
	struct ic_sb old[IC_SB_COPIES];
	const char *why[IC_SB_COPIES];
	struct ic_sb *sb = &m->sb;
	u64 sb_seq = 0;
	int r, i;

	/*
	 * Continue the sequence of an old superblock, so that a crash between
	 * the two copies cannot leave the old one winning.
	 */
	r = ic_meta_read_sb(m->cache, st, old, why);
	if (r)
		return r;
	for (i = 0; i < IC_SB_COPIES; i++)
		if (st[i] == IC_SB_OK)
			sb_seq = max(sb_seq, old[i].sb_seq);

	/* Old entries would fail their checksum anyway (new salt): tidier. */
	r = blkdev_issue_zeroout(m->cache, geo->meta_start,
				 geo->data_start - geo->meta_start, GFP_KERNEL,
				 0);
	if (!r)
		r = blkdev_issue_flush(m->cache);
	if (r)
		return r;

	memset(sb, 0, sizeof(*sb));
	sb->sb_seq = sb_seq;
	generate_random_uuid(sb->uuid);
	sb->block_sectors = geo->block_sectors;
	sb->nr_sets = geo->nr_sets;
	sb->meta_start = geo->meta_start;
	sb->data_start = geo->data_start;
	sb->cache_sectors = geo->cache_sectors;
	sb->origin_sectors = id->origin_sectors;
	memcpy(sb->origin_tag, id->origin_tag, IC_ORIGIN_TAG_BYTES);
	sb->format_time = ktime_get_real_seconds();
	m->salt = ic_format_salt(sb->uuid);
	atomic64_set(&m->seq, 0);

	mutex_lock(&m->lock);
	r = ic_write_sb_locked(m);
	mutex_unlock(&m->lock);
	return r;
}

/* ---- Load ---- */

/* Decode one set's entries into the index. Returns the entries kept. */
static unsigned int ic_load_set(struct ic_meta *m, u64 set,
				const struct ic_disk_entry *disk,
				u64 origin_blocks, bool dirty_only,
				u64 *dropped, u64 *max_seq)
{
	struct ic_index *idx = m->idx;
	struct ic_entry e[IC_WAYS];
	u16 ok = 0, bad = 0;
	unsigned int w, v, kept = 0;

	for (w = 0; w < IC_WAYS; w++) {
		switch (ic_entry_decode(&disk[w], m->salt,
					ic_index_slot(set, w), origin_blocks,
					idx->nr_sets, &e[w])) {
		case IC_ENTRY_FREE:
			break;
		case IC_ENTRY_OK:
			ok |= BIT(w);
			break;
		default:
			bad |= BIT(w);
			break;
		}
	}
	/* Two entries for one block: neither can be trusted. */
	for (w = 0; w < IC_WAYS; w++)
		for (v = w + 1; v < IC_WAYS; v++)
			if ((ok & BIT(w)) && (ok & BIT(v)) &&
			    e[w].oblock == e[v].oblock)
				bad |= BIT(w) | BIT(v);
	ok &= ~bad;

	for (w = 0; w < IC_WAYS; w++) {
		u64 slot = ic_index_slot(set, w);
		bool dirty = e[w].flags & IC_ENTRY_DIRTY;

		if ((ok & BIT(w)) && dirty_only && !dirty) {
			/* After cache errors only dirty entries are the truth. */
			idx->ways[slot] = IC_WAY_DURABLE | IC_WAY_RECLAIM;
			ic_meta_set_dirty(m, set);
		} else if (ok & BIT(w)) {
			idx->ways[slot] = e[w].oblock | IC_WAY_VALID |
					  IC_WAY_DURABLE;
			if (dirty)
				idx->ways[slot] |= IC_WAY_DIRTY |
						   IC_WAY_DISK_DIRTY |
						   IC_WAY_SURE_DIRTY;
			*max_seq = max(*max_seq, e[w].seq);
			kept++;
		} else if (bad & BIT(w)) {
			/* Rewritten clean by the first commit. */
			idx->ways[slot] = IC_WAY_DURABLE | IC_WAY_RECLAIM;
			(*dropped)++;
		}
	}
	if (bad)
		ic_meta_set_dirty(m, set);
	return kept;
}

int ic_meta_load(struct ic_meta *m, const struct ic_sb *sb,
		 u64 origin_blocks, bool dirty_only, u64 *loaded, u64 *dropped)
{
	u64 total = m->nr_mbs * m->mb_sectors;	/* sectors of entries */
	u64 max_seq = sb->commit_seq;
	u64 sector, set;
	void *buf;
	int r = 0;

	m->sb = *sb;
	m->salt = ic_format_salt(sb->uuid);
	*loaded = *dropped = 0;

	buf = vmalloc(IC_LOAD_CHUNK_SECTORS << SECTOR_SHIFT);
	if (!buf)
		return -ENOMEM;

	for (sector = 0; sector < total; sector += IC_LOAD_CHUNK_SECTORS) {
		u64 count = min_t(u64, total - sector, IC_LOAD_CHUNK_SECTORS);
		u64 i;

		r = ic_io_sync(m->io, m->cache, REQ_OP_READ | REQ_META,
			       m->geo->meta_start + sector, count, DM_IO_VMA,
			       buf);
		if (r)
			break;
		for (i = 0; i < count; i++) {
			set = sector + i;
			if (set >= m->idx->nr_sets)
				break;
			*loaded += ic_load_set(m, set,
					       buf + (i << SECTOR_SHIFT),
					       origin_blocks, dirty_only,
					       dropped, &max_seq);
		}
		cond_resched();
	}
	vfree(buf);
	atomic64_set(&m->seq, max_seq);
	return r;
}

/* ---- Set images ---- */

void ic_meta_set_dirty(struct ic_meta *m, u64 set)
{
	if (!test_and_set_bit(set, m->dirty))
		atomic_inc(&m->nr_dirty);
}

bool ic_meta_needs_sync(const struct ic_index *idx, u64 set, u64 oblock)
{
	const u64 *ways = &idx->ways[ic_index_slot(set, 0)];
	unsigned int w;

	for (w = 0; w < IC_WAYS; w++) {
		if (ways[w] & IC_WAY_RECLAIM)
			return true;
		if ((ways[w] & IC_WAY_DURABLE) &&
		    (ways[w] & IC_OBLOCK_MASK) == oblock)
			return true;
	}
	return false;
}

bool ic_meta_needs_promote(u64 word)
{
	return (word & IC_WAY_DURABLE) && !(word & IC_WAY_SURE_DIRTY);
}

int ic_meta_enable_dirty(struct ic_meta *m)
{
	int r = 0;

	mutex_lock(&m->lock);
	if (!(m->sb.incompat & IC_FEATURE_INCOMPAT_DIRTY)) {
		m->sb.incompat |= IC_FEATURE_INCOMPAT_DIRTY;
		r = ic_write_sb_locked(m);
		if (r)
			m->sb.incompat &= ~IC_FEATURE_INCOMPAT_DIRTY;
	}
	mutex_unlock(&m->lock);
	return r;
}

static void ic_batch_init(struct ic_batch *b)
{
	atomic_set(&b->pending, 1);
	b->error = 0;
	init_completion(&b->done);
}

static void ic_batch_put(struct ic_batch *b)
{
	if (atomic_dec_and_test(&b->pending))
		complete(&b->done);
}

static int ic_batch_wait(struct ic_batch *b)
{
	ic_batch_put(b);
	wait_for_completion_io(&b->done);
	return READ_ONCE(b->error);
}

static unsigned long *ic_busy_word(struct ic_meta *m, u64 mb)
{
	return &m->busy[BIT_WORD(mb)];
}

/*
 * What the image of a set says about one way, given its word. The rules
 * (see metadata.h): a VALID entry only while slot and origin agree and both
 * are stable; a DIRTY entry only while the slot holds a stable version of
 * the block at least as new as the origin's; and never drop, or write
 * clean, an entry that may say DIRTY until the origin holds the block
 * stably (@commit: this image follows a commit's flush).
 */
enum ic_image_say { IC_SAY_NOTHING, IC_SAY_CLEAN, IC_SAY_DIRTY };

static enum ic_image_say ic_image_way(u64 word, bool commit)
{
	bool committing = commit && (word & IC_WAY_COMMITTING);
	bool stable = (word & IC_WAY_DURABLE) || committing;

	if (!(word & IC_WAY_VALID) || (word & IC_WAY_RECLAIM) || !stable)
		return IC_SAY_NOTHING;
	if (word & IC_WAY_DIRTY)
		return IC_SAY_DIRTY;
	/*
	 * Written back, but the origin's copy may not be stable yet: clean
	 * only in a commit that saw it on disk before its flush. (A block
	 * written back while a commit that had it COMMITTING flushed gets
	 * DISK_DIRTY while not DURABLE: that commit must still say DIRTY.)
	 */
	if ((word & IC_WAY_DISK_DIRTY) &&
	    (!committing || !(word & IC_WAY_DURABLE)))
		return IC_SAY_DIRTY;
	if (word & IC_WAY_WRITING)
		return IC_SAY_NOTHING;
	return IC_SAY_CLEAN;
}

/*
 * Regenerate the image of metadata block @img->mb from the index (see
 * ic_image_way()). Returns whether the image differs from what disk may
 * hold.
 */
static bool ic_image_gen(struct ic_meta *m, struct ic_image *img, void *buf,
			 bool commit)
{
	struct ic_disk_entry *out = buf;
	u64 seq = atomic64_inc_return(&m->seq);
	u64 set0 = img->mb * m->mb_sectors;
	bool changes = false;
	unsigned int i, w;

	memset(buf, 0, m->mb_sectors << SECTOR_SHIFT);
	img->flush_origin = false;
	for (i = 0; i < m->mb_sectors; i++) {
		u64 set = set0 + i;
		struct ic_set *s;
		unsigned long flags;

		img->drop[i] = 0;
		img->dirty[i] = 0;
		img->cleaned[i] = 0;
		if (set >= m->idx->nr_sets)
			continue;
		s = &m->idx->sets[set];
		spin_lock_irqsave(&s->lock, flags);
		for (w = 0; w < IC_WAYS; w++) {
			u64 slot = ic_index_slot(set, w);
			u64 word = m->idx->ways[slot];
			enum ic_image_say say = ic_image_way(word, commit);
			struct ic_entry e = {
				.oblock = word & IC_OBLOCK_MASK,
				.seq = seq,
				.flags = IC_ENTRY_VALID,
			};

			if (say == IC_SAY_NOTHING) {
				if (word & IC_WAY_ON_DISK) {
					img->drop[i] |= BIT(w);
					changes = true;
					if (word & IC_WAY_DISK_DIRTY)
						img->flush_origin = true;
				}
				m->idx->ways[slot] = word & ~IC_WAY_SURE_DIRTY;
				continue;
			}
			if (!(word & IC_WAY_DURABLE))
				changes = true;
			word |= IC_WAY_DURABLE;
			if (commit)
				word &= ~IC_WAY_COMMITTING;
			if (say == IC_SAY_DIRTY) {
				e.flags |= IC_ENTRY_DIRTY;
				img->dirty[i] |= BIT(w);
				if (!(word & IC_WAY_SURE_DIRTY))
					changes = true;
				/* Clean in core: a later commit says so. */
				if (!(word & IC_WAY_DIRTY))
					ic_meta_set_dirty(m, set);
				word |= IC_WAY_DISK_DIRTY;
			} else if (word & IC_WAY_DISK_DIRTY) {
				img->cleaned[i] |= BIT(w);
				changes = true;
				word &= ~IC_WAY_SURE_DIRTY;
			}
			ic_entry_encode(&e, m->salt, slot, &out[i * IC_WAYS + w]);
			/* Disk may have it from now on. */
			m->idx->ways[slot] = word;
		}
		spin_unlock_irqrestore(&s->lock, flags);
	}
	return changes;
}

static void ic_image_free(struct ic_image *img)
{
	struct ic_meta *m = img->m;

	clear_and_wake_up_bit(img->mb % BITS_PER_LONG,
			      ic_busy_word(m, img->mb));
	mempool_free(img->buf, &m->buf_pool);
}

static void ic_image_endio(unsigned long error, void *context)
{
	struct ic_image *img = context;
	struct ic_meta *m = img->m;
	struct ic_batch *b = img->batch;
	u64 set0 = img->mb * m->mb_sectors;
	unsigned long flags;
	unsigned int i, w;

	if (error) {
		/* What was left out may still be on disk: keep it marked. */
		WRITE_ONCE(b->error, -EIO);
		/*
		 * And what was put in is not: the next commit must write
		 * these sets again (and fail again), not find nothing to do
		 * and call dirty blocks described.
		 */
		for (i = 0; i < m->mb_sectors && set0 + i < m->idx->nr_sets; i++)
			ic_meta_set_dirty(m, set0 + i);
	} else {
		for (i = 0; i < m->mb_sectors; i++) {
			struct ic_set *s;

			if (!(img->drop[i] | img->dirty[i] | img->cleaned[i]))
				continue;
			s = &m->idx->sets[set0 + i];
			spin_lock_irqsave(&s->lock, flags);
			for (w = 0; w < IC_WAYS; w++) {
				u64 *word = &m->idx->ways[ic_index_slot(set0 + i, w)];

				/* No later image of the block was made yet. */
				if (img->drop[i] & BIT(w))
					*word &= ~(IC_WAY_ON_DISK |
						   IC_WAY_DISK_DIRTY |
						   IC_WAY_SURE_DIRTY);
				if (img->dirty[i] & BIT(w))
					*word |= IC_WAY_SURE_DIRTY;
				if (img->cleaned[i] & BIT(w))
					*word &= ~IC_WAY_DISK_DIRTY;
			}
			spin_unlock_irqrestore(&s->lock, flags);
		}
	}
	ic_image_free(img);
	ic_batch_put(b);
}

/*
 * Write the image of metadata block @mb as part of @b, unless it would not
 * change anything. Sleeps: waits for an earlier image of the block.
 */
static void ic_image_submit(struct ic_meta *m, u64 mb, bool commit,
			    struct ic_batch *b)
{
	unsigned int bytes = m->mb_sectors << SECTOR_SHIFT;
	void *buf = mempool_alloc(&m->buf_pool, GFP_NOIO);
	struct ic_image *img = buf + bytes;
	struct dm_io_region where = {
		.bdev = m->cache,
		.sector = m->geo->meta_start + mb * m->mb_sectors,
		.count = m->mb_sectors,
	};
	struct dm_io_request req = {
		.bi_opf = IC_META_OPF,
		.mem.type = DM_IO_KMEM,
		.mem.ptr.addr = buf,
		.notify.fn = ic_image_endio,
		.notify.context = img,
		.client = m->io,
	};

	img->m = m;
	img->batch = b;
	img->buf = buf;
	img->mb = mb;
	wait_on_bit_lock_io(ic_busy_word(m, mb), mb % BITS_PER_LONG,
			    TASK_UNINTERRUPTIBLE);
	if (!ic_image_gen(m, img, buf, commit)) {
		ic_image_free(img);
		return;
	}
	atomic_inc(&b->pending);
	if ((img->flush_origin && blkdev_issue_flush(m->origin)) ||
	    dm_io(&req, 1, &where, NULL, IOPRIO_DEFAULT))
		ic_image_endio(1, img);
}

int ic_meta_sync_set(struct ic_meta *m, u64 set)
{
	struct ic_batch b;

	ic_batch_init(&b);
	ic_image_submit(m, set / m->mb_sectors, false, &b);
	return ic_batch_wait(&b);
}

/* Write the image of every block with a set in @sets; clear @sets. */
static int ic_write_sets(struct ic_meta *m, unsigned long *sets, bool commit)
{
	u64 nr_sets = m->idx->nr_sets, last_mb = U64_MAX, set;
	struct ic_batch b;

	ic_batch_init(&b);
	for_each_set_bit(set, sets, nr_sets) {
		u64 mb = set / m->mb_sectors;

		clear_bit(set, sets);
		if (mb == last_mb)
			continue;
		last_mb = mb;
		ic_image_submit(m, mb, commit, &b);
		cond_resched();
	}
	return ic_batch_wait(&b);
}

int ic_meta_sync_sets(struct ic_meta *m, unsigned long *sets)
{
	return ic_write_sets(m, sets, false);
}

/* Mark the settled ways of every dirty set COMMITTING. */
static u64 ic_commit_snapshot(struct ic_meta *m)
{
	struct ic_index *idx = m->idx;
	unsigned long flags;
	u64 set, n = 0;
	unsigned int w;

	for_each_set_bit(set, m->dirty, idx->nr_sets) {
		if (!test_and_clear_bit(set, m->dirty))
			continue;
		atomic_dec(&m->nr_dirty);
		set_bit(set, m->commit_sets);
		spin_lock_irqsave(&idx->sets[set].lock, flags);
		for (w = 0; w < IC_WAYS; w++) {
			u64 *word = &idx->ways[ic_index_slot(set, w)];

			if (!(*word & IC_WAY_VALID) || (*word & IC_WAY_RECLAIM))
				continue;
			/*
			 * Dirty data still being written is some version at
			 * least as new as the origin's: fine for DIRTY. A
			 * written-back block waits for the flush to go clean.
			 */
			if (*word & IC_WAY_DIRTY) {
				if (!(*word & IC_WAY_DURABLE))
					*word |= IC_WAY_COMMITTING;
			} else if (!(*word & IC_WAY_WRITING) &&
				   (!(*word & IC_WAY_DURABLE) ||
				    (*word & IC_WAY_DISK_DIRTY))) {
				*word |= IC_WAY_COMMITTING;
			}
		}
		spin_unlock_irqrestore(&idx->sets[set].lock, flags);
		if (!(++n % 1024))
			cond_resched();
	}
	return n;
}

static void ic_flush_endio(struct bio *bio)
{
	complete(bio->bi_private);
}

/* Flush both devices at once; returns the origin's error. */
static int ic_flush_both(struct ic_meta *m, bool *cache_error)
{
	DECLARE_COMPLETION_ONSTACK(origin_done);
	DECLARE_COMPLETION_ONSTACK(cache_done);
	struct bio origin, cache;
	int r;

	bio_init(&origin, m->origin, NULL, 0, REQ_OP_WRITE | REQ_PREFLUSH);
	origin.bi_end_io = ic_flush_endio;
	origin.bi_private = &origin_done;
	bio_init(&cache, m->cache, NULL, 0, REQ_OP_WRITE | REQ_PREFLUSH);
	cache.bi_end_io = ic_flush_endio;
	cache.bi_private = &cache_done;

	submit_bio(&origin);
	submit_bio(&cache);
	wait_for_completion_io(&origin_done);
	wait_for_completion_io(&cache_done);

	r = blk_status_to_errno(origin.bi_status);
	*cache_error = cache.bi_status != BLK_STS_OK;
	bio_uninit(&origin);
	bio_uninit(&cache);
	return r;
}

int ic_meta_commit(struct ic_meta *m, bool *cache_error)
{
	u64 nr_sets = m->idx->nr_sets, set;
	int r;

	*cache_error = false;
	mutex_lock(&m->lock);
	ic_commit_snapshot(m);

	/* Everything settled before the snapshot is stable after these. */
	r = ic_flush_both(m, cache_error);

	if (r || *cache_error) {
		/* Try again next time: the marks stay valid until then. */
		for_each_set_bit(set, m->commit_sets, nr_sets) {
			clear_bit(set, m->commit_sets);
			ic_meta_set_dirty(m, set);
		}
	} else if (ic_write_sets(m, m->commit_sets, true)) {
		*cache_error = true;
	}
	if (!r && !*cache_error)
		m->commits++;
	mutex_unlock(&m->lock);
	return r;
}
