// SPDX-License-Identifier: GPL-2.0-only
/*
 * Cache device layout: data never overlaps the header or the set metadata,
 * everything fits the device, and no whole set is wasted.
 */
#include "kselftest_harness.h"
#include "geometry.h"

static u64 footprint(const struct ic_geometry *g)
{
	return g->data_start + g->nr_slots * g->block_sectors;
}

static void check_layout(struct __test_metadata *_metadata, u64 cache,
			 u32 bs)
{
	struct ic_geometry g, more;

	ASSERT_EQ(0, ic_geometry_init(&g, cache, bs));
	EXPECT_EQ(g.nr_slots, g.nr_sets * IC_WAYS);
	EXPECT_EQ(IC_HEADER_SECTORS, g.meta_start);
	/* The metadata area holds one sector per set. */
	EXPECT_GE(g.data_start, g.meta_start + g.nr_sets * IC_META_SECTORS_PER_SET);
	/* Data starts on a cache block boundary. */
	EXPECT_EQ(0, g.data_start % bs);
	EXPECT_LE(footprint(&g), cache);
	/* Maximal: one more set would not fit. */
	more = g;
	more.nr_sets++;
	more.nr_slots += IC_WAYS;
	more.data_start = IC_HEADER_SECTORS +
		(more.nr_sets * IC_META_SECTORS_PER_SET + bs - 1) / bs * bs;
	EXPECT_GT(footprint(&more), cache);
}

TEST(rejects_bad_block_sizes)
{
	struct ic_geometry g;
	u32 bad[] = { 0, 1, 4, 7, 12, 24, 256, 1024 };
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, ic_geometry_init(&g, 1 << 30, bad[i]));
}

TEST(rejects_too_small)
{
	struct ic_geometry g;
	u32 bs;

	for (bs = 8; bs <= 128; bs *= 2) {
		u64 min = ic_geometry_min_sectors(bs);

		EXPECT_EQ(-ENOSPC, ic_geometry_init(&g, min - 1, bs));
		EXPECT_EQ(-ENOSPC, ic_geometry_init(&g, 0, bs));
		ASSERT_EQ(0, ic_geometry_init(&g, min, bs));
		EXPECT_EQ(1, g.nr_sets);
	}
}

TEST(layout_invariants_many_sizes)
{
	u64 seed = 12345;
	unsigned int i;
	u32 bs;

	for (bs = 8; bs <= 128; bs *= 2) {
		for (i = 0; i < 2000; i++) {
			u64 cache;

			seed = seed * 6364136223846793005ULL + 1;
			cache = ic_geometry_min_sectors(bs) +
				(seed >> 20) % (1ULL << (i % 40));
			check_layout(_metadata, cache, bs);
		}
	}
	/* Large devices: 1 TiB and 64 TiB at 4 KiB. */
	check_layout(_metadata, 1ULL << 31, 8);
	check_layout(_metadata, 1ULL << 37, 8);
}

TEST(overhead_is_small)
{
	struct ic_geometry g;

	/* 1 GiB at 4 KiB: header + metadata cost under 1% + 1 MiB. */
	ASSERT_EQ(0, ic_geometry_init(&g, 1 << 21, 8));
	EXPECT_GE(g.nr_slots * 8, (1 << 21) - IC_HEADER_SECTORS -
		  (1 << 21) / 100);
}

TEST_HARNESS_MAIN
