/* SPDX-License-Identifier: MIT */
/*
 * Scenario trim: workers run in bursts with pauses long enough for their
 * caches to look idle (the pool's idle_trim_ms is the minimum, 10 ms), so
 * the reclamation thread drains caches while work resumes on them; one more
 * thread calls cbm_pool_trim continuously. Drains that raced an alloc or a
 * free on the same cache would hand a buffer out twice or lose one.
 *
 * Planted fault it catches: trim-no-lock.
 */
#include <stdio.h>
#include <stdlib.h>

#include "stress.h"

#define HOLD_MAX 24

struct trim {
	cbm_pool *pool;
	struct tracker t;
	/* Set by the trimming thread for a while every cycle: workers hold
	 * off, so that every CPU's cache goes idle (random pauses alone left
	 * 8 threads on 2 CPUs with no idle drain in a whole run, 1 run in
	 * 3), and the reclamation thread drains them as work resumes. */
	atomic_bool quiet;
};

/* Quiet windows: longer than idle_trim_ms (10) and several of the
 * reclamation thread's ticks (idle_trim_ms / 4). */
#define QUIET_US 40000

static void
trim_worker(struct run *run, unsigned index, void *arg)
{
	struct trim *x = arg;
	uint32_t holder = index + 1;
	void *held[HOLD_MAX];
	unsigned n = 0;
	uint64_t serial = 0;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	if (index == 0) {
		/* Trim hard for a while, then leave the caches to fill up and
		 * go idle, so that idle drains happen too. */
		while (!atomic_load(&run->stop)) {
			for (int i = 0; i < 100; i++) {
				cbm_pool_trim(x->pool);
				sleep_us(200);
			}
			atomic_store(&x->quiet, true);
			sleep_us(QUIET_US);
			atomic_store(&x->quiet, false);
			sleep_us(50000);
		}
		return;
	}
	while (!atomic_load(&run->stop)) {
		unsigned burst = 100 + rng_below(&r, 1000);

		while (atomic_load(&x->quiet) && !atomic_load(&run->stop))
			sleep_us(1000);

		for (unsigned i = 0; i < burst; i++) {
			atomic_fetch_add_explicit(&run->ops, 1,
						  memory_order_relaxed);
			if (n < HOLD_MAX && (n == 0 || rng_below(&r, 2))) {
				void *b = cbm_alloc(x->pool);

				if (b == NULL) {
					atomic_fetch_add(&run->empty, 1);
					continue;
				}
				tracker_claim(run, &x->t, b, holder, ++serial);
				held[n++] = b;
			} else {
				unsigned k = rng_below(&r, n);
				void *b = held[k];

				held[k] = held[--n];
				tracker_release(run, &x->t, b, holder);
				cbm_free(x->pool, b);
			}
		}
		/* Quiet long enough, sometimes, for an idle drain. */
		sleep_us(rng_below(&r, 25000));
	}
	while (n > 0) {
		tracker_release(run, &x->t, held[--n], holder);
		cbm_free(x->pool, held[n]);
	}
}

static bool
both_drains_ran(void *arg)
{
	struct trim *x = arg;
	cbm_stats st;

	cbm_pool_stats(x->pool, &st);
	return st.trims > 0 && st.idle_drains > 0;
}

void
scenario_trim(struct run *run)
{
	cbm_pool_config cfg = pool_config(run, 32 * run->opt.threads, 8, 64, 0);
	static struct trim x;
	cbm_stats st;

	cfg.idle_trim_ms = 10;
	if (cbm_pool_create(&cfg, &x.pool) != 0)
		abort();
	tracker_init(&x.t, x.pool);
	run_threads_until(run, run->opt.threads, trim_worker, &x,
			  both_drains_ran);
	print_pool("pool", x.pool);
	cbm_pool_stats(x.pool, &st);
	/* The scenario is only worth its name if both kinds of drain raced
	 * the traffic: a run where one never happened tested nothing. */
	check(run, INV_CONSERVATION, st.trims > 0 && st.idle_drains > 0,
	      "the run never raced a trim (%lu buffers trimmed) or an idle "
	      "drain (%lu drained): it checked nothing",
	      (unsigned long)st.trims, (unsigned long)st.idle_drains);
	check_capacity(run, x.pool, 0);
	check_conserved(run, x.pool, 0);
	tracker_fini(&x.t);
	cbm_pool_destroy(x.pool);
}
