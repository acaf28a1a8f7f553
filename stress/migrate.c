/* SPDX-License-Identifier: MIT */
/*
 * Scenario migrate: threads hop between CPUs (sched_setaffinity every few
 * operations) and yield at random points around library calls and, in
 * builds with fault injection, inside them (CBM_YIELD: the library's yield
 * points, e.g. while holding a CPU cache or between reading the freelist
 * head and swinging it). Per-CPU assumptions break here if they can: a
 * thread that reads its CPU, migrates, and keeps using the old CPU's cache.
 *
 * Planted fault it catches: no-tag (--magazine 1).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "stress.h"

#define HOLD_MAX 16

struct migrate {
	cbm_pool *pool;
	struct tracker t;
	cpu_set_t allowed;
	unsigned nallowed;
};

static void
hop(struct migrate *m, struct rng *r)
{
	unsigned k = rng_below(r, m->nallowed), seen = 0;
	cpu_set_t set;

	for (unsigned c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &m->allowed) || seen++ != k)
			continue;
		CPU_ZERO(&set);
		CPU_SET(c, &set);
		sched_setaffinity(0, sizeof(set), &set);
		return;
	}
}

static void
migrate_worker(struct run *run, unsigned index, void *arg)
{
	struct migrate *m = arg;
	uint32_t holder = index + 1;
	void *held[HOLD_MAX];
	unsigned n = 0;
	uint64_t serial = 0;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	while (!atomic_load(&run->stop)) {
		unsigned op = rng_below(&r, 100);

		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (op < 5)
			hop(m, &r);
		else if (op < 10)
			sched_yield();
		if (op % 2 == 0 && n < HOLD_MAX) {
			void *b = cbm_alloc(m->pool);

			if (b == NULL) {
				atomic_fetch_add(&run->empty, 1);
				continue;
			}
			tracker_claim(run, &m->t, b, holder, ++serial);
			held[n++] = b;
		} else if (n > 0) {
			unsigned k = rng_below(&r, n);
			void *b = held[k];

			held[k] = held[--n];
			tracker_release(run, &m->t, b, holder);
			if (op % 3 == 0)
				cbm_free_bulk(m->pool, &b, 1);
			else
				cbm_free(m->pool, b);
		}
	}
	while (n > 0) {
		tracker_release(run, &m->t, held[--n], holder);
		cbm_free(m->pool, held[n]);
	}
}

void
scenario_migrate(struct run *run)
{
	cbm_pool_config cfg = pool_config(run, 12 * run->opt.threads, 4, 64, 0);
	static struct migrate m;

	/* More often than the other scenarios (fault builds). */
	setenv("CBM_YIELD", "16", 1);
	sched_getaffinity(0, sizeof(m.allowed), &m.allowed);
	m.nallowed = (unsigned)CPU_COUNT(&m.allowed);
	if (cbm_pool_create(&cfg, &m.pool) != 0)
		abort();
	tracker_init(&m.t, m.pool);
	run_threads(run, run->opt.threads, migrate_worker, &m);
	print_pool("pool", m.pool);
	check_capacity(run, m.pool, 0);
	check_conserved(run, m.pool, 0);
	tracker_fini(&m.t);
	cbm_pool_destroy(m.pool);
}
