/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Admission and eviction. The policy decides; it does no I/O.
 *
 * Contracts, for every function here: the caller holds the set lock; the
 * function never blocks, never allocates and runs in O(IC_WAYS).
 */
#ifndef DM_INFERCACHE_POLICY_H
#define DM_INFERCACHE_POLICY_H

#include "index.h"

/* Is @oblock, which just missed, worth a slot of @set? */
bool ic_policy_admit(struct ic_index *idx, u64 set, u64 oblock);

/* A lookup hit @way of @set. */
void ic_policy_hit(struct ic_index *idx, u64 set, unsigned int way);

/*
 * Choose the way of @set to give to a new block: a free way if there is one,
 * else the first VALID way the CLOCK hand finds unreferenced and idle.
 * Returns -1 when every way is busy (filling or with I/O in flight).
 */
int ic_policy_victim(struct ic_index *idx, u64 set);

#endif
