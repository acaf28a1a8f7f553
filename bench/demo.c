/* SPDX-License-Identifier: MIT */
/*
 * cbm_demo: alloc+free pairs per second, per thread count, for cbm and for
 * malloc/free of the same size, measured side by side in one run.
 *
 * Each repetition runs cbm and then malloc at the same thread count, so both
 * see the same machine weather; the table shows medians over repetitions.
 * Thread counts above the CPU count are oversubscribed and marked so.
 *
 * With --retire, threads allocate and retire (cbm_retire) instead, and the
 * table shows buffers retired per second and how many buffers each grace
 * period returned on average.
 *
 *   cbm_demo [--seconds S] [--reps R] [--size BYTES] [--threads 1,2,4,8]
 *            [--retire]
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "cbm.h"

#define MAX_THREADS 64
#define MAX_REPS 15

enum subject { CBM, MALLOC, CBM_RETIRE };

struct run {
	enum subject subject;
	cbm_pool *pool;
	size_t size;
	atomic_bool *stop;
	atomic_int *ready;
	unsigned long pairs;
};

static void
escape(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static void *
worker(void *arg)
{
	struct run *r = arg;
	unsigned long pairs = 0;

	atomic_fetch_add(r->ready, 1);
	while (!atomic_load_explicit(r->stop, memory_order_relaxed)) {
		for (int i = 0; i < 1024; i++) {
			if (r->subject == CBM) {
				void *p = cbm_alloc(r->pool);

				escape(p);
				cbm_free(r->pool, p);
			} else if (r->subject == CBM_RETIRE) {
				void *p = cbm_alloc(r->pool);

				/* Dry while buffers wait for their grace
				 * period: count only what was retired. */
				if (p == NULL) {
					pairs--;
					continue;
				}
				cbm_retire(r->pool, p);
			} else {
				void *p = malloc(r->size);

				escape(p);
				free(p);
			}
		}
		pairs += 1024;
	}
	r->pairs = pairs;
	return NULL;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Aggregate pairs per second of one run of n threads. */
static double
measure(enum subject s, cbm_pool *pool, size_t size, int n, double seconds)
{
	pthread_t t[MAX_THREADS];
	struct run r[MAX_THREADS];
	atomic_bool stop = false;
	atomic_int ready = 0;
	unsigned long total = 0;
	double t0, t1;

	for (int i = 0; i < n; i++) {
		r[i] = (struct run){.subject = s,
				    .pool = pool,
				    .size = size,
				    .stop = &stop,
				    .ready = &ready};
		pthread_create(&t[i], NULL, worker, &r[i]);
	}
	while (atomic_load(&ready) < n)
		sched_yield();
	t0 = now();
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stop, true);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		total += r[i].pairs;
	}
	t1 = now();
	return total / (t1 - t0);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int
main(int argc, char **argv)
{
	double seconds = 0.3;
	int reps = 5;
	size_t size = 2048;
	int threads[16] = {1, 2, 4, 8};
	int nthreads = 4;
	int retire = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cbm_pool_config cfg = {.capacity = 65536, .name = "demo"};
	cbm_pool *pool;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--retire"))
			retire = 1;
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			char *s = argv[++i];

			for (nthreads = 0; nthreads < 16 && *s; nthreads++) {
				threads[nthreads] = (int)strtol(s, &s, 10);
				if (*s == ',')
					s++;
			}
		} else {
			fprintf(stderr,
				"usage: %s [--seconds S] [--reps R] "
				"[--size BYTES] [--threads 1,2,4,8] "
				"[--retire]\n",
				argv[0]);
			return 2;
		}
	}
	if (reps < 1 || reps > MAX_REPS || seconds <= 0 || size == 0) {
		fprintf(stderr, "bad --reps (1..%d), --seconds or --size\n",
			MAX_REPS);
		return 2;
	}
	for (int i = 0; i < nthreads; i++) {
		if (threads[i] < 1 || threads[i] > MAX_THREADS) {
			fprintf(stderr, "threads must be 1..%d\n", MAX_THREADS);
			return 2;
		}
	}
	cfg.block_size = size;
	rc = cbm_pool_create(&cfg, &pool);
	if (rc != 0) {
		fprintf(stderr, "cbm_pool_create: %s\n", strerror(-rc));
		return 1;
	}

	if (retire) {
		printf("alloc+retire of %zu-byte buffers, %ld CPUs online, "
		       "median of %d x %.2f s\n\n",
		       size, cpus, reps, seconds);
		printf("%-8s %16s %16s\n", "threads", "Mretired/s",
		       "buffers/grace");
		for (int i = 0; i < nthreads; i++) {
			double c[MAX_REPS];
			cbm_stats a, b;

			cbm_pool_stats(pool, &a);
			for (int k = 0; k < reps; k++)
				c[k] = measure(CBM_RETIRE, pool, size,
					       threads[i], seconds);
			cbm_barrier(pool);
			cbm_pool_stats(pool, &b);
			printf("%-8d %16.2f %16.1f%s\n", threads[i],
			       median(c, reps) / 1e6,
			       (double)(b.reclaimed - a.reclaimed) /
				       (double)(b.grace_periods -
						a.grace_periods),
			       threads[i] > cpus ? "  (oversubscribed)" : "");
		}
		cbm_pool_destroy(pool);
		return 0;
	}
	printf("alloc+free pairs of %zu-byte buffers, %ld CPUs online, "
	       "median of %d x %.2f s\n\n",
	       size, cpus, reps, seconds);
	printf("%-8s %14s %14s %14s %14s %8s\n", "threads", "cbm Mpairs/s",
	       "per thread", "malloc Mp/s", "per thread", "cbm/mall");
	for (int i = 0; i < nthreads; i++) {
		int n = threads[i];
		double c[MAX_REPS], m[MAX_REPS], cm, mm;

		for (int k = 0; k < reps; k++) {
			c[k] = measure(CBM, pool, size, n, seconds);
			m[k] = measure(MALLOC, pool, size, n, seconds);
		}
		cm = median(c, reps) / 1e6;
		mm = median(m, reps) / 1e6;
		printf("%-8d %14.1f %14.1f %14.1f %14.1f %7.2fx%s\n", n, cm,
		       cm / n, mm, mm / n, cm / mm,
		       n > cpus ? "  (oversubscribed)" : "");
	}
	cbm_pool_destroy(pool);
	return 0;
}
