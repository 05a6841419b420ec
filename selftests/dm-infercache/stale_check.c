// SPDX-License-Identifier: GPL-2.0
/*
 * stale_check: prove a block device never returns stale data while
 * writers and readers hammer a small set of 4 KiB blocks.
 *
 *   stale_check run -d DEV -n NBLOCKS [-w WRITERS] [-r READERS] [-s SPAN]
 *                   [-t SECONDS] [-o STATEFILE]
 *   stale_check check -d DEV -i STATEFILE
 *
 * Every 512-byte sector of block b holds a stamp (magic, run id, b, sector,
 * seq) and a fill derived from them, so garbage, a block of another run, a
 * misplaced block and a torn sector are all recognised. Writers take a
 * block (one writer per block at a time, so its content is well defined),
 * publish started[b] = seq, write it with O_DIRECT, then publish
 * completed[b] = seq. A reader snapshots completed[] of the blocks it reads,
 * reads them, then snapshots started[]. Every sector read must carry a seq
 * in [completed before, started after]; if no write to the block began in
 * between, exactly the completed one. A cache that installs a fill older
 * than a completed write, or serves a slot after it was reused, breaks this.
 * At the end every block must read back exactly its last seq (twice: the
 * second read is served by the cache when the first filled it); "run -o"
 * saves the expected seqs so "check" can verify the origin afterwards.
 *
 * Readers alternate single-block reads and reads of SPAN aligned blocks, so
 * with a cache block of SPAN * 4 KiB both partial hits and fills happen;
 * writers write one block or two neighbours (straddling cache blocks).
 *
 * Exit status: 0 no stale or bad data, 1 bad data seen, 2 usage or I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAGIC		0x1cca57a1ec0ffee5ULL
#define MAX_SPAN	16
#define MAX_REPORTS	20
#define STAMP_MAGIC	MAGIC
#define STAMP_PROG	"stale_check"

#include "stamp.h"

struct blk_state {
	_Atomic uint64_t started;	/* seq of the latest write begun */
	_Atomic uint64_t completed;	/* seq of the latest write completed */
	atomic_flag busy;		/* a writer owns the block */
};

static struct blk_state *st;
static int fd;
static uint64_t nblocks;
static unsigned int span = 4;
static atomic_bool stop;
static _Atomic uint64_t nr_writes, nr_reads, nr_checked, nr_ioerr;

/* Seq of sector s of block b in p, or -1 with *why set. */
static int64_t sector_seq(const uint64_t *p, uint64_t b, unsigned int s,
			  const char **why)
{
	const uint64_t *w = p + s * (SECT / 8);

	if (w[0] != MAGIC) {
		*why = w[0] ? "no stamp (garbage)" : "no stamp (zeroes)";
		return -1;
	}
	return stamp_ver(p, b, s, why);
}

static bool io(bool wr, void *buf, size_t len, uint64_t b)
{
	ssize_t r = wr ? pwrite(fd, buf, len, (off_t)(b * BLK)) :
			 pread(fd, buf, len, (off_t)(b * BLK));

	if (r == (ssize_t)len)
		return true;
	if (atomic_fetch_add(&nr_ioerr, 1) < MAX_REPORTS)
		printf("# stale_check: %s of block %" PRIu64 " (+%zu) failed: %s\n",
		       wr ? "write" : "read", b, len,
		       r < 0 ? strerror(errno) : "short");
	return false;
}

static void *writer(void *arg)
{
	uint64_t seed = mix((uintptr_t)arg + run_id) | 1, b, n, i, seq;
	void *buf;

	if (posix_memalign(&buf, BLK, 2 * BLK))
		return NULL;
	while (!atomic_load(&stop)) {
		b = rnd(&seed) % nblocks;
		n = (rnd(&seed) % 4 == 0 && b + 1 < nblocks) ? 2 : 1;
		if (atomic_flag_test_and_set(&st[b].busy))
			continue;
		if (n == 2 && atomic_flag_test_and_set(&st[b + 1].busy)) {
			atomic_flag_clear(&st[b].busy);
			continue;
		}
		for (i = 0; i < n; i++) {
			seq = atomic_load(&st[b + i].started) + 1;
			atomic_store(&st[b + i].started, seq);
			stamp((uint64_t *)((char *)buf + i * BLK), b + i, seq);
		}
		if (io(true, buf, n * BLK, b)) {
			for (i = 0; i < n; i++)
				atomic_store(&st[b + i].completed,
					     atomic_load(&st[b + i].started));
			atomic_fetch_add(&nr_writes, 1);
		}
		/* after a failed write the content is unknown: retire them */
		for (i = n; i-- > 0;)
			if (atomic_load(&st[b + i].completed) ==
			    atomic_load(&st[b + i].started))
				atomic_flag_clear(&st[b + i].busy);
	}
	free(buf);
	return NULL;
}

/* Check n blocks from b in buf against [lo[i], hi[i]]. */
static void check_blocks(const void *buf, uint64_t b, unsigned int n,
			 const uint64_t *lo, const uint64_t *hi,
			 const char *what)
{
	for (unsigned int i = 0; i < n; i++) {
		const uint64_t *p = (const uint64_t *)((const char *)buf + i * BLK);

		for (unsigned int s = 0; s < SECTS; s++) {
			const char *why = NULL;
			int64_t seq = sector_seq(p, b + i, s, &why);

			if (seq < 0)
				report("%s: block %" PRIu64 " sector %u: %s "
				       "(expected seq %" PRIu64 "..%" PRIu64 ")",
				       what, b + i, s, why, lo[i], hi[i]);
			else if ((uint64_t)seq < lo[i])
				report("%s: block %" PRIu64 " sector %u: STALE "
				       "seq %" PRId64 ", but seq %" PRIu64
				       " had completed before the read began",
				       what, b + i, s, seq, lo[i]);
			else if ((uint64_t)seq > hi[i])
				report("%s: block %" PRIu64 " sector %u: seq %"
				       PRId64 " from the future (latest begun %"
				       PRIu64 ")", what, b + i, s, seq, hi[i]);
		}
		atomic_fetch_add(&nr_checked, 1);
	}
}

static void *reader(void *arg)
{
	uint64_t seed = mix((uintptr_t)arg * 7919 + run_id) | 1, b;
	uint64_t lo[MAX_SPAN], hi[MAX_SPAN];
	unsigned int n, i;
	void *buf;

	if (posix_memalign(&buf, BLK, MAX_SPAN * BLK))
		return NULL;
	while (!atomic_load(&stop)) {
		n = (rnd(&seed) & 1) ? span : 1;
		b = rnd(&seed) % (nblocks / n) * n;
		for (i = 0; i < n; i++)
			lo[i] = atomic_load(&st[b + i].completed);
		if (!io(false, buf, n * BLK, b))
			continue;
		/* hi == lo when no write began meanwhile: exactly lo */
		for (i = 0; i < n; i++)
			hi[i] = atomic_load(&st[b + i].started);
		check_blocks(buf, b, n, lo, hi, "concurrent read");
		atomic_fetch_add(&nr_reads, 1);
	}
	free(buf);
	return NULL;
}

/* Read every block and expect exactly want[b]. */
static void final_pass(const uint64_t *want, const char *what)
{
	void *buf;

	if (posix_memalign(&buf, BLK, BLK))
		exit(2);
	for (uint64_t b = 0; b < nblocks; b++)
		if (io(false, buf, BLK, b))
			check_blocks(buf, b, 1, &want[b], &want[b], what);
	free(buf);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: stale_check run -d DEV -n NBLOCKS [-w WRITERS] [-r READERS]\n"
		"                       [-s SPAN] [-t SECONDS] [-o STATEFILE]\n"
		"       stale_check check -d DEV -i STATEFILE\n");
	return 2;
}

static int open_dev(const char *dev)
{
	fd = open(dev, O_RDWR | O_DIRECT);
	if (fd < 0) {
		printf("# stale_check: open %s: %s\n", dev, strerror(errno));
		exit(2);
	}
	return fd;
}

static int do_check(const char *dev, const char *in)
{
	FILE *f = fopen(in, "r");
	uint64_t *want, b, seq;

	if (!f || fscanf(f, "run %" SCNx64 " blocks %" SCNu64, &run_id, &nblocks) != 2 ||
	    !nblocks) {
		printf("# stale_check: cannot read state file %s\n", in);
		return 2;
	}
	want = calloc(nblocks, sizeof(*want));
	for (uint64_t i = 0; i < nblocks; i++) {
		if (fscanf(f, "%" SCNu64 " %" SCNu64, &b, &seq) != 2 || b >= nblocks) {
			printf("# stale_check: bad state file %s\n", in);
			return 2;
		}
		want[b] = seq;
	}
	fclose(f);
	open_dev(dev);
	final_pass(want, "check");
	printf("# stale_check: check %s: %" PRIu64 " blocks, %" PRIu64
	       " bad sectors, %" PRIu64 " I/O errors\n", dev, nblocks,
	       atomic_load(&nr_bad), atomic_load(&nr_ioerr));
	return (atomic_load(&nr_bad) || atomic_load(&nr_ioerr)) ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *dev = NULL, *out = NULL, *in = NULL;
	unsigned int nw = 4, nr = 4, secs = 10, i;
	pthread_t th[64];
	uint64_t *want;
	void *buf;
	int c;

	if (argc < 2)
		return usage();
	optind = 2;
	while ((c = getopt(argc, argv, "d:n:w:r:s:t:o:i:")) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'n': nblocks = strtoull(optarg, NULL, 0); break;
		case 'w': nw = atoi(optarg); break;
		case 'r': nr = atoi(optarg); break;
		case 's': span = atoi(optarg); break;
		case 't': secs = atoi(optarg); break;
		case 'o': out = optarg; break;
		case 'i': in = optarg; break;
		default: return usage();
		}
	}
	if (!dev)
		return usage();
	if (!strcmp(argv[1], "check"))
		return in ? do_check(dev, in) : usage();
	if (strcmp(argv[1], "run") || nblocks < 2 || !nw || !nr ||
	    nw + nr > 64 || !span || span > MAX_SPAN || nblocks % span)
		return usage();

	run_id = mix((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32));
	st = calloc(nblocks, sizeof(*st));
	want = calloc(nblocks, sizeof(*want));
	if (!st || !want || posix_memalign(&buf, BLK, BLK))
		return 2;
	open_dev(dev);

	/* every block starts as seq 1, so zeroes are never valid */
	for (uint64_t b = 0; b < nblocks; b++) {
		stamp(buf, b, 1);
		if (!io(true, buf, BLK, b))
			return 2;
		st[b].started = st[b].completed = 1;
		atomic_flag_clear(&st[b].busy);
	}
	for (i = 0; i < nw + nr; i++)
		if (pthread_create(&th[i], NULL, i < nw ? writer : reader,
				   (void *)(uintptr_t)(i + 1)))
			return 2;
	for (unsigned int t = 0; t < secs * 10 && !atomic_load(&nr_bad); t++)
		usleep(100000);
	atomic_store(&stop, true);
	for (i = 0; i < nw + nr; i++)
		pthread_join(th[i], NULL);

	for (uint64_t b = 0; b < nblocks; b++) {
		want[b] = atomic_load(&st[b].completed);
		if (want[b] != atomic_load(&st[b].started)) {
			printf("# stale_check: block %" PRIu64 " has a failed write\n", b);
			atomic_fetch_add(&nr_ioerr, 1);
		}
	}
	final_pass(want, "final read 1");
	final_pass(want, "final read 2");
	printf("# stale_check: %" PRIu64 " blocks, %u writers, %u readers, span %u,"
	       " %u s: %" PRIu64 " writes, %" PRIu64 " reads, %" PRIu64
	       " blocks checked, %" PRIu64 " bad sectors, %" PRIu64 " I/O errors\n",
	       nblocks, nw, nr, span, secs, atomic_load(&nr_writes),
	       atomic_load(&nr_reads), atomic_load(&nr_checked),
	       atomic_load(&nr_bad), atomic_load(&nr_ioerr));
	if (out) {
		FILE *f = fopen(out, "w");

		if (!f)
			return 2;
		fprintf(f, "run %" PRIx64 " blocks %" PRIu64 "\n", run_id, nblocks);
		for (uint64_t b = 0; b < nblocks; b++)
			fprintf(f, "%" PRIu64 " %" PRIu64 "\n", b, want[b]);
		if (fclose(f))
			return 2;
	}
	if (atomic_load(&nr_ioerr))
		return 2;
	return atomic_load(&nr_bad) ? 1 : 0;
}
