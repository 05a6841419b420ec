/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stamped blocks, shared by crash_io.c and stale_check.c. Every 512-byte
 * sector of a 4 KiB block written carries STAMP_MAGIC, the run id, its
 * block and sector numbers, a version and a body derived from all of
 * them, so that a read tells which write it returns, and whether the
 * sector is torn, misplaced or from another run.
 *
 * The includer defines STAMP_MAGIC, STAMP_PROG (the prefix of its BAD
 * lines) and MAX_REPORTS; run_id and nr_bad are defined here.
 */
#ifndef STAMP_H
#define STAMP_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define BLK		4096
#define SECT		512
#define SECTS		(BLK / SECT)

static uint64_t run_id;
static _Atomic uint64_t nr_bad;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void stamp(void *blk, uint64_t b, uint64_t ver)
{
	for (unsigned int s = 0; s < SECTS; s++) {
		uint64_t *w = (uint64_t *)blk + s * (SECT / 8);
		uint64_t h = mix(run_id ^ mix(b * SECTS + s) ^ mix(ver << 1));

		w[0] = STAMP_MAGIC;
		w[1] = run_id;
		w[2] = b;
		w[3] = s;
		w[4] = ver;
		for (unsigned int i = 5; i < SECT / 8; i++)
			w[i] = h + i * 0x2545f4914f6cdd1dULL;
	}
}

/*
 * Version in sector s of block b, whose first word is STAMP_MAGIC (the
 * caller looked), or -1 with *why set.
 */
static int64_t stamp_ver(const void *blk, uint64_t b, unsigned int s,
			 const char **why)
{
	const uint64_t *w = (const uint64_t *)blk + s * (SECT / 8);
	uint64_t h;

	if (w[1] != run_id) {
		*why = "stamp of another run";
		return -1;
	}
	if (w[2] != b || w[3] != s) {
		*why = "stamp of another block or sector (misplaced)";
		return -1;
	}
	h = mix(run_id ^ mix(b * SECTS + s) ^ mix(w[4] << 1));
	for (unsigned int i = 5; i < SECT / 8; i++) {
		if (w[i] != h + i * 0x2545f4914f6cdd1dULL) {
			*why = "body does not match its stamp (torn or corrupt)";
			return -1;
		}
	}
	return (int64_t)w[4];
}

/* One "BAD" line (the first MAX_REPORTS of them); every call counts. */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&nr_bad, 1) >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	fputs("# " STAMP_PROG ": BAD: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

#endif /* STAMP_H */
