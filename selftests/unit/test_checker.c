// SPDX-License-Identifier: GPL-2.0-only
/*
 * tools/infercache-check, run in-process on cache images built here with
 * the driver's codec: exit status and counts for a clean image and for
 * each kind of damage, the choice of superblock copy, argument errors, and
 * a fuzz loop (random damage of superblocks and set metadata, truncation):
 * the checker never crashes (ASan/UBSan), always exits 0, 4 or 8, prints
 * valid JSON, and its counts add up.
 */
#define _GNU_SOURCE
#define ICC_NO_MAIN
#include "../../tools/infercache-check/infercache-check.c"

#include <sys/mman.h>
#include "kselftest_harness.h"

#define CACHE_SECTORS	32768ULL	/* 16 MiB: 238 sets at 4 KiB */
#define ORIGIN_SECTORS	(1ULL << 21)	/* 1 GiB */
#define SB_AREA		(IC_SB_COPIES * IC_SB_SLOT_SECTORS * 512)

struct img {
	struct ic_sb sb;
	struct ic_geometry geo;
	u32 salt;
	u64 origin_blocks;
	u8 *buf;		/* header + set metadata */
	size_t len;
	u64 file_len;		/* size of the image file */
	unsigned int nr_entries;
	u64 first_slot;		/* slot of the first entry written */
	int fd;			/* memfd the checker reads */
	char path[64];
};

static u64 rnd_state = 0x2545f4914f6cdd1dULL;

static u64 rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ULL;
}

static u8 *meta_sector(struct img *im, u64 set)
{
	return im->buf + (im->geo.meta_start + set * IC_META_SECTORS_PER_SET) * 512;
}

static void put_entry(struct img *im, u64 slot, u64 oblock, u64 seq)
{
	struct ic_entry e = { .oblock = oblock, .seq = seq, .flags = IC_ENTRY_VALID };

	ic_entry_encode(&e, im->salt, slot,
			(struct ic_disk_entry *)meta_sector(im, slot / IC_WAYS) +
			slot % IC_WAYS);
}

static void write_sbs(struct img *im)
{
	int i;

	for (i = 0; i < IC_SB_COPIES; i++)
		ic_sb_encode(&im->sb, (struct ic_disk_sb *)(im->buf +
				i * IC_SB_SLOT_SECTORS * 512));
}

/*
 * A formatted cache with @n entries: consecutive origin blocks, each in the
 * next free way of its set.
 */
static void img_make(struct img *im, u32 bs, unsigned int n)
{
	unsigned int *used;
	u64 b;
	int i;

	memset(im, 0, sizeof(*im));
	if (ic_geometry_init(&im->geo, CACHE_SECTORS, bs))
		abort();
	im->sb.sb_seq = 10;
	for (i = 0; i < IC_UUID_BYTES; i++)
		im->sb.uuid[i] = 0x11 * (i + 1);
	im->sb.flags = IC_SB_CLEAN;
	im->sb.block_sectors = bs;
	im->sb.nr_sets = im->geo.nr_sets;
	im->sb.meta_start = im->geo.meta_start;
	im->sb.data_start = im->geo.data_start;
	im->sb.cache_sectors = CACHE_SECTORS;
	im->sb.origin_sectors = ORIGIN_SECTORS;
	memcpy(im->sb.origin_tag, "unit", 4);
	im->sb.commit_seq = 5;
	im->sb.format_time = 1700000000;
	im->sb.load_count = 2;
	im->salt = ic_format_salt(im->sb.uuid);
	im->origin_blocks = ORIGIN_SECTORS / bs;
	im->len = (im->geo.meta_start + im->geo.nr_sets * IC_META_SECTORS_PER_SET) * 512;
	im->buf = calloc(1, im->len);
	used = calloc(im->geo.nr_sets, sizeof(*used));
	if (!im->buf || !used)
		abort();
	write_sbs(im);
	for (b = 0; im->nr_entries < n; b++) {
		u64 set = ic_oblock_set(b, im->geo.nr_sets);

		if (used[set] == IC_WAYS)
			continue;
		if (!im->nr_entries)
			im->first_slot = set * IC_WAYS + used[set];
		put_entry(im, set * IC_WAYS + used[set]++, b, 1 + b % 5);
		im->nr_entries++;
	}
	free(used);
	im->file_len = CACHE_SECTORS * 512;
	im->fd = memfd_create("ic-image", MFD_CLOEXEC);
	if (im->fd < 0)
		abort();
	snprintf(im->path, sizeof(im->path), "/proc/self/fd/%d", im->fd);
}

/* Write the image out (the data area stays sparse). */
static void img_sync(struct img *im)
{
	size_t n = im->len < im->file_len ? im->len : im->file_len;

	if (ftruncate(im->fd, 0) || ftruncate(im->fd, im->file_len) ||
	    pwrite(im->fd, im->buf, n, 0) != (ssize_t)n)
		abort();
}

static void img_free(struct img *im)
{
	close(im->fd);
	free(im->buf);
}

struct run {
	int rc;
	char *out;	/* stdout */
	char *err;	/* stderr */
};

/* Run the checker on the image with up to 3 extra arguments. */
static void check(struct img *im, struct run *r, const char *a1,
		  const char *a2, const char *a3)
{
	char *argv[6];
	int argc = 0;
	size_t olen, elen;
	FILE *out, *err;

	if (im)
		img_sync(im);
	argv[argc++] = "infercache-check";
	if (a1)
		argv[argc++] = (char *)a1;
	if (a2)
		argv[argc++] = (char *)a2;
	if (a3)
		argv[argc++] = (char *)a3;
	if (im)
		argv[argc++] = im->path;
	argv[argc] = NULL;
	out = open_memstream(&r->out, &olen);
	err = open_memstream(&r->err, &elen);
	if (!out || !err)
		abort();
	r->rc = icc_main(argc, argv, out, err);
	fclose(out);
	fclose(err);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* The number after "key": in a JSON object (first occurrence), or -2. */
static long long jnum(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	if (!p)
		return -2;
	return strtoll(p + strlen(pat), NULL, 10);
}

/* A small JSON validator: enough to prove the emitter's output parses. */
static const char *jvalue(const char *p, int depth);

static const char *jws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *jstring(const char *p)
{
	int i;

	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p == '\\') {
			p++;
			if (*p == 'u') {
				for (i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
		p++;
	}
	return p + 1;
}

static const char *jvalue(const char *p, int depth)
{
	p = jws(p);
	if (depth > 16)
		return NULL;
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';

		p = jws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = jstring(jws(p));
				if (!p)
					return NULL;
				p = jws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = jvalue(p, depth + 1);
			if (!p)
				return NULL;
			p = jws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return jstring(p);
	if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

static bool json_ok(const char *s)
{
	const char *end = jvalue(s, 0);

	return end && !strcmp(jws(end), "");
}

#define CHECK_JSON(r) \
	ASSERT_TRUE(json_ok((r)->out)) { TH_LOG("bad JSON: %s", (r)->out); }

TEST(clean_image)
{
	struct img im;
	struct run r;

	img_make(&im, 8, 300);
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(0, r.rc) { TH_LOG("%s", r.out); }
	EXPECT_EQ(300, jnum(r.out, "valid"));
	EXPECT_EQ(0, jnum(r.out, "dirty"));
	EXPECT_EQ(im.geo.nr_slots - 300, jnum(r.out, "free"));
	EXPECT_EQ(0, jnum(r.out, "dropped"));
	EXPECT_EQ(im.geo.nr_sets, jnum(r.out, "sets_checked"));
	EXPECT_EQ(0, jnum(r.out, "used_copy"));
	EXPECT_EQ(8, jnum(r.out, "block_sectors"));
	EXPECT_EQ(ORIGIN_SECTORS, jnum(r.out, "origin_sectors"));
	EXPECT_NE(NULL, strstr(r.out, "\"clean\":true"));
	EXPECT_NE(NULL, strstr(r.out, "\"origin_tag\":\"unit\""));
	EXPECT_NE(NULL, strstr(r.out, "\"uuid\":\"11223344-5566-7788-99aa-bbccddeeff10\""));
	run_free(&r);

	/* The human summary says the same. */
	check(&im, &r, NULL, NULL, NULL);
	EXPECT_EQ(0, r.rc);
	EXPECT_NE(NULL, strstr(r.out, " 300 valid (0 dirty),")) { TH_LOG("%s", r.out); }
	EXPECT_NE(NULL, strstr(r.out, "result: no problems found"));
	EXPECT_STREQ("", r.err);
	run_free(&r);

	/* Quiet: nothing at all. */
	check(&im, &r, "--quiet", NULL, NULL);
	EXPECT_EQ(0, r.rc);
	EXPECT_STREQ("", r.out);
	EXPECT_STREQ("", r.err);
	run_free(&r);
	img_free(&im);
}

TEST(dirty_entries)
{
	struct ic_entry e = { .oblock = 7, .seq = 3,
			      .flags = IC_ENTRY_VALID | IC_ENTRY_DIRTY };
	struct img im;
	struct run r;
	u64 slot;

	img_make(&im, 8, 0);
	slot = ic_oblock_set(7, im.geo.nr_sets) * IC_WAYS;
	im.sb.incompat = IC_FEATURE_INCOMPAT_DIRTY;
	write_sbs(&im);
	ic_entry_encode(&e, im.salt, slot,
			(struct ic_disk_entry *)meta_sector(&im, slot / IC_WAYS));
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(0, r.rc) { TH_LOG("%s", r.out); }
	EXPECT_EQ(1, jnum(r.out, "valid"));
	EXPECT_EQ(1, jnum(r.out, "dirty"));
	EXPECT_EQ(1, jnum(r.out, "incompat"));
	run_free(&r);
	img_free(&im);
}

TEST(all_block_sizes)
{
	struct img im;
	struct run r;
	u32 bs;

	for (bs = IC_MIN_BLOCK_SECTORS; bs <= IC_MAX_BLOCK_SECTORS; bs *= 2) {
		img_make(&im, bs, 40);
		check(&im, &r, "-j", NULL, NULL);
		EXPECT_EQ(0, r.rc) { TH_LOG("bs %u: %s", bs, r.out); }
		EXPECT_EQ(40, jnum(r.out, "valid"));
		EXPECT_EQ(bs * 512, jnum(r.out, "block_size"));
		run_free(&r);
		img_free(&im);
	}
}

TEST(one_bad_entry)
{
	struct img im;
	struct run r;
	u64 slot;

	img_make(&im, 8, 300);
	slot = im.first_slot;
	meta_sector(&im, slot / IC_WAYS)[(slot % IC_WAYS) * 32 + 3] ^= 0x40;
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(299, jnum(r.out, "valid"));
	EXPECT_EQ(1, jnum(r.out, "bad_checksum"));
	EXPECT_EQ(0, jnum(r.out, "bad_value"));
	EXPECT_EQ(1, jnum(r.out, "dropped"));
	EXPECT_EQ(slot, jnum(r.out, "slot"));
	EXPECT_NE(NULL, strstr(r.out, "\"problem\":\"bad_checksum\""));
	run_free(&r);

	check(&im, &r, NULL, NULL, NULL);
	EXPECT_EQ(4, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "1 bad checksum")) { TH_LOG("%s", r.out); }
	EXPECT_NE(NULL, strstr(r.out, "result: damage found"));
	run_free(&r);
	img_free(&im);
}

TEST(bad_value_and_duplicates)
{
	struct img im;
	struct run r;
	u64 set, b;

	img_make(&im, 8, 0);
	/* Block 0 twice in its set: both are dropped. */
	set = ic_oblock_set(0, im.geo.nr_sets);
	put_entry(&im, set * IC_WAYS + 2, 0, 1);
	put_entry(&im, set * IC_WAYS + 9, 0, 2);
	/* And a third copy: three dropped. */
	put_entry(&im, set * IC_WAYS + 15, 0, 3);
	/* A good one beside them. */
	for (b = 1; ic_oblock_set(b, im.geo.nr_sets) != set; b++)
		;
	put_entry(&im, set * IC_WAYS + 4, b, 1);
	/* A block past the end of the origin, with a right checksum. */
	for (b = im.origin_blocks; ic_oblock_set(b, im.geo.nr_sets) != 7; b++)
		;
	put_entry(&im, 7 * IC_WAYS, b, 1);
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(1, jnum(r.out, "valid"));
	EXPECT_EQ(3, jnum(r.out, "duplicates"));
	EXPECT_EQ(1, jnum(r.out, "bad_value"));
	EXPECT_EQ(0, jnum(r.out, "bad_checksum"));
	EXPECT_EQ(4, jnum(r.out, "dropped"));
	EXPECT_EQ(0, jnum(r.out, "oblock"));
	run_free(&r);
	img_free(&im);
}

TEST(entries_of_an_older_format)
{
	struct img im;
	struct run r;

	/*
	 * Re-format with a new uuid but keep the old set metadata: every old
	 * entry fails its checksum.
	 */
	img_make(&im, 8, 50);
	im.sb.uuid[0] ^= 0xff;
	write_sbs(&im);
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(0, jnum(r.out, "valid"));
	EXPECT_EQ(50, jnum(r.out, "bad_checksum"));
	run_free(&r);
	img_free(&im);
}

TEST(superblock_copies)
{
	struct img im;
	struct run r;

	img_make(&im, 8, 20);
	/* Copy 0 damaged: copy 1 is used, entries still checked. */
	im.buf[100] ^= 1;
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(1, jnum(r.out, "used_copy"));
	EXPECT_EQ(20, jnum(r.out, "valid"));
	EXPECT_NE(NULL, strstr(r.out, "\"status\":\"corrupt\","
			       "\"why\":\"superblock checksum mismatch\""));
	run_free(&r);
	check(&im, &r, NULL, NULL, NULL);
	EXPECT_NE(NULL, strstr(r.out, "using superblock copy 1")) { TH_LOG("%s", r.out); }
	EXPECT_NE(NULL, strstr(r.out, "problem: superblock copy 0 (sector 0) is corrupt"));
	run_free(&r);

	/* Both damaged, magic intact: damage (4), nothing more to check. */
	im.buf[IC_SB_SLOT_SECTORS * 512 + 100] ^= 1;
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(-1, jnum(r.out, "used_copy"));
	EXPECT_EQ(-2, jnum(r.out, "valid"));
	run_free(&r);

	/* Copy 1 newer: it wins, no problem. */
	write_sbs(&im);
	im.sb.sb_seq++;
	im.sb.flags = 0;
	ic_sb_encode(&im.sb, (struct ic_disk_sb *)(im.buf + IC_SB_SLOT_SECTORS * 512));
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(0, r.rc) { TH_LOG("%s", r.out); }
	EXPECT_EQ(1, jnum(r.out, "used_copy"));
	EXPECT_NE(NULL, strstr(r.out, "\"clean\":false"));
	run_free(&r);

	/* Copy 0 blank (format torn before it), copy 1 good: damage. */
	memset(im.buf, 0, 4096);
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(1, jnum(r.out, "used_copy"));
	run_free(&r);

	/* Copy 0 overwritten by other data, copy 1 good: damage. */
	memcpy(im.buf, "XFSB", 4);
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(4, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "\"status\":\"not_infercache\""));
	run_free(&r);
	img_free(&im);
}

TEST(not_formatted_or_foreign)
{
	struct img im;
	struct run r;

	img_make(&im, 8, 20);
	memset(im.buf, 0, SB_AREA);
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(8, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "\"error\":\"blank device: not formatted\""));
	run_free(&r);
	check(&im, &r, NULL, NULL, NULL);
	EXPECT_EQ(8, r.rc);
	EXPECT_NE(NULL, strstr(r.err, "blank device")) { TH_LOG("%s", r.err); }
	run_free(&r);

	memcpy(im.buf + 1024, "\x53\xef", 2);	/* an ext4 magic, say */
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(8, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "not an infercache device"));
	run_free(&r);

	/* Zero where the superblocks go, but a swap signature at 4086. */
	memset(im.buf, 0, SB_AREA);
	memcpy(im.buf + 4086, "SWAPSPACE2", 10);
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(8, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "not blank")) { TH_LOG("%s", r.out); }
	run_free(&r);

	/* Garbage in copy 1 only, copy 0 blank: still not ours. */
	memset(im.buf, 0, SB_AREA);
	im.buf[IC_SB_SLOT_SECTORS * 512 + 511] = 7;
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(8, r.rc);
	run_free(&r);

	/* Empty and tiny files. */
	im.file_len = 0;
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(8, r.rc);
	EXPECT_EQ(0, jnum(r.out, "size_bytes"));
	run_free(&r);
	img_free(&im);

	img_make(&im, 8, 0);
	im.file_len = 700;	/* copy 0 complete, copy 1 missing */
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(0, jnum(r.out, "used_copy"));
	EXPECT_NE(NULL, strstr(r.out, "fewer than at format"));
	run_free(&r);
	img_free(&im);
}

TEST(device_smaller_than_at_format)
{
	struct img im;
	struct run r;

	img_make(&im, 8, 30);
	/* Metadata all there, data area cut. */
	im.file_len = im.len + 4096;
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(30, jnum(r.out, "valid"));
	EXPECT_EQ(0, jnum(r.out, "sets_missing"));
	EXPECT_NE(NULL, strstr(r.out, "fewer than at format"));
	run_free(&r);

	/* Cut inside the set metadata: the sets beyond are reported. */
	im.file_len = (im.geo.meta_start + 100) * 512;
	check(&im, &r, "--json", NULL, NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(100, jnum(r.out, "sets_checked"));
	EXPECT_EQ(im.geo.nr_sets - 100, jnum(r.out, "sets_missing"));
	run_free(&r);

	/* A sealed superblock claiming a huge device (consistent layout). */
	{
		u64 huge[] = { 1ULL << 38, 1ULL << 40, ~0ULL };
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(huge); i++) {
			struct ic_geometry g;

			ASSERT_EQ(0, ic_geometry_init(&g, huge[i], 8));
			im.sb.cache_sectors = huge[i];
			im.sb.nr_sets = g.nr_sets;
			im.sb.data_start = g.data_start;
			write_sbs(&im);
			im.file_len = CACHE_SECTORS * 512;
			check(&im, &r, "--json", NULL, NULL);
			CHECK_JSON(&r);
			EXPECT_EQ(4, r.rc) { TH_LOG("%s", r.out); }
			if (g.nr_sets > U32_MAX) {
				/* the codec refuses such a superblock itself */
				EXPECT_NE(NULL, strstr(r.out, "too many sets"));
			} else {
				EXPECT_NE(NULL, strstr(r.out, "fewer than at format"));
				/* the 16 MiB file has room for this many sets */
				EXPECT_EQ(g.nr_sets - (CACHE_SECTORS - 2048),
					  jnum(r.out, "sets_missing"));
			}
			run_free(&r);
		}
		img_free(&im);
		img_make(&im, 8, 30);
	}

	/* Not even the superblock area. */
	im.file_len = 4096 + 512;
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(4, r.rc);
	EXPECT_EQ(0, jnum(r.out, "sets_checked"));
	run_free(&r);
	img_free(&im);
}

TEST(origin_size_and_error_flag)
{
	struct img im;
	struct run r;
	char n[32];

	img_make(&im, 8, 10);
	snprintf(n, sizeof(n), "%llu", ORIGIN_SECTORS);
	check(&im, &r, "--origin-sectors", n, "--json");
	EXPECT_EQ(0, r.rc) { TH_LOG("%s", r.out); }
	run_free(&r);
	snprintf(n, sizeof(n), "%llu", ORIGIN_SECTORS + 8);
	check(&im, &r, "--origin-sectors", n, "--json");
	EXPECT_EQ(4, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "origin size is"));
	run_free(&r);

	im.sb.flags = IC_SB_ERRORS;
	write_sbs(&im);
	check(&im, &r, "--json", NULL, NULL);
	EXPECT_EQ(4, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "\"errors\":true"));
	EXPECT_NE(NULL, strstr(r.out, "error flag"));
	run_free(&r);
	img_free(&im);
}

TEST(usage_errors)
{
	struct img im;
	struct run r;

	img_make(&im, 8, 0);
	check(&im, &r, "--json", "--quiet", NULL);
	EXPECT_EQ(16, r.rc);
	run_free(&r);
	check(&im, &r, "--bogus", NULL, NULL);
	EXPECT_EQ(16, r.rc);
	EXPECT_NE(NULL, strstr(r.err, "usage:"));
	run_free(&r);
	check(&im, &r, "--origin-sectors", "12x", NULL);
	EXPECT_EQ(16, r.rc);
	run_free(&r);
	check(&im, &r, "--origin-sectors", "0", NULL);
	EXPECT_EQ(16, r.rc);
	run_free(&r);
	check(&im, &r, "--origin-sectors", "-1", NULL);
	EXPECT_EQ(16, r.rc);
	run_free(&r);
	check(&im, &r, "--origin-sectors", "99999999999999999999999", NULL);
	EXPECT_EQ(16, r.rc);
	run_free(&r);
	check(NULL, &r, NULL, NULL, NULL);	/* no device */
	EXPECT_EQ(16, r.rc);
	run_free(&r);
	check(&im, &r, im.path, NULL, NULL);	/* two devices */
	EXPECT_EQ(16, r.rc);
	run_free(&r);
	check(NULL, &r, "--help", NULL, NULL);
	EXPECT_EQ(0, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "Exit status"));
	run_free(&r);
	check(NULL, &r, "--json", "/nonexistent/ic-device", NULL);
	CHECK_JSON(&r);
	EXPECT_EQ(8, r.rc);
	EXPECT_NE(NULL, strstr(r.out, "cannot open"));
	run_free(&r);
	check(NULL, &r, "--json", "/proc/self", NULL);	/* a directory */
	CHECK_JSON(&r);
	EXPECT_EQ(8, r.rc);
	run_free(&r);
	img_free(&im);
}

/* One random piece of damage. */
static void damage(struct img *im, const struct img *pristine)
{
	u64 r = rnd(), set;
	size_t at, i;

	switch (r % 9) {
	case 0:		/* a bit in the superblock area */
		at = (r >> 8) % SB_AREA;
		im->buf[at] ^= 1 << ((r >> 40) & 7);
		break;
	case 1:		/* a bit in the used part of a superblock copy */
		at = (r >> 8) % 176 + ((r >> 32) & 1) * IC_SB_SLOT_SECTORS * 512;
		im->buf[at] ^= 1 << ((r >> 40) & 7);
		break;
	case 2:		/* a superblock field edited and resealed */
	{
		struct ic_disk_sb *d = (void *)(im->buf + ((r >> 32) & 1) *
						IC_SB_SLOT_SECTORS * 512);

		at = 4 + (r >> 8) % 172;
		((u8 *)d)[at] = rnd();
		if (r & (1ULL << 50))
			((u8 *)d)[4 + (r >> 16) % 172] = rnd();
		d->csum = cpu_to_le32(crc32c(~0U, (u8 *)d + 4, IC_SB_BYTES - 4));
		break;
	}
	case 3:		/* a bit in the set metadata */
		at = im->geo.meta_start * 512 +
		     (r >> 8) % (im->geo.nr_sets * IC_META_SECTORS_PER_SET * 512);
		im->buf[at] ^= 1 << ((r >> 40) & 7);
		break;
	case 4:		/* a random byte in the set metadata */
		at = im->geo.meta_start * 512 +
		     (r >> 8) % (im->geo.nr_sets * IC_META_SECTORS_PER_SET * 512);
		im->buf[at] = r >> 40;
		break;
	case 5:		/* a set sector of garbage, or zeroed */
		set = (r >> 8) % im->geo.nr_sets;
		for (i = 0; i < 512; i++)
			meta_sector(im, set)[i] = (r & (1ULL << 60)) ? rnd() : 0;
		break;
	case 6:		/* a set sector copied from another set */
		set = (r >> 8) % im->geo.nr_sets;
		memcpy(meta_sector(im, set),
		       pristine->buf + (pristine->geo.meta_start +
					(r >> 32) % im->geo.nr_sets) * 512, 512);
		break;
	case 7:		/* a superblock copy of garbage */
		for (i = 0; i < IC_SB_BYTES; i++)
			im->buf[((r >> 8) & 1) * IC_SB_SLOT_SECTORS * 512 + i] = rnd();
		break;
	default:	/* truncated */
		im->file_len = (r >> 8) % (CACHE_SECTORS * 512 + 1);
		break;
	}
}

TEST(fuzz)
{
	const unsigned int iters = 3000;
	struct img im, pristine;
	unsigned int i, k, rcs[17] = { 0 };
	struct run r;

	img_make(&pristine, 8, 1500);
	img_make(&im, 8, 0);
	for (i = 0; i < iters; i++) {
		long long valid, fr, bc, bv, dup, sets;
		unsigned int n = 1 + rnd() % 4;

		memcpy(im.buf, pristine.buf, im.len);
		im.file_len = pristine.file_len;
		for (k = 0; k < n; k++)
			damage(&im, &pristine);
		check(&im, &r, "--json", NULL, NULL);
		ASSERT_TRUE(r.rc == 0 || r.rc == 4 || r.rc == 8) {
			TH_LOG("iteration %u: exit status %d", i, r.rc);
		}
		rcs[r.rc]++;
		ASSERT_TRUE(json_ok(r.out)) {
			TH_LOG("iteration %u: bad JSON: %s", i, r.out);
		}
		ASSERT_EQ(r.rc, jnum(r.out, "exit_status"));
		sets = jnum(r.out, "sets_checked");
		if (sets >= 0) {
			valid = jnum(r.out, "valid");
			fr = jnum(r.out, "free");
			bc = jnum(r.out, "bad_checksum");
			bv = jnum(r.out, "bad_value");
			dup = jnum(r.out, "duplicates");
			ASSERT_EQ(sets * IC_WAYS, valid + fr + bc + bv + dup) {
				TH_LOG("iteration %u: counts do not add up: %s", i, r.out);
			}
			/*
			 * Damage never makes an entry valid (a zeroed set
			 * sector just reads as free slots).
			 */
			ASSERT_LE(valid, 1500) {
				TH_LOG("iteration %u: %s", i, r.out);
			}
		}
		run_free(&r);
	}
	TH_LOG("%u runs: %u clean, %u damage, %u operational error", iters,
	       rcs[0], rcs[4], rcs[8]);
	EXPECT_GT(rcs[4], iters / 2);
	img_free(&im);
	img_free(&pristine);
}

TEST_HARNESS_MAIN
