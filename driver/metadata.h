/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Metadata I/O: the superblock, loading the entries into the index, and
 * writing set images (the IC_WAYS entries of one set, regenerated from the
 * index). The format itself is in format.h.
 *
 * The rule everything here serves: an entry on disk says VALID only while
 * the slot's data and the origin's copy of the block agree and are both
 * stable, and says DIRTY only while the slot stably holds a version of the
 * block at least as new as the origin's (writeback). Hence:
 *   - a commit (ic_meta_commit) first marks the settled VALID ways
 *     COMMITTING, then flushes both devices, then writes the images that add
 *     them;
 *   - before the slot's data or the origin's block changes, the caller
 *     removes the entry with ic_meta_sync_set(), which writes the set's
 *     image without it (FUA) and waits.
 * Images of one metadata block are written one at a time (a bit lock per
 * block), each regenerated from the index when its turn comes, so the last
 * image written is always the newest.
 */
#ifndef DM_INFERCACHE_METADATA_H
#define DM_INFERCACHE_METADATA_H

#include <linux/blkdev.h>
#include <linux/dm-io.h>
#include <linux/mempool.h>
#include <linux/mutex.h>

#include "format.h"
#include "index.h"

struct ic_meta {
	struct block_device *cache;
	struct block_device *origin;
	struct ic_index *idx;
	const struct ic_geometry *geo;
	struct dm_io_client *io;
	mempool_t buf_pool;		/* one metadata block each */

	struct ic_sb sb;		/* as last written (or read) */
	u32 salt;
	u32 mb_sectors;			/* sectors per metadata I/O block */
	u64 nr_mbs;

	unsigned long *busy;		/* per block: an image is in flight */
	unsigned long *dirty;		/* per set: image wanted at commit */
	unsigned long *commit_sets;	/* per set: in the running commit */
	atomic_t nr_dirty;		/* dirty bits set, about */
	atomic64_t seq;			/* stamped into written entries */
	struct mutex lock;		/* commits and superblock writes */
	u64 commits;
};

/* Superblock copies as found on @cache; status and why per copy. */
int ic_meta_read_sb(struct block_device *cache, enum ic_sb_status *st,
		    struct ic_sb *sb, const char **why);

int ic_meta_init(struct ic_meta *m, struct block_device *cache,
		 struct block_device *origin, struct ic_index *idx,
		 const struct ic_geometry *geo);
void ic_meta_exit(struct ic_meta *m);

/*
 * Zero the set metadata and write a new superblock (new UUID) from @sb's
 * identity fields (origin size and tag).
 */
int ic_meta_format(struct ic_meta *m, const struct ic_sb *sb);

/*
 * Read every set's entries into the (empty) index: checked entries become
 * VALID | DURABLE ways (DIRTY ones also DIRTY | DISK_DIRTY | SURE_DIRTY);
 * damaged ones, and with @dirty_only the clean ones, are dropped and
 * counted.
 */
int ic_meta_load(struct ic_meta *m, const struct ic_sb *sb,
		 u64 origin_blocks, bool dirty_only, u64 *loaded, u64 *dropped);

/* Set INCOMPAT_DIRTY in the superblock (before the first DIRTY entry). */
int ic_meta_enable_dirty(struct ic_meta *m);

/*
 * May disk say CLEAN for the block of a VALID way (word)? Then a write to
 * its slot alone must first have the set image say DIRTY (sync).
 */
bool ic_meta_needs_promote(u64 word);

/* Rewrite both superblock copies with flags changed. */
int ic_meta_write_sb(struct ic_meta *m, u32 set_flags, u32 clear_flags,
		     bool count_load);

/* The set has ways whose entries a commit should (re)write. */
void ic_meta_set_dirty(struct ic_meta *m, u64 set);

/*
 * Would a write or discard of @oblock change data an entry of @set may
 * still vouch for? Set lock held.
 */
bool ic_meta_needs_sync(const struct ic_index *idx, u64 set, u64 oblock);

/* Remove from disk every entry of @set that is no longer VALID in core. */
int ic_meta_sync_set(struct ic_meta *m, u64 set);

/* The same for every set in @sets (a bitmap of nr_sets bits; cleared). */
int ic_meta_sync_sets(struct ic_meta *m, unsigned long *sets);

/*
 * Make every settled block stable and described on disk. Returns the error
 * of flushing the origin (the caller's flushes fail with it); a cache
 * device error sets *cache_error.
 */
int ic_meta_commit(struct ic_meta *m, bool *cache_error);

#endif
