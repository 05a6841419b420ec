// SPDX-License-Identifier: GPL-2.0
/*
 * crash_io: the oracle of the crash-consistency tests. A workload that knows
 * which of its writes were durable when the power was cut, and a checker that
 * looks at what survived.
 *
 *   crash_io run -d DEV -n NBLOCKS -o STATE [-w WRITERS] [-r READERS]
 *                [-p WARM_PASSES] [-y SYNC_EVERY] [-x DISCARD_PERCENT]
 *                [-t MAX_SECONDS] [-R READY_FILE] [-F FROZEN_FILE]
 *                [-C CUT_ACTION]...
 *   crash_io verify STATE DEV [ORIGIN]
 *   crash_io poke STATE DEV BLOCK...
 *   crash_io dm CUT_ACTION...
 *
 * Every 512-byte sector of a 4 KiB block b holds a stamp (magic, run id, b,
 * sector, version) and a body derived from them, so garbage, a block of
 * another run, a misplaced block and a torn sector are all recognised.
 *
 * run: writes version 1 to NBLOCKS blocks from the start of DEV (O_DIRECT),
 * flushes, reads every block WARM_PASSES times (64 KiB reads in random
 * order, so that the cache admits them), creates READY_FILE, then until
 * SIGTERM runs writers (random 1- or 2-block writes of the next version,
 * one writer per block at a time; half with O_DSYNC, that is REQ_FUA, half
 * plain with an fdatasync, an empty REQ_PREFLUSH, after every SYNC_EVERY of
 * them; DISCARD_PERCENT of the operations discard a block and then rewrite
 * it, plain) and readers (1- or 4-block reads, each must carry a version in
 * [completed before the read, begun after it]; a sector mixing two such
 * versions, while a write of its block was in flight, is counted but not
 * failed: see torn_by_overlap()). A discard is a version too,
 * whose content is zeroes (while the run goes on, the target passing
 * discards down to a disk that zeroes them); after a cut, what a discard
 * left is undefined, so zeroes or data no older than what was durable when
 * the discard began. Per block it records
 *   durable    the newest version acknowledged as durable: its O_DSYNC write
 *              completed, or it completed before an fdatasync was issued
 *              that then completed;
 *   completed  the newest version whose write completed successfully;
 *   submitted  the newest version ever submitted;
 *   discarded  the newest version that was a discard (0: none);
 *   floor      the durable version when that discard was submitted.
 * SIGUSR1 freezes "durable" (and stops the read checks, the device may be
 * dropping writes from now on), performs the CUT_ACTIONs in order and then
 * creates FROZEN_FILE: every acknowledgement counted as durable happened
 * before the cut. Cut actions (see struct cut) suspend, load and resume dm
 * devices by ioctl and write configfs attributes (a null_blk's power);
 * prepared beforehand, they leave microseconds between the freeze and the
 * cut instead of a process start. Without cut actions the caller cuts the
 * power once FROZEN_FILE exists. I/O errors after the freeze are expected
 * and ignored. SIGTERM (or MAX_SECONDS) stops the threads, which start no
 * new I/O, and writes STATE.
 *
 * verify: reads every block of DEV twice (64 KiB reads in random order,
 * then 1 MiB sequential ones) and, if given, every block of ORIGIN directly.
 * Each sector must carry a valid stamp (else "corrupt"; zeroes are valid
 * only if a discard since the durable version allows them) with a version
 * v, durable <= v (else "lost"; or floor <= v after such a discard) and v <= submitted (else "corrupt": from
 * the future); the second read must equal the first ("changed"); DEV must
 * equal ORIGIN ("stale" when DEV's copy is older than ORIGIN's, else
 * "mismatch"). Informational: "rewritten" blocks hold a version above 1,
 * "survived" ones a version newer than their durable one (an unflushed
 * write that reached the media), "reverted" ones are older than an
 * acknowledged write (the cut really lost data), "torn" ones mix versions
 * across sectors, "discarded" ones read as zeroes. Exit status 1 on any
 * lost, stale, corrupt, mismatch or changed block.
 *
 * poke: write the next version of each BLOCK (a valid stamp of the run in
 * STATE) straight to DEV with O_DSYNC and record it in STATE; written to the
 * origin behind the target's back, it proves that verify sees a cache that
 * disagrees with its origin.
 *
 * dm: do the cut actions given, in order (a table swap in one process).
 *
 * Exit status: 0 good, 1 bad data (run: a read check failed before the
 * freeze), 2 usage, setup or I/O error (run: an I/O error before the freeze).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/dm-ioctl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

#define MAGIC		0xc4a54c10dead0b1eULL
#define SPAN		4
#define INIT_CHUNK	(256 * 1024)
#define CHUNK_BLOCKS	16	/* reads of warm-up and verify: 64 KiB */
#define VERIFY_CHUNK	(1024 * 1024)
#define MAX_REPORTS	20
#define MAX_THREADS	32
#define MAX_PENDING	96
#define MAX_CUTS	16
#define ZEROES		(-2)	/* sector_ver(): an all-zero sector */
#define STAMP_MAGIC	MAGIC
#define STAMP_PROG	"crash_io"

#include "stamp.h"

struct blk_state {
	_Atomic uint64_t submitted;	/* newest version submitted */
	_Atomic uint64_t completed;	/* newest version acknowledged */
	_Atomic uint64_t durable;	/* newest version acknowledged durable */
	_Atomic uint64_t discarded;	/* newest version that is a discard */
	_Atomic uint64_t floor;		/* durable when it was submitted */
	atomic_flag busy;		/* a writer owns the block */
};

static struct blk_state *st;
static uint64_t nblocks;
static int fd_plain = -1, fd_sync = -1;
static unsigned int sync_every = 8, discard_pct;
static atomic_bool stop, frozen;
static _Atomic uint64_t nr_writes, nr_fua, nr_syncs, nr_reads;
static _Atomic uint64_t nr_discards, nr_overlap_torn;
static _Atomic uint64_t nr_ioerr, nr_ioerr_frozen, nr_writes_frozen;

/* Version in sector s of block b; ZEROES; or -1 with *why set. */
static int64_t sector_ver(const void *blk, uint64_t b, unsigned int s,
			  const char **why)
{
	const uint64_t *w = (const uint64_t *)blk + s * (SECT / 8);
	uint64_t any = 0;

	if (w[0] != MAGIC) {
		for (unsigned int i = 0; i < SECT / 8; i++)
			any |= w[i];
		if (!any) {
			*why = "zeroes, but no discard since the version expected";
			return ZEROES;
		}
		*why = "no stamp (garbage)";
		return -1;
	}
	return stamp_ver(blk, b, s, why);
}

static void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("# crash_io: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void atomic_max(_Atomic uint64_t *p, uint64_t v)
{
	uint64_t cur = atomic_load(p);

	while (cur < v && !atomic_compare_exchange_weak(p, &cur, v))
		;
}

/* Open DEV for direct I/O; regular files on tmpfs may refuse O_DIRECT. */
static int open_dev(const char *dev, int flags)
{
	int fd = open(dev, flags | O_DIRECT);

	if (fd < 0 && errno == EINVAL)
		fd = open(dev, flags);
	if (fd < 0) {
		msg("open %s: %s", dev, strerror(errno));
		exit(2);
	}
	return fd;
}

/* An I/O failed: report it unless the power was already cut. */
static void io_error(bool wr, uint64_t b, size_t len, ssize_t r)
{
	if (atomic_load(&frozen)) {
		atomic_fetch_add(&nr_ioerr_frozen, 1);
		usleep(2000);	/* a dead device fails at once: do not spin */
		return;
	}
	if (atomic_fetch_add(&nr_ioerr, 1) < MAX_REPORTS)
		msg("%s of block %" PRIu64 " (+%zu) failed: %s",
		    wr ? "write" : "read", b, len,
		    r < 0 ? strerror(errno) : "short");
}

static bool full_io(int fd, bool wr, void *buf, size_t len, uint64_t off)
{
	ssize_t r = wr ? pwrite(fd, buf, len, (off_t)off) :
			 pread(fd, buf, len, (off_t)off);

	if (r == (ssize_t)len)
		return true;
	io_error(wr, off / BLK, len, r);
	return false;
}

/*
 * The version a sector read from block b stands for: its own; or the newest
 * discard disc, if that is at least lo, for zeroes and for older data down
 * to floor (what a discard leaves is undefined: a target or a disk may keep
 * the old data); -1 with *why set otherwise.
 */
static int64_t sector_check(const void *blk, uint64_t b, unsigned int s,
			    uint64_t lo, uint64_t disc, uint64_t floor,
			    const char **why)
{
	int64_t v = sector_ver(blk, b, s, why);
	bool discard = disc && disc >= lo;

	if (v == ZEROES)
		return discard ? (int64_t)disc : -1;
	if (v >= 0 && (uint64_t)v < lo && discard && (uint64_t)v >= floor)
		return (int64_t)disc;
	return v;
}

/* Discard block b (a hole punched, for a regular file). */
static bool discard_block(uint64_t b)
{
	uint64_t range[2] = { b * BLK, BLK };

	if (!ioctl(fd_plain, BLKDISCARD, range))
		return true;
	if (errno == ENOTTY &&
	    !fallocate(fd_plain, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)(b * BLK), BLK))
		return true;
	io_error(true, b, BLK, -1);
	return false;
}

struct pending {
	uint64_t b, ver;
};

/* Note a completed write or discard of version ver of block b. */
static void completed(uint64_t b, uint64_t ver, bool fua,
		      struct pending *pend, unsigned int *npend)
{
	atomic_store(&st[b].completed, ver);
	/* read after the completion: the ack preceded the freeze */
	if (fua && !atomic_load(&frozen))
		atomic_max(&st[b].durable, ver);
	else if (!fua && *npend < MAX_PENDING)
		pend[(*npend)++] = (struct pending){ b, ver };
	if (atomic_load(&frozen))
		atomic_fetch_add(&nr_writes_frozen, 1);
}

static void *writer(void *arg)
{
	uint64_t seed = mix((uintptr_t)arg + run_id) | 1, b, n, i, ver;
	struct pending pend[MAX_PENDING];
	unsigned int npend = 0, nplain = 0;
	bool fua, discard, ok;
	void *buf;

	if (posix_memalign(&buf, BLK, 2 * BLK))
		return NULL;
	while (!atomic_load(&stop)) {
		b = rnd(&seed) % nblocks;
		discard = rnd(&seed) % 100 < discard_pct;
		n = (!discard && rnd(&seed) % 4 == 0 && b + 1 < nblocks) ? 2 : 1;
		fua = !discard && (rnd(&seed) & 1);
		if (atomic_flag_test_and_set(&st[b].busy))
			continue;
		if (n == 2 && atomic_flag_test_and_set(&st[b + 1].busy)) {
			atomic_flag_clear(&st[b].busy);
			continue;
		}
		ok = true;
		if (discard) {
			/* discard, then rewrite at once (plain) */
			ver = atomic_load(&st[b].submitted) + 1;
			atomic_store(&st[b].submitted, ver);
			atomic_store(&st[b].floor,
				     atomic_load(&st[b].durable));
			atomic_store(&st[b].discarded, ver);
			ok = discard_block(b);
			if (ok) {
				completed(b, ver, false, pend, &npend);
				atomic_fetch_add(&nr_discards, 1);
			}
		}
		if (ok) {
			for (i = 0; i < n; i++) {
				ver = atomic_load(&st[b + i].submitted) + 1;
				atomic_store(&st[b + i].submitted, ver);
				stamp((char *)buf + i * BLK, b + i, ver);
			}
			ok = full_io(fua ? fd_sync : fd_plain, true, buf,
				     n * BLK, b * BLK);
		}
		if (ok) {
			for (i = 0; i < n; i++)
				completed(b + i, atomic_load(&st[b + i].submitted),
					  fua, pend, &npend);
			atomic_fetch_add(&nr_writes, 1);
			if (fua)
				atomic_fetch_add(&nr_fua, 1);
		}
		for (i = n; i-- > 0;)
			atomic_flag_clear(&st[b + i].busy);
		if (ok && !fua && ++nplain >= sync_every) {
			/* covers the writes that completed before it began */
			nplain = 0;
			if (fdatasync(fd_plain) == 0) {
				if (!atomic_load(&frozen)) {
					for (i = 0; i < npend; i++)
						atomic_max(&st[pend[i].b].durable,
							   pend[i].ver);
					atomic_fetch_add(&nr_syncs, 1);
				}
			} else {
				io_error(true, 0, 0, -1);
			}
			npend = 0;
		}
	}
	free(buf);
	return NULL;
}

/*
 * A read that overlapped a write of its block (lo < hi) may mix the two
 * versions even inside a sector: the block layer promises no atomicity
 * for overlapping requests in flight, and emulated disks backed by a host
 * file's page cache do tear them (real NVMe keeps each LBA atomic). Such
 * a sector is counted, not failed: its stamp is this block's and sector's,
 * of a version in [lo, hi], and only the body disagrees.
 */
static bool torn_by_overlap(const void *blk, uint64_t b, unsigned int s,
			    uint64_t lo, uint64_t hi)
{
	const uint64_t *w = (const uint64_t *)blk + s * (SECT / 8);

	return lo < hi && w[0] == MAGIC && w[1] == run_id && w[2] == b &&
	       w[3] == s && w[4] >= lo && w[4] <= hi;
}

/* Check n blocks read from b: versions in [lo, hi], disc: newest discards */
static void check_read(const void *buf, uint64_t b, const uint64_t *lo,
		       const uint64_t *hi, const uint64_t *disc, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		const void *blk = (const char *)buf + i * BLK;

		for (unsigned int s = 0; s < SECTS; s++) {
			const char *why = NULL;
			/* while it runs, a discard must read as zeroes */
			int64_t v = sector_check(blk, b + i, s, lo[i], disc[i],
						 UINT64_MAX, &why);

			if (v < 0 && torn_by_overlap(blk, b + i, s, lo[i], hi[i]))
				atomic_fetch_add(&nr_overlap_torn, 1);
			else if (v < 0)
				report("read: block %" PRIu64 " sector %u: %s "
				       "(expected %" PRIu64 "..%" PRIu64 ")",
				       b + i, s, why, lo[i], hi[i]);
			else if ((uint64_t)v < lo[i] || (uint64_t)v > hi[i])
				report("read: block %" PRIu64 " sector %u: version %"
				       PRId64 ", expected %" PRIu64 "..%" PRIu64
				       " (stale read before the cut)", b + i, s,
				       v, lo[i], hi[i]);
		}
	}
}

static void *reader(void *arg)
{
	uint64_t seed = mix((uintptr_t)arg * 7919 + run_id) | 1, b;
	uint64_t lo[SPAN], hi[SPAN], disc[SPAN];
	unsigned int n, i;
	void *buf;

	if (posix_memalign(&buf, BLK, SPAN * BLK))
		return NULL;
	while (!atomic_load(&stop)) {
		n = (rnd(&seed) % 4 == 0 && nblocks >= SPAN) ? SPAN : 1;
		b = rnd(&seed) % (nblocks / n) * n;
		for (i = 0; i < n; i++)
			lo[i] = atomic_load(&st[b + i].completed);
		if (!full_io(fd_plain, false, buf, n * BLK, b * BLK))
			continue;
		atomic_fetch_add(&nr_reads, 1);
		/* after the cut a dropped write may read back old: no check */
		if (atomic_load(&frozen))
			continue;
		for (i = 0; i < n; i++) {
			hi[i] = atomic_load(&st[b + i].submitted);
			disc[i] = atomic_load(&st[b + i].discarded);
		}
		check_read(buf, b, lo, hi, disc, n);
	}
	free(buf);
	return NULL;
}

/*
 * The cut: actions prepared beforehand, so that doing them takes no time.
 *   suspend:NAME         suspend dm device NAME, noflush (dmsetup suspend
 *                        --noflush --nolockfs)
 *   load:NAME:TABLE      load a one-line TABLE ("start len type args") as
 *                        NAME's inactive table (dmsetup load)
 *   resume:NAME          resume NAME, with its inactive table if loaded
 *   write:PATH:VALUE     write VALUE to PATH (a configfs attribute)
 */
enum cut_op { CUT_SUSPEND, CUT_LOAD, CUT_RESUME, CUT_WRITE };

struct cut {
	const char *spec;
	enum cut_op op;
	int fd;			/* control node or attribute, opened early */
	char *name;		/* dm device */
	char *value;		/* to write to the attribute */
	void *buf;		/* the ioctl buffer */
};

#define DM_BUF_SIZE	4096

static struct cut cuts[MAX_CUTS];
static unsigned int nr_cuts;

static struct dm_ioctl *dm_init(struct cut *c, size_t size)
{
	struct dm_ioctl *dmi = c->buf;

	memset(dmi, 0, DM_BUF_SIZE);
	dmi->version[0] = DM_VERSION_MAJOR;
	dmi->data_size = size;
	dmi->data_start = sizeof(*dmi);
	strcpy(dmi->name, c->name);
	return dmi;
}

/* Build the DM_TABLE_LOAD buffer of a one-target table. */
static bool dm_prepare_load(struct cut *c, const char *table)
{
	struct dm_target_spec *spec;
	struct dm_ioctl *dmi;
	unsigned long long start, len;
	char type[DM_MAX_TYPE_NAME];
	size_t size;
	int n = 0;

	if (sscanf(table, "%llu %llu %15s %n", &start, &len, type, &n) != 3 ||
	    !n)
		return false;
	size = sizeof(*dmi) + sizeof(*spec) + strlen(table + n) + 1;
	if (size > DM_BUF_SIZE)
		return false;
	dmi = dm_init(c, size);
	dmi->target_count = 1;
	spec = (struct dm_target_spec *)(dmi + 1);
	spec->sector_start = start;
	spec->length = len;
	strcpy(spec->target_type, type);
	strcpy((char *)(spec + 1), table + n);
	return true;
}

static void cut_prepare(struct cut *c)
{
	char *spec = strdup(c->spec), *p = NULL;

	c->buf = calloc(1, DM_BUF_SIZE);
	if (!spec || !c->buf)
		exit(2);
	if (!strncmp(spec, "write:", 6)) {
		c->op = CUT_WRITE;
		p = strrchr(spec + 6, ':');
		if (!p || p == spec + 6)
			goto bad;
		*p = '\0';
		c->value = p + 1;
		c->fd = open(spec + 6, O_WRONLY);
	} else {
		if (!strncmp(spec, "suspend:", 8))
			c->op = CUT_SUSPEND;
		else if (!strncmp(spec, "resume:", 7))
			c->op = CUT_RESUME;
		else if (!strncmp(spec, "load:", 5))
			c->op = CUT_LOAD;
		else
			goto bad;
		c->name = strchr(spec, ':') + 1;
		if (c->op == CUT_LOAD) {
			p = strchr(c->name, ':');
			if (!p)
				goto bad;
			*p++ = '\0';
		}
		if (!*c->name || strlen(c->name) >= DM_NAME_LEN)
			goto bad;
		if (c->op == CUT_LOAD && !dm_prepare_load(c, p))
			goto bad;
		c->fd = open("/dev/mapper/control", O_RDWR);
	}
	if (c->fd < 0) {
		msg("cut %s: %s", c->spec, strerror(errno));
		exit(2);
	}
	return;
bad:
	msg("bad cut action %s", c->spec);
	exit(2);
}

static bool cut_do(struct cut *c)
{
	struct dm_ioctl *dmi;

	switch (c->op) {
	case CUT_WRITE:
		return write(c->fd, c->value, strlen(c->value)) ==
		       (ssize_t)strlen(c->value);
	case CUT_SUSPEND:
		dmi = dm_init(c, sizeof(*dmi));
		dmi->flags = DM_SUSPEND_FLAG | DM_NOFLUSH_FLAG |
			     DM_SKIP_LOCKFS_FLAG;
		return !ioctl(c->fd, DM_DEV_SUSPEND, dmi);
	case CUT_RESUME:
		dmi = dm_init(c, sizeof(*dmi));
		return !ioctl(c->fd, DM_DEV_SUSPEND, dmi);
	case CUT_LOAD:
		/* the buffer was built by cut_prepare; the kernel writes it */
		return !ioctl(c->fd, DM_TABLE_LOAD, c->buf);
	}
	return false;
}

/* Do the actions of argv in order (crash_io dm ACTION...). */
static int do_dm(int argc, char **argv)
{
	if (argc < 3 || argc - 2 > MAX_CUTS)
		return 2;
	for (int i = 2; i < argc; i++) {
		cuts[i - 2].spec = argv[i];
		cut_prepare(&cuts[i - 2]);
	}
	for (int i = 2; i < argc; i++) {
		if (!cut_do(&cuts[i - 2])) {
			msg("%s failed: %s", argv[i], strerror(errno));
			return 1;
		}
	}
	return 0;
}

static void touch(const char *path)
{
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "w");
	if (!f || fclose(f)) {
		msg("cannot create %s", path);
		exit(2);
	}
}

static int write_state(const char *out)
{
	FILE *f = fopen(out, "w");

	if (!f)
		return -1;
	fprintf(f, "crash_io 3 run %" PRIx64 " blocks %" PRIu64 "\n", run_id,
		nblocks);
	for (uint64_t b = 0; b < nblocks; b++)
		fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %"
			PRIu64 " %" PRIu64 "\n", b, atomic_load(&st[b].durable),
			atomic_load(&st[b].completed),
			atomic_load(&st[b].submitted),
			atomic_load(&st[b].discarded),
			atomic_load(&st[b].floor));
	return fclose(f);
}

static int read_state(const char *in)
{
	FILE *f = fopen(in, "r");
	uint64_t b, d, c, s, x, fl;

	if (!f || fscanf(f, "crash_io 3 run %" SCNx64 " blocks %" SCNu64,
			 &run_id, &nblocks) != 2 || !nblocks) {
		msg("cannot read state file %s", in);
		return -1;
	}
	st = calloc(nblocks, sizeof(*st));
	if (!st)
		return -1;
	for (uint64_t i = 0; i < nblocks; i++) {
		if (fscanf(f, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %" SCNu64 " %" SCNu64, &b, &d, &c, &s, &x, &fl) != 6 ||
		    b >= nblocks || x > s) {
			msg("bad state file %s (line %" PRIu64 ")", in, i + 2);
			return -1;
		}
		st[b].durable = d;
		st[b].completed = c;
		st[b].submitted = s;
		st[b].discarded = x;
		st[b].floor = fl;
	}
	fclose(f);
	return 0;
}

static void shuffle(uint64_t *v, uint64_t n, uint64_t *seed)
{
	for (uint64_t i = 0; i < n; i++)
		v[i] = i;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = rnd(seed) % i, t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static int do_run(int argc, char **argv)
{
	const char *dev = NULL, *out = NULL, *ready = NULL, *frozen_file = NULL;
	unsigned int nw = 3, nr = 3, passes = 2, max_secs = 120, i;
	uint64_t seed, *perm, lo = 1, hi = 1, zero = 0, b;
	struct timespec t0, t1, tick = { 0, 100 * 1000 * 1000 };
	pthread_t th[MAX_THREADS];
	sigset_t sigs;
	void *buf;
	bool cut_failed = false;
	int c, sig;

	while ((c = getopt(argc, argv, "d:n:o:w:r:p:y:x:t:R:F:C:")) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'n':
			nblocks = strtoull(optarg, NULL, 0);
			break;
		case 'o':
			out = optarg;
			break;
		case 'w':
			nw = atoi(optarg);
			break;
		case 'r':
			nr = atoi(optarg);
			break;
		case 'p':
			passes = atoi(optarg);
			break;
		case 'y':
			sync_every = atoi(optarg);
			break;
		case 'x':
			discard_pct = atoi(optarg);
			break;
		case 't':
			max_secs = atoi(optarg);
			break;
		case 'R':
			ready = optarg;
			break;
		case 'F':
			frozen_file = optarg;
			break;
		case 'C':
			if (nr_cuts == MAX_CUTS)
				return 2;
			cuts[nr_cuts++].spec = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!dev || !out || nblocks < SPAN || nblocks % (INIT_CHUNK / BLK) ||
	    !nw || nw + nr > MAX_THREADS || !sync_every || discard_pct > 100 ||
	    sync_every > MAX_PENDING / 2)
		return 2;

	/* signals go to sigtimedwait below, never to a worker */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_id = mix((uint64_t)t0.tv_nsec ^ ((uint64_t)getpid() << 32) ^
		     (uint64_t)time(NULL));
	seed = run_id | 1;
	st = calloc(nblocks, sizeof(*st));
	perm = calloc(nblocks, sizeof(*perm));
	if (!st || !perm || posix_memalign(&buf, BLK, INIT_CHUNK))
		return 2;
	fd_plain = open_dev(dev, O_RDWR);
	fd_sync = open_dev(dev, O_RDWR | O_DSYNC);
	for (i = 0; i < nr_cuts; i++)
		cut_prepare(&cuts[i]);

	/* version 1 everywhere, flushed: zeroes or old runs never pass */
	for (b = 0; b < nblocks; b += INIT_CHUNK / BLK) {
		for (i = 0; i < INIT_CHUNK / BLK; i++)
			stamp((char *)buf + i * BLK, b + i, 1);
		if (!full_io(fd_plain, true, buf, INIT_CHUNK, b * BLK))
			return 2;
	}
	if (fdatasync(fd_plain)) {
		msg("fdatasync after the initial writes: %s", strerror(errno));
		return 2;
	}
	for (b = 0; b < nblocks; b++) {
		st[b].submitted = st[b].completed = st[b].durable = 1;
		atomic_flag_clear(&st[b].busy);
	}
	/* chunks in random order: a long stream would bypass the cache */
	for (unsigned int p = 0; p < passes; p++) {
		shuffle(perm, nblocks / CHUNK_BLOCKS, &seed);
		for (uint64_t k = 0; k < nblocks / CHUNK_BLOCKS; k++) {
			b = perm[k] * CHUNK_BLOCKS;
			if (!full_io(fd_plain, false, buf, CHUNK_BLOCKS * BLK,
				     b * BLK))
				return 2;
			for (i = 0; i < CHUNK_BLOCKS; i++)
				check_read((char *)buf + i * BLK, b + i, &lo,
					   &hi, &zero, 1);
		}
	}
	if (atomic_load(&nr_bad))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	msg("run: %" PRIu64 " blocks written and read %u times in %.1f s",
	    nblocks, passes, (double)(t1.tv_sec - t0.tv_sec) +
	    (t1.tv_nsec - t0.tv_nsec) / 1e9);

	for (i = 0; i < nw + nr; i++)
		if (pthread_create(&th[i], NULL, i < nw ? writer : reader,
				   (void *)(uintptr_t)(i + 1)))
			return 2;
	touch(ready);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGUSR1 && !atomic_load(&frozen)) {
			atomic_store(&frozen, true);
			for (i = 0; i < nr_cuts; i++) {
				if (!cut_do(&cuts[i])) {
					msg("cut %s failed: %s", cuts[i].spec,
					    strerror(errno));
					cut_failed = true;
				}
			}
			touch(frozen_file);
		} else if (sig == SIGTERM || sig == SIGINT) {
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= max_secs) {
			msg("run: no SIGTERM after %u s, stopping", max_secs);
			break;
		}
	}
	atomic_store(&stop, true);
	for (i = 0; i < nw + nr; i++)
		pthread_join(th[i], NULL);
	if (write_state(out)) {
		msg("cannot write %s", out);
		return 2;
	}
	msg("run: %u writers, %u readers: %" PRIu64 " writes (%" PRIu64
	    " FUA), %" PRIu64 " discards, %" PRIu64 " of all after the "
	    "freeze, %" PRIu64 " fdatasyncs, %" PRIu64 " reads; %" PRIu64
	    " bad reads (and %" PRIu64 " sectors torn by an overlapping write),"
	    " %" PRIu64 " I/O errors before the freeze, %" PRIu64
	    " after; %s",
	    nw, nr, atomic_load(&nr_writes), atomic_load(&nr_fua),
	    atomic_load(&nr_discards), atomic_load(&nr_writes_frozen),
	    atomic_load(&nr_syncs),
	    atomic_load(&nr_reads), atomic_load(&nr_bad),
	    atomic_load(&nr_overlap_torn),
	    atomic_load(&nr_ioerr), atomic_load(&nr_ioerr_frozen),
	    atomic_load(&frozen) ? "frozen" : "never frozen");
	if (atomic_load(&nr_bad))
		return 1;
	return (atomic_load(&nr_ioerr) || cut_failed) ? 2 : 0;
}

/*
 * The version of a whole block (-1: some sector is invalid; the sectors'
 * minimum otherwise, *torn set when they differ). Reports bad sectors.
 */
static int64_t block_ver(const void *blk, uint64_t b, const char *what,
			 bool *torn, bool *lost, bool *corrupt)
{
	struct blk_state *s = &st[b];
	int64_t min = INT64_MAX, max = -1;
	unsigned int nlost = 0, nfuture = 0;

	for (unsigned int i = 0; i < SECTS; i++) {
		const char *why = NULL;
		int64_t v = sector_check(blk, b, i, s->durable, s->discarded,
					 s->floor, &why);

		if (v < 0) {
			*corrupt = true;
			report("%s: block %" PRIu64 " sector %u: %s (durable %"
			       PRIu64 ", submitted %" PRIu64 ")", what, b, i,
			       why, s->durable, s->submitted);
			return -1;
		}
		nlost += (uint64_t)v < s->durable;
		nfuture += (uint64_t)v > s->submitted;
		if (v < min)
			min = v;
		if (v > max)
			max = v;
	}
	if (nlost) {
		*lost = true;
		report("%s: block %" PRIu64 ": LOST: version %" PRId64 " in %u of "
		       "%u sectors, but version %" PRIu64 " was durable", what,
		       b, min, nlost, SECTS, s->durable);
	}
	if (nfuture) {
		*corrupt = true;
		report("%s: block %" PRIu64 ": version %" PRId64 " in %u sectors "
		       "was never written (newest %" PRIu64 ")", what, b, max,
		       nfuture, s->submitted);
	}
	*torn = min != max;
	return min;
}

static bool read_all(int fd, void *buf, const char *what)
{
	for (uint64_t b = 0; b < nblocks; b += VERIFY_CHUNK / BLK) {
		uint64_t n = nblocks - b < VERIFY_CHUNK / BLK ?
			     nblocks - b : VERIFY_CHUNK / BLK;
		ssize_t r = pread(fd, (char *)buf + b * BLK, n * BLK,
				  (off_t)(b * BLK));

		if (r != (ssize_t)(n * BLK)) {
			msg("%s: read of block %" PRIu64 " failed: %s", what, b,
			    r < 0 ? strerror(errno) : "short");
			return false;
		}
	}
	return true;
}

static int do_verify(int argc, char **argv)
{
	const char *dev, *origin;
	uint64_t lost = 0, stale = 0, corrupt = 0, mismatch = 0, changed = 0;
	uint64_t survived = 0, reverted = 0, torn = 0, moved = 0, zeroed = 0;
	uint64_t seed, *perm, b;
	char *d1, *d2, *o = NULL;
	int fd, ofd = -1;

	if (argc < 4 || argc > 5)
		return 2;
	dev = argv[3];
	origin = argc == 5 ? argv[4] : NULL;
	if (read_state(argv[2]))
		return 2;
	perm = calloc(nblocks, sizeof(*perm));
	if (!perm || posix_memalign((void **)&d1, BLK, nblocks * BLK) ||
	    posix_memalign((void **)&d2, BLK, nblocks * BLK) ||
	    (origin && posix_memalign((void **)&o, BLK, nblocks * BLK)))
		return 2;
	fd = open_dev(dev, O_RDONLY);
	if (origin)
		ofd = open_dev(origin, O_RDONLY);

	/* 1: chunks in random order (misses are filled), 2: a stream */
	seed = mix(run_id ^ (uint64_t)getpid()) | 1;
	shuffle(perm, nblocks / CHUNK_BLOCKS, &seed);
	for (uint64_t k = 0; k < nblocks / CHUNK_BLOCKS; k++) {
		b = perm[k] * CHUNK_BLOCKS;
		if (pread(fd, d1 + b * BLK, CHUNK_BLOCKS * BLK,
			  (off_t)(b * BLK)) != CHUNK_BLOCKS * BLK) {
			msg("%s: read of block %" PRIu64 " failed: %s", dev, b,
			    strerror(errno));
			return 2;
		}
	}
	if (!read_all(fd, d2, dev) || (origin && !read_all(ofd, o, origin)))
		return 2;

	for (b = 0; b < nblocks; b++) {
		const char *blk = d1 + b * BLK;
		bool t = false, l = false, c = false, ot = false, ol = false;
		bool oc = false;
		int64_t v, ov = -1;

		v = block_ver(blk, b, "verify", &t, &l, &c);
		if (memcmp(blk, d2 + b * BLK, BLK)) {
			bool t2 = false, l2 = false, c2 = false;

			changed++;
			report("verify: block %" PRIu64 " changed between two "
			       "reads (version %" PRId64 ", then %" PRId64 ")",
			       b, v, block_ver(d2 + b * BLK, b, "verify 2",
					       &t2, &l2, &c2));
		}
		if (origin) {
			ov = block_ver(o + b * BLK, b, "origin", &ot, &ol, &oc);
			l |= ol;
			c |= oc;
			if (memcmp(blk, o + b * BLK, BLK)) {
				if (v >= 0 && ov >= 0 && v < ov) {
					stale++;
					report("verify: block %" PRIu64 " STALE: "
					       "version %" PRId64 " through the "
					       "target, %" PRId64 " on the origin",
					       b, v, ov);
				} else {
					mismatch++;
					report("verify: block %" PRIu64 " differs "
					       "from the origin (version %" PRId64
					       " through the target, %" PRId64
					       " on the origin)", b, v, ov);
				}
			}
		}
		lost += l;
		corrupt += c;
		torn += t || ot;
		if (v >= 0) {
			survived += (uint64_t)v > st[b].durable;
			reverted += (uint64_t)v < st[b].completed;
			moved += v > 1;
			/* a valid sector that is no stamp: a discard's */
			zeroed += !((const uint64_t *)blk)[0];
		}
	}
	msg("verify %s%s%s: %" PRIu64 " blocks: lost %" PRIu64 ", stale %"
	    PRIu64 ", corrupt %" PRIu64 ", mismatch %" PRIu64 ", changed %"
	    PRIu64 "; rewritten %" PRIu64 ", survived %" PRIu64 ", reverted %"
	    PRIu64 ", torn %" PRIu64 ", discarded %" PRIu64, dev,
	    origin ? " vs " : "", origin ? origin : "", nblocks, lost, stale,
	    corrupt, mismatch, changed, moved, survived, reverted, torn, zeroed);
	return (lost || stale || corrupt || mismatch || changed) ? 1 : 0;
}

static int do_poke(int argc, char **argv)
{
	void *buf;
	int fd;

	if (argc < 5 || read_state(argv[2]) || posix_memalign(&buf, BLK, BLK))
		return 2;
	fd = open_dev(argv[3], O_RDWR | O_DSYNC);
	for (int i = 4; i < argc; i++) {
		uint64_t b = strtoull(argv[i], NULL, 0), ver;

		if (b >= nblocks)
			return 2;
		ver = atomic_load(&st[b].submitted) + 1;
		stamp(buf, b, ver);
		if (pwrite(fd, buf, BLK, (off_t)(b * BLK)) != BLK) {
			msg("poke: write of block %" PRIu64 " failed: %s", b,
			    strerror(errno));
			return 2;
		}
		atomic_store(&st[b].submitted, ver);
		atomic_store(&st[b].completed, ver);
	}
	if (close(fd) || write_state(argv[2])) {
		msg("poke: cannot write %s", argv[2]);
		return 2;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: crash_io run -d DEV -n NBLOCKS -o STATE [-w WRITERS] [-r READERS]\n"
		"                    [-p WARM_PASSES] [-y SYNC_EVERY] [-x DISCARD_PERCENT]\n"
		"                    [-t MAX_SECONDS] [-R READY_FILE] [-F FROZEN_FILE]\n"
		"                    [-C CUT_ACTION]...\n"
		"       crash_io verify STATE DEV [ORIGIN]\n"
		"       crash_io poke STATE DEV BLOCK...\n"
		"       crash_io dm CUT_ACTION...\n"
		"NBLOCKS: a multiple of %d; CUT_ACTION: suspend:DM_NAME, resume:DM_NAME,\n"
		"load:DM_NAME:TABLE_LINE or write:PATH:VALUE\n", INIT_CHUNK / BLK);
	return 2;
}

int main(int argc, char **argv)
{
	int r = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "run")) {
		optind = 2;
		r = do_run(argc, argv);
	} else if (!strcmp(argv[1], "verify")) {
		r = do_verify(argc, argv);
	} else if (!strcmp(argv[1], "poke")) {
		r = do_poke(argc, argv);
	} else if (!strcmp(argv[1], "dm")) {
		r = do_dm(argc, argv);
		if (r == 1)
			return 1;
	}
	if (r == 2 && !atomic_load(&nr_ioerr) && !atomic_load(&nr_bad))
		usage();
	return r;
}
