/* SPDX-License-Identifier: MIT */
/*
 * Scenario lifecycle: half the threads keep one pool hot; the other half
 * create pools of random shapes (sizes, magazines, debug or not), use them
 * (alloc, bulk, free, retire), check them, and destroy them, over and over,
 * so that the registry, the reclamation thread and the fork handlers see
 * pools come and go under load. Each short-lived pool must verify clean
 * before its destroy, and destroy must report no leak.
 *
 * Planted fault it catches: lose-buffer (conservation).
 */
#include <stdio.h>
#include <stdlib.h>

#include "stress.h"

struct lifecycle {
	cbm_pool *hot;
	struct tracker t;
	atomic_ulong pools;
};

static void
hot_worker(struct run *run, struct lifecycle *l, unsigned index, struct rng *r)
{
	uint64_t serial = 0;

	while (!atomic_load(&run->stop)) {
		void *b[8];
		unsigned n = 1 + rng_below(r, 8);

		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (cbm_alloc_bulk(l->hot, b, n) != 0) {
			atomic_fetch_add(&run->empty, 1);
			continue;
		}
		for (unsigned i = 0; i < n; i++)
			tracker_claim(run, &l->t, b[i], index + 1, ++serial);
		for (unsigned i = 0; i < n; i++)
			tracker_release(run, &l->t, b[i], index + 1);
		if (n > 1)
			cbm_retire(l->hot, b[--n]);
		cbm_free_bulk(l->hot, b, n);
	}
}

static void
one_pool(struct run *run, struct rng *r)
{
	cbm_pool_config cfg = {
		.block_size = 16u << rng_below(r, 9),
		.capacity = 16 + rng_below(r, 500),
		.magazine_size = rng_below(r, 9),
		.flags = rng_below(r, 2) ? CBM_POOL_DEBUG : 0,
		.name = "short-lived",
	};
	cbm_pool *pool;
	void *b[64];
	unsigned n;

	if (cbm_pool_create(&cfg, &pool) != 0) {
		check(run, INV_CONSERVATION, false, "pool create failed");
		return;
	}
	for (int round = 0; round < 20; round++) {
		n = 1 + rng_below(r, 64);
		if (cbm_alloc_bulk(pool, b, n) != 0)
			continue;
		for (unsigned i = 0; i < n; i++) {
			if (i % 3 == 0)
				cbm_retire(pool, b[i]);
			else
				cbm_free(pool, b[i]);
		}
	}
	cbm_barrier(pool);
	check(run, INV_CONSERVATION, cbm_pool_verify(pool) == 0,
	      "a short-lived pool failed verify (report above)");
	check_capacity(run, pool, 0);
	cbm_pool_destroy(pool); /* a leak here is an unexpected report */
}

static void
lifecycle_worker(struct run *run, unsigned index, void *arg)
{
	struct lifecycle *l = arg;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	if (index % 2 == 0) {
		hot_worker(run, l, index, &r);
		return;
	}
	while (!atomic_load(&run->stop)) {
		one_pool(run, &r);
		atomic_fetch_add(&l->pools, 1);
		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
	}
}

void
scenario_lifecycle(struct run *run)
{
	cbm_pool_config cfg =
		pool_config(run, 16 * run->opt.threads, 0, 256, 0);
	static struct lifecycle l;

	if (cbm_pool_create(&cfg, &l.hot) != 0)
		abort();
	tracker_init(&l.t, l.hot);
	run_threads(run, run->opt.threads, lifecycle_worker, &l);
	printf("  short-lived pools created and destroyed: %lu\n",
	       atomic_load(&l.pools));
	print_pool("hot pool", l.hot);
	check_capacity(run, l.hot, 0);
	check_conserved(run, l.hot, 0);
	tracker_fini(&l.t);
	cbm_pool_destroy(l.hot);
}
