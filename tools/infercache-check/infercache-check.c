// SPDX-License-Identifier: GPL-2.0-only
/*
 * infercache-check: check the metadata of a dm-infercache cache device
 * offline (or live: it only reads), like cache_check for dm-cache.
 *
 *   infercache-check [--json] [--quiet] [--origin-sectors N] DEVICE_OR_FILE
 *
 * It decodes both superblock copies with the driver's own codec
 * (driver/format.c), picks the one the driver would load, checks the
 * geometry against the device, then decodes every entry of the set
 * metadata and counts what the driver would load and what it would drop.
 * It never writes: the device is opened O_RDONLY (and O_DIRECT for a block
 * device, so a live target's writes are seen, not stale page cache).
 *
 * Exit status (fsck style):
 *    0  no problems
 *    4  damage found: a bad superblock copy, bad or duplicate entries, a
 *       device smaller than at format, the error flag set, an origin size
 *       other than --origin-sectors (nothing is repaired)
 *    8  operational error: cannot open or read, blank device (not
 *       formatted), not an infercache device
 *   16  usage error
 *
 * The on-disk format: Documentation/admin-guide/dm-infercache-format.rst.
 * Built with ICC_NO_MAIN, the file can be included by a test that calls
 * icc_main() or icc_check() in-process (selftests/unit/test_checker.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * No <sys/stat.h> or <linux/fs.h>: with _GNU_SOURCE they pull in
 * <linux/types.h>, whose __le32/__le64 clash with the user-space shims of
 * the driver's codec.
 */
#include "format.h"

#define ICC_OK		0
#define ICC_DAMAGE	4
#define ICC_OPERROR	8
#define ICC_USAGE	16

#define ICC_ALIGN	4096
#define ICC_CHUNK	(1U << 20)	/* metadata read size */
#define ICC_MAX_PROBLEMS 16
#define ICC_MAX_DAMAGED	32		/* entries listed one by one */

enum icc_damage {
	ICC_BAD_CSUM,
	ICC_BAD_VALUE,
	ICC_DUPLICATE,
};

static const char *const icc_damage_name[] = {
	[ICC_BAD_CSUM] = "bad_checksum",
	[ICC_BAD_VALUE] = "bad_value",
	[ICC_DUPLICATE] = "duplicate",
};

struct icc_opts {
	bool json;
	bool quiet;
	bool have_origin;
	u64 origin_sectors;
};

struct icc_copy {
	enum ic_sb_status st;
	const char *why;
	struct ic_sb sb;
};

struct icc_damaged {
	u64 slot;
	u64 oblock;	/* for duplicates */
	enum icc_damage kind;
};

struct icc_report {
	const char *path;
	u64 dev_bytes;
	const char *error;		/* operational error, or NULL */
	char error_buf[256];
	bool sb_read;			/* the superblock area was read */
	struct icc_copy copy[IC_SB_COPIES];
	int used;			/* chosen copy, or -1 */
	struct ic_geometry geo;
	bool entries_checked;
	u64 sets_checked;
	u64 sets_missing;		/* beyond the end of the device */
	u64 valid, dirty, free, bad_csum, bad_value, duplicates;
	unsigned int nr_damaged;	/* listed in damaged[] */
	struct icc_damaged damaged[ICC_MAX_DAMAGED];
	unsigned int nr_problems;
	unsigned int problems_lost;	/* beyond ICC_MAX_PROBLEMS */
	char problems[ICC_MAX_PROBLEMS][160];
};

#define __printf(a, b)	__attribute__((format(printf, a, b)))

static __printf(2, 3)
void icc_problem(struct icc_report *r, const char *fmt, ...)
{
	va_list ap;

	if (r->nr_problems >= ICC_MAX_PROBLEMS) {
		r->problems_lost++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(r->problems[r->nr_problems++], sizeof(r->problems[0]), fmt, ap);
	va_end(ap);
}

static __printf(2, 3)
int icc_operror(struct icc_report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error_buf, sizeof(r->error_buf), fmt, ap);
	va_end(ap);
	r->error = r->error_buf;
	return ICC_OPERROR;
}

static void icc_note_damage(struct icc_report *r, u64 slot, u64 oblock,
			    enum icc_damage kind)
{
	if (r->nr_damaged < ICC_MAX_DAMAGED) {
		r->damaged[r->nr_damaged].slot = slot;
		r->damaged[r->nr_damaged].oblock = oblock;
		r->damaged[r->nr_damaged].kind = kind;
		r->nr_damaged++;
	}
}

/*
 * Read @len bytes at @off into @buf. The first O_DIRECT read the device
 * refuses (EINVAL: alignment it does not support) turns O_DIRECT off.
 */
static int icc_pread(int fd, void *buf, size_t len, u64 off)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL &&
		    (fcntl(fd, F_GETFL) & O_DIRECT)) {
			if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT))
				return -errno;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;	/* shorter than its size said */
		done += n;
	}
	return 0;
}

/* The size of a block device or a file: where SEEK_END lands. */
static int icc_dev_size(int fd, u64 *bytes)
{
	off_t end = lseek(fd, 0, SEEK_END);
	char c;

	if (end < 0)
		return -errno;
	/* Empty, or something that is not a file at all (a directory)? */
	if (!end && pread(fd, &c, 1, 0) < 0 && errno != EINVAL)
		return -errno;
	*bytes = end;
	return 0;
}

static const char *icc_sb_status_name(enum ic_sb_status st)
{
	switch (st) {
	case IC_SB_OK:
		return "ok";
	case IC_SB_BLANK:
		return "blank";
	case IC_SB_NOT_OURS:
		return "not_infercache";
	case IC_SB_CORRUPT:
		return "corrupt";
	}
	return "unknown";
}

/* Read and decode both superblock copies; the device may be tiny. */
static int icc_read_sbs(int fd, struct icc_report *r, void *buf)
{
	u64 area = (u64)IC_SB_COPIES * IC_SB_SLOT_SECTORS * 512;
	u64 len = r->dev_bytes < area ? r->dev_bytes : area;
	int i, err;

	memset(buf, 0, area);	/* a missing copy reads as blank */
	if (len) {
		/* O_DIRECT wants whole device blocks: read whole 4 KiB. */
		u64 rlen = (len + ICC_ALIGN - 1) / ICC_ALIGN * ICC_ALIGN;

		if (rlen > r->dev_bytes)
			rlen = len;
		err = icc_pread(fd, buf, rlen, 0);
		if (err)
			return icc_operror(r, "cannot read the superblocks: %s",
					   strerror(-err));
	}
	r->sb_read = true;
	for (i = 0; i < IC_SB_COPIES; i++) {
		struct icc_copy *c = &r->copy[i];
		const u8 *slot = (u8 *)buf + (size_t)i * IC_SB_SLOT_SECTORS * 512;
		size_t k;

		c->st = ic_sb_decode(slot, &c->sb, &c->why);
		/*
		 * Blank means the whole 4 KiB slot is zero: a swap signature
		 * (at byte 4086) or a label in sector 1 is someone's data.
		 */
		for (k = IC_SB_BYTES; c->st == IC_SB_BLANK &&
		     k < IC_SB_SLOT_SECTORS * 512; k++)
			if (slot[k]) {
				c->st = IC_SB_NOT_OURS;
				c->why = "not blank: data after the superblock";
			}
	}
	return 0;
}

static void icc_check_set(struct icc_report *r, const struct ic_sb *sb,
			  u32 salt, u64 origin_blocks, u64 set,
			  const u8 *sector)
{
	const struct ic_disk_entry *disk = (const void *)sector;
	struct ic_entry e[IC_WAYS];
	bool ok[IC_WAYS], dup[IC_WAYS];
	unsigned int w, v;

	for (w = 0; w < IC_WAYS; w++) {
		u64 slot = set * IC_WAYS + w;

		ok[w] = false;
		dup[w] = false;
		switch (ic_entry_decode(&disk[w], salt, slot, origin_blocks,
					sb->nr_sets, &e[w])) {
		case IC_ENTRY_FREE:
			r->free++;
			break;
		case IC_ENTRY_OK:
			ok[w] = true;
			break;
		case IC_ENTRY_BAD_CSUM:
			r->bad_csum++;
			icc_note_damage(r, slot, 0, ICC_BAD_CSUM);
			break;
		case IC_ENTRY_BAD_VALUE:
			r->bad_value++;
			icc_note_damage(r, slot, 0, ICC_BAD_VALUE);
			break;
		}
	}
	/* Two entries of a set naming one block: neither can be trusted. */
	for (w = 0; w < IC_WAYS; w++)
		for (v = w + 1; ok[w] && v < IC_WAYS; v++)
			if (ok[v] && e[v].oblock == e[w].oblock) {
				dup[w] = true;
				dup[v] = true;
			}
	for (w = 0; w < IC_WAYS; w++) {
		if (!ok[w])
			continue;
		if (dup[w]) {
			r->duplicates++;
			icc_note_damage(r, set * IC_WAYS + w, e[w].oblock,
					ICC_DUPLICATE);
		} else {
			r->valid++;
			if (e[w].flags & IC_ENTRY_DIRTY)
				r->dirty++;
		}
	}
}

static int icc_check_entries(int fd, struct icc_report *r, const struct ic_sb *sb)
{
	u64 origin_blocks = sb->origin_sectors / sb->block_sectors;
	u32 salt = ic_format_salt(sb->uuid);
	u64 dev_sectors = r->dev_bytes / 512, avail, start, end, set = 0, off;
	u8 *buf;
	int err = 0;

	/* The sets the device has room for (no overflow: all below its size). */
	avail = dev_sectors > r->geo.meta_start ?
		(dev_sectors - r->geo.meta_start) / IC_META_SECTORS_PER_SET : 0;
	if (avail > r->geo.nr_sets)
		avail = r->geo.nr_sets;
	r->sets_missing = r->geo.nr_sets - avail;
	start = r->geo.meta_start * 512;
	end = start + avail * IC_META_SECTORS_PER_SET * 512;
	if (posix_memalign((void **)&buf, ICC_ALIGN, ICC_CHUNK))
		return icc_operror(r, "out of memory");

	for (off = start; off < end; off += ICC_CHUNK) {
		u64 len = end - off < ICC_CHUNK ? end - off : ICC_CHUNK;
		u64 rlen = (len + ICC_ALIGN - 1) / ICC_ALIGN * ICC_ALIGN;
		u64 s;

		/* Whole 4 KiB for O_DIRECT, unless the device ends first. */
		if (off + rlen > r->dev_bytes)
			rlen = len;
		err = icc_pread(fd, buf, rlen, off);
		if (err) {
			err = icc_operror(r, "cannot read the set metadata at byte %" PRIu64
					  ": %s", off, strerror(-err));
			break;
		}
		for (s = 0; s < len / 512 / IC_META_SECTORS_PER_SET; s++, set++)
			icc_check_set(r, sb, salt, origin_blocks, set,
				      buf + s * 512 * IC_META_SECTORS_PER_SET);
	}
	free(buf);
	r->sets_checked = set;
	r->entries_checked = !err;
	return err;
}

/* Find what is wrong; the result is the exit status. */
static int icc_check(int fd, struct icc_report *r, const struct icc_opts *o)
{
	u8 *sbbuf;
	const struct ic_sb *sb;
	bool magic = false;
	int i, err;

	r->used = -1;
	err = icc_dev_size(fd, &r->dev_bytes);
	if (err)
		return icc_operror(r, "cannot get the size: %s", strerror(-err));

	if (posix_memalign((void **)&sbbuf, ICC_ALIGN,
			   IC_SB_COPIES * IC_SB_SLOT_SECTORS * 512))
		return icc_operror(r, "out of memory");
	err = icc_read_sbs(fd, r, sbbuf);
	free(sbbuf);
	if (err)
		return err;

	for (i = 0; i < IC_SB_COPIES; i++)
		if (r->copy[i].st == IC_SB_OK || r->copy[i].st == IC_SB_CORRUPT)
			magic = true;
	if (!magic) {
		if (r->copy[0].st == IC_SB_BLANK && r->copy[1].st == IC_SB_BLANK)
			return icc_operror(r, "blank device: not formatted");
		return icc_operror(r, "not an infercache device: no superblock magic");
	}

	for (i = 0; i < IC_SB_COPIES; i++) {
		const struct icc_copy *c = &r->copy[i];

		if (c->st == IC_SB_OK)
			continue;
		icc_problem(r, "superblock copy %d (sector %d) is %s%s%s", i,
			    i * IC_SB_SLOT_SECTORS,
			    c->st == IC_SB_BLANK ? "blank" :
			    c->st == IC_SB_NOT_OURS ? "overwritten" : "corrupt",
			    c->why ? ": " : "", c->why ? c->why : "");
	}
	r->used = ic_sb_choose((const enum ic_sb_status[]){ r->copy[0].st, r->copy[1].st },
			       (const struct ic_sb[]){ r->copy[0].sb, r->copy[1].sb });
	if (r->used < 0) {
		icc_problem(r, "no valid superblock copy: %s",
			    "the target refuses the device unless 'format' is given");
		return ICC_DAMAGE;
	}
	sb = &r->copy[r->used].sb;
	ic_sb_geometry(sb, &r->geo);

	if (r->dev_bytes / 512 < sb->cache_sectors)
		icc_problem(r, "device has %" PRIu64 " sectors, %s %" PRIu64,
			    r->dev_bytes / 512, "fewer than at format:",
			    sb->cache_sectors);
	if (o->have_origin && o->origin_sectors != sb->origin_sectors)
		icc_problem(r, "origin size is %" PRIu64 " sectors in the superblock, not %" PRIu64,
			    sb->origin_sectors, o->origin_sectors);
	if (sb->flags & IC_SB_ERRORS)
		icc_problem(r, "the error flag is set: the driver saw a cache device I/O error");
	if (sb->nr_sets > U32_MAX) {
		/* Beyond what the set hash and the index can address. */
		icc_problem(r, "%" PRIu64 " sets: more than the target can index",
			    sb->nr_sets);
		return ICC_DAMAGE;
	}

	err = icc_check_entries(fd, r, sb);
	if (err)
		return err;
	if (r->sets_missing)
		icc_problem(r, "%" PRIu64 " sets lie beyond the end of the device",
			    r->sets_missing);
	if (r->bad_csum || r->bad_value || r->duplicates)
		icc_problem(r, "%" PRIu64 " damaged entries: the target drops them at load",
			    r->bad_csum + r->bad_value + r->duplicates);
	return r->nr_problems ? ICC_DAMAGE : ICC_OK;
}

/* ------------------------------------------------------------ output */

static void icc_uuid_str(const u8 *u, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int i, j = 0;

	for (i = 0; i < IC_UUID_BYTES; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[j++] = '-';
		out[j++] = hex[u[i] >> 4];
		out[j++] = hex[u[i] & 15];
	}
	out[j] = '\0';
}

static void icc_time_str(u64 t, char *out, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t > (u64)INT32_MAX * 64 || !gmtime_r(&tt, &tm) ||
	    !strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, len, "%" PRIu64, t);
}

/* A string for JSON: quoted, every byte outside printable ASCII escaped. */
static void icc_json_str(FILE *f, const char *s, size_t max)
{
	size_t i;

	fputc('"', f);
	for (i = 0; i < max && s[i]; i++) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* The origin tag for humans: printable ASCII, others as \xNN. */
static void icc_tag_str(const u8 *tag, char *out)
{
	int i, j = 0;

	for (i = 0; i < IC_ORIGIN_TAG_BYTES && tag[i]; i++) {
		if (tag[i] < 0x20 || tag[i] >= 0x7f || tag[i] == '\\' ||
		    tag[i] == '"')
			j += sprintf(out + j, "\\x%02x", tag[i]);
		else
			out[j++] = tag[i];
	}
	out[j] = '\0';
}

static void icc_print_human(FILE *f, FILE *ferr, const struct icc_report *r,
			    int rc)
{
	const struct ic_sb *sb;
	char uuid[37], when[40], tag[IC_ORIGIN_TAG_BYTES * 4 + 1];
	unsigned int i;

	fprintf(f, "%s: %" PRIu64 " bytes\n", r->path, r->dev_bytes);
	if (r->sb_read) {
		for (i = 0; i < IC_SB_COPIES; i++) {
			const struct icc_copy *c = &r->copy[i];

			fprintf(f, "superblock copy %u (sector %u): %s", i,
				i * IC_SB_SLOT_SECTORS, icc_sb_status_name(c->st));
			if (c->st == IC_SB_OK)
				fprintf(f, ", sb_seq %" PRIu64, c->sb.sb_seq);
			if (c->why)
				fprintf(f, ": %s", c->why);
			fputc('\n', f);
		}
	}
	if (r->used >= 0) {
		sb = &r->copy[r->used].sb;
		icc_uuid_str(sb->uuid, uuid);
		icc_time_str(sb->format_time, when, sizeof(when));
		icc_tag_str(sb->origin_tag, tag);
		fprintf(f, "using superblock copy %d\n", r->used);
		fprintf(f, "  version %d, uuid %s, formatted %s\n",
			IC_SB_VERSION, uuid, when);
		fprintf(f, "  block size %u bytes (%u sectors), ",
			sb->block_sectors * 512, sb->block_sectors);
		fprintf(f, "%" PRIu64 " sets, %" PRIu64 " slots\n", sb->nr_sets,
			r->geo.nr_slots);
		fprintf(f, "  cache sectors %" PRIu64, sb->cache_sectors);
		fprintf(f, ", set metadata at sector %" PRIu64, sb->meta_start);
		fprintf(f, ", data at sector %" PRIu64 "\n", sb->data_start);
		fprintf(f, "  origin sectors %" PRIu64 ", origin tag %s%s%s\n",
			sb->origin_sectors, tag[0] ? "\"" : "(none)", tag,
			tag[0] ? "\"" : "");
		fprintf(f, "  features compat 0x%" PRIx64, sb->compat);
		fprintf(f, " ro_compat 0x%" PRIx64, sb->ro_compat);
		fprintf(f, " incompat 0x%" PRIx64 "\n", sb->incompat);
		fprintf(f, "  flags 0x%x: %s shutdown, error flag %s\n", sb->flags,
			sb->flags & IC_SB_CLEAN ? "clean" : "unclean (or live)",
			sb->flags & IC_SB_ERRORS ? "SET" : "clear");
		fprintf(f, "  sb_seq %" PRIu64 ", commit_seq %" PRIu64 ", load_count %" PRIu64 "\n",
			sb->sb_seq, sb->commit_seq, sb->load_count);
	}
	if (r->entries_checked) {
		fprintf(f, "entries: %" PRIu64 " sets checked, ", r->sets_checked);
		fprintf(f, "%" PRIu64 " valid (%" PRIu64 " dirty), %" PRIu64 " free, ",
			r->valid, r->dirty, r->free);
		fprintf(f, "%" PRIu64 " bad checksum, %" PRIu64 " bad value, ",
			r->bad_csum, r->bad_value);
		fprintf(f, "%" PRIu64 " duplicate\n", r->duplicates);
		for (i = 0; i < r->nr_damaged; i++) {
			const struct icc_damaged *d = &r->damaged[i];

			fprintf(f, "  set %" PRIu64 " way %" PRIu64 " (slot %" PRIu64 "): %s",
				d->slot / IC_WAYS, d->slot % IC_WAYS, d->slot,
				icc_damage_name[d->kind]);
			if (d->kind == ICC_DUPLICATE)
				fprintf(f, " of origin block %" PRIu64, d->oblock);
			fputc('\n', f);
		}
		if (r->bad_csum + r->bad_value + r->duplicates > r->nr_damaged)
			fprintf(f, "  (%" PRIu64 " more not listed)\n",
				r->bad_csum + r->bad_value + r->duplicates -
				r->nr_damaged);
	}
	for (i = 0; i < r->nr_problems; i++)
		fprintf(f, "problem: %s\n", r->problems[i]);
	if (r->problems_lost)
		fprintf(f, "problem: (%u more)\n", r->problems_lost);
	if (r->error)
		fprintf(ferr, "infercache-check: %s: %s\n", r->path, r->error);
	fprintf(f, "result: %s (exit status %d)\n",
		rc == ICC_OK ? "no problems found" :
		rc == ICC_DAMAGE ? "damage found" : "not checked", rc);
}

/* ,"key":value: every JSON member after the first goes through these. */
static void icc_ju(FILE *f, const char *key, u64 v)
{
	fprintf(f, ",\"%s\":%llu", key, (unsigned long long)v);
}

static void icc_jb(FILE *f, const char *key, bool v)
{
	fprintf(f, ",\"%s\":%s", key, v ? "true" : "false");
}

static void icc_js(FILE *f, const char *key, const char *v, size_t max)
{
	fprintf(f, ",\"%s\":", key);
	icc_json_str(f, v, max);
}

static void icc_json_sb(FILE *f, const struct icc_report *r)
{
	const struct ic_sb *sb = &r->copy[r->used].sb;
	char uuid[37];

	icc_uuid_str(sb->uuid, uuid);
	icc_ju(f, "version", IC_SB_VERSION);
	icc_js(f, "uuid", uuid, sizeof(uuid));
	icc_ju(f, "block_size", sb->block_sectors * 512);
	icc_ju(f, "block_sectors", sb->block_sectors);
	icc_ju(f, "nr_sets", sb->nr_sets);
	icc_ju(f, "nr_slots", r->geo.nr_slots);
	icc_ju(f, "meta_start", sb->meta_start);
	icc_ju(f, "data_start", sb->data_start);
	icc_ju(f, "cache_sectors", sb->cache_sectors);
	icc_ju(f, "origin_sectors", sb->origin_sectors);
	icc_js(f, "origin_tag", (const char *)sb->origin_tag,
	       IC_ORIGIN_TAG_BYTES);
	icc_ju(f, "compat", sb->compat);
	icc_ju(f, "ro_compat", sb->ro_compat);
	icc_ju(f, "incompat", sb->incompat);
	icc_ju(f, "flags", sb->flags);
	icc_jb(f, "clean", sb->flags & IC_SB_CLEAN);
	icc_jb(f, "errors", sb->flags & IC_SB_ERRORS);
	icc_ju(f, "sb_seq", sb->sb_seq);
	icc_ju(f, "commit_seq", sb->commit_seq);
	icc_ju(f, "load_count", sb->load_count);
	icc_ju(f, "format_time", sb->format_time);
}

static void icc_json_entries(FILE *f, const struct icc_report *r)
{
	unsigned int i;

	fprintf(f, ",\"entries\":{\"sets_checked\":%llu",
		(unsigned long long)r->sets_checked);
	icc_ju(f, "sets_missing", r->sets_missing);
	icc_ju(f, "valid", r->valid);
	icc_ju(f, "dirty", r->dirty);
	icc_ju(f, "free", r->free);
	icc_ju(f, "bad_checksum", r->bad_csum);
	icc_ju(f, "bad_value", r->bad_value);
	icc_ju(f, "duplicates", r->duplicates);
	icc_ju(f, "dropped", r->bad_csum + r->bad_value + r->duplicates);
	fprintf(f, "},\"damaged\":[");
	for (i = 0; i < r->nr_damaged; i++) {
		const struct icc_damaged *d = &r->damaged[i];

		fprintf(f, "%s{\"slot\":%llu", i ? "," : "",
			(unsigned long long)d->slot);
		icc_ju(f, "set", d->slot / IC_WAYS);
		icc_ju(f, "way", d->slot % IC_WAYS);
		icc_js(f, "problem", icc_damage_name[d->kind], SIZE_MAX);
		if (d->kind == ICC_DUPLICATE)
			icc_ju(f, "oblock", d->oblock);
		fputc('}', f);
	}
	fputc(']', f);
}

static void icc_print_json(FILE *f, const struct icc_report *r, int rc)
{
	unsigned int i;

	fprintf(f, "{\"device\":");
	icc_json_str(f, r->path, SIZE_MAX);
	icc_ju(f, "size_bytes", r->dev_bytes);
	icc_ju(f, "exit_status", rc);
	if (r->error)
		icc_js(f, "error", r->error, SIZE_MAX);
	if (r->sb_read) {
		fprintf(f, ",\"superblocks\":[");
		for (i = 0; i < IC_SB_COPIES; i++) {
			const struct icc_copy *c = &r->copy[i];

			fprintf(f, "%s{\"copy\":%u", i ? "," : "", i);
			icc_ju(f, "sector", i * IC_SB_SLOT_SECTORS);
			icc_js(f, "status", icc_sb_status_name(c->st), SIZE_MAX);
			if (c->st == IC_SB_OK) {
				icc_ju(f, "sb_seq", c->sb.sb_seq);
				icc_ju(f, "commit_seq", c->sb.commit_seq);
			}
			if (c->why)
				icc_js(f, "why", c->why, SIZE_MAX);
			fputc('}', f);
		}
		fputc(']', f);
	}
	fprintf(f, ",\"used_copy\":%d", r->used);
	if (r->used >= 0)
		icc_json_sb(f, r);
	if (r->entries_checked)
		icc_json_entries(f, r);
	fprintf(f, ",\"problems\":[");
	for (i = 0; i < r->nr_problems; i++) {
		if (i)
			fputc(',', f);
		icc_json_str(f, r->problems[i], SIZE_MAX);
	}
	fprintf(f, "]}\n");
}

/* ------------------------------------------------------------ main */

#define ICC_USAGE_LINE \
	"usage: infercache-check [--json] [--quiet] [--origin-sectors N] DEVICE_OR_FILE\n"

static void icc_usage(FILE *f)
{
	fprintf(f, ICC_USAGE_LINE
		"\n"
		"Check the metadata of a dm-infercache cache device (read only; safe on\n"
		"a device in use). Reports both superblock copies, the one the target\n"
		"loads, and how many entries it would load and drop.\n"
		"\n"
		"  -j, --json              one JSON object on stdout instead of the summary\n"
		"  -q, --quiet             print nothing; only the exit status tells\n"
		"  -o, --origin-sectors N  the table's length: report a superblock whose\n"
		"                          origin size differs (the target would refuse it)\n"
		"  -h, --help              this text\n"
		"\n"
		"Exit status:\n"
		"   0  no problems\n"
		"   4  damage found: a bad superblock copy (or both), bad or duplicate\n"
		"      entries, a device smaller than at format, the error flag set, or\n"
		"      an origin size other than --origin-sectors. Nothing is repaired:\n"
		"      the target drops damaged entries at load; 'format' re-formats.\n"
		"   8  operational error: cannot open or read; blank (not formatted);\n"
		"      not an infercache device\n"
		"  16  usage error\n");
}

static int icc_parse_u64(const char *s, u64 *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

int icc_main(int argc, char **argv, FILE *out, FILE *err)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "origin-sectors", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct icc_opts o = { 0 };
	struct icc_report *r;
	int c, fd, rc;

	optind = 0;	/* callable more than once (tests) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "jqo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o.json = true;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'o':
			if (icc_parse_u64(optarg, &o.origin_sectors) ||
			    !o.origin_sectors) {
				fprintf(err, "infercache-check: bad --origin-sectors '%s'\n",
					optarg);
				return ICC_USAGE;
			}
			o.have_origin = true;
			break;
		case 'h':
			icc_usage(out);
			return ICC_OK;
		default:
			fprintf(err, "infercache-check: bad option '%s'\n%s",
				argv[optind - 1], ICC_USAGE_LINE);
			return ICC_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(err, "infercache-check: %s\n%s",
			optind < argc ? "one device or file only" :
					"no device or file given",
			ICC_USAGE_LINE);
		return ICC_USAGE;
	}
	if (o.json && o.quiet) {
		fprintf(err, "infercache-check: --json and --quiet exclude each other\n");
		return ICC_USAGE;
	}

	r = calloc(1, sizeof(*r));
	if (!r) {
		fprintf(err, "infercache-check: out of memory\n");
		return ICC_OPERROR;
	}
	r->path = argv[optind];
	r->used = -1;
	fd = open(r->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL)	/* no O_DIRECT here (tmpfs) */
		fd = open(r->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = icc_operror(r, "cannot open: %s", strerror(errno));
	} else {
		rc = icc_check(fd, r, &o);
		close(fd);
	}

	if (o.json)
		icc_print_json(out, r, rc);
	else if (!o.quiet)
		icc_print_human(out, err, r, rc);
	free(r);
	return rc;
}

#ifndef ICC_NO_MAIN
int main(int argc, char **argv)
{
	return icc_main(argc, argv, stdout, stderr);
}
#endif
