// SPDX-License-Identifier: GPL-2.0-only
/*
 * The set-associative in-core index. Pure logic: no I/O, no policy; callers
 * hold the set lock.
 */
#include "index.h"

int ic_index_init(struct ic_index *idx, u64 nr_sets)
{
	u64 set;

	if (!nr_sets || nr_sets > U32_MAX)
		return -EINVAL;

	idx->nr_sets = nr_sets;
	idx->ways = kvcalloc(nr_sets * IC_WAYS, sizeof(*idx->ways),
			     GFP_KERNEL);
	idx->inflight = kvcalloc(nr_sets * IC_WAYS, sizeof(*idx->inflight),
				 GFP_KERNEL);
	idx->sets = kvcalloc(nr_sets, sizeof(*idx->sets), GFP_KERNEL);
	if (!idx->ways || !idx->inflight || !idx->sets) {
		ic_index_exit(idx);
		return -ENOMEM;
	}

	for (set = 0; set < nr_sets; set++)
		spin_lock_init(&idx->sets[set].lock);

	return 0;
}

void ic_index_exit(struct ic_index *idx)
{
	kvfree(idx->ways);
	kvfree(idx->inflight);
	kvfree(idx->sets);
	idx->ways = NULL;
	idx->inflight = NULL;
	idx->sets = NULL;
}

int ic_index_find(const struct ic_index *idx, u64 set, u64 oblock)
{
	const u64 *ways = &idx->ways[ic_index_slot(set, 0)];
	unsigned int way;

	for (way = 0; way < IC_WAYS; way++) {
		u64 word = ways[way];

		if ((word & IC_WAY_PRESENT) && (word & IC_OBLOCK_MASK) == oblock)
			return way;
	}
	return -1;
}

bool ic_index_invalidate(struct ic_index *idx, u64 slot)
{
	u64 word = idx->ways[slot];

	/* Forgotten data is not dirty: the caller accounts for that. */
	word &= ~(IC_WAY_DIRTY | IC_WAY_REDIRTY | IC_WAY_SURE_DIRTY);
	if (word & IC_WAY_FILLING) {
		idx->ways[slot] = word | IC_WAY_STALE;
		return false;
	}
	if (word & IC_WAY_VALID) {
		idx->ways[slot] = word & ~(IC_WAY_VALID | IC_WAY_REF);
		return true;
	}
	return false;
}
