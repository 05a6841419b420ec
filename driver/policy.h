/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Admission and eviction. The policy decides; it does no I/O.
 *
 * Frequency: each set keeps a count-min sketch of the blocks that map to it
 * (4-bit counters, conservative update), fed by every lookup, hits and
 * misses alike, and halved every IC_SKETCH_SAMPLE increments so that old
 * popularity fades (TinyLFU); a lookup whose counters are all saturated
 * increments nothing and does not advance that clock. Because a block and
 * any block it could evict live in the same set, a per-set sketch answers
 * every question admission asks, under the set lock the caller already
 * holds: no global structure, no shared cache line.
 *
 * Admission: a missed block takes a free way if there is one; otherwise it
 * must be estimated more frequent than the victim, the least frequent idle
 * way (unreferenced first). A one-pass scan, whose blocks are seen once,
 * therefore cannot push out blocks that were read more than once.
 *
 * Contracts, for the ic_policy_* functions on a set: the caller holds the
 * set lock; the function never blocks, never allocates and runs in
 * O(IC_WAYS).
 */
#ifndef DM_INFERCACHE_POLICY_H
#define DM_INFERCACHE_POLICY_H

#include "index.h"

#define IC_FREQ_MAX		15
#define IC_SKETCH_SAMPLE	(10 * IC_WAYS)

/* ic_policy_victim() results other than a way number. */
#define IC_VICTIM_BUSY		(-1)	/* every way filling, in use or pinned */
#define IC_VICTIM_REJECT	(-2)	/* the candidate is not worth a slot */

/*
 * A lookup hit @way of @set: count it and mark the way referenced.
 */
void ic_policy_hit(struct ic_index *idx, u64 set, unsigned int way);

/*
 * A lookup of @oblock missed in @set: count it. Returns the block's
 * estimated recent frequency, 1 to IC_FREQ_MAX, to pass to
 * ic_policy_victim().
 */
unsigned int ic_policy_miss(struct ic_index *idx, u64 set, u64 oblock);

/*
 * Choose the way of @set for a missed block of estimated frequency @freq:
 * a free way if there is one, else the least frequent idle, unpinned way
 * if @freq beats it or @force is set (prewarm). Returns the way,
 * IC_VICTIM_BUSY or IC_VICTIM_REJECT.
 */
int ic_policy_victim(struct ic_index *idx, u64 set, unsigned int freq,
		     bool force);

/* The estimated recent frequency of @oblock in @set (does not count). */
unsigned int ic_policy_estimate(const struct ic_index *idx, u64 set,
				u64 oblock);

/*
 * Sequential streams. A small table remembers where the last few streams
 * of misses ended; a miss that continues one extends its run. The caller
 * serialises calls on one table.
 */
#define IC_NR_STREAMS	16

struct ic_stream {
	u64 next;		/* sector the stream continues at */
	u64 run;		/* sectors read in sequence so far */
	u64 stamp;		/* last use, for replacement */
};

struct ic_streams {
	struct ic_stream s[IC_NR_STREAMS];
	u64 clock;
};

/*
 * Note a miss of @nr_sectors at @sector. Returns the length in sectors of
 * the sequential run it belongs to, this miss included.
 */
u64 ic_stream_note(struct ic_streams *st, u64 sector, u32 nr_sectors);

#endif
