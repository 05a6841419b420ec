// SPDX-License-Identifier: GPL-2.0
/*
 * meta_fuzz: damage the metadata of a dm-infercache cache device in random
 * ways, many times, and check what the target makes of each.
 *
 *   meta_fuzz pattern -d DEV -g GEN [-e EVERY]
 *       write generation GEN of the test pattern to every EVERYth 4 KiB
 *       block of DEV (every block without -e), O_DIRECT
 *   meta_fuzz fuzz -c CACHE -o ORIGIN -N DMNAME -t TMPDIR -n ITERS [-s SEED]
 *                  [-T SECONDS] [-v] [-F]
 *       the fuzz loop (below); CACHE holds a formatted, cleanly shut down
 *       cache of ORIGIN; DMNAME is the name of the dm device it makes and
 *       removes in each iteration; TMPDIR takes its device node if need be;
 *       -T stops early when the time is up (the runner's limit is fixed);
 *       -v logs every iteration; -F (negative control) forges valid but
 *       wrong entries instead of damaging: the reads must then fail
 *
 * Each iteration restores the pristine image of the whole cache device
 * (saved at the start), applies a few random pieces of damage to the
 * superblock copies and the set metadata (bit flips, random bytes, sectors
 * of garbage or zeroes, a set sector copied over another, superblock
 * fields edited and resealed with a right checksum), then creates the
 * target over the whole origin with raw device-mapper ioctls.
 *
 * The outcome is predicted with the driver's own codec (driver/format.c),
 * the way the driver decides: reject the table (no usable superblock, or
 * one made for another origin), format (both copies blank, or the error
 * flag set) or load, dropping the damaged entries. The table must be
 * rejected exactly when predicted, with an "infercache" line in the kernel
 * log; when loaded, status fields <loaded> and <dropped> must be the
 * predicted counts, and every block read through the target must equal the
 * origin read directly (never stale, never misplaced). Any WARNING, BUG,
 * Oops or Call Trace in the kernel log stops the loop.
 *
 * Exit status: 0 all iterations as predicted, 1 a failure, 2 usage or
 * setup error. Diagnostics are "# " lines.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/dm-ioctl.h>

/*
 * The driver's codec declares its own __le32/__le64 in user space
 * (selftests/unit/kcompat.h); <linux/types.h> above has the kernel's:
 * give the codec's other names.
 */
#define __le32 icf_le32
#define __le64 icf_le64
#include "format.h"
#undef __le32
#undef __le64

#define BLK		4096
#define SECT		512
#define MAGIC		0x1cca5eedfa11b10cULL
#define CHUNK		(256 * 1024)	/* read size through the target */
#define MAX_KLOG	64
#define DM_BUF		16384

static bool verbose;
static uint64_t rnd_state;

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;

	fputs("# meta_fuzz: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *xalloc(size_t len)
{
	void *p;

	if (posix_memalign(&p, BLK, len)) {
		msg("out of memory (%zu bytes)", len);
		exit(2);
	}
	return p;
}

static int xpread(int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENODATA;
		done += n;
	}
	return 0;
}

static int xpwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(fd, (const char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		done += n;
	}
	return 0;
}

static uint64_t dev_bytes(int fd)
{
	off_t end = lseek(fd, 0, SEEK_END);

	return end < 0 ? 0 : (uint64_t)end;
}

/* ------------------------------------------------------------ pattern */

/* Every sector of a block names the block, its sector and a generation. */
static void stamp(uint64_t *p, uint64_t b, uint64_t gen)
{
	unsigned int s, i;

	for (s = 0; s < BLK / SECT; s++) {
		uint64_t *w = p + s * (SECT / 8);
		uint64_t h = mix(mix(b * 8 + s) ^ gen);

		w[0] = MAGIC;
		w[1] = b;
		w[2] = s;
		w[3] = gen;
		for (i = 4; i < SECT / 8; i++)
			w[i] = h + i * 0x2545f4914f6cdd1dULL;
	}
}

/* Describe the 4 KiB at p, which should have been block b. */
static void describe(const uint64_t *p, uint64_t b, char *out, size_t len)
{
	if (p[0] != MAGIC)
		snprintf(out, len, "no stamp (%s)", p[0] ? "garbage" : "zeroes");
	else if (p[1] != b)
		snprintf(out, len, "block %" PRIu64 " gen %" PRIu64 " (misplaced)",
			 p[1], p[3]);
	else
		snprintf(out, len, "block %" PRIu64 " gen %" PRIu64, p[1], p[3]);
}

static int cmd_pattern(int argc, char **argv)
{
	const char *dev = NULL;
	uint64_t gen = 0, every = 1, b, n;
	int c, fd, err;
	void *buf;

	while ((c = getopt(argc, argv, "d:g:e:")) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'g':
			gen = strtoull(optarg, NULL, 0);
			break;
		case 'e':
			every = strtoull(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	if (!dev || !gen || !every) {
		msg("usage: meta_fuzz pattern -d DEV -g GEN [-e EVERY]");
		return 2;
	}
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		msg("cannot open %s: %s", dev, strerror(errno));
		return 2;
	}
	n = dev_bytes(fd) / BLK;
	buf = xalloc(BLK);
	for (b = 0; b < n; b += every) {
		stamp(buf, b, gen);
		err = xpwrite(fd, buf, BLK, b * BLK);
		if (err) {
			msg("write of block %" PRIu64 " to %s failed: %s", b, dev,
			    strerror(-err));
			return 2;
		}
	}
	if (fsync(fd)) {
		msg("fsync %s: %s", dev, strerror(errno));
		return 2;
	}
	close(fd);
	free(buf);
	return 0;
}

/* ------------------------------------------------------- device-mapper */

static int dm_fd = -1;

static struct dm_ioctl *dm_init(void *buf, const char *name)
{
	struct dm_ioctl *io = buf;

	memset(buf, 0, DM_BUF);
	io->version[0] = DM_VERSION_MAJOR;
	io->version[1] = 0;
	io->version[2] = 0;
	io->data_size = DM_BUF;
	io->data_start = sizeof(*io);
	snprintf(io->name, sizeof(io->name), "%s", name);
	return io;
}

static int dm_call(unsigned long cmd, struct dm_ioctl *io)
{
	return ioctl(dm_fd, cmd, io) ? -errno : 0;
}

static int dm_create(const char *name, dev_t *dev)
{
	static uint64_t buf[DM_BUF / 8];
	struct dm_ioctl *io = dm_init(buf, name);
	int err = dm_call(DM_DEV_CREATE, io);

	if (!err)
		*dev = (dev_t)io->dev;
	return err;
}

static int dm_load(const char *name, uint64_t len, const char *params)
{
	static uint64_t buf[DM_BUF / 8];
	struct dm_ioctl *io = dm_init(buf, name);
	struct dm_target_spec *spec = (void *)((char *)io + io->data_start);
	char *p = (char *)(spec + 1);

	io->target_count = 1;
	spec->sector_start = 0;
	spec->length = len;
	snprintf(spec->target_type, sizeof(spec->target_type), "infercache");
	snprintf(p, DM_BUF - io->data_start - sizeof(*spec), "%s", params);
	spec->next = (sizeof(*spec) + strlen(p) + 1 + 7) & ~7U;
	return dm_call(DM_TABLE_LOAD, io);
}

static int dm_resume(const char *name)
{
	static uint64_t buf[DM_BUF / 8];

	return dm_call(DM_DEV_SUSPEND, dm_init(buf, name));
}

static int dm_remove(const char *name)
{
	static uint64_t buf[DM_BUF / 8];
	int i, err = 0;

	for (i = 0; i < 50; i++) {
		err = dm_call(DM_DEV_REMOVE, dm_init(buf, name));
		if (err != -EBUSY)
			break;
		usleep(100000);
	}
	return err;
}

/* The status line of the target (its parameters), in out. */
static int dm_status(const char *name, char *out, size_t len)
{
	static uint64_t buf[DM_BUF / 8];
	struct dm_ioctl *io = dm_init(buf, name);
	struct dm_target_spec *spec;
	int err = dm_call(DM_TABLE_STATUS, io);

	if (err)
		return err;
	if (io->target_count != 1 || (io->flags & DM_BUFFER_FULL_FLAG))
		return -EIO;
	spec = (void *)((char *)io + io->data_start);
	snprintf(out, len, "%s", (char *)(spec + 1));
	return 0;
}

/*
 * A block device node for @dev: devtmpfs's /dev/dm-N, else one made in
 * @dir (raw ioctls make no /dev/mapper link), else in /dev.
 */
static int dev_node(dev_t dev, const char *dir, char *node, size_t len)
{
	const char *dirs[] = { dir, "/dev" };
	struct stat sb;
	unsigned int i;

	snprintf(node, len, "/dev/dm-%u", minor(dev));
	if (!stat(node, &sb) && S_ISBLK(sb.st_mode) && sb.st_rdev == dev)
		return 0;
	for (i = 0; i < 2; i++) {
		int fd;

		snprintf(node, len, "%s/meta_fuzz-dm-%u", dirs[i], minor(dev));
		unlink(node);
		if (mknod(node, S_IFBLK | 0600, dev))
			continue;
		fd = open(node, O_RDONLY);	/* a nodev mount refuses this */
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		unlink(node);
	}
	msg("no usable device node for dm device %u:%u", major(dev), minor(dev));
	return -1;
}

/* ---------------------------------------------------------- kernel log */

static int kmsg_fd = -1;
static char klog[MAX_KLOG][256];
static unsigned int nr_klog;

static const char *const bad_klog[] = {
	"WARNING:", "BUG:", "Oops", "general protection", "Call Trace",
	"kernel BUG", "UBSAN", "KASAN", "list_add corruption",
	"list_del corruption", "Poison overwritten", "Redzone",
};

/* Read the new kernel log records; keep the last ones. True if bad. */
static bool kmsg_poll(void)
{
	char rec[8192];
	bool bad = false;
	unsigned int i;
	ssize_t n;

	for (;;) {
		char *text;

		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)	/* overwritten: go on */
			continue;
		if (n <= 0)
			break;
		rec[n] = '\0';
		text = strchr(rec, ';');
		text = text ? text + 1 : rec;
		text[strcspn(text, "\n")] = '\0';
		for (i = 0; i < sizeof(bad_klog) / sizeof(bad_klog[0]); i++)
			if (strstr(text, bad_klog[i]))
				bad = true;
		if (nr_klog == MAX_KLOG) {
			memmove(klog[0], klog[1], sizeof(klog[0]) * (MAX_KLOG - 1));
			nr_klog--;
		}
		snprintf(klog[nr_klog++], sizeof(klog[0]), "%.*s",
			 (int)sizeof(klog[0]) - 1, text);
	}
	return bad;
}

static void kmsg_dump(void)
{
	unsigned int i;

	for (i = 0; i < nr_klog; i++)
		printf("#   klog: %s\n", klog[i]);
}

/* The distinct reasons for rejected tables, and how often each came. */
#define MAX_REASONS	16
static char reasons[MAX_REASONS][160];
static unsigned int reason_count[MAX_REASONS], nr_reasons;

static void count_reason(void)
{
	const char *r = NULL, *p;
	unsigned int i;
	size_t len;

	for (i = 0; i < nr_klog; i++) {
		p = strstr(klog[i], "infercache: ");
		if (p && strstr(klog[i], "table: "))
			r = p + strlen("infercache: ");
	}
	if (!r)
		return;
	len = strcspn(r, "(");
	while (len && r[len - 1] == ' ')
		len--;
	for (i = 0; i < nr_reasons; i++)
		if (strlen(reasons[i]) == len && !strncmp(reasons[i], r, len))
			break;
	if (i == nr_reasons) {
		if (nr_reasons == MAX_REASONS)
			return;
		snprintf(reasons[nr_reasons++], sizeof(reasons[0]), "%.*s",
			 (int)(len < sizeof(reasons[0]) ? len : sizeof(reasons[0]) - 1), r);
	}
	reason_count[i]++;
}

static bool kmsg_has(const char *what)
{
	unsigned int i;

	for (i = 0; i < nr_klog; i++)
		if (strstr(klog[i], what))
			return true;
	return false;
}

/* ------------------------------------------------------------- damage */

struct image {
	u8 *buf;		/* the whole cache device */
	uint64_t bytes;
	uint64_t meta_end;	/* end of the set metadata, 4 KiB aligned */
	struct ic_geometry geo;
};

static char what[4096];		/* the damage of this iteration, in words */

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	size_t n = strlen(what);
	va_list ap;

	if (n > sizeof(what) - 64) {
		if (!strstr(what, "..."))
			strcat(what, " ...");
		return;
	}
	va_start(ap, fmt);
	vsnprintf(what + n, sizeof(what) - n, fmt, ap);
	va_end(ap);
}

static void reseal(struct ic_disk_sb *d)
{
	d->csum = cpu_to_le32(crc32c(~0U, (u8 *)d + 4, IC_SB_BYTES - 4));
}

/* A sector of the metadata area: mostly the used ones. */
static uint64_t pick_sector(const struct image *im)
{
	uint64_t r = rnd() % 16;

	if (r < 2)	/* a superblock sector */
		return (r & 1) * IC_SB_SLOT_SECTORS;
	if (r < 3)	/* anywhere in the superblock slots */
		return rnd() % (IC_SB_COPIES * IC_SB_SLOT_SECTORS);
	return im->geo.meta_start + rnd() % im->geo.nr_sets;
}

static uint64_t pick_byte(const struct image *im)
{
	uint64_t r = rnd() % 8, copy = rnd() & 1;

	if (r < 2)	/* in the used part of a superblock */
		return copy * IC_SB_SLOT_SECTORS * SECT + rnd() % 176;
	return pick_sector(im) * SECT + rnd() % SECT;
}

/* Edit one superblock field of one copy and reseal it. */
static void edit_sb_field(struct image *im)
{
	int copy = rnd() & 1;
	struct ic_disk_sb *d = (void *)(im->buf + copy * IC_SB_SLOT_SECTORS * SECT);
	uint64_t v;

	switch (rnd() % 14) {
	case 0:
		d->sb_seq = cpu_to_le64(le64_to_cpu(d->sb_seq) + 1 + rnd() % 3);
		note(" sb%d.sb_seq++", copy);
		break;
	case 1:
		/* Bit 0 (DIRTY) is known: an unknown one refuses. */
		d->incompat = cpu_to_le64(1ULL << (1 + rnd() % 63));
		note(" sb%d.incompat", copy);
		break;
	case 2:
		d->ro_compat = cpu_to_le64(1ULL << (rnd() % 64));
		note(" sb%d.ro_compat", copy);
		break;
	case 3:
		d->compat = cpu_to_le64(1ULL << (rnd() % 64));
		note(" sb%d.compat", copy);
		break;
	case 4:
		v = 1U << (rnd() % 32);
		d->flags ^= cpu_to_le32(v);
		note(" sb%d.flags^=%#" PRIx64, copy, v);
		break;
	case 5:
		d->block_sectors = cpu_to_le32(1U << (rnd() % 9));
		note(" sb%d.block_sectors=%u", copy, le32_to_cpu(d->block_sectors));
		break;
	case 6:
		d->nr_sets = cpu_to_le64(le64_to_cpu(d->nr_sets) + (rnd() & 1 ? 1 : -1));
		note(" sb%d.nr_sets+-1", copy);
		break;
	case 7:
		d->origin_sectors = cpu_to_le64(le64_to_cpu(d->origin_sectors) +
						(rnd() & 1 ? 8 : -8));
		note(" sb%d.origin_sectors+-8", copy);
		break;
	case 8:
		d->cache_sectors = cpu_to_le64(le64_to_cpu(d->cache_sectors) +
					       (rnd() & 1 ? 2048 : -2048));
		note(" sb%d.cache_sectors+-1MiB", copy);
		break;
	case 9:
		d->uuid[rnd() % IC_UUID_BYTES] ^= 1 << (rnd() % 8);
		note(" sb%d.uuid", copy);
		break;
	case 10:
		d->origin_tag[0] = 'x';
		note(" sb%d.origin_tag", copy);
		break;
	case 11:
		d->commit_seq = cpu_to_le64(rnd() % 4);
		note(" sb%d.commit_seq", copy);
		break;
	case 12:
		d->version = cpu_to_le32(rnd() % 3);
		note(" sb%d.version=%u", copy, le32_to_cpu(d->version));
		break;
	default:
		d->meta_start = cpu_to_le64(le64_to_cpu(d->meta_start) + 1);
		note(" sb%d.meta_start++", copy);
		break;
	}
	reseal(d);
}

static void damage(struct image *im, const struct image *pristine)
{
	uint64_t at, from;
	unsigned int i;
	u8 *p;

	switch (rnd() % 20) {
	case 0 ... 4:
		at = pick_byte(im);
		im->buf[at] ^= 1 << (rnd() % 8);
		note(" bit@%" PRIu64, at);
		break;
	case 5 ... 6:
		at = pick_byte(im);
		im->buf[at] = rnd();
		note(" byte@%" PRIu64, at);
		break;
	case 7 ... 8:
		at = pick_sector(im);
		p = im->buf + at * SECT;
		for (i = 0; i < SECT; i++)
			p[i] = rnd();
		note(" garbage@s%" PRIu64, at);
		break;
	case 9 ... 10:
		at = pick_sector(im);
		memset(im->buf + at * SECT, 0, SECT);
		note(" zero@s%" PRIu64, at);
		break;
	case 11 ... 12:
		at = im->geo.meta_start + rnd() % im->geo.nr_sets;
		from = im->geo.meta_start + rnd() % im->geo.nr_sets;
		memcpy(im->buf + at * SECT, pristine->buf + from * SECT, SECT);
		note(" copy s%" PRIu64 "->s%" PRIu64, from, at);
		break;
	case 13:	/* both superblocks gone: the target formats */
		memset(im->buf, 0, SECT);
		memset(im->buf + IC_SB_SLOT_SECTORS * SECT, 0, SECT);
		note(" zero both superblocks");
		break;
	case 14:	/* the error flag, in both copies: the target formats */
		for (i = 0; i < IC_SB_COPIES; i++) {
			struct ic_disk_sb *d = (void *)(im->buf + i * IC_SB_SLOT_SECTORS * SECT);

			d->flags |= cpu_to_le32(IC_SB_ERRORS);
			reseal(d);
		}
		note(" error flag");
		break;
	default:
		edit_sb_field(im);
		break;
	}
}

/*
 * The negative control: swap the blocks of two valid entries of a set and
 * reseal both, as only a buggy writer could. The metadata is then valid
 * but wrong, so the reads must see misplaced data: proof the oracle can
 * fail.
 */
static int forge(struct image *im, const struct ic_sb *sb)
{
	u32 salt = ic_format_salt(sb->uuid);
	uint64_t origin_blocks = sb->origin_sectors / sb->block_sectors, set;
	unsigned int w, a;

	for (set = 0; set < sb->nr_sets; set++) {
		struct ic_disk_entry *d = (void *)(im->buf + (sb->meta_start + set) * SECT);
		struct ic_entry e[IC_WAYS];
		uint64_t tmp;

		for (w = 0, a = IC_WAYS; w < IC_WAYS; w++) {
			if (ic_entry_decode(&d[w], salt, set * IC_WAYS + w,
					    origin_blocks, sb->nr_sets, &e[w]) != IC_ENTRY_OK)
				continue;
			if (a == IC_WAYS) {
				a = w;
				continue;
			}
			tmp = e[a].oblock;
			e[a].oblock = e[w].oblock;
			e[w].oblock = tmp;
			ic_entry_encode(&e[a], salt, set * IC_WAYS + a, &d[a]);
			ic_entry_encode(&e[w], salt, set * IC_WAYS + w, &d[w]);
			note(" forged: set %" PRIu64 " ways %u and %u swapped their blocks",
			     set, a, w);
			return 0;
		}
	}
	return -1;
}

/* ---------------------------------------------------------- predict */

enum outcome { REJECT, FORMAT, LOAD };

static const char *const outcome_name[] = { "reject", "format", "load" };

struct prediction {
	enum outcome outcome;
	uint64_t loaded, dropped;
	const char *why;
};

/*
 * What the target does with the image, decided as the driver does:
 * a table over the whole origin, without block_size, origin_tag or format.
 */
static void predict(const struct image *im, uint64_t table_len,
		    uint64_t cache_sectors, struct prediction *p)
{
	enum ic_sb_status st[IC_SB_COPIES];
	struct ic_sb sb[IC_SB_COPIES], *s;
	static const u8 no_tag[IC_ORIGIN_TAG_BYTES];
	const char *why;
	uint64_t set, origin_blocks;
	u32 salt;
	int i, best;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < IC_SB_COPIES; i++) {
		const u8 *slot = im->buf + i * IC_SB_SLOT_SECTORS * SECT;
		size_t k;

		st[i] = ic_sb_decode(slot, &sb[i], &why);
		/* the driver calls a slot blank only if all 4 KiB are zero */
		for (k = 0; st[i] == IC_SB_BLANK &&
			    k < IC_SB_SLOT_SECTORS * SECT; k++)
			if (slot[k])
				st[i] = IC_SB_NOT_OURS;
	}
	best = ic_sb_choose(st, sb);
	if (best < 0) {
		if (st[0] == IC_SB_BLANK && st[1] == IC_SB_BLANK) {
			p->outcome = FORMAT;
			p->why = "both copies blank";
		} else {
			p->outcome = REJECT;
			p->why = "no valid superblock copy";
		}
		return;
	}
	s = &sb[best];
	p->outcome = REJECT;
	if (s->origin_sectors != table_len) {
		p->why = "origin size differs";
		return;
	}
	if (memcmp(s->origin_tag, no_tag, sizeof(no_tag))) {
		p->why = "origin tag differs";
		return;
	}
	if (s->cache_sectors > cache_sectors) {
		p->why = "cache smaller than at format";
		return;
	}
	if (s->flags & IC_SB_ERRORS) {
		p->outcome = FORMAT;
		p->why = "error flag";
		return;
	}
	p->outcome = LOAD;
	p->why = best ? "copy 1" : "copy 0";
	salt = ic_format_salt(s->uuid);
	origin_blocks = s->origin_sectors / s->block_sectors;
	for (set = 0; set < s->nr_sets; set++) {
		const struct ic_disk_entry *d = (const void *)(im->buf +
					(s->meta_start + set) * SECT);
		struct ic_entry e[IC_WAYS];
		bool ok[IC_WAYS], bad[IC_WAYS];
		unsigned int w, v;

		for (w = 0; w < IC_WAYS; w++) {
			enum ic_entry_status es;

			es = ic_entry_decode(&d[w], salt, set * IC_WAYS + w,
					     origin_blocks, s->nr_sets, &e[w]);
			ok[w] = es == IC_ENTRY_OK;
			bad[w] = es == IC_ENTRY_BAD_CSUM || es == IC_ENTRY_BAD_VALUE;
		}
		for (w = 0; w < IC_WAYS; w++)
			for (v = w + 1; v < IC_WAYS; v++)
				if (ok[w] && ok[v] && e[w].oblock == e[v].oblock) {
					bad[w] = true;
					bad[v] = true;
				}
		for (w = 0; w < IC_WAYS; w++) {
			if (bad[w])
				p->dropped++;
			else if (ok[w])
				p->loaded++;
		}
	}
}

/* --------------------------------------------------------------- fuzz */

struct stats {
	unsigned int iters, rejected, formatted, loaded_iters;
	uint64_t loaded, dropped, blocks_read;
	double restore_s, dm_s, read_s;
};

/* Status fields after the target name: $21 is word 17 (from 0). */
static int parse_status(const char *line, uint64_t *loaded, uint64_t *dropped)
{
	char copy[1024], *save = NULL, *w;
	int i = 0;

	snprintf(copy, sizeof(copy), "%s", line);
	for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save), i++) {
		if (i == 17)
			*loaded = strtoull(w, NULL, 10);
		if (i == 18)
			*dropped = strtoull(w, NULL, 10);
	}
	return i >= 20 ? 0 : -EPROTO;
}

/* Read the whole target; compare every block with the origin's. */
static int verify_reads(const char *node, const u8 *origin, uint64_t bytes,
			struct stats *st, unsigned int iter)
{
	u8 *buf = xalloc(CHUNK);
	uint64_t off, bad = 0;
	int fd, err = 0;

	fd = open(node, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		msg("iteration %u: cannot open %s: %s", iter, node, strerror(errno));
		free(buf);
		return -1;
	}
	for (off = 0; off < bytes && !err; off += CHUNK) {
		uint64_t len = bytes - off < CHUNK ? bytes - off : CHUNK, b;

		err = xpread(fd, buf, len, off);
		if (err) {
			msg("iteration %u: read at byte %" PRIu64 " failed: %s",
			    iter, off, strerror(-err));
			break;
		}
		for (b = 0; b < len / BLK; b++) {
			char got[96], want[96];
			uint64_t blk = off / BLK + b;

			if (!memcmp(buf + b * BLK, origin + off + b * BLK, BLK))
				continue;
			if (bad++ < 8) {
				describe((void *)(buf + b * BLK), blk, got, sizeof(got));
				describe((const void *)(origin + off + b * BLK), blk,
					 want, sizeof(want));
				msg("iteration %u: STALE/WRONG data: block %" PRIu64 " read %s, origin has %s",
				    iter, blk, got, want);
			}
		}
		st->blocks_read += len / BLK;
	}
	close(fd);
	free(buf);
	if (bad)
		msg("iteration %u: %" PRIu64 " blocks differ from the origin", iter, bad);
	return err || bad ? -1 : 0;
}

/* Everything one fuzz run works with. */
struct fuzz {
	const char *cache, *origin, *name, *tmp;
	unsigned int iters;
	uint64_t seed;
	double budget;		/* seconds, 0: none */
	bool forge;		/* negative control */

	int cfd;		/* the cache device, O_DIRECT */
	struct image pristine, im;
	struct ic_sb sb;	/* of the pristine image */
	u8 *origin_img;
	uint64_t table_len, cache_sectors;
	char params[1024];	/* of the table line */
	bool dirty_data;	/* a loaded target may have filled slots */
	struct stats st;
};

/* One iteration: what went wrong is printed; true if anything did. */
struct iteration {
	unsigned int nr;
	struct prediction p;
	uint64_t loaded, dropped;	/* from the status line */
	dev_t dev;
	bool failed;
};

static void fail(struct iteration *it, bool dump, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct iteration *it, bool dump, const char *fmt, ...)
{
	va_list ap;

	printf("# meta_fuzz: iteration %u: ", it->nr);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("; predicted %s (%s), loaded %" PRIu64 " dropped %" PRIu64 "; damage:%s\n",
	       outcome_name[it->p.outcome], it->p.why, it->p.loaded,
	       it->p.dropped, what);
	if (dump) {
		kmsg_poll();
		kmsg_dump();
	}
	fflush(stdout);
	it->failed = true;
}

static int fuzz_args(struct fuzz *f, int argc, char **argv)
{
	int c;

	while ((c = getopt(argc, argv, "c:o:N:t:n:s:T:vF")) != -1) {
		switch (c) {
		case 'c':
			f->cache = optarg;
			break;
		case 'o':
			f->origin = optarg;
			break;
		case 'N':
			f->name = optarg;
			break;
		case 't':
			f->tmp = optarg;
			break;
		case 'n':
			f->iters = strtoul(optarg, NULL, 0);
			break;
		case 's':
			f->seed = strtoull(optarg, NULL, 0);
			break;
		case 'T':
			f->budget = strtod(optarg, NULL);
			break;
		case 'v':
			verbose = true;
			break;
		case 'F':
			f->forge = true;
			break;
		default:
			return -EINVAL;
		}
	}
	if (!f->cache || !f->origin || !f->name || !f->tmp || !f->iters) {
		msg("usage: meta_fuzz fuzz -c CACHE -o ORIGIN -N DMNAME -t TMPDIR -n ITERS [-s SEED] [-T SECONDS] [-v] [-F]");
		return -EINVAL;
	}
	return 0;
}

/* Save the pristine cache image and the origin; check both are usable. */
static int fuzz_setup(struct fuzz *f)
{
	struct prediction p;
	const char *why;
	uint64_t b, tagged = 0;
	int ofd;

	f->cfd = open(f->cache, O_RDWR | O_DIRECT);
	ofd = open(f->origin, O_RDONLY | O_DIRECT);
	dm_fd = open("/dev/mapper/control", O_RDWR);
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	if (f->cfd < 0 || ofd < 0 || dm_fd < 0 || kmsg_fd < 0) {
		msg("cannot open %s, %s, /dev/mapper/control or /dev/kmsg: %s",
		    f->cache, f->origin, strerror(errno));
		return -1;
	}
	lseek(kmsg_fd, 0, SEEK_END);

	f->pristine.bytes = dev_bytes(f->cfd);
	f->cache_sectors = f->pristine.bytes / SECT;
	f->table_len = dev_bytes(ofd) / SECT;
	if (!f->table_len || f->table_len % (BLK / SECT)) {
		msg("origin size must be a non-zero multiple of 4 KiB");
		return -1;
	}
	f->pristine.buf = xalloc(f->pristine.bytes);
	f->im.buf = xalloc(f->pristine.bytes);
	f->origin_img = xalloc(f->table_len * SECT);
	if (xpread(f->cfd, f->pristine.buf, f->pristine.bytes, 0) ||
	    xpread(ofd, f->origin_img, f->table_len * SECT, 0)) {
		msg("cannot read the cache or the origin");
		return -1;
	}
	close(ofd);

	if (ic_sb_decode(f->pristine.buf, &f->sb, &why) != IC_SB_OK) {
		msg("the cache device has no valid superblock copy 0 (%s): set it up first",
		    why ? why : "blank");
		return -1;
	}
	ic_sb_geometry(&f->sb, &f->pristine.geo);
	f->pristine.meta_end = ((f->sb.meta_start + f->sb.nr_sets) * SECT +
				BLK - 1) / BLK * BLK;
	f->im.bytes = f->pristine.bytes;
	f->im.geo = f->pristine.geo;
	f->im.meta_end = f->pristine.meta_end;

	for (b = 0; b < f->table_len / 8; b++) {
		const uint64_t *w = (const void *)(f->origin_img + b * BLK);

		tagged += w[0] == MAGIC && w[1] == b;
	}
	if (tagged != f->table_len / 8) {
		msg("origin: only %" PRIu64 " of %" PRIu64 " blocks carry the pattern: write it first",
		    tagged, f->table_len / 8);
		return -1;
	}

	memcpy(f->im.buf, f->pristine.buf, f->im.bytes);
	predict(&f->im, f->table_len, f->cache_sectors, &p);
	msg("pristine cache: %" PRIu64 " sets, metadata %" PRIu64 " KiB, %" PRIu64 " entries valid, %" PRIu64 " damaged; origin %" PRIu64 " blocks",
	    f->pristine.geo.nr_sets, f->pristine.meta_end / 1024, p.loaded,
	    p.dropped, f->table_len / 8);
	if (p.outcome != LOAD || !p.loaded || p.dropped) {
		msg("the pristine cache should load with entries and no damage");
		return -1;
	}
	snprintf(f->params, sizeof(f->params), "%s %s 0", f->cache, f->origin);
	kmsg_poll();
	return 0;
}

/* Write back the pristine image, damaged (or forged) this time. */
static int fuzz_damage(struct fuzz *f, struct iteration *it)
{
	struct image *im = &f->im;
	unsigned int k, nr;
	int err = 0;

	if (f->dirty_data)
		err = xpwrite(f->cfd, f->pristine.buf + im->meta_end,
			      im->bytes - im->meta_end, im->meta_end);
	f->dirty_data = false;
	memcpy(im->buf, f->pristine.buf, im->meta_end);
	what[0] = '\0';
	if (f->forge) {
		if (forge(im, &f->sb)) {
			msg("no set with two valid entries to forge");
			return -1;
		}
	} else {
		/* Mostly a few pieces of damage; now and then a lot. */
		nr = rnd() % 10 ? 1 + rnd() % 4 : 8 + rnd() % 120;
		for (k = 0; k < nr; k++)
			damage(im, &f->pristine);
	}
	if (!err)
		err = xpwrite(f->cfd, im->buf, im->meta_end, 0);
	if (!err && fdatasync(f->cfd))
		err = -errno;
	if (err) {
		msg("iteration %u: writing the cache image failed: %s", it->nr,
		    strerror(-err));
		return -1;
	}
	predict(im, f->table_len, f->cache_sectors, &it->p);
	if (verbose)
		msg("iteration %u: predict %s (%s) loaded %" PRIu64 " dropped %" PRIu64 ":%s",
		    it->nr, outcome_name[it->p.outcome], it->p.why, it->p.loaded,
		    it->p.dropped, what);
	return 0;
}

/*
 * Create the target: 1 if it is up, 0 if the table was rejected, -1 on
 * an error that ends the run. A failed prediction marks the iteration.
 */
static int fuzz_create(struct fuzz *f, struct iteration *it)
{
	char status[1024] = "";
	int err;

	nr_klog = 0;
	err = dm_create(f->name, &it->dev);
	if (err) {
		msg("iteration %u: DM_DEV_CREATE %s: %s", it->nr, f->name,
		    strerror(-err));
		return -1;
	}
	err = dm_load(f->name, f->table_len, f->params);
	if (err) {
		kmsg_poll();
		count_reason();
		dm_remove(f->name);
		f->st.rejected++;
		if (it->p.outcome != REJECT)
			fail(it, true, "table rejected (%s)", strerror(-err));
		else if (!kmsg_has("infercache"))
			fail(it, true, "table rejected without an infercache line in the kernel log");
		return 0;
	}
	f->dirty_data = true;
	err = dm_resume(f->name);
	if (err) {
		fail(it, true, "resume failed (%s)", strerror(-err));
		dm_remove(f->name);
		return 0;
	}
	if (it->p.outcome == REJECT)
		fail(it, true, "table accepted");

	err = dm_status(f->name, status, sizeof(status));
	if (!err)
		err = parse_status(status, &it->loaded, &it->dropped);
	if (err)
		fail(it, false, "no usable status (%s): '%s'", strerror(-err), status);
	else if (it->p.outcome != REJECT &&
		 (it->loaded != it->p.loaded || it->dropped != it->p.dropped))
		fail(it, true, "status says loaded %" PRIu64 " dropped %" PRIu64,
		     it->loaded, it->dropped);
	return 1;
}

/* The oracle: through the target, every block reads as the origin's. */
static int fuzz_read(struct fuzz *f, struct iteration *it)
{
	char node[4096];

	if (dev_node(it->dev, f->tmp, node, sizeof(node)))
		return -1;
	if (verify_reads(node, f->origin_img, f->table_len * SECT, &f->st, it->nr))
		fail(it, false, "reads through the target differ from the origin");
	if (strncmp(node, "/dev/dm-", 8))
		unlink(node);
	return 0;
}

static int fuzz_iteration(struct fuzz *f, struct iteration *it)
{
	double t = now();
	int up, err, remove_err;

	if (fuzz_damage(f, it))
		return -1;
	f->st.restore_s += now() - t;

	t = now();
	up = fuzz_create(f, it);
	f->st.dm_s += now() - t;
	if (up < 0)
		return -1;
	if (up) {
		t = now();
		err = fuzz_read(f, it);
		f->st.read_s += now() - t;

		t = now();
		remove_err = dm_remove(f->name);
		f->st.dm_s += now() - t;
		if (remove_err) {
			msg("iteration %u: DM_DEV_REMOVE %s: %s", it->nr, f->name,
			    strerror(-remove_err));
			return -1;
		}
		if (err)
			return -1;
		if (it->p.outcome == FORMAT)
			f->st.formatted++;
		else
			f->st.loaded_iters++;
		f->st.loaded += it->loaded;
		f->st.dropped += it->dropped;
	}
	f->st.iters++;
	if (kmsg_poll()) {
		fail(it, false, "the kernel log has a warning or a bug");
		kmsg_dump();
	}
	return 0;
}

static int cmd_fuzz(int argc, char **argv)
{
	struct fuzz f = { .cfd = -1 };
	double t0 = now();
	unsigned int k;
	int failed = 0;

	if (fuzz_args(&f, argc, argv))
		return 2;
	rnd_state = mix(f.seed) | 1;
	msg("seed %" PRIu64 " (-s to repeat)", f.seed);
	if (fuzz_setup(&f))
		return 2;

	for (k = 0; k < f.iters && !failed; k++) {
		struct iteration it = { .nr = k, .loaded = ~0ULL, .dropped = ~0ULL };

		if (f.budget && now() - t0 > f.budget) {
			msg("time budget of %.0f s used up after %u of %u iterations",
			    f.budget, k, f.iters);
			break;
		}
		if (fuzz_iteration(&f, &it))
			return 2;
		failed = it.failed;
	}

	/* Leave the cache as it was found. */
	if (xpwrite(f.cfd, f.pristine.buf, f.pristine.bytes, 0) || fdatasync(f.cfd))
		msg("restoring the pristine cache image at the end failed");
	close(f.cfd);
	msg("%u iterations in %.1f s: %u rejected, %u formatted, %u loaded (%" PRIu64 " entries loaded, %" PRIu64 " dropped in all), %" PRIu64 " blocks verified",
	    f.st.iters, now() - t0, f.st.rejected, f.st.formatted,
	    f.st.loaded_iters, f.st.loaded, f.st.dropped, f.st.blocks_read);
	msg("time: restore %.1f s, dm ioctls %.1f s, reads %.1f s",
	    f.st.restore_s, f.st.dm_s, f.st.read_s);
	for (k = 0; k < nr_reasons; k++)
		msg("rejected %u times: %s", reason_count[k], reasons[k]);
	return failed;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "pattern"))
		return cmd_pattern(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "fuzz"))
		return cmd_fuzz(argc - 1, argv + 1);
	msg("usage: meta_fuzz pattern|fuzz ... (see the comment at the top of meta_fuzz.c)");
	return 2;
}
