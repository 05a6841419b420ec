// SPDX-License-Identifier: GPL-2.0-only
/*
 * The set-associative index: hashing, lookup and invalidation.
 */
#include "kselftest_harness.h"
#include "index.h"

TEST(init_bounds)
{
	struct ic_index idx;

	EXPECT_EQ(-EINVAL, ic_index_init(&idx, 0));
	EXPECT_EQ(-EINVAL, ic_index_init(&idx, (u64)U32_MAX + 1));
	ASSERT_EQ(0, ic_index_init(&idx, 7));
	ic_index_exit(&idx);
	ic_index_exit(&idx);	/* idempotent */
}

TEST(ram_per_slot)
{
	double bytes = sizeof(u64) + sizeof(u16) +
		       (double)sizeof(struct ic_set) / IC_WAYS;

	/* The budget is 16 bytes a slot, the policy's sketch included. */
	EXPECT_LE(bytes, 16.0);
	TH_LOG("%.2f bytes of index RAM per cache slot", bytes);
}

TEST(set_in_range_and_spread)
{
	const u64 nr_sets = 1000;
	unsigned int load[1000] = { 0 };
	struct ic_index idx;
	unsigned int max = 0, min = ~0U;
	u64 b;

	ASSERT_EQ(0, ic_index_init(&idx, nr_sets));
	/* Sequential origin blocks (a model file) spread over the sets. */
	for (b = 0; b < nr_sets * 64; b++) {
		u64 set = ic_index_set(&idx, b);

		ASSERT_LT(set, nr_sets);
		load[set]++;
	}
	for (b = 0; b < nr_sets; b++) {
		max = load[b] > max ? load[b] : max;
		min = load[b] < min ? load[b] : min;
	}
	/* 64 a set on average; hashing keeps every set within 2x. */
	EXPECT_LE(max, 128);
	EXPECT_GE(min, 32);
	ic_index_exit(&idx);
}

TEST(find_and_invalidate)
{
	struct ic_index idx;
	u64 set, slot;

	ASSERT_EQ(0, ic_index_init(&idx, 4));
	set = ic_index_set(&idx, 1234);
	EXPECT_EQ(-1, ic_index_find(&idx, set, 1234));

	slot = ic_index_slot(set, 5);
	idx.ways[slot] = 1234 | IC_WAY_VALID | IC_WAY_REF;
	EXPECT_EQ(5, ic_index_find(&idx, set, 1234));
	EXPECT_EQ(-1, ic_index_find(&idx, set, 1235));

	/* A valid block is dropped, and is no longer found. */
	EXPECT_TRUE(ic_index_invalidate(&idx, slot));
	EXPECT_EQ(-1, ic_index_find(&idx, set, 1234));
	EXPECT_FALSE(ic_index_invalidate(&idx, slot));

	/* A fill in flight is found, and invalidation marks it stale. */
	idx.ways[slot] = 1234 | IC_WAY_FILLING;
	EXPECT_EQ(5, ic_index_find(&idx, set, 1234));
	EXPECT_FALSE(ic_index_invalidate(&idx, slot));
	EXPECT_TRUE(idx.ways[slot] & IC_WAY_STALE);
	EXPECT_TRUE(idx.ways[slot] & IC_WAY_FILLING);

	/* Origin block 0 and the largest one are ordinary tags. */
	idx.ways[ic_index_slot(set, 0)] = 0 | IC_WAY_VALID;
	EXPECT_EQ(0, ic_index_find(&idx, set, 0));
	idx.ways[ic_index_slot(set, 1)] = IC_OBLOCK_MASK | IC_WAY_VALID;
	EXPECT_EQ(1, ic_index_find(&idx, set, IC_OBLOCK_MASK));
	ic_index_exit(&idx);
}

TEST(busy_way_is_not_free)
{
	struct ic_index idx;
	u64 slot = ic_index_slot(0, 3);

	ASSERT_EQ(0, ic_index_init(&idx, 1));
	EXPECT_TRUE(ic_way_is_free(&idx, slot));
	idx.ways[slot] = 9 | IC_WAY_VALID;
	idx.inflight[slot] = 1;
	EXPECT_TRUE(ic_index_invalidate(&idx, slot));
	/* Dropped, but a hit is still reading it: not reusable yet. */
	EXPECT_FALSE(ic_way_is_free(&idx, slot));
	idx.inflight[slot] = 0;
	EXPECT_TRUE(ic_way_is_free(&idx, slot));
	ic_index_exit(&idx);
}

TEST_HARNESS_MAIN
