// SPDX-License-Identifier: GPL-2.0-only
/*
 * The on-disk format codec (driver/format.c): round trips, every check of
 * a superblock copy and of an entry, the choice between two copies, and a
 * fuzz loop: no change to an encoded superblock or entry may decode as
 * valid with other contents.
 */
#include "kselftest_harness.h"
#include "format.h"

/* The layout Documentation/admin-guide/dm-infercache-format.rst gives. */
_Static_assert(sizeof(struct ic_disk_sb) == IC_SB_BYTES, "sb size");
_Static_assert(offsetof(struct ic_disk_sb, load_count) + 8 == 176, "sb used");
_Static_assert(offsetof(struct ic_disk_sb, magic) == 8, "magic");
_Static_assert(offsetof(struct ic_disk_sb, uuid) == 48, "uuid");
_Static_assert(offsetof(struct ic_disk_sb, flags) == 64, "flags");
_Static_assert(offsetof(struct ic_disk_sb, nr_sets) == 80, "nr_sets");
_Static_assert(offsetof(struct ic_disk_sb, origin_tag) == 120, "tag");
_Static_assert(offsetof(struct ic_disk_sb, commit_seq) == 152, "commit_seq");
_Static_assert(offsetof(struct ic_disk_sb, version) == 4, "version");
_Static_assert(offsetof(struct ic_disk_sb, sb_seq) == 16, "sb_seq");
_Static_assert(offsetof(struct ic_disk_sb, compat) == 24, "compat");
_Static_assert(offsetof(struct ic_disk_sb, ro_compat) == 32, "ro_compat");
_Static_assert(offsetof(struct ic_disk_sb, incompat) == 40, "incompat");
_Static_assert(offsetof(struct ic_disk_sb, block_sectors) == 68, "block_sectors");
_Static_assert(offsetof(struct ic_disk_sb, ways) == 72, "ways");
_Static_assert(offsetof(struct ic_disk_sb, meta_sectors_per_set) == 76, "mps");
_Static_assert(offsetof(struct ic_disk_sb, meta_start) == 88, "meta_start");
_Static_assert(offsetof(struct ic_disk_sb, data_start) == 96, "data_start");
_Static_assert(offsetof(struct ic_disk_sb, cache_sectors) == 104, "cache_sectors");
_Static_assert(offsetof(struct ic_disk_sb, origin_sectors) == 112, "origin_sectors");
_Static_assert(offsetof(struct ic_disk_sb, format_time) == 160, "format_time");
_Static_assert(offsetof(struct ic_disk_sb, load_count) == 168, "load_count");
_Static_assert(offsetof(struct ic_disk_sb, pad) == 176, "pad");
_Static_assert(sizeof(struct ic_disk_entry) == IC_META_BYTES_PER_SLOT, "entry");
_Static_assert(offsetof(struct ic_disk_entry, seq) == 8, "entry seq");
_Static_assert(offsetof(struct ic_disk_entry, flags) == 16, "entry flags");
_Static_assert(offsetof(struct ic_disk_entry, reserved) == 20, "entry reserved");
_Static_assert(offsetof(struct ic_disk_entry, csum) == 28, "entry csum");
_Static_assert(IC_HEADER_SECTORS == 2048 && IC_WAYS == 16, "layout");
_Static_assert(IC_ENTRIES_PER_SECTOR * IC_META_SECTORS_PER_SET == IC_WAYS,
	       "one set's entries fill its metadata sectors");

#define CACHE_SECTORS	(1ULL << 21)	/* 1 GiB */
#define ORIGIN_SECTORS	(1ULL << 24)	/* 8 GiB */

static u64 rnd_state = 0x9e3779b97f4a7c15ULL;

static u64 rnd(void)
{
	/* xorshift64*: reproducible, no libc state */
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

/* A superblock as the driver would write it for a 1 GiB cache. */
static void make_sb(struct ic_sb *sb, u32 block_sectors)
{
	struct ic_geometry geo;
	int i;

	memset(sb, 0, sizeof(*sb));
	if (ic_geometry_init(&geo, CACHE_SECTORS, block_sectors))
		abort();
	sb->sb_seq = 41;
	for (i = 0; i < IC_UUID_BYTES; i++)
		sb->uuid[i] = 0xa0 + i;
	sb->flags = IC_SB_CLEAN;
	sb->block_sectors = block_sectors;
	sb->nr_sets = geo.nr_sets;
	sb->meta_start = geo.meta_start;
	sb->data_start = geo.data_start;
	sb->cache_sectors = CACHE_SECTORS;
	sb->origin_sectors = ORIGIN_SECTORS;
	memcpy(sb->origin_tag, "model-store:v7", 14);
	sb->commit_seq = 1234;
	sb->format_time = 1700000000;
	sb->load_count = 3;
}

/* Re-seal a superblock after editing a field: what a buggy writer does. */
static void reseal(struct ic_disk_sb *d)
{
	d->csum = cpu_to_le32(crc32c(~0U, (u8 *)d + 4, IC_SB_BYTES - 4));
}

/* The entry checksum as format.h documents it, computed independently. */
static u32 entry_csum(const struct ic_disk_entry *d, u32 salt, u64 slot)
{
	__le64 s = cpu_to_le64(slot);

	return crc32c(crc32c(salt, &s, 8), d, 28);
}

/* An origin block below @limit that belongs to @set. */
static u64 oblock_in_set(u64 set, u64 nr_sets, u64 from, u64 limit)
{
	u64 b;

	for (b = from; b < limit; b++)
		if (ic_oblock_set(b, nr_sets) == set)
			return b;
	abort();
}

TEST(sb_round_trip)
{
	struct ic_disk_sb d;
	struct ic_sb sb, out;
	const char *why = "unset";
	u32 bs;

	for (bs = IC_MIN_BLOCK_SECTORS; bs <= IC_MAX_BLOCK_SECTORS; bs *= 2) {
		make_sb(&sb, bs);
		ic_sb_encode(&sb, &d);
		EXPECT_EQ(IC_SB_MAGIC, le64_to_cpu(d.magic));
		EXPECT_EQ(IC_SB_VERSION, le32_to_cpu(d.version));
		EXPECT_EQ(IC_WAYS, le32_to_cpu(d.ways));
		EXPECT_EQ(IC_META_SECTORS_PER_SET, le32_to_cpu(d.meta_sectors_per_set));
		ASSERT_EQ(IC_SB_OK, ic_sb_decode(&d, &out, &why));
		EXPECT_EQ(NULL, why);
		EXPECT_EQ(0, memcmp(&sb, &out, sizeof(sb))) {
			TH_LOG("block_sectors %u: decoded superblock differs", bs);
		}
		EXPECT_EQ(0, ic_sb_check_geometry(&out, &why));
	}
	/* "INFRCACH" in the first bytes of the magic field on disk. */
	EXPECT_EQ(0, memcmp((u8 *)&d + 8, "INFRCACH", 8));
}

/*
 * Edit one field of a valid superblock (set it, add to it or flip bits of
 * it), optionally reseal it; decode must give @want, and a reason naming
 * @word.
 */
enum edit_op { SET, ADD, XOR };

struct sb_edit {
	const char *name;
	size_t off;		/* of the field in struct ic_disk_sb */
	unsigned int size;	/* 4 or 8 (little-endian integers) */
	enum edit_op op;
	u64 arg;
	bool reseal;
	enum ic_sb_status want;
	const char *word;
};

#define F(field) offsetof(struct ic_disk_sb, field), \
		 sizeof(((struct ic_disk_sb *)0)->field)

static const struct sb_edit sb_edits[] = {
	{ "magic", F(magic), XOR, 1ULL << 56, false, IC_SB_NOT_OURS, "magic" },
	{ "magic resealed", F(magic), XOR, 1, true, IC_SB_NOT_OURS, "magic" },
	{ "csum", F(csum), XOR, 0x10, false, IC_SB_CORRUPT, "checksum" },
	{ "body without reseal", F(load_count), XOR, 1, false, IC_SB_CORRUPT, "checksum" },
	{ "pad without reseal", IC_SB_BYTES - 4, 4, XOR, 1U << 31, false,
	  IC_SB_CORRUPT, "checksum" },
	{ "version 0", F(version), SET, 0, true, IC_SB_CORRUPT, "version" },
	{ "version 2", F(version), SET, 2, true, IC_SB_CORRUPT, "version" },
	{ "version 2 unsealed", F(version), SET, 2, false, IC_SB_CORRUPT, "checksum" },
	{ "known incompat DIRTY", F(incompat), SET, 1, true, IC_SB_OK, NULL },
	{ "unknown incompat bit 1", F(incompat), SET, 2, true, IC_SB_CORRUPT, "incompatible" },
	{ "unknown incompat bit 63", F(incompat), SET, 1ULL << 63, true,
	  IC_SB_CORRUPT, "incompatible" },
	{ "unknown ro_compat bit", F(ro_compat), SET, 1ULL << 5, true,
	  IC_SB_CORRUPT, "read-only" },
	{ "unknown flag bit 2", F(flags), XOR, 1U << 2, true, IC_SB_CORRUPT, "flags" },
	{ "unknown flag bit 31", F(flags), XOR, 1U << 31, true, IC_SB_CORRUPT, "flags" },
	{ "ways", F(ways), SET, IC_WAYS / 2, true, IC_SB_CORRUPT, "set layout" },
	{ "meta sectors per set", F(meta_sectors_per_set), SET, 2, true,
	  IC_SB_CORRUPT, "set layout" },
	{ "block size 4", F(block_sectors), SET, 4, true, IC_SB_CORRUPT, "block size" },
	{ "block size 24", F(block_sectors), SET, 24, true, IC_SB_CORRUPT, "block size" },
	{ "block size 256", F(block_sectors), SET, 256, true, IC_SB_CORRUPT, "block size" },
	{ "block size 0", F(block_sectors), SET, 0, true, IC_SB_CORRUPT, "block size" },
	/* A valid size, but not the one the layout was computed for. */
	{ "block size of another layout", F(block_sectors), SET, 16, true,
	  IC_SB_CORRUPT, "geometry" },
	{ "nr_sets + 1", F(nr_sets), ADD, 1, true, IC_SB_CORRUPT, "geometry" },
	{ "nr_sets 0", F(nr_sets), SET, 0, true, IC_SB_CORRUPT, "geometry" },
	{ "meta_start + 1", F(meta_start), ADD, 1, true, IC_SB_CORRUPT, "geometry" },
	{ "data_start + 8", F(data_start), ADD, 8, true, IC_SB_CORRUPT, "geometry" },
	{ "cache size doubled", F(cache_sectors), SET, CACHE_SECTORS * 2, true,
	  IC_SB_CORRUPT, "geometry" },
	{ "cache size 100 sectors", F(cache_sectors), SET, 100, true,
	  IC_SB_CORRUPT, "geometry" },
	{ "cache size 2^64-1", F(cache_sectors), SET, ~0ULL, true,
	  IC_SB_CORRUPT, "geometry" },
	{ "origin size 0", F(origin_sectors), SET, 0, true, IC_SB_CORRUPT, "origin size" },
	{ "origin beyond 48-bit blocks", F(origin_sectors), SET,
	  (IC_OBLOCK_LIMIT + 1) * 8, true, IC_SB_CORRUPT, "origin size" },
	/* Accepted: */
	{ "unknown compat bit", F(compat), SET, 1ULL << 40, true, IC_SB_OK, NULL },
	{ "error flag", F(flags), SET, IC_SB_ERRORS, true, IC_SB_OK, NULL },
	{ "no flags", F(flags), SET, 0, true, IC_SB_OK, NULL },
	{ "no origin tag", F(origin_tag[0]), SET, 0, true, IC_SB_OK, NULL },
	/* A few sectors more than the layout needs: still the same layout. */
	{ "cache a little larger", F(cache_sectors), ADD, 7, true, IC_SB_OK, NULL },
};

static void apply_edit(const struct sb_edit *t, struct ic_disk_sb *d)
{
	u8 *p = (u8 *)d + t->off;
	u64 v = 0;
	unsigned int i;

	for (i = 0; i < t->size; i++)
		v |= (u64)p[i] << (8 * i);
	switch (t->op) {
	case SET:
		v = t->arg;
		break;
	case ADD:
		v += t->arg;
		break;
	case XOR:
		v ^= t->arg;
		break;
	}
	for (i = 0; i < t->size; i++)
		p[i] = v >> (8 * i);
	if (t->reseal)
		reseal(d);
}

TEST(sb_each_corrupted_field)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sb_edits); i++) {
		const struct sb_edit *t = &sb_edits[i];
		struct ic_disk_sb d;
		struct ic_sb sb, out;
		const char *why = "unset";
		enum ic_sb_status st;

		make_sb(&sb, 8);
		ic_sb_encode(&sb, &d);
		apply_edit(t, &d);
		st = ic_sb_decode(&d, &out, &why);
		EXPECT_EQ(t->want, st) {
			TH_LOG("%s: status %d, want %d (why: %s)", t->name, st,
			       t->want, why ? why : "none");
		}
		if (t->word) {
			EXPECT_NE(NULL, why) {
				TH_LOG("%s: no reason given", t->name);
			}
			if (why)
				EXPECT_NE(NULL, strstr(why, t->word)) {
					TH_LOG("%s: reason '%s' does not say '%s'",
					       t->name, why, t->word);
				}
		} else {
			EXPECT_EQ(NULL, why) {
				TH_LOG("%s: unexpected reason '%s'", t->name, why);
			}
		}
	}
}

TEST(sb_compat_bits_kept)
{
	struct ic_disk_sb d;
	struct ic_sb sb, out;
	const char *why;

	/* An unknown compat feature is ignored, but not lost on a rewrite. */
	make_sb(&sb, 8);
	sb.compat = 0x8000000000000001ULL;
	ic_sb_encode(&sb, &d);
	ASSERT_EQ(IC_SB_OK, ic_sb_decode(&d, &out, &why));
	EXPECT_EQ(sb.compat, out.compat);
}

TEST(sb_blank_or_not_ours)
{
	u8 buf[IC_SB_BYTES];
	struct ic_sb out;
	const char *why = "unset";
	unsigned int i;

	memset(buf, 0, sizeof(buf));
	EXPECT_EQ(IC_SB_BLANK, ic_sb_decode(buf, &out, &why));
	EXPECT_EQ(NULL, why);

	/* Any non-zero byte without the magic is someone else's data. */
	for (i = 0; i < IC_SB_BYTES; i += 37) {
		memset(buf, 0, sizeof(buf));
		buf[i] = 0x80;
		why = NULL;
		if (i >= 8 && i < 16)
			continue;	/* the magic itself: below */
		EXPECT_EQ(IC_SB_NOT_OURS, ic_sb_decode(buf, &out, &why)) {
			TH_LOG("byte %u set", i);
		}
		EXPECT_NE(NULL, why);
	}
	memset(buf, 0, sizeof(buf));
	buf[IC_SB_BYTES - 1] = 1;
	EXPECT_EQ(IC_SB_NOT_OURS, ic_sb_decode(buf, &out, &why));

	/* An ext4 or xfs-like header: not ours. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "XFSB", 4);
	EXPECT_EQ(IC_SB_NOT_OURS, ic_sb_decode(buf, &out, &why));

	/* Our magic and nothing else: ours, but broken. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf + 8, "INFRCACH", 8);
	EXPECT_EQ(IC_SB_CORRUPT, ic_sb_decode(buf, &out, &why));
	EXPECT_NE(NULL, why);
}

static int choose2(enum ic_sb_status a, u64 seq_a, enum ic_sb_status b,
		   u64 seq_b)
{
	enum ic_sb_status st[IC_SB_COPIES] = { a, b };
	struct ic_sb sb[IC_SB_COPIES];

	memset(sb, 0, sizeof(sb));
	sb[0].sb_seq = seq_a;
	sb[1].sb_seq = seq_b;
	return ic_sb_choose(st, sb);
}

TEST(sb_choose)
{
	EXPECT_EQ(1, choose2(IC_SB_OK, 5, IC_SB_OK, 6));
	EXPECT_EQ(0, choose2(IC_SB_OK, 7, IC_SB_OK, 6));
	EXPECT_EQ(0, choose2(IC_SB_OK, 7, IC_SB_OK, 7));
	EXPECT_EQ(0, choose2(IC_SB_OK, 1, IC_SB_CORRUPT, 9));
	EXPECT_EQ(1, choose2(IC_SB_CORRUPT, 9, IC_SB_OK, 1));
	EXPECT_EQ(1, choose2(IC_SB_BLANK, 0, IC_SB_OK, 1));
	EXPECT_EQ(0, choose2(IC_SB_OK, 3, IC_SB_NOT_OURS, 0));
	EXPECT_EQ(-1, choose2(IC_SB_CORRUPT, 3, IC_SB_CORRUPT, 4));
	EXPECT_EQ(-1, choose2(IC_SB_BLANK, 0, IC_SB_BLANK, 0));
	EXPECT_EQ(-1, choose2(IC_SB_NOT_OURS, 0, IC_SB_BLANK, 0));
}

TEST(sb_choose_torn_copy)
{
	struct ic_disk_sb disk[IC_SB_COPIES], newer;
	enum ic_sb_status st[IC_SB_COPIES];
	struct ic_sb sb, out[IC_SB_COPIES];
	const char *why;
	unsigned int tear, i;

	/* Both copies at sb_seq 41; then copy 0 is rewritten at 42, torn. */
	make_sb(&sb, 8);
	ic_sb_encode(&sb, &disk[1]);
	sb.sb_seq = 42;
	sb.flags = 0;
	sb.load_count++;
	ic_sb_encode(&sb, &newer);
	for (tear = 0; tear <= IC_SB_BYTES; tear += 16) {
		make_sb(&sb, 8);
		ic_sb_encode(&sb, &disk[0]);
		memcpy(&disk[0], &newer, tear);	/* the new bytes that made it */
		for (i = 0; i < IC_SB_COPIES; i++)
			st[i] = ic_sb_decode(&disk[i], &out[i], &why);
		if (tear == 0 || !memcmp(&disk[0], &newer, sizeof(newer))) {
			/* nothing new written yet, or all that differs */
			EXPECT_EQ(IC_SB_OK, st[0]);
			EXPECT_EQ(0, ic_sb_choose(st, out));
			EXPECT_EQ(tear ? 42 : 41, out[0].sb_seq);
			continue;
		}
		EXPECT_EQ(IC_SB_CORRUPT, st[0]) {
			TH_LOG("copy 0 torn after %u bytes decodes as %d", tear, st[0]);
		}
		ASSERT_EQ(1, ic_sb_choose(st, out));
		EXPECT_EQ(41, out[1].sb_seq);
	}
	/* The complete write wins over the older copy. */
	st[0] = ic_sb_decode(&newer, &out[0], &why);
	st[1] = ic_sb_decode(&disk[1], &out[1], &why);
	ASSERT_EQ(0, ic_sb_choose(st, out));
	EXPECT_EQ(42, out[0].sb_seq);
}

/* ----------------------------------------------------------- entries */

struct ectx {
	u32 salt;
	u64 nr_sets;
	u64 origin_blocks;
};

static void ectx_init(struct ectx *c)
{
	struct ic_sb sb;

	make_sb(&sb, 8);
	c->salt = ic_format_salt(sb.uuid);
	c->nr_sets = sb.nr_sets;
	c->origin_blocks = sb.origin_sectors / sb.block_sectors;
}

TEST(entry_round_trip)
{
	struct ic_disk_entry d;
	struct ic_entry e, out;
	struct ectx c;
	u64 slot;

	ectx_init(&c);
	for (slot = 0; slot < c.nr_sets * IC_WAYS; slot += 997) {
		u64 set = slot / IC_WAYS;

		e.oblock = oblock_in_set(set, c.nr_sets, (slot * 7919) % 100000,
					 c.origin_blocks);
		e.seq = slot * 3 + 1;
		e.flags = IC_ENTRY_VALID;
		ic_entry_encode(&e, c.salt, slot, &d);
		EXPECT_EQ(entry_csum(&d, c.salt, slot), le32_to_cpu(d.csum));
		ASSERT_EQ(IC_ENTRY_OK, ic_entry_decode(&d, c.salt, slot,
						       c.origin_blocks, c.nr_sets, &out)) {
			TH_LOG("slot %llu oblock %llu", (unsigned long long)slot,
			       (unsigned long long)e.oblock);
		}
		EXPECT_EQ(e.oblock, out.oblock);
		EXPECT_EQ(e.seq, out.seq);
		EXPECT_EQ(e.flags, out.flags);
	}
	/* The last block of the origin. */
	slot = ic_oblock_set(c.origin_blocks - 1, c.nr_sets) * IC_WAYS + 15;
	e.oblock = c.origin_blocks - 1;
	ic_entry_encode(&e, c.salt, slot, &d);
	EXPECT_EQ(IC_ENTRY_OK, ic_entry_decode(&d, c.salt, slot, c.origin_blocks,
					       c.nr_sets, &out));
}

TEST(entry_free)
{
	struct ic_disk_entry d, zero;
	struct ic_entry e = { .oblock = 5, .seq = 9, .flags = 0 }, out;
	struct ectx c;

	ectx_init(&c);
	memset(&zero, 0, sizeof(zero));
	/* Not VALID: encoded as a free slot, all zeroes. */
	ic_entry_encode(&e, c.salt, 3, &d);
	EXPECT_EQ(0, memcmp(&d, &zero, sizeof(d)));
	EXPECT_EQ(IC_ENTRY_FREE, ic_entry_decode(&zero, c.salt, 3, c.origin_blocks,
						 c.nr_sets, &out));
	EXPECT_EQ(0, out.flags);
}

TEST(entry_moved_or_foreign_fails)
{
	struct ic_disk_entry d;
	struct ic_entry e, out;
	struct ectx c;
	u8 other_uuid[IC_UUID_BYTES];
	u64 slot = 5 * IC_WAYS + 3, to;
	int i;

	ectx_init(&c);
	e.oblock = oblock_in_set(5, c.nr_sets, 0, c.origin_blocks);
	e.seq = 77;
	e.flags = IC_ENTRY_VALID;
	ic_entry_encode(&e, c.salt, slot, &d);
	ASSERT_EQ(IC_ENTRY_OK, ic_entry_decode(&d, c.salt, slot, c.origin_blocks,
					       c.nr_sets, &out));
	/* Copied to every other way of its set, and to other sets. */
	for (to = 5 * IC_WAYS; to < 6 * IC_WAYS; to++)
		if (to != slot)
			EXPECT_EQ(IC_ENTRY_BAD_CSUM,
				  ic_entry_decode(&d, c.salt, to, c.origin_blocks,
						  c.nr_sets, &out)) {
				TH_LOG("entry of slot %llu accepted in slot %llu",
				       (unsigned long long)slot, (unsigned long long)to);
			}
	EXPECT_EQ(IC_ENTRY_BAD_CSUM, ic_entry_decode(&d, c.salt, slot + IC_WAYS,
						     c.origin_blocks, c.nr_sets, &out));
	EXPECT_EQ(IC_ENTRY_BAD_CSUM, ic_entry_decode(&d, c.salt, slot + (1ULL << 32),
						     c.origin_blocks, c.nr_sets, &out));
	/* Left by an earlier format (another uuid). */
	for (i = 0; i < IC_UUID_BYTES; i++)
		other_uuid[i] = 0xa0 + i;
	other_uuid[15] ^= 1;
	EXPECT_NE(c.salt, ic_format_salt(other_uuid));
	EXPECT_EQ(IC_ENTRY_BAD_CSUM,
		  ic_entry_decode(&d, ic_format_salt(other_uuid), slot,
				  c.origin_blocks, c.nr_sets, &out));
}

TEST(entry_bad_values)
{
	struct ic_disk_entry d;
	struct ic_entry e, out;
	struct ectx c;
	u64 slot = 9 * IC_WAYS + 1, b;

	ectx_init(&c);
	e.seq = 1;
	e.flags = IC_ENTRY_VALID;

	/* A block beyond the origin (right set, right checksum). */
	e.oblock = oblock_in_set(9, c.nr_sets, c.origin_blocks, c.origin_blocks * 2);
	ic_entry_encode(&e, c.salt, slot, &d);
	EXPECT_EQ(IC_ENTRY_BAD_VALUE, ic_entry_decode(&d, c.salt, slot,
						      c.origin_blocks, c.nr_sets, &out));
	/* The same entry is fine if the origin were larger. */
	EXPECT_EQ(IC_ENTRY_OK, ic_entry_decode(&d, c.salt, slot,
					       c.origin_blocks * 2, c.nr_sets, &out));

	/* A block of another set. */
	for (b = 0; ic_oblock_set(b, c.nr_sets) == 9; b++)
		;
	e.oblock = b;
	ic_entry_encode(&e, c.salt, slot, &d);
	EXPECT_EQ(IC_ENTRY_BAD_VALUE, ic_entry_decode(&d, c.salt, slot,
						      c.origin_blocks, c.nr_sets, &out));
	/* ...or the same block with another number of sets. */
	e.oblock = oblock_in_set(9, c.nr_sets, 0, c.origin_blocks);
	ic_entry_encode(&e, c.salt, slot, &d);
	EXPECT_EQ(IC_ENTRY_OK, ic_entry_decode(&d, c.salt, slot,
					       c.origin_blocks, c.nr_sets, &out));
	if (ic_oblock_set(e.oblock, c.nr_sets - 1) != 9)
		EXPECT_EQ(IC_ENTRY_BAD_VALUE, ic_entry_decode(&d, c.salt, slot,
							      c.origin_blocks,
							      c.nr_sets - 1, &out));

	/* Writeback: VALID | DIRTY decodes; DIRTY alone is impossible. */
	e.flags = IC_ENTRY_VALID | IC_ENTRY_DIRTY;
	ic_entry_encode(&e, c.salt, slot, &d);
	EXPECT_EQ(IC_ENTRY_OK, ic_entry_decode(&d, c.salt, slot,
					       c.origin_blocks, c.nr_sets, &out));
	EXPECT_EQ(IC_ENTRY_VALID | IC_ENTRY_DIRTY, out.flags);
	e.flags = IC_ENTRY_VALID;
	ic_entry_encode(&e, c.salt, slot, &d);
	d.flags = cpu_to_le32(IC_ENTRY_DIRTY);
	d.csum = cpu_to_le32(entry_csum(&d, c.salt, slot));
	EXPECT_EQ(IC_ENTRY_BAD_VALUE, ic_entry_decode(&d, c.salt, slot,
						      c.origin_blocks, c.nr_sets, &out));

	/* Unknown entry flags, sealed with a right checksum. */
	e.flags = IC_ENTRY_VALID | (1U << 7);
	ic_entry_encode(&e, c.salt, slot, &d);
	EXPECT_EQ(IC_ENTRY_BAD_VALUE, ic_entry_decode(&d, c.salt, slot,
						      c.origin_blocks, c.nr_sets, &out));

	/* Reserved words not zero. */
	e.flags = IC_ENTRY_VALID;
	ic_entry_encode(&e, c.salt, slot, &d);
	d.reserved[1] = cpu_to_le32(1);
	d.csum = cpu_to_le32(entry_csum(&d, c.salt, slot));
	EXPECT_EQ(IC_ENTRY_BAD_VALUE, ic_entry_decode(&d, c.salt, slot,
						      c.origin_blocks, c.nr_sets, &out));

	/* Flags without VALID but a right checksum: not a free slot either. */
	ic_entry_encode(&e, c.salt, slot, &d);
	d.flags = 0;
	d.csum = cpu_to_le32(entry_csum(&d, c.salt, slot));
	EXPECT_EQ(IC_ENTRY_BAD_VALUE, ic_entry_decode(&d, c.salt, slot,
						      c.origin_blocks, c.nr_sets, &out));

	/* A checksum alone, the rest zero: damaged. */
	memset(&d, 0, sizeof(d));
	d.csum = cpu_to_le32(1);
	EXPECT_EQ(IC_ENTRY_BAD_CSUM, ic_entry_decode(&d, c.salt, slot,
						     c.origin_blocks, c.nr_sets, &out));
}

/* The worked examples of Documentation/admin-guide/dm-infercache-format.rst. */
TEST(format_document_examples)
{
	struct ic_geometry g;
	u8 zero_uuid[IC_UUID_BYTES] = { 0 };
	struct ic_disk_entry d;
	struct ic_entry e = { .oblock = 5, .seq = 7, .flags = IC_ENTRY_VALID };
	__le64 le_slot = cpu_to_le64(3);

	ASSERT_EQ(0, ic_geometry_init(&g, 2097152, 8));
	EXPECT_EQ(16241, g.nr_sets);
	EXPECT_EQ(259856, g.nr_slots);
	EXPECT_EQ(18296, g.data_start);
	ASSERT_EQ(0, ic_geometry_init(&g, 2097152, 128));
	EXPECT_EQ(1022, g.nr_sets);
	EXPECT_EQ(16352, g.nr_slots);
	EXPECT_EQ(3072, g.data_start);
	EXPECT_EQ(2048 + 17 * 8, ic_geometry_min_sectors(8));

	EXPECT_EQ(0, ic_oblock_set(0, 1000));
	EXPECT_EQ(381, ic_oblock_set(1, 1000));
	EXPECT_EQ(763, ic_oblock_set(2, 1000));
	EXPECT_EQ(145, ic_oblock_set(3, 1000));
	/* set(b) = ((b * 0x61c8864680b583eb mod 2^64) >> 32) * nr_sets >> 32 */
	EXPECT_EQ((((12345ULL * 0x61c8864680b583ebULL) >> 32) * 1000) >> 32,
		  ic_oblock_set(12345, 1000));

	EXPECT_EQ(0x1cf96d7c, crc32c(~0U, "123456789", 9));
	EXPECT_EQ(crc32c(~0U, zero_uuid, 16), ic_format_salt(zero_uuid));
	/* entry csum = crc32c(crc32c(salt, le64(slot)), bytes 0..27) */
	ic_entry_encode(&e, 0xabcd, 3, &d);
	EXPECT_EQ(crc32c(crc32c(0xabcd, &le_slot, 8), &d, 28), le32_to_cpu(d.csum));
}

/* ------------------------------------------------------------- fuzz */

static void flip(u8 *buf, size_t len)
{
	u64 r = rnd();

	switch (r % 4) {
	case 0:		/* one bit */
		buf[(r >> 8) % len] ^= 1 << ((r >> 40) & 7);
		break;
	case 1:		/* two or three bits */
		buf[(r >> 8) % len] ^= 1 << ((r >> 40) & 7);
		buf[(r >> 20) % len] ^= 1 << ((r >> 44) & 7);
		if (r & (1ULL << 50))
			buf[(r >> 30) % len] ^= 1 << ((r >> 47) & 7);
		break;
	case 2:		/* a random byte value */
		buf[(r >> 8) % len] = r >> 40;
		break;
	default:	/* a run of random bytes */
	{
		size_t at = (r >> 8) % len, n = 1 + (r >> 40) % 16, i;

		for (i = at; i < at + n && i < len; i++)
			buf[i] = rnd();
	}
	}
}

TEST(fuzz_sb)
{
	const unsigned int iters = 200000;
	struct ic_disk_sb good, d;
	struct ic_sb sb, out;
	const char *why;
	unsigned int i, st_count[4] = { 0 }, changed = 0;

	make_sb(&sb, 8);
	ic_sb_encode(&sb, &good);
	for (i = 0; i < iters; i++) {
		enum ic_sb_status st;
		int flips = 1 + rnd() % 3, k;

		d = good;
		for (k = 0; k < flips; k++)
			flip((u8 *)&d, sizeof(d));
		if (!memcmp(&d, &good, sizeof(d)))
			continue;
		changed++;
		st = ic_sb_decode(&d, &out, &why);
		ASSERT_LE(st, IC_SB_CORRUPT);
		st_count[st]++;
		if (st == IC_SB_OK)
			ASSERT_EQ(0, memcmp(&sb, &out, sizeof(sb))) {
				TH_LOG("iteration %u: changed superblock decodes as valid", i);
			}
		if (st == IC_SB_CORRUPT || st == IC_SB_NOT_OURS)
			ASSERT_NE(NULL, why);
	}
	TH_LOG("%u changed superblocks: %u ok, %u blank, %u not ours, %u corrupt",
	       changed, st_count[IC_SB_OK], st_count[IC_SB_BLANK],
	       st_count[IC_SB_NOT_OURS], st_count[IC_SB_CORRUPT]);
	/* Changes to a valid copy are always caught (crc32c, 4 KiB). */
	EXPECT_EQ(0, st_count[IC_SB_OK]);
	EXPECT_GT(changed, iters * 9 / 10);
}

TEST(fuzz_sb_resealed)
{
	/*
	 * A writer that seals garbage: decode must still never crash and
	 * anything it accepts must pass the geometry checks.
	 */
	const unsigned int iters = 50000;
	struct ic_disk_sb good, d;
	struct ic_sb sb, out;
	const char *why;
	unsigned int i, ok = 0;

	make_sb(&sb, 8);
	ic_sb_encode(&sb, &good);
	for (i = 0; i < iters; i++) {
		d = good;
		flip((u8 *)&d + 4, sizeof(d) - 4);
		reseal(&d);
		if (ic_sb_decode(&d, &out, &why) != IC_SB_OK)
			continue;
		ok++;
		ASSERT_EQ(0, ic_sb_check_geometry(&out, &why));
		ASSERT_EQ(IC_SB_VERSION, le32_to_cpu(d.version));
		ASSERT_EQ(0, out.incompat & ~IC_FEATURE_INCOMPAT_SUPP);
		ASSERT_EQ(0, out.ro_compat);
		ASSERT_EQ(0, out.flags & ~IC_SB_KNOWN_FLAGS);
	}
	TH_LOG("%u of %u resealed edits accepted (edits of free fields)", ok, iters);
}

TEST(fuzz_entries)
{
	const unsigned int iters = 200000;
	struct ic_disk_entry good, d;
	struct ic_entry e, out;
	struct ectx c;
	unsigned int i, n_ok = 0, n_csum = 0, n_value = 0, n_free = 0;

	ectx_init(&c);
	for (i = 0; i < iters; i++) {
		u64 slot = rnd() % (c.nr_sets * IC_WAYS), dslot = slot;
		enum ic_entry_status st;
		int flips = 1 + rnd() % 3, k;

		e.oblock = oblock_in_set(slot / IC_WAYS, c.nr_sets,
					 rnd() % (c.origin_blocks / 2), c.origin_blocks);
		e.seq = rnd() >> 16;
		e.flags = IC_ENTRY_VALID;
		ic_entry_encode(&e, c.salt, slot, &good);
		d = good;
		for (k = 0; k < flips; k++)
			flip((u8 *)&d, sizeof(d));
		if (rnd() % 8 == 0)	/* and sometimes read at another slot */
			dslot = rnd() % (c.nr_sets * IC_WAYS);
		if (!memcmp(&d, &good, sizeof(d)) && dslot == slot)
			continue;
		st = ic_entry_decode(&d, c.salt, dslot, c.origin_blocks,
				     c.nr_sets, &out);
		switch (st) {
		case IC_ENTRY_OK:
			n_ok++;
			/* Only an unchanged entry read at its own slot. */
			ASSERT_EQ(dslot, slot) {
				TH_LOG("iteration %u: entry of slot %llu valid at %llu", i,
				       (unsigned long long)slot, (unsigned long long)dslot);
			}
			ASSERT_EQ(e.oblock, out.oblock);
			ASSERT_EQ(e.seq, out.seq);
			break;
		case IC_ENTRY_BAD_CSUM:
			n_csum++;
			break;
		case IC_ENTRY_BAD_VALUE:
			n_value++;
			break;
		case IC_ENTRY_FREE:
			n_free++;
			break;
		}
	}
	TH_LOG("%u damaged entries: %u ok, %u bad csum, %u bad value, %u free",
	       iters, n_ok, n_csum, n_value, n_free);
	EXPECT_EQ(0, n_ok);
	EXPECT_EQ(0, n_free);
	EXPECT_GT(n_csum, iters / 2);
}

TEST_HARNESS_MAIN
