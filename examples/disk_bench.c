/* SPDX-License-Identifier: MIT */
/*
 * disk_bench: what registering a pool's buffers with io_uring saves per
 * disk read. Reads random aligned blocks of a file with O_DIRECT, three
 * ways, at several queue depths, and prints bytes/s and CPU time per GiB,
 * the median of --rounds rounds, as a Markdown table:
 *
 *   fixed   IORING_OP_READ_FIXED into pool buffers registered once
 *           (cbm_pool_regions + io_uring_register_buffers): no page is
 *           pinned or unpinned per read
 *   read    IORING_OP_READ into the same pool buffers, not registered:
 *           the kernel pins and unpins the buffer's pages on each read
 *   pread   pread(2) into malloc'd buffers (posix_memalign 4096, as
 *           O_DIRECT needs), one thread per unit of queue depth
 *
 *   disk_bench --file PATH [--size BYTES] [--block BYTES] [--mib N]
 *              [--rounds N] [--depths 1,8,32]
 *
 * The file is made (--size, 1 GiB) if it is missing or shorter; it must
 * be on a file system with O_DIRECT (not tmpfs). Each round reads --mib
 * MiB (256) per way and depth, the ways interleaved.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cbm.h>

#define MAX_DEPTH 64
#define MAX_ROUNDS 32

enum way { FIXED, READ, PREAD, NWAYS };
static const char *const way_name[] = {"READ_FIXED, registered pool",
				       "READ, pool not registered",
				       "pread, malloc'd"};

struct opts {
	const char *file;
	uint64_t size;
	size_t block;
	uint64_t bytes; /* per way, depth and round */
	unsigned rounds;
	unsigned depths[8], ndepths;
};

static struct opts o = {.size = 1ull << 30,
			.block = 64 * 1024,
			.bytes = 256ull << 20,
			.rounds = 3,
			.depths = {1, 8, 32},
			.ndepths = 3};

static uint64_t
rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A random block-aligned offset in the file. */
static off_t
random_off(uint64_t *s)
{
	return (off_t)(rng(s) % (o.size / o.block) * o.block);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The process's CPU time, user and system, in seconds. */
static double
cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int
make_file(void)
{
	struct stat st;
	char *buf;
	int fd = open(o.file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0 || fstat(fd, &st))
		return -1;
	if ((uint64_t)st.st_size >= o.size)
		return close(fd);
	fprintf(stderr, "disk_bench: writing %llu MiB to %s\n",
		(unsigned long long)(o.size >> 20), o.file);
	buf = malloc(1 << 20);
	if (buf == NULL)
		return -1;
	for (uint64_t off = 0; off < o.size; off += 1 << 20) {
		for (size_t i = 0; i < 1 << 20; i++)
			buf[i] = (char)((off + i) * 131 >> 9);
		if (pwrite(fd, buf, 1 << 20, (off_t)off) != 1 << 20) {
			free(buf);
			close(fd);
			return -1;
		}
	}
	free(buf);
	fsync(fd);
	return close(fd);
}

/* io_uring, depth reads in flight, until o.bytes are read. */
static int
run_uring(struct io_uring *ring, int fd, void **bufs, cbm_pool *pool,
	  unsigned depth, bool fixed)
{
	uint64_t submitted = 0, done = 0, seed = 88172645463325252ull;
	unsigned inflight = 0;

	while (done < o.bytes) {
		struct io_uring_cqe *cqe;

		while (inflight < depth && submitted < o.bytes) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
			unsigned slot = (unsigned)(submitted / o.block) % depth;
			void *b = bufs[slot];

			if (fixed)
				io_uring_prep_read_fixed(
					sqe, fd, b, (unsigned)o.block,
					random_off(&seed),
					cbm_region_index(pool, b));
			else
				io_uring_prep_read(sqe, fd, b,
						   (unsigned)o.block,
						   random_off(&seed));
			submitted += o.block;
			inflight++;
		}
		if (io_uring_submit_and_wait(ring, 1) < 0)
			return -1;
		while (io_uring_peek_cqe(ring, &cqe) == 0) {
			if (cqe->res != (int)o.block) {
				fprintf(stderr, "disk_bench: read: %s\n",
					cqe->res < 0 ? strerror(-cqe->res)
						     : "short");
				return -1;
			}
			io_uring_cqe_seen(ring, cqe);
			inflight--;
			done += o.block;
		}
	}
	return 0;
}

struct preader {
	int fd;
	void *buf;
	uint64_t bytes, seed;
	int rc;
};

static void *
preader(void *arg)
{
	struct preader *p = arg;

	for (uint64_t done = 0; done < p->bytes; done += o.block)
		if (pread(p->fd, p->buf, o.block, random_off(&p->seed)) !=
		    (ssize_t)o.block) {
			p->rc = -1;
			break;
		}
	return NULL;
}

static int
run_pread(int fd, void **bufs, unsigned depth)
{
	pthread_t t[MAX_DEPTH];
	struct preader p[MAX_DEPTH];
	int rc = 0;

	for (unsigned i = 0; i < depth; i++) {
		p[i] = (struct preader){.fd = fd,
					.buf = bufs[i],
					.bytes = o.bytes / depth,
					.seed = 88172645463325252ull + i};
		pthread_create(&t[i], NULL, preader, &p[i]);
	}
	for (unsigned i = 0; i < depth; i++) {
		pthread_join(t[i], NULL);
		rc |= p[i].rc;
	}
	return rc;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

static bool
parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			return false;
		i++;
		if (strcmp(a, "--file") == 0)
			o.file = v;
		else if (strcmp(a, "--size") == 0)
			o.size = strtoull(v, NULL, 0);
		else if (strcmp(a, "--block") == 0)
			o.block = strtoull(v, NULL, 0);
		else if (strcmp(a, "--mib") == 0)
			o.bytes = strtoull(v, NULL, 0) << 20;
		else if (strcmp(a, "--rounds") == 0)
			o.rounds = (unsigned)atoi(v);
		else if (strcmp(a, "--depths") == 0) {
			char *s = strdup(v), *tok, *save = NULL;

			o.ndepths = 0;
			for (tok = strtok_r(s, ",", &save);
			     tok && o.ndepths < 8;
			     tok = strtok_r(NULL, ",", &save))
				o.depths[o.ndepths++] = (unsigned)atoi(tok);
			free(s);
		} else
			return false;
	}
	if (o.file == NULL || o.block < 4096 || o.block % 4096 ||
	    o.block > (1 << 20) || o.size < o.block || o.rounds < 1 ||
	    o.rounds > MAX_ROUNDS || o.bytes < o.block || o.ndepths == 0)
		return false;
	for (unsigned d = 0; d < o.ndepths; d++)
		if (o.depths[d] < 1 || o.depths[d] > MAX_DEPTH ||
		    o.bytes / o.block < o.depths[d])
			return false;
	return true;
}

int
main(int argc, char **argv)
{
	static double rate[NWAYS][8][MAX_ROUNDS], cpu_gib[NWAYS][8][MAX_ROUNDS];
	cbm_pool_config cfg = {.align = 4096, .name = "disk_bench"};
	void *pool_bufs[MAX_DEPTH], *heap_bufs[MAX_DEPTH];
	struct io_uring fixed_ring, plain_ring;
	struct iovec iov[4];
	cbm_pool *pool;
	int fd, n;

	if (!parse(argc, argv)) {
		fprintf(stderr,
			"usage: %s --file PATH [--size BYTES] [--block BYTES "
			"(4 KiB multiple, <= 1 MiB)] [--mib N] [--rounds N] "
			"[--depths 1,8,32 (<= %d)]\n",
			argv[0], MAX_DEPTH);
		return 2;
	}
	if (make_file()) {
		fprintf(stderr, "disk_bench: %s: %s\n", o.file,
			strerror(errno));
		return 1;
	}
	fd = open(o.file, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "disk_bench: O_DIRECT open of %s: %s%s\n",
			o.file, strerror(errno),
			errno == EINVAL ? " (tmpfs? use a real disk)" : "");
		return 1;
	}
	cfg.block_size = o.block;
	cfg.capacity = MAX_DEPTH;
	if (cbm_pool_create(&cfg, &pool) ||
	    cbm_alloc_bulk(pool, pool_bufs, MAX_DEPTH))
		return 1;
	for (unsigned i = 0; i < MAX_DEPTH; i++)
		if (posix_memalign(&heap_bufs[i], 4096, o.block))
			return 1;
	n = cbm_pool_regions(pool, iov, 4);
	if (io_uring_queue_init(2 * MAX_DEPTH, &fixed_ring, 0) ||
	    io_uring_queue_init(2 * MAX_DEPTH, &plain_ring, 0) || n < 1 ||
	    io_uring_register_buffers(&fixed_ring, iov, (unsigned)n)) {
		fprintf(stderr, "disk_bench: io_uring or its registered "
				"buffers are not available here\n");
		return 77;
	}
	for (unsigned r = 0; r < o.rounds; r++)
		for (unsigned d = 0; d < o.ndepths; d++)
			for (int w = 0; w < NWAYS; w++) {
				unsigned depth = o.depths[d];
				double t0 = now(), c0 = cpu(), t, c;
				int rc = w == PREAD ? run_pread(fd, heap_bufs,
								depth)
					 : w == FIXED
						 ? run_uring(&fixed_ring, fd,
							     pool_bufs, pool,
							     depth, true)
						 : run_uring(&plain_ring, fd,
							     pool_bufs, pool,
							     depth, false);

				t = now() - t0;
				c = cpu() - c0;
				if (rc)
					return 1;
				rate[w][d][r] = (double)o.bytes / t;
				cpu_gib[w][d][r] =
					c / ((double)o.bytes / (1 << 30));
			}
	printf("| way | depth | MiB/s | CPU s per GiB |\n|---|---:|---:|---:|"
	       "\n");
	for (unsigned d = 0; d < o.ndepths; d++)
		for (int w = 0; w < NWAYS; w++)
			printf("| %s | %u | %.0f | %.3f |\n", way_name[w],
			       o.depths[d],
			       median(rate[w][d], o.rounds) / (1 << 20),
			       median(cpu_gib[w][d], o.rounds));
	printf("\n%llu KiB random O_DIRECT reads of a %llu MiB file, %llu "
	       "MiB per cell and round, median of %u rounds.\n",
	       (unsigned long long)(o.block >> 10),
	       (unsigned long long)(o.size >> 20),
	       (unsigned long long)(o.bytes >> 20), o.rounds);
	io_uring_queue_exit(&fixed_ring);
	io_uring_queue_exit(&plain_ring);
	cbm_free_bulk(pool, pool_bufs, MAX_DEPTH);
	cbm_pool_destroy(pool);
	for (unsigned i = 0; i < MAX_DEPTH; i++)
		free(heap_bufs[i]);
	close(fd);
	return 0;
}
