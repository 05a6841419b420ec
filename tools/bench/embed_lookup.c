// SPDX-License-Identifier: GPL-2.0
/*
 * embed_lookup: an inference-shaped read client for the dm-infercache
 * benchmark (workload f).
 *
 * An "embedding table" is a file of fixed-size rows (4 KiB by default). A
 * recommender or LLM embedding layer looks rows up by id: small random reads,
 * a few popular ids read very often. This program
 *
 *   embed_lookup create FILE ROWS [ROW_SIZE]
 *       writes the table with O_DIRECT, one header per row (magic, row id),
 *       then fsyncs it;
 *   embed_lookup lookup FILE [options]
 *       looks rows up with O_DIRECT pread from T threads (one outstanding
 *       read per thread), checks each row's header, and prints one JSON
 *       object: lookups/s, mean and p50/p99/p99.9 latency, header errors.
 *
 * Lookup options:
 *   -t THREADS   worker threads = reads in flight (default 4)
 *   -n OPS       lookups in total, split over the threads (default 10000)
 *   -d DIST      "zipf:S" (default zipf:1.1) or "uniform"
 *   -s SEED      random seed (default 1); the same seed gives the same ids
 *   -l LABEL     copied into the JSON output
 *
 * Zipf: rank k (1 = most popular) has weight k^-S; ranks are mapped to rows
 * through a fixed random permutation (seed 12345, independent of -s), so the
 * popular rows are scattered over the file as hashed ids would be, and every
 * run with the same file size agrees on which rows are popular.
 *
 * Build: cc -O2 -pthread -o embed_lookup embed_lookup.c -lm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ROW_MAGIC 0x656d6265646f6b21ULL	/* "embedok!" */
#define ALIGN 4096

struct row_header {
	uint64_t magic;
	uint64_t row;
};

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "embed_lookup: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "%s%s\n", errno ? ": " : "", errno ? strerror(errno) : "");
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: small, fast, good enough to pick rows. */
static uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static double rnd_unit(uint64_t *s)
{
	return (rnd_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t seed_mix(uint64_t a, uint64_t b)
{
	uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return (z ^ (z >> 31)) | 1;
}

/* ------------------------------------------------------------ create */

static int do_create(const char *path, uint64_t rows, uint64_t row_size)
{
	const size_t chunk = 1 << 20;
	uint64_t total = rows * row_size, done = 0, r;
	char *buf;
	int fd;

	if (row_size < sizeof(struct row_header) || row_size % ALIGN ||
	    chunk % row_size)
		die("bad row size %s", "(must be a multiple of 4096 dividing 1 MiB)");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
	if (fd < 0)
		die("cannot create %s", path);
	if (posix_memalign((void **)&buf, ALIGN, chunk))
		die("out of memory%s", "");
	while (done < total) {
		size_t len = total - done < chunk ? total - done : chunk;

		memset(buf, 0x5a, len);
		for (r = 0; r < len / row_size; r++) {
			struct row_header h = { ROW_MAGIC, done / row_size + r };

			memcpy(buf + r * row_size, &h, sizeof(h));
		}
		if (pwrite(fd, buf, len, done) != (ssize_t)len)
			die("write to %s failed", path);
		done += len;
	}
	if (fsync(fd))
		die("fsync %s failed", path);
	close(fd);
	free(buf);
	printf("{\"created\":\"%s\",\"rows\":%" PRIu64 ",\"row_size\":%" PRIu64 "}\n",
	       path, rows, row_size);
	return 0;
}

/* ------------------------------------------------------------ lookup */

struct shared {
	int fd;
	uint64_t rows, row_size;
	double *cdf;		/* zipf: cumulative weight of ranks 1..k; NULL: uniform */
	uint64_t *perm;		/* rank -> row */
	uint64_t seed;
};

struct worker {
	pthread_t tid;
	struct shared *sh;
	unsigned int id;
	uint64_t ops;
	double *lat;		/* seconds, one per lookup */
	uint64_t errors;
};

static uint64_t pick_row(struct shared *sh, uint64_t *rs)
{
	uint64_t lo = 0, hi;
	double u;

	if (!sh->cdf)
		return rnd_next(rs) % sh->rows;
	u = rnd_unit(rs) * sh->cdf[sh->rows - 1];
	hi = sh->rows - 1;
	while (lo < hi) {	/* first rank whose cumulative weight >= u */
		uint64_t mid = lo + (hi - lo) / 2;

		if (sh->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return sh->perm[lo];
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	uint64_t rs = seed_mix(sh->seed, w->id), i;
	char *buf;

	if (posix_memalign((void **)&buf, ALIGN, sh->row_size))
		die("out of memory%s", "");
	for (i = 0; i < w->ops; i++) {
		uint64_t row = pick_row(sh, &rs);
		struct row_header h;
		double t0 = now_s();
		ssize_t n = pread(sh->fd, buf, sh->row_size, row * sh->row_size);

		w->lat[i] = now_s() - t0;
		if (n != (ssize_t)sh->row_size)
			die("read failed on row lookup%s", "");
		memcpy(&h, buf, sizeof(h));
		if (h.magic != ROW_MAGIC || h.row != row)
			w->errors++;
	}
	free(buf);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *v, uint64_t n, double p)
{
	uint64_t i = (uint64_t)ceil(p / 100.0 * n);

	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

static int do_lookup(int argc, char **argv)
{
	const char *path = argv[2], *dist = "zipf:1.1", *label = "";
	unsigned int threads = 4, t;
	uint64_t ops = 10000, k, n = 0, errors = 0;
	struct shared sh = { .row_size = 4096, .seed = 1 };
	struct worker *w;
	double theta = 0, t0, secs, sum = 0, *all;
	struct stat st;
	int opt;

	optind = 3;
	while ((opt = getopt(argc, argv, "t:n:d:s:l:r:")) != -1) {
		switch (opt) {
		case 't': threads = strtoul(optarg, NULL, 0); break;
		case 'n': ops = strtoull(optarg, NULL, 0); break;
		case 'd': dist = optarg; break;
		case 's': sh.seed = strtoull(optarg, NULL, 0); break;
		case 'l': label = optarg; break;
		case 'r': sh.row_size = strtoull(optarg, NULL, 0); break;
		default: die("bad option%s", "");
		}
	}
	if (!threads || !ops || sh.row_size % ALIGN)
		die("bad -t, -n or -r value%s", "");
	sh.fd = open(path, O_RDONLY | O_DIRECT);
	if (sh.fd < 0 || fstat(sh.fd, &st))
		die("cannot open %s", path);
	sh.rows = st.st_size / sh.row_size;
	if (!sh.rows)
		die("%s holds no rows", path);

	if (!strncmp(dist, "zipf:", 5)) {
		uint64_t ps = 12345;

		theta = strtod(dist + 5, NULL);
		if (theta <= 0)
			die("bad zipf exponent in %s", dist);
		sh.cdf = malloc(sh.rows * sizeof(*sh.cdf));
		sh.perm = malloc(sh.rows * sizeof(*sh.perm));
		if (!sh.cdf || !sh.perm)
			die("out of memory%s", "");
		for (k = 0; k < sh.rows; k++) {
			sum += pow((double)(k + 1), -theta);
			sh.cdf[k] = sum;
			sh.perm[k] = k;
		}
		for (k = sh.rows - 1; k > 0; k--) {	/* Fisher-Yates */
			uint64_t j = rnd_next(&ps) % (k + 1), tmp = sh.perm[k];

			sh.perm[k] = sh.perm[j];
			sh.perm[j] = tmp;
		}
	} else if (strcmp(dist, "uniform")) {
		die("unknown distribution %s", dist);
	}

	w = calloc(threads, sizeof(*w));
	if (!w)
		die("out of memory%s", "");
	for (t = 0; t < threads; t++) {
		w[t].sh = &sh;
		w[t].id = t;
		w[t].ops = ops / threads + (t < ops % threads);
		w[t].lat = malloc((w[t].ops + 1) * sizeof(double));
		if (!w[t].lat)
			die("out of memory%s", "");
	}
	t0 = now_s();
	for (t = 0; t < threads; t++)
		if (pthread_create(&w[t].tid, NULL, worker_main, &w[t]))
			die("pthread_create failed%s", "");
	for (t = 0; t < threads; t++)
		pthread_join(w[t].tid, NULL);
	secs = now_s() - t0;

	all = malloc(ops * sizeof(double));
	if (!all)
		die("out of memory%s", "");
	sum = 0;
	for (t = 0; t < threads; t++) {
		memcpy(all + n, w[t].lat, w[t].ops * sizeof(double));
		n += w[t].ops;
		errors += w[t].errors;
	}
	for (k = 0; k < n; k++)
		sum += all[k];
	qsort(all, n, sizeof(double), cmp_double);
	printf("{\"label\":\"%s\",\"rows\":%" PRIu64 ",\"row_size\":%" PRIu64
	       ",\"threads\":%u,\"dist\":\"%s\",\"seed\":%" PRIu64
	       ",\"lookups\":%" PRIu64 ",\"secs\":%.6f,\"lookups_per_s\":%.1f"
	       ",\"mean_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f"
	       ",\"p999_us\":%.1f,\"max_us\":%.1f,\"errors\":%" PRIu64 "}\n",
	       label, sh.rows, sh.row_size, threads, dist, sh.seed, n, secs,
	       n / secs, sum / n * 1e6, pct(all, n, 50) * 1e6,
	       pct(all, n, 99) * 1e6, pct(all, n, 99.9) * 1e6,
	       all[n - 1] * 1e6, errors);
	close(sh.fd);
	return errors ? 3 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "create"))
		return do_create(argv[2], strtoull(argv[3], NULL, 0),
				 argc > 4 ? strtoull(argv[4], NULL, 0) : 4096);
	if (argc >= 3 && !strcmp(argv[1], "lookup"))
		return do_lookup(argc, argv);
	fprintf(stderr,
		"usage: embed_lookup create FILE ROWS [ROW_SIZE]\n"
		"       embed_lookup lookup FILE [-t THREADS] [-n OPS] [-d zipf:S|uniform] [-s SEED] [-l LABEL] [-r ROW_SIZE]\n");
	return 2;
}
