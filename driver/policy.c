// SPDX-License-Identifier: GPL-2.0-only
/*
 * First policy: admit every miss, evict by CLOCK within the set.
 */
#include "policy.h"

bool ic_policy_admit(struct ic_index *idx, u64 set, u64 oblock)
{
	return true;
}

void ic_policy_hit(struct ic_index *idx, u64 set, unsigned int way)
{
	idx->ways[ic_index_slot(set, way)] |= IC_WAY_REF;
}

int ic_policy_victim(struct ic_index *idx, u64 set)
{
	struct ic_set *s = &idx->sets[set];
	u64 base = ic_index_slot(set, 0);
	unsigned int way, i;

	for (way = 0; way < IC_WAYS; way++)
		if (ic_way_is_free(idx, base + way))
			return way;

	/* Two turns: the first may only clear reference bits. */
	for (i = 0; i < 2 * IC_WAYS; i++) {
		u64 *word;

		way = s->hand;
		s->hand = (way + 1) % IC_WAYS;
		word = &idx->ways[base + way];

		if ((*word & IC_WAY_FILLING) || idx->inflight[base + way])
			continue;
		if (*word & IC_WAY_REF) {
			*word &= ~IC_WAY_REF;
			continue;
		}
		return way;
	}
	return -1;
}
