/* SPDX-License-Identifier: MIT */
/*
 * Scenario elastic: pools that start empty and grow to their ceiling while
 * threads allocate, free, bulk-allocate, retire and trim, and while memory
 * is released under them by the reclamation thread (release_ms at its
 * least, 10 ms) and by a thread calling cbm_pool_release without pause.
 * The run is a series of rounds, a fresh pool each, so that the pool grows
 * from nothing many times and growers race each other.
 *
 * Checks: exclusivity and the tracker's stamps; a pattern written over each
 * held buffer and read back before it is given back (a page released
 * under a held buffer reads as zeros: [released]); capacity never above the
 * ceiling, NULL only when the application holds every buffer (the budget,
 * judged against max_capacity), and one thread getting every buffer at the
 * end ([capacity]); conservation at the end of each round. Every other
 * round the pool has region callbacks (cbm.h, on_map and on_unmap) that
 * keep a table of mapped extents, as a registration would: each buffer
 * handed out must lie in a mapped extent ([released]), and release and
 * growth then work in whole regions.
 *
 * Planted faults it catches: release-published (released), grow-past-ceiling
 * (capacity).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stress.h"

#define HOLD_MAX 48
#define ROUND_SECONDS 0.25
#define PATTERN_STEP 256 /* one byte every this many */

#define REGIONS 4 /* this scenario's pools have one region; room for more */

struct elastic {
	cbm_pool *pool;
	struct tracker t;
	struct budget budget;
	size_t max;
	bool hooked; /* region callbacks this round */
	/* What the callbacks were told: region i is [start, start + len),
	 * len 0 while unmapped. */
	_Atomic(char *) start[REGIONS];
	atomic_size_t len[REGIONS];
	atomic_ulong bad_calls;
};

static void
on_map(void *arg, void *addr, size_t len, unsigned index)
{
	struct elastic *x = arg;

	if (index >= REGIONS) {
		atomic_fetch_add(&x->bad_calls, 1);
		return;
	}
	atomic_store(&x->start[index], addr);
	atomic_store(&x->len[index], len);
}

static void
on_unmap(void *arg, void *addr, size_t len, unsigned index)
{
	struct elastic *x = arg;

	if (index >= REGIONS || atomic_load(&x->len[index]) != len ||
	    atomic_load(&x->start[index]) != (char *)addr) {
		atomic_fetch_add(&x->bad_calls, 1);
		return;
	}
	atomic_store(&x->len[index], 0);
}

/* A buffer just handed out lies in a mapped extent. */
static void
mapped_check(struct run *run, struct elastic *x, const void *buf)
{
	const char *p = buf;
	bool in = false;

	for (unsigned i = 0; i < REGIONS && !in; i++) {
		char *s = atomic_load(&x->start[i]);

		in = p >= s && p + x->t.block <= s + atomic_load(&x->len[i]);
	}
	check(run, INV_RELEASED, in,
	      "buffer %u handed out outside every mapped region",
	      tracker_index(&x->t, buf));
}

static unsigned char
pattern_of(const struct elastic *x, const void *buf)
{
	return (unsigned char)(tracker_index(&x->t, buf) * 7 + 1);
}

static void
pattern_write(const struct elastic *x, void *buf)
{
	unsigned char *b = buf, v = pattern_of(x, buf);

	/* Clear of the stamps at either end (stress.h). */
	for (size_t k = 64; k + 64 < x->t.block; k += PATTERN_STEP)
		b[k] = v;
}

static void
pattern_check(struct run *run, const struct elastic *x, const void *buf)
{
	const unsigned char *b = buf;
	unsigned char v = pattern_of(x, buf);

	for (size_t k = 64; k + 64 < x->t.block; k += PATTERN_STEP)
		if (b[k] != v) {
			check(run, INV_RELEASED, false,
			      "held buffer %u lost its data at byte %zu "
			      "(reads %u, wrote %u)",
			      tracker_index(&x->t, buf), k, b[k], v);
			return;
		}
	check(run, INV_RELEASED, true, "held buffer intact");
}

static void
ceiling_check(struct run *run, const struct elastic *x)
{
	size_t cap = cbm_capacity(x->pool);

	check(run, INV_CAPACITY, cap <= x->max,
	      "the pool has %zu buffers, above its ceiling of %zu", cap,
	      x->max);
}

static void
take(struct run *run, struct elastic *x, void **held, unsigned *n,
     unsigned want, uint32_t holder, uint64_t *serial)
{
	uint64_t after = budget_take(&x->budget, want);

	if (want > 1) {
		if (cbm_alloc_bulk(x->pool, &held[*n], want) != 0) {
			budget_check_failure(run, &x->budget, after, x->max,
					     "cbm_alloc_bulk");
			budget_give(&x->budget, want);
			atomic_fetch_add(&run->empty, 1);
			return;
		}
	} else if ((held[*n] = cbm_alloc(x->pool)) == NULL) {
		budget_check_failure(run, &x->budget, after, x->max,
				     "cbm_alloc");
		budget_give(&x->budget, 1);
		atomic_fetch_add(&run->empty, 1);
		return;
	}
	for (unsigned i = 0; i < want; i++) {
		if (x->hooked)
			mapped_check(run, x, held[*n + i]);
		tracker_claim(run, &x->t, held[*n + i], holder, ++*serial);
		pattern_write(x, held[*n + i]);
	}
	*n += want;
	ceiling_check(run, x);
}

static void
give(struct run *run, struct elastic *x, void **held, unsigned *n, unsigned k,
     uint32_t holder, struct rng *r)
{
	void *b = held[k];

	pattern_check(run, x, b);
	tracker_release(run, &x->t, b, holder);
	held[k] = held[--*n];
	if (rng_below(r, 64) == 0) {
		/* Retired: the application's until the barrier brings it back,
		 * so the budget keeps it until then. */
		cbm_retire(x->pool, b);
		cbm_barrier(x->pool);
	} else {
		cbm_free(x->pool, b);
	}
	budget_give(&x->budget, 1);
}

static void
elastic_worker(struct run *run, unsigned index, void *arg)
{
	struct elastic *x = arg;
	uint32_t holder = index + 1;
	void *held[HOLD_MAX];
	unsigned n = 0;
	uint64_t serial = 0;
	struct rng r;

	rng_seed(&r, run->opt.seed, index);
	if (index == 0) {
		/* Release now, over and over, and trim now and then. */
		while (!atomic_load(&run->stop)) {
			cbm_pool_release(x->pool);
			if (rng_below(&r, 8) == 0)
				cbm_pool_trim(x->pool);
			ceiling_check(run, x);
			sleep_us(rng_below(&r, 500));
		}
		return;
	}
	while (!atomic_load(&run->stop)) {
		atomic_fetch_add_explicit(&run->ops, 1, memory_order_relaxed);
		if (n < HOLD_MAX && (n == 0 || rng_below(&r, 2))) {
			unsigned want =
				rng_below(&r, 4) == 0
					? 1 + rng_below(&r, HOLD_MAX - n)
					: 1;

			take(run, x, held, &n, want, holder, &serial);
		} else if (rng_below(&r, 8) == 0) {
			/* All at once, in bulk. */
			for (unsigned i = 0; i < n; i++) {
				pattern_check(run, x, held[i]);
				tracker_release(run, &x->t, held[i], holder);
			}
			cbm_free_bulk(x->pool, held, n);
			budget_give(&x->budget, n);
			n = 0;
		} else {
			give(run, x, held, &n, rng_below(&r, n), holder, &r);
		}
		/* Quiet now and then, so that buffers sit in the global tier
		 * long enough for the background release. */
		if (rng_below(&r, 256) == 0)
			sleep_us(rng_below(&r, 20000));
	}
	while (n > 0)
		give(run, x, held, &n, n - 1, holder, &r);
}

static void
one_round(struct run *run, struct elastic *x, cbm_stats *total)
{
	cbm_pool_config cfg = pool_config(run, 0, 8, 2048, 0);
	cbm_stats st;

	x->max = 24 * run->opt.threads;
	cfg.max_capacity = x->max;
	cfg.release_ms = 10;
	cfg.idle_trim_ms = 10;
	for (unsigned i = 0; i < REGIONS; i++) {
		atomic_store(&x->start[i], NULL);
		atomic_store(&x->len[i], 0);
	}
	atomic_store(&x->bad_calls, 0);
	if (x->hooked) {
		cfg.on_map = on_map;
		cfg.on_unmap = on_unmap;
		cfg.region_arg = x;
	}
	if (cbm_pool_create(&cfg, &x->pool) != 0)
		abort();
	tracker_init(&x->t, x->pool);
	x->budget = (struct budget){0};
	run_threads(run, run->opt.threads, elastic_worker, x);
	cbm_pool_stats(x->pool, &st);
	total->grows += st.grows;
	total->releases += st.releases;
	ceiling_check(run, x);
	check_capacity(run, x->pool, 0);
	check_conserved(run, x->pool, 0);
	tracker_fini(&x->t);
	cbm_pool_destroy(x->pool);
	/* Destroy unmapped what was mapped; no call broke the contract. */
	for (unsigned i = 0; i < REGIONS; i++)
		check(run, INV_RELEASED, atomic_load(&x->len[i]) == 0,
		      "region %u still mapped after destroy", i);
	check(run, INV_RELEASED, atomic_load(&x->bad_calls) == 0,
	      "%lu region callbacks out of order", atomic_load(&x->bad_calls));
}

void
scenario_elastic(struct run *run)
{
	static struct elastic x;
	double seconds = run->opt.seconds;
	cbm_stats total = {0};
	unsigned rounds = 0;
	unsigned long bad;

	/* Rounds of a quarter second, as many as the run's length holds. */
	run->opt.seconds = ROUND_SECONDS;
	do {
		atomic_store(&run->stop, false);
		x.hooked = rounds % 2 == 1;
		one_round(run, &x, &total);
		rounds++;
		bad = 0;
		for (int i = 0; i < INV_COUNT; i++)
			bad += atomic_load(&run->violations[i]);
	} while (bad == 0 && rounds * ROUND_SECONDS < seconds);
	run->opt.seconds = seconds;
	printf("elastic: %u rounds, %lu growths, %lu releases\n", rounds,
	       (unsigned long)total.grows, (unsigned long)total.releases);
	/* Worth its name only if pools grew and memory went back under the
	 * traffic. */
	check(run, INV_CONSERVATION, total.grows > 0 && total.releases > 0,
	      "the run never grew (%lu) or released (%lu): it checked nothing",
	      (unsigned long)total.grows, (unsigned long)total.releases);
}
