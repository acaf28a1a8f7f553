/* SPDX-License-Identifier: MIT */
/*
 * Statistics. Nothing here takes a lock or writes shared memory: counters
 * have one writer each (a cache's lock holder) or are atomic adds, and
 * gauges are relaxed reads of the tiers. The gauges and the counters are two
 * independent accounts of the same buffers (free + cached + retired from
 * the tiers, in_use from the counters), which is why the sum equal to
 * capacity is a check and not a tautology.
 *
 * Exact whenever no application call runs: the reclamation thread still
 * moves buffers then (a batch taken from the retired list, a batch spliced
 * onto the freelist, an idle cache drained, a fold), but each of its moves
 * is bracketed by the transit word (transit.h, T1), so a snapshot read
 * between two looks at the word that show nothing moved and nothing in
 * flight is one consistent state (T2); a snapshot that raced a move is read
 * again, as long as that thread keeps moving, without counting a try (T4,
 * T5). While application calls run, their own moves and pops make it
 * approximate: it retries a few times around their moves, never waits for
 * them, and then gives its last reading.
 */
#include "stats.h"

#include <errno.h>
#include <string.h>

#include "global.h"
#include "plant.h"
#include "pool.h"
#include "report.h"
#include "reclaim.h"

/* What the caches counted, plus the calls that bypassed them. */
static void
sum_caches(const struct cbm_pool *pool, struct cbm_cache_totals *t)
{
	cbm_caches_totals(&pool->caches, t);
	t->allocs += cbm_load_relaxed_u64(&pool->uncached_allocs);
	t->frees += cbm_load_relaxed_u64(&pool->uncached_frees);
}

/* Every buffer retired so far: waiting, in flight, or back. */
static uint64_t
retires(const struct cbm_pool *pool)
{
	return cbm_reclaim_pending(pool) +
	       cbm_load_relaxed_u64(&pool->reclaim.reclaimed);
}

static uint64_t
held(uint64_t allocs, uint64_t given_back, uint64_t capacity)
{
	/* Counters read at slightly different moments may cross while the
	 * pool is busy; keep the answer in range. */
	if (given_back >= allocs)
		return 0;
	return allocs - given_back > capacity ? capacity : allocs - given_back;
}

uint64_t
cbm_stats_held(const struct cbm_pool *pool)
{
	struct cbm_cache_totals t;

	sum_caches(pool, &t);
	return held(t.allocs, t.frees + retires(pool), cbm_pool_capacity(pool));
}

static size_t
page_round(size_t bytes, size_t page)
{
	return (bytes + page - 1) & ~(page - 1);
}

/*
 * What the OS backs, by the pool's own account (cbm.h says what it is
 * not): the arena's pages up to the last buffer ever taken from the
 * frontier, less what was released; the side arrays up to the same
 * buffer; the magazines minted; the pool and its caches.
 */
static size_t
resident_bytes(const struct cbm_pool *pool, size_t released)
{
	size_t page = pool->blocks.page;
	size_t taken = (size_t)cbm_frontier_taken(&pool->global.frontier);
	size_t arena = page_round(taken * pool->blocks.stride, page);
	size_t side = page_round(taken * sizeof(*pool->links), page);

	if (pool->debug.state != NULL)
		side += page_round(taken * sizeof(*pool->debug.state), page);
	arena = arena > released ? arena - released : 0;
	return arena + side + pool->fixed_bytes +
	       page_round(cbm_depot_minted_bytes(&pool->global.depot), page);
}

/* How often a snapshot is read again while the application moves buffers
 * under it: then it is approximate anyway, and must not cost much. */
#define SNAPSHOT_TRIES 16

static void
read_snapshot(const struct cbm_pool *pool, cbm_stats *out)
{
	struct cbm_cache_totals t;

	sum_caches(pool, &t);
	memset(out, 0, sizeof(*out));
	/* The global count before capacity: a growth between the two reads
	 * adds to capacity what the count did not see yet (free >= 0). */
	out->free = cbm_global_count(&pool->global);
	out->capacity = cbm_pool_capacity(pool);
	out->block_size = pool->block_size;
	out->cached = t.cached;
	out->retired = cbm_reclaim_pending(pool);
	out->reclaimed = cbm_load_relaxed_u64(&pool->reclaim.reclaimed);
	/* Every buffer retired so far is waiting, in flight, or back. */
	out->in_use = held(t.allocs, t.frees + out->retired + out->reclaimed,
			   out->capacity);
	out->allocs = t.allocs;
	out->frees = t.frees;
	out->retires = out->retired + out->reclaimed;
	out->alloc_failures = cbm_load_relaxed_u64(&pool->alloc_failures);
	out->depot_exchanges = t.depot_exchanges;
	out->global_pops = t.global_pops;
	out->global_pushes = t.global_pushes;
	out->busy_fallbacks =
		cbm_load_relaxed_u64(&pool->caches.busy_fallbacks);
	out->steals = cbm_load_relaxed_u64(&pool->steals);
	out->trims = cbm_load_relaxed_u64(&pool->trims);
	out->idle_drains = cbm_load_relaxed_u64(&pool->trim.idle_drains);
	out->grace_periods = cbm_load_relaxed_u64(&pool->reclaim.grace_periods);
	out->rseq_aborts = cbm_load_relaxed_u64(&pool->caches.rseq_aborts);
	out->magazine_size = pool->caches.mag_size;
	out->cpus = pool->map.ncpus;
	out->percpu_mode = pool->caches.mode;
	out->hugepages = pool->arena.pages;
	out->max_capacity = pool->blocks.max;
	out->released_bytes =
		cbm_load_relaxed_u64(&pool->global.released_bytes);
	out->resident_bytes = resident_bytes(pool, out->released_bytes);
	out->grows = cbm_load_relaxed_u64(&pool->global.frontier.grows);
	out->releases = cbm_load_relaxed_u64(&pool->release.releases);
}

int
cbm_pool_stats(const cbm_pool *pool, cbm_stats *out)
{
	const struct cbm_transit *transit;
	unsigned spins = 0, tries = 0;

	if (cbm_unlikely(pool == NULL || out == NULL)) {
		cbm_report(pool, CBM_ERR_BAD_ARG, NULL,
			   "cbm_pool_stats: NULL %s",
			   pool == NULL ? "pool" : "snapshot");
		return -EINVAL;
	}
	transit = &pool->global.transit;
	for (;;) {
		uint64_t ended = cbm_transit_reclaimer_ended(transit); /* T5 */
		uint64_t t = cbm_transit_read_begin(transit);

		/* The reclamation thread's moves end without waiting for
		 * anyone (transit.h, T4): wait them out, however long its
		 * thread is kept off the CPU, and count no try for them. */
		if (cbm_transit_reclaimer_moving(t)) {
			cbm_spin_wait(&spins);
			continue;
		}
		CBM_YIELD_AT(CBM_SITE_STATS_READING);
		read_snapshot(pool, out);
		if (cbm_transit_in_flight(t) == 0 &&
		    cbm_transit_read_end(transit, t))
			return 0;
		/* A read one of its moves overlapped is read again, untried
		 * (T5); only the application's moves use up the tries. */
		if (cbm_transit_reclaimer_since(transit, ended)) {
			cbm_spin_wait(&spins);
			continue;
		}
		if (++tries >= SNAPSHOT_TRIES)
			return 0;
	}
}
