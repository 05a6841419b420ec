/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Where things live on the cache device. This is the only code that decides
 * the layout; metadata and data I/O ask it for sectors.
 *
 *   [ header: 1 MiB ][ set metadata: one 512-byte sector per set, rounded up
 *   to a cache block ][ data: nr_sets * IC_WAYS cache blocks ]
 *
 * The header will hold the superblock copies; each set's sector will hold
 * the on-disk entries of its IC_WAYS slots (IC_META_BYTES_PER_SLOT bytes
 * each). Data never goes below data_start.
 */
#ifndef DM_INFERCACHE_GEOMETRY_H
#define DM_INFERCACHE_GEOMETRY_H

#include "ic_compat.h"

#define IC_WAYS			16
#define IC_HEADER_SECTORS	2048	/* 1 MiB */
#define IC_META_BYTES_PER_SLOT	32
#define IC_META_SECTORS_PER_SET	(IC_WAYS * IC_META_BYTES_PER_SLOT / 512)

/* Origin blocks are numbered in 48 bits (in core and on disk). */
#define IC_OBLOCK_BITS		48
#define IC_OBLOCK_MASK		((1ULL << IC_OBLOCK_BITS) - 1)
#define IC_OBLOCK_LIMIT		IC_OBLOCK_MASK

#define IC_MIN_BLOCK_SECTORS	8	/* 4 KiB */
#define IC_MAX_BLOCK_SECTORS	128	/* 64 KiB */

struct ic_geometry {
	u64 cache_sectors;	/* size of the cache device */
	u32 block_sectors;	/* cache block size */
	u64 nr_sets;
	u64 nr_slots;		/* nr_sets * IC_WAYS */
	u64 meta_start;		/* first sector of the set metadata */
	u64 data_start;		/* first sector of slot 0 */
};

int ic_geometry_init(struct ic_geometry *geo, u64 cache_sectors,
		     u32 block_sectors);

static inline u64 ic_geometry_min_sectors(u32 block_sectors)
{
	return IC_HEADER_SECTORS + block_sectors +
	       (u64)IC_WAYS * block_sectors;
}

/*
 * The set an origin block belongs to. nr_sets fits in 32 bits. Part of the
 * on-disk format: a loaded entry must sit in this set.
 */
static inline u64 ic_oblock_set(u64 oblock, u64 nr_sets)
{
	return reciprocal_scale(hash_64(oblock, 32), (u32)nr_sets);
}

/* First sector of a slot's data on the cache device. */
static inline u64 ic_slot_sector(const struct ic_geometry *geo, u64 slot)
{
	return geo->data_start + slot * geo->block_sectors;
}

#endif
