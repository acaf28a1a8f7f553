/* SPDX-License-Identifier: MIT */
/*
 * Scenario exhaust: a pool far smaller than the threads want. Each thread
 * grabs as much as it can (singly or in bulk) up to the whole capacity,
 * holds it briefly and gives it back, so allocations fail all the time and
 * the steal path (draining other CPUs' caches) runs constantly. Failures
 * must be clean (NULL, -ENOMEM), and afterwards the pool must be whole and
 * hand out its full capacity to one thread.
 *
 * Planted faults it catches: no-steal (capacity), lose-buffer
 * (conservation).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "stress.h"

struct exhaust {
	cbm_pool *pool;
	struct tracker t;
	struct budget budget;
};

static void
exhaust_worker(struct run *run, unsigned index, void *arg)
{
	struct exhaust *x = arg;
	size_t cap = x->t.capacity;
	void **held = calloc(cap, sizeof(void *));
	uint32_t holder = index + 1;
	uint64_t serial = 0;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	while (!atomic_load(&run->stop)) {
		size_t want = 1 + rng_below(&r, (unsigned)cap), n = 0;

		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (rng_below(&r, 4) == 0) {
			uint64_t after = budget_take(&x->budget, want);

			if (cbm_alloc_bulk(x->pool, held, want) == 0) {
				n = want;
			} else {
				budget_check_failure(run, &x->budget, after,
						     cap, "cbm_alloc_bulk");
				budget_give(&x->budget, want);
				atomic_fetch_add(&run->empty, 1);
			}
		} else {
			while (n < want) {
				uint64_t after = budget_take(&x->budget, 1);

				held[n] = cbm_alloc(x->pool);
				if (held[n] == NULL) {
					budget_check_failure(run, &x->budget,
							     after, cap,
							     "cbm_alloc");
					budget_give(&x->budget, 1);
					atomic_fetch_add(&run->empty, 1);
					break;
				}
				n++;
			}
		}
		for (size_t i = 0; i < n; i++)
			tracker_claim(run, &x->t, held[i], holder, ++serial);
		if (rng_below(&r, 2))
			sched_yield();
		for (size_t i = 0; i < n; i++)
			tracker_release(run, &x->t, held[i], holder);
		if (rng_below(&r, 2))
			cbm_free_bulk(x->pool, held, n);
		else
			for (size_t i = 0; i < n; i++)
				cbm_free(x->pool, held[i]);
		budget_give(&x->budget, n);
	}
	free(held);
}

void
scenario_exhaust(struct run *run)
{
	cbm_pool_config cfg = pool_config(run, 64, 4, 128, 0);
	static struct exhaust x;

	if (cbm_pool_create(&cfg, &x.pool) != 0)
		abort();
	tracker_init(&x.t, x.pool);
	run_threads(run, run->opt.threads, exhaust_worker, &x);
	print_pool("pool", x.pool);
	check_capacity(run, x.pool, 0);
	check_conserved(run, x.pool, 0);
	tracker_fini(&x.t);
	cbm_pool_destroy(x.pool);
}
