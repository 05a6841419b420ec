/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The in-core index: origin block -> cache slot.
 *
 * Set-associative: an origin block hashes to one set of IC_WAYS ways, and a
 * lookup scans that set's ways only, under that set's lock. No pointers and no
 * lock shared by all I/O. RAM per slot: an 8-byte way word and a 2-byte
 * in-flight count, plus one struct ic_set per IC_WAYS slots (under 15 bytes
 * a slot in all, the sketch included).
 *
 * A way word holds the origin block in its low IC_OBLOCK_BITS bits and the
 * flags below; bits 62-63 are free. Each set also carries the policy's
 * frequency sketch of the blocks that map to it (policy.c). A way is free
 * when neither VALID nor FILLING is set and no I/O that looked it up is in
 * flight (inflight == 0); only a free way may be given to another block.
 * At most one way of a set is VALID or FILLING for a given origin block.
 *
 * Locking: every field of a set's ways and of its struct ic_set is read and
 * written under that set's lock, which is taken with interrupts disabled
 * (completions run in interrupt context).
 */
#ifndef DM_INFERCACHE_INDEX_H
#define DM_INFERCACHE_INDEX_H

#include "ic_compat.h"
#include "geometry.h"

/* The slot holds this block's data; lookups hit. */
#define IC_WAY_VALID	BIT_ULL(48)
/* A fill of this block is in flight; lookups miss but see it. */
#define IC_WAY_FILLING	BIT_ULL(49)
/* The block was written or discarded during the fill: drop the fill. */
#define IC_WAY_STALE	BIT_ULL(50)
/* CLOCK reference bit: hit since the hand last passed. */
#define IC_WAY_REF	BIT_ULL(51)
/* A write-through write to the slot is in flight. */
#define IC_WAY_WRITING	BIT_ULL(52)
/* Pinned: never chosen for eviction. */
#define IC_WAY_PIN	BIT_ULL(53)

/*
 * Persistence (metadata.c). DURABLE: the slot's on-disk entry may say VALID,
 * for the oblock of this word or, with RECLAIM, for a block no longer known
 * (a fill took the way). Such an entry must be removed on disk before the
 * slot's data, or the origin's copy of that block, may change.
 * COMMITTING: settled data the running commit writes VALID after its flush.
 */
#define IC_WAY_DURABLE	BIT_ULL(54)
#define IC_WAY_COMMITTING	BIT_ULL(55)
#define IC_WAY_RECLAIM	BIT_ULL(56)

/*
 * Writeback (target.c, metadata.c). DIRTY: the slot is newer than the
 * origin; set when a write to the slot is mapped, so a VALID | DIRTY way
 * always holds some version of its block at least as new as the origin's,
 * while a FILLING | DIRTY way is a whole-block write still landing in a slot
 * that held something else. WB: a writeback copy of the block is in flight
 * (it holds an inflight count); REDIRTY: a write came during it, so the
 * block stays dirty. DISK_DIRTY: disk may say DIRTY for this slot and block
 * (set when such an image is made); SURE_DIRTY: disk says DIRTY (set when
 * it has landed, cleared when an image that says otherwise is made).
 */
#define IC_WAY_DIRTY		BIT_ULL(57)
#define IC_WAY_WB		BIT_ULL(58)
#define IC_WAY_REDIRTY		BIT_ULL(59)
#define IC_WAY_DISK_DIRTY	BIT_ULL(60)
#define IC_WAY_SURE_DIRTY	BIT_ULL(61)

#define IC_WAY_PRESENT	(IC_WAY_VALID | IC_WAY_FILLING)
#define IC_WAY_ON_DISK	(IC_WAY_DURABLE | IC_WAY_RECLAIM)
/* Ways eviction must leave alone: their slot is the only up-to-date copy. */
#define IC_WAY_NO_EVICT	(IC_WAY_PIN | IC_WAY_DIRTY | IC_WAY_WB | \
			 IC_WAY_DISK_DIRTY)
#define IC_INFLIGHT_MAX	U16_MAX

/* 4-bit counters of the per-set count-min sketch: 8 a way. */
#define IC_SKETCH_BYTES	64

struct ic_set {
	spinlock_t lock;	/* protects this set and its ways */
	u32 writes_inflight;	/* writes to blocks of this set in flight */
	u8 hand;		/* where the next victim scan starts */
	u8 sample;		/* sketch increments since it last aged */
	u8 sketch[IC_SKETCH_BYTES];
};

struct ic_index {
	u64 nr_sets;
	u64 *ways;		/* nr_sets * IC_WAYS way words */
	u16 *inflight;		/* per way: hits and write-through writes */
	struct ic_set *sets;
};

int ic_index_init(struct ic_index *idx, u64 nr_sets);
void ic_index_exit(struct ic_index *idx);

/* The set an origin block belongs to. nr_sets fits in 32 bits. */
static inline u64 ic_index_set(const struct ic_index *idx, u64 oblock)
{
	return ic_oblock_set(oblock, idx->nr_sets);
}

/* The index of a way of a set in idx->ways and idx->inflight. */
static inline u64 ic_index_slot(u64 set, unsigned int way)
{
	return set * IC_WAYS + way;
}

static inline bool ic_way_is_free(const struct ic_index *idx, u64 slot)
{
	return !(idx->ways[slot] & IC_WAY_PRESENT) && !idx->inflight[slot];
}

/*
 * The way of @set that holds or is filling @oblock, or -1.
 * Caller holds the set lock.
 */
int ic_index_find(const struct ic_index *idx, u64 set, u64 oblock);

/*
 * Forget the block of a VALID way (it stays busy until its in-flight I/O
 * drains) or mark a FILLING way STALE. Returns true when a VALID block was
 * dropped. Caller holds the set lock.
 */
bool ic_index_invalidate(struct ic_index *idx, u64 slot);

#endif
