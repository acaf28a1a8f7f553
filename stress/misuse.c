/* SPDX-License-Identifier: MIT */
/*
 * Scenario misuse: some threads make every kind of mistake the library
 * promises to catch, while others do honest work in the same debug pool:
 * frees of foreign pointers (stack, heap, another pool's buffer), of
 * interior pointers, bulk frees mixing good and bad pointers, double
 * retires and frees of retired buffers, and writes past the end of a
 * buffer. Each mistake must be reported exactly once with the right kind,
 * no honest holder may be disturbed, and the pool must be whole at the end
 * (with the damaged buffers dropped, and counted as held).
 *
 * A double free is only well defined while nobody can have been handed the
 * buffer again, so the double frees here are made on a buffer retired
 * inside the misuser's own read-side section: no grace period can end, so
 * it stays retired until the section ends.
 *
 * Planted fault it catches: no-debug-state (misuse reported).
 */
/* This file misuses the API on purpose; gcc sees it too (cbm.h's
 * CBM_ALLOCATOR) and would stop the build. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wmismatched-dealloc"
#if __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

enum { FOREIGN, MISALIGNED, DOUBLE_FREE, OVERFLOW, KINDS };

struct misuse {
	cbm_pool *pool, *other;
	struct tracker t;
	atomic_ulong reports[KINDS + 1]; /* by kind; KINDS: any other */
	atomic_ulong expected[KINDS];
	atomic_ulong dropped;
};

static struct run *the_run;
static struct misuse *the_misuse;

/* The handler runs on the thread that made the bad call (cbm.h), so each
 * misuser can check at once that its own mistake was reported. */
static _Thread_local unsigned long my_reports[KINDS + 1];

static int
kind_of(int err)
{
	switch (err) {
	case CBM_ERR_FOREIGN:
		return FOREIGN;
	case CBM_ERR_MISALIGNED:
		return MISALIGNED;
	case CBM_ERR_DOUBLE_FREE:
		return DOUBLE_FREE;
	case CBM_ERR_OVERFLOW:
		return OVERFLOW;
	default:
		return KINDS;
	}
}

static void
count_report(void *arg, const cbm_pool *pool, int err, const void *ptr,
	     const char *what)
{
	int k = kind_of(err);

	(void)arg;
	(void)ptr;
	my_reports[k]++;
	atomic_fetch_add(&the_misuse->reports[k], 1);
	check(the_run, INV_MISUSE, k != KINDS || err == CBM_ERR_LEAK,
	      "unexpected report from '%s': %s", cbm_pool_name(pool), what);
}

/* The misuse just made must have been reported n times, as kind. */
static void
expect(struct run *run, struct misuse *m, const unsigned long *before, int kind,
       unsigned long n)
{
	atomic_fetch_add(&m->expected[kind], n);
	check(run, INV_MISUSE, my_reports[kind] - before[kind] == n,
	      "%lu of %lu misuses of kind %d reported",
	      my_reports[kind] - before[kind], n, kind);
}

static void
misuser(struct run *run, struct misuse *m, struct rng *r)
{
	int local;
	void *heap = malloc(64);

	while (!atomic_load(&run->stop)) {
		char *b = cbm_alloc(m->pool);
		void *bulk[3];
		unsigned long before[KINDS + 1];

		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (b == NULL) {
			atomic_fetch_add(&run->empty, 1);
			continue;
		}
		memcpy(before, my_reports, sizeof(before));
		switch (rng_below(r, 6)) {
		case 0:
			cbm_free(m->pool, &local);
			cbm_free(m->pool, heap);
			expect(run, m, before, FOREIGN, 2);
			cbm_free(m->pool, b);
			break;
		case 1: {
			void *theirs = cbm_alloc(m->other);

			if (theirs != NULL) {
				cbm_free(m->pool, theirs);
				expect(run, m, before, FOREIGN, 1);
				cbm_free(m->other, theirs);
			}
			cbm_free(m->pool, b);
			break;
		}
		case 2:
			cbm_free(m->pool, b + 1 + rng_below(r, 63));
			expect(run, m, before, MISALIGNED, 1);
			cbm_free(m->pool, b);
			break;
		case 3:
			bulk[0] = &local;
			bulk[1] = b + 8;
			bulk[2] = b;
			cbm_free_bulk(m->pool, bulk, 3);
			expect(run, m, before, FOREIGN, 1);
			expect(run, m, before, MISALIGNED, 1);
			break;
		case 4:
			cbm_read_lock();
			cbm_retire(m->pool, b);
			cbm_retire(m->pool, b);
			cbm_free(m->pool, b);
			expect(run, m, before, DOUBLE_FREE, 2);
			cbm_read_unlock();
			break;
		default:
			if (rng_below(r, 8) == 0 &&
			    atomic_load(&m->dropped) < m->t.capacity / 8) {
				/* Rare: each costs the pool a buffer. */
				b[cbm_block_size(m->pool)] ^= 1;
				cbm_free(m->pool, b);
				expect(run, m, before, OVERFLOW, 1);
				atomic_fetch_add(&m->dropped, 1);
				break;
			}
			cbm_free(m->pool, b);
			break;
		}
	}
	free(heap);
}

static void
honest(struct run *run, struct misuse *m, unsigned index, struct rng *r)
{
	void *held[16];
	unsigned n = 0;
	uint64_t serial = 0;

	while (!atomic_load(&run->stop)) {
		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (n < 16 && rng_below(r, 2)) {
			void *b = cbm_alloc(m->pool);

			if (b == NULL) {
				atomic_fetch_add(&run->empty, 1);
				continue;
			}
			tracker_claim(run, &m->t, b, index + 1, ++serial);
			held[n++] = b;
		} else if (n > 0) {
			tracker_release(run, &m->t, held[--n], index + 1);
			cbm_free(m->pool, held[n]);
		}
	}
	while (n > 0) {
		tracker_release(run, &m->t, held[--n], index + 1);
		cbm_free(m->pool, held[n]);
	}
}

static void
misuse_worker(struct run *run, unsigned index, void *arg)
{
	struct misuse *m = arg;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	if (index % 2)
		misuser(run, m, &r);
	else
		honest(run, m, index, &r);
}

void
scenario_misuse(struct run *run)
{
	cbm_pool_config cfg =
		pool_config(run, 32 * run->opt.threads, 4, 64, CBM_POOL_DEBUG);
	static const char *const kind_name[KINDS] = {"foreign", "interior",
						     "double free", "overflow"};
	static struct misuse m;
	cbm_pool_config other = cfg;

	other.name = "other";
	if (cbm_pool_create(&cfg, &m.pool) != 0 ||
	    cbm_pool_create(&other, &m.other) != 0)
		abort();
	tracker_init(&m.t, m.pool);
	the_run = run;
	the_misuse = &m;
	cbm_set_error_handler(count_report, NULL);
	run_threads(run, run->opt.threads, misuse_worker, &m);
	cbm_barrier(m.pool);
	for (int k = 0; k < KINDS; k++) {
		unsigned long want = atomic_load(&m.expected[k]);
		unsigned long got = atomic_load(&m.reports[k]);

		printf("  %-12s misuses %8lu, reports %8lu\n", kind_name[k],
		       want, got);
		check(run, INV_MISUSE, got == want,
		      "%lu %s misuses but %lu reports", want, kind_name[k],
		      got);
	}
	print_pool("pool", m.pool);
	check_capacity(run, m.pool, atomic_load(&m.dropped));
	check_conserved(run, m.pool, atomic_load(&m.dropped));
	tracker_fini(&m.t);
	/* The dropped buffers are reported as a leak: expected here. */
	cbm_pool_destroy(m.pool);
	cbm_pool_destroy(m.other);
}
