/* SPDX-License-Identifier: MIT */
/*
 * Scenario retire: readers, inside cbm_read_lock, check that every
 * published buffer still holds what its writer put there; writers replace
 * published buffers and cbm_retire the old ones; churners allocate, stamp
 * and free as fast as they can, so that a reclaimed buffer is reused at
 * once. A retired buffer handed out while a reader could still see it shows
 * up as a torn read (grace).
 *
 * Planted fault it catches: no-grace.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "stress.h"

#define SLOTS 8
#define WORDS 8 /* 64-byte buffers */

struct retire {
	cbm_pool *pool;
	struct tracker t;
	_Atomic(uint64_t *) slot[SLOTS];
	atomic_ulong reads, writes;
};

static void
reader(struct run *run, struct retire *x)
{
	unsigned long reads = 0;

	while (!atomic_load(&run->stop)) {
		cbm_read_lock();
		for (int s = 0; s < SLOTS; s++) {
			uint64_t *p = atomic_load(&x->slot[s]);
			bool same = true;

			for (int w = 1; w < WORDS; w++)
				same &= p[w] == p[0];
			check(run, INV_GRACE, same,
			      "slot %d: buffer %u changed under a reader", s,
			      tracker_index(&x->t, p));
		}
		cbm_read_unlock();
		reads++;
	}
	atomic_fetch_add(&x->reads, reads);
}

static void
writer(struct run *run, struct retire *x, struct rng *r)
{
	unsigned long writes = 0;

	while (!atomic_load(&run->stop)) {
		uint64_t *p = cbm_alloc(x->pool), *old;
		uint64_t v = rng_next(r);

		if (p == NULL) {
			atomic_fetch_add(&run->empty, 1);
			sched_yield();
			continue;
		}
		for (int w = 0; w < WORDS; w++)
			p[w] = v;
		old = atomic_exchange(&x->slot[rng_below(r, SLOTS)], p);
		cbm_retire(x->pool, old);
		writes++;
		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
	}
	atomic_fetch_add(&x->writes, writes);
}

static void
churner(struct run *run, struct retire *x, unsigned index, struct rng *r)
{
	uint64_t serial = 0;

	while (!atomic_load(&run->stop)) {
		void *b[4];
		unsigned n = 1 + rng_below(r, 4);

		if (cbm_alloc_bulk(x->pool, b, n) != 0) {
			atomic_fetch_add(&run->empty, 1);
			sched_yield();
			continue;
		}
		/* The stamp makes a buffer's words differ. */
		for (unsigned i = 0; i < n; i++)
			tracker_claim(run, &x->t, b[i], index + 1, ++serial);
		for (unsigned i = 0; i < n; i++)
			tracker_release(run, &x->t, b[i], index + 1);
		cbm_free_bulk(x->pool, b, n);
		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
	}
}

static void
retire_worker(struct run *run, unsigned index, void *arg)
{
	struct retire *x = arg;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	switch (index % 4) {
	case 0:
	case 2:
		reader(run, x);
		break;
	case 1:
		writer(run, x, &r);
		break;
	default:
		churner(run, x, index, &r);
		break;
	}
}

void
scenario_retire(struct run *run)
{
	/* Small enough that reclaimed buffers are reused soon, big enough that
	 * slow grace periods (readers preempted inside sections) leave writers
	 * something to allocate. */
	cbm_pool_config cfg =
		pool_config(run, 32 * run->opt.threads, 4, WORDS * 8, 0);
	static struct retire x;
	cbm_stats st;

	if (cbm_pool_create(&cfg, &x.pool) != 0)
		abort();
	tracker_init(&x.t, x.pool);
	for (int s = 0; s < SLOTS; s++) {
		uint64_t *p = cbm_alloc(x.pool);

		for (int w = 0; w < WORDS; w++)
			p[w] = (uint64_t)s;
		atomic_store(&x.slot[s], p);
	}
	run_threads(run, run->opt.threads, retire_worker, &x);
	for (int s = 0; s < SLOTS; s++)
		cbm_retire(x.pool, atomic_load(&x.slot[s]));
	cbm_barrier(x.pool);
	cbm_pool_stats(x.pool, &st);
	printf("  reads %lu, writes (retires) %lu, %.1f buffers per grace "
	       "period\n",
	       atomic_load(&x.reads), atomic_load(&x.writes),
	       st.grace_periods ? (double)st.reclaimed / st.grace_periods : 0);
	print_pool("pool", x.pool);
	check_capacity(run, x.pool, 0);
	check_conserved(run, x.pool, 0);
	tracker_fini(&x.t);
	cbm_pool_destroy(x.pool);
}
