// SPDX-License-Identifier: GPL-2.0-only
/*
 * Cache device geometry: how many slots fit, and where each region starts.
 */
#include "geometry.h"

static u64 ic_round_up(u64 v, u64 to)
{
	return (v + to - 1) / to * to;
}

static u64 ic_footprint(u64 nr_sets, u32 block_sectors)
{
	return IC_HEADER_SECTORS +
	       ic_round_up(nr_sets * IC_META_SECTORS_PER_SET, block_sectors) +
	       nr_sets * IC_WAYS * block_sectors;
}

/**
 * ic_geometry_init - lay out a cache device
 * @geo: filled in on success
 * @cache_sectors: size of the cache device in 512-byte sectors
 * @block_sectors: cache block size in sectors, a power of two
 *
 * Returns 0, -EINVAL for a block size out of range, or -ENOSPC when the
 * device cannot hold the header, the metadata and one full set.
 */
int ic_geometry_init(struct ic_geometry *geo, u64 cache_sectors,
		     u32 block_sectors)
{
	u64 nr_sets;

	if (block_sectors < IC_MIN_BLOCK_SECTORS ||
	    block_sectors > IC_MAX_BLOCK_SECTORS ||
	    !is_power_of_2(block_sectors))
		return -EINVAL;

	if (cache_sectors < ic_geometry_min_sectors(block_sectors))
		return -ENOSPC;

	/* Upper bound ignoring the rounding of the metadata area... */
	nr_sets = (cache_sectors - IC_HEADER_SECTORS) /
		  ((u64)IC_WAYS * block_sectors + IC_META_SECTORS_PER_SET);
	/* ...which costs at most one block, so this loop runs once or twice. */
	while (nr_sets && ic_footprint(nr_sets, block_sectors) > cache_sectors)
		nr_sets--;
	if (!nr_sets)
		return -ENOSPC;

	geo->cache_sectors = cache_sectors;
	geo->block_sectors = block_sectors;
	geo->nr_sets = nr_sets;
	geo->nr_slots = nr_sets * IC_WAYS;
	geo->meta_start = IC_HEADER_SECTORS;
	geo->data_start = IC_HEADER_SECTORS +
			  ic_round_up(nr_sets * IC_META_SECTORS_PER_SET,
				      block_sectors);
	return 0;
}
