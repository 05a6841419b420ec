// SPDX-License-Identifier: GPL-2.0-only
/*
 * Eviction (CLOCK within a set) and a trace-driven model of the index as
 * the target drives it: hits, fills, evictions, invalidations and in-flight
 * I/O, checked against the invariants the target relies on.
 */
#include "kselftest_harness.h"
#include "policy.h"

static u64 rng_state = 88172645463325252ULL;

static u64 rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

TEST(free_ways_first)
{
	struct ic_index idx;
	unsigned int way;

	ASSERT_EQ(0, ic_index_init(&idx, 1));
	for (way = 0; way < IC_WAYS; way++) {
		int v = ic_policy_victim(&idx, 0);

		ASSERT_EQ((int)way, v);
		idx.ways[v] = (100 + way) | IC_WAY_VALID | IC_WAY_REF;
	}
	ic_index_exit(&idx);
}

TEST(clock_second_chance)
{
	struct ic_index idx;
	unsigned int way;
	int v;

	ASSERT_EQ(0, ic_index_init(&idx, 1));
	for (way = 0; way < IC_WAYS; way++)
		idx.ways[way] = way | IC_WAY_VALID | IC_WAY_REF;
	/* Way 7 was not referenced: it goes first. */
	idx.ways[7] &= ~IC_WAY_REF;
	EXPECT_EQ(7, ic_policy_victim(&idx, 0));
	/* All referenced: the hand clears bits, then takes the next one. */
	for (way = 0; way < IC_WAYS; way++)
		idx.ways[way] |= IC_WAY_REF;
	v = ic_policy_victim(&idx, 0);
	EXPECT_GE(v, 0);
	/* A hit protects a block for one more turn. */
	ic_policy_hit(&idx, 0, (v + 1) % IC_WAYS);
	EXPECT_NE((v + 1) % IC_WAYS, ic_policy_victim(&idx, 0));
	ic_index_exit(&idx);
}

TEST(busy_ways_are_never_victims)
{
	struct ic_index idx;
	unsigned int way;

	ASSERT_EQ(0, ic_index_init(&idx, 1));
	for (way = 0; way < IC_WAYS; way++) {
		idx.ways[way] = way | IC_WAY_VALID;
		if (way % 2)
			idx.ways[way] = way | IC_WAY_FILLING;
		else
			idx.inflight[way] = 1;
	}
	EXPECT_EQ(-1, ic_policy_victim(&idx, 0));
	idx.inflight[4] = 0;
	EXPECT_EQ(4, ic_policy_victim(&idx, 0));
	ic_index_exit(&idx);
}

/* The target's steps, single-threaded, with pending fills and hits. */
struct model {
	struct ic_index idx;
	long cached;
	u64 hits, misses;
};

static void model_check(struct __test_metadata *_metadata, struct model *m)
{
	long cached = 0;
	u64 set;

	for (set = 0; set < m->idx.nr_sets; set++) {
		unsigned int a, b;

		for (a = 0; a < IC_WAYS; a++) {
			u64 wa = m->idx.ways[ic_index_slot(set, a)];

			if (!(wa & IC_WAY_PRESENT))
				continue;
			cached += !!(wa & IC_WAY_VALID);
			/* Stored in the set its block hashes to. */
			ASSERT_EQ(set, ic_index_set(&m->idx, wa & IC_OBLOCK_MASK));
			for (b = a + 1; b < IC_WAYS; b++) {
				u64 wb = m->idx.ways[ic_index_slot(set, b)];

				if (wb & IC_WAY_PRESENT)
					ASSERT_NE(wa & IC_OBLOCK_MASK,
						  wb & IC_OBLOCK_MASK);
			}
		}
	}
	ASSERT_EQ(m->cached, cached);
}

/* A read of @oblock: hit, or reserve a way and (maybe later) fill it. */
static int model_read(struct model *m, u64 oblock, u64 *slot_out)
{
	u64 set = ic_index_set(&m->idx, oblock);
	int way = ic_index_find(&m->idx, set, oblock);

	*slot_out = 0;
	if (way >= 0 && (m->idx.ways[ic_index_slot(set, way)] & IC_WAY_VALID)) {
		m->hits++;
		ic_policy_hit(&m->idx, set, way);
		*slot_out = ic_index_slot(set, way);
		return 1;
	}
	m->misses++;
	if (way >= 0 || !ic_policy_admit(&m->idx, set, oblock))
		return 0;
	way = ic_policy_victim(&m->idx, set);
	if (way < 0)
		return 0;
	*slot_out = ic_index_slot(set, way);
	if (m->idx.ways[*slot_out] & IC_WAY_VALID)
		m->cached--;
	m->idx.ways[*slot_out] = oblock | IC_WAY_FILLING;
	return 2;
}

static void model_fill_done(struct model *m, u64 slot)
{
	u64 word = m->idx.ways[slot];

	if (!(word & IC_WAY_STALE)) {
		m->idx.ways[slot] = (word & IC_OBLOCK_MASK) | IC_WAY_VALID;
		m->cached++;
	} else {
		m->idx.ways[slot] = 0;
	}
}

TEST(trace_invariants_with_inflight_io)
{
	enum { PENDING = 64 };
	u64 fills[PENDING], hits[PENDING];
	unsigned int nfills = 0, nhits = 0;
	struct model m = { 0 };
	unsigned int i;

	ASSERT_EQ(0, ic_index_init(&m.idx, 8));	/* 128 slots */
	for (i = 0; i < 200000; i++) {
		u64 op = rnd() % 100, oblock = rnd() % 400, slot;
		int r;

		if (op < 70) {
			r = model_read(&m, oblock, &slot);
			if (r == 1 && nhits < PENDING) {
				m.idx.inflight[slot]++;
				hits[nhits++] = slot;
			} else if (r == 2) {
				if (nfills < PENDING)
					fills[nfills++] = slot;
				else
					model_fill_done(&m, slot);
			}
		} else if (op < 90) {
			/* A write or discard of @oblock. */
			u64 set = ic_index_set(&m.idx, oblock);
			int way = ic_index_find(&m.idx, set, oblock);

			if (way >= 0 &&
			    ic_index_invalidate(&m.idx, ic_index_slot(set, way)))
				m.cached--;
		} else if (op < 95 && nfills) {
			unsigned int k = rnd() % nfills;

			model_fill_done(&m, fills[k]);
			fills[k] = fills[--nfills];
		} else if (nhits) {
			unsigned int k = rnd() % nhits;

			/* The slot of an in-flight hit was never reused. */
			ASSERT_TRUE(m.idx.inflight[hits[k]] > 0);
			m.idx.inflight[hits[k]]--;
			hits[k] = hits[--nhits];
		}
		if (!(i % 1000))
			model_check(_metadata, &m);
	}
	model_check(_metadata, &m);
	ic_index_exit(&m.idx);
}

TEST(working_set_that_fits_stays_cached)
{
	struct model m = { 0 };
	u64 nr_sets = 256, slot;	/* 4096 slots */
	u64 ws = nr_sets * IC_WAYS / 2;
	unsigned int pass;
	u64 b;

	ASSERT_EQ(0, ic_index_init(&m.idx, nr_sets));
	for (pass = 0; pass < 3; pass++) {
		m.hits = m.misses = 0;
		for (b = 0; b < ws; b++) {
			u64 oblock = (b * 7919) % ws;

			if (model_read(&m, oblock, &slot) == 2)
				model_fill_done(&m, slot);
		}
		TH_LOG("pass %u: hit ratio %.4f", pass,
		       (double)m.hits / (m.hits + m.misses));
	}
	/* Half-full 16-way sets: a warm pass hits (almost) every block. */
	EXPECT_GE(m.hits * 1000, (m.hits + m.misses) * 990);
	model_check(_metadata, &m);
	ic_index_exit(&m.idx);
}

TEST_HARNESS_MAIN
