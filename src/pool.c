/*
 * Pool creation and destruction, configuration checks, and the public
 * allocation entry points.
 *
 * An allocation walks down only as far as it must (DESIGN.md, "The layers"):
 * the calling CPU's loaded magazine; the previous one; the depot; the
 * freelist; then, only when the whole global tier is empty, the other CPUs'
 * caches (so that capacity means capacity). A free walks the same way down
 * as far as it needs room, and never past the freelist, which always takes
 * a buffer.
 *
 * Where a buffer is, at every moment, exactly one of: in a magazine of some
 * cache or of the depot, on the freelist, (retired,) held by the
 * application, or held by one library call in transit between those. The
 * counters record transitions in and out of "held by the application": a
 * cache's allocs and frees (written under its lock), or the pool's
 * uncached_allocs and uncached_frees (atomic adds) for calls that bypassed
 * the cache.
 */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

#include "check.h"
#include "global.h"
#include "plant.h"
#include "rcu.h"
#include "reclaim.h"
#include "stats.h"

#define DEFAULT_ALIGN 64
#define MAX_ALIGN ((size_t)1 << 30)
#define MAX_MAGAZINE 4096
#define DEFAULT_MAGAZINE 64
#define GUARD_MIN 8 /* debug pools: at least this many guard bytes */
#define KNOWN_FLAGS (CBM_POOL_DEBUG | CBM_POOL_HUGEPAGES)
#define DEFAULT_IDLE_TRIM_MS 1000
#define MIN_IDLE_TRIM_MS 10

/* Buffers handed to the free path in one locked batch by cbm_free_bulk. */
#define FREE_BATCH 64

/* ---- creation ---------------------------------------------------------- */

static bool
round_up_checked(size_t x, size_t to, size_t *out)
{
	if (x > SIZE_MAX - (to - 1))
		return false;
	*out = (x + to - 1) & ~(to - 1);
	return true;
}

/* Inverse of an odd number modulo 2^64, by Newton's iteration: each step
 * doubles the number of correct low bits, from 3 (d * d == 1 mod 8). */
static uint64_t
inverse_odd(uint64_t d)
{
	uint64_t x = d;

	for (int i = 0; i < 5; i++)
		x *= 2 - d * x;
	return x;
}

/*
 * A magazine small enough that the caches together hold at most about half
 * of a small pool, and 64 otherwise: a trip below the
 * cache then costs one CAS per 64 operations, and a magazine's slots are
 * eight cache lines.
 */
static uint32_t
default_magazine(size_t capacity, unsigned ncaches)
{
	size_t m = capacity / (4 * (size_t)ncaches);

	if (m < 1)
		m = 1;
	return m < DEFAULT_MAGAZINE ? (uint32_t)m : DEFAULT_MAGAZINE;
}

struct geometry {
	size_t align, block_size, stride, arena_bytes, nmags;
	uint32_t mag_size;
	unsigned ncaches;
	unsigned idle_trim_ms;
};

static int
check_config(const cbm_pool_config *cfg, struct geometry *g)
{
	size_t guard_end;
	int n;

	if (cfg->block_size == 0 || cfg->capacity == 0 ||
	    (cfg->flags & ~KNOWN_FLAGS) != 0 ||
	    cfg->magazine_size > MAX_MAGAZINE ||
	    (cfg->idle_trim_ms != 0 && cfg->idle_trim_ms < MIN_IDLE_TRIM_MS))
		return -EINVAL;
	g->idle_trim_ms =
		cfg->idle_trim_ms ? cfg->idle_trim_ms : DEFAULT_IDLE_TRIM_MS;
	g->align = cfg->align ? cfg->align : DEFAULT_ALIGN;
	if ((g->align & (g->align - 1)) != 0 || g->align > MAX_ALIGN)
		return -EINVAL;
	/* Indices are 32 bits and CBM_NIL is reserved. */
	if (cfg->capacity >= CBM_NIL)
		return -EOVERFLOW;
	if (!round_up_checked(cfg->block_size, g->align, &g->block_size))
		return -EOVERFLOW;
	g->stride = g->block_size;
	if (cfg->flags & CBM_POOL_DEBUG) {
		if (g->block_size > SIZE_MAX - GUARD_MIN ||
		    !round_up_checked(g->block_size + GUARD_MIN, g->align,
				      &guard_end))
			return -EOVERFLOW;
		g->stride = guard_end;
	}
	if (cfg->capacity > SIZE_MAX / g->stride)
		return -EOVERFLOW;
	g->arena_bytes = cfg->capacity * g->stride;
	n = get_nprocs_conf();
	g->ncaches = (n > 0 ? (unsigned)n : 1) * CBM_CACHES_PER_CPU;
	g->mag_size = cfg->magazine_size
			      ? cfg->magazine_size
			      : default_magazine(cfg->capacity, g->ncaches);
	/* Two per cache, enough for every buffer to sit in a full one, and
	 * one spare (depot.h). Fits 32 bits: capacity < 2^32 and ncaches is
	 * small, but check rather than trust. */
	g->nmags = 2 * (size_t)g->ncaches +
		   (cfg->capacity + g->mag_size - 1) / g->mag_size + 1;
	if (g->nmags >= CBM_NIL)
		return -EOVERFLOW;
	return 0;
}

static void
free_pool_memory(struct cbm_pool *pool)
{
	cbm_arena_unmap(&pool->arena);
	cbm_depot_fini(&pool->depot);
	free(pool->cpus);
	if ((char *)pool->links != pool->arena.base)
		free(pool->links);
	free(pool->state);
	free(pool);
}

int
cbm_pool_create(const cbm_pool_config *cfg, cbm_pool **out)
{
	struct geometry g;
	struct cbm_pool *pool;
	uint32_t cap;
	int rc;

	if (cfg == NULL || out == NULL)
		return -EINVAL;
	rc = check_config(cfg, &g);
	if (rc != 0)
		return rc;
	cbm_fork_handlers_install();
	cap = (uint32_t)cfg->capacity;

	pool = aligned_alloc(CBM_CACHELINE, sizeof(*pool));
	if (pool == NULL)
		return -ENOMEM;
	memset(pool, 0, sizeof(*pool));
	pool->cpus = aligned_alloc(CBM_CACHELINE,
				   g.ncaches * sizeof(struct cbm_cpu_cache));
	pool->links = calloc(cap, sizeof(*pool->links));
	cbm_plant_init();
	if (cfg->flags & CBM_POOL_DEBUG)
		pool->state = calloc(cap, sizeof(*pool->state));
	if (pool->cpus == NULL || pool->links == NULL ||
	    ((cfg->flags & CBM_POOL_DEBUG) && pool->state == NULL) ||
	    cbm_depot_init(&pool->depot, (uint32_t)g.nmags, g.mag_size) != 0 ||
	    cbm_arena_map(&pool->arena, g.arena_bytes, g.align,
			  cfg->flags & CBM_POOL_HUGEPAGES) != 0) {
		free_pool_memory(pool);
		return -ENOMEM;
	}

	pool->base = pool->arena.base;
	if (CBM_PLANTED(CBM_PLANT_LINKS_IN_BUFFERS) &&
	    g.stride == sizeof(*pool->links)) {
		/* links[i] is then the first word of buffer i. */
		free(pool->links);
		pool->links = (cbm_atomic_u32 *)(void *)pool->base;
	}
	pool->arena_bytes = g.arena_bytes;
	pool->stride = g.stride;
	pool->stride_shift = (unsigned)__builtin_ctzll(g.stride);
	pool->stride_inv = inverse_odd(g.stride >> pool->stride_shift);
	pool->capacity = cap;
	pool->mag_size = g.mag_size;
	pool->flags = cfg->flags;
	pool->ncaches = g.ncaches;
	pool->block_size = g.block_size;
	snprintf(pool->name, sizeof(pool->name), "%s",
		 cfg->name ? cfg->name : "(unnamed)");

	/* Every buffer starts on the freelist, in address order. */
	cbm_istack_init(&pool->freelist);
#ifdef CBM_FAULT_INJECTION
	/* The buffer freelist only: in the depot the same bug would share a
	 * magazine between CPUs, which crashes before any check can see it. */
	pool->freelist.plant_untagged = CBM_PLANTED(CBM_PLANT_NO_TAG);
#endif
	for (uint32_t i = 0; i + 1 < cap; i++)
		cbm_store_relaxed_u32(&pool->links[i], i + 1);
	cbm_istack_push_chain(&pool->freelist, pool->links, 0, cap - 1, cap);

	for (unsigned i = 0; i < g.ncaches; i++) {
		struct cbm_cpu_cache *c = &pool->cpus[i];

		memset(c, 0, sizeof(*c));
		/* nmags >= 2 * ncaches + 1: these cannot fail. */
		atomic_init(&c->mags[0], cbm_depot_take_empty(&pool->depot));
		atomic_init(&c->mags[1], cbm_depot_take_empty(&pool->depot));
	}
	pool->reclaim.flavor =
		cfg->rcu_flavor ? cfg->rcu_flavor : cbm_rcu_default_flavor();
	pool->reclaim.idle_trim_ms = g.idle_trim_ms;
	for (uint32_t i = 0; i < cap; i++)
		cbm_san_enter_pool(pool, cbm_block_ptr(pool, i));
	/* Last: from here on the reclamation thread may look at the pool. */
	rc = cbm_reclaim_register(pool);
	if (rc != 0) {
		free_pool_memory(pool);
		return rc;
	}
	*out = pool;
	return 0;
}

void
cbm_pool_destroy(cbm_pool *pool)
{
	cbm_stats st;

	if (pool == NULL)
		return;
	/* Retired buffers come back first (readers may hold them until a
	 * grace period ends); then the thread lets go of the pool. */
	cbm_barrier(pool);
	cbm_reclaim_unregister(pool);
	cbm_pool_stats(pool, &st);
	if (st.in_use > 0)
		cbm_report(pool, CBM_ERR_LEAK, NULL,
			   "destroy: %zu of %zu buffers still held", st.in_use,
			   st.capacity);
#ifdef CBM_ASAN
	/* Leave no poisoned shadow behind for whatever is mapped here next. */
	ASAN_UNPOISON_MEMORY_REGION(pool->arena.map, pool->arena.map_bytes);
#endif
	free_pool_memory(pool);
}

/* ---- allocation -------------------------------------------------------- */

static CBM_COLD void
report_bad_pool(const char *op)
{
	cbm_report(NULL, CBM_ERR_BAD_ARG, NULL, "%s: NULL pool", op);
}

/*
 * No buffer in the calling CPU's cache, or the cache is busy: take one from
 * the global tier, and when that is empty, drain other CPUs' caches into it
 * and try again. Bounded: a drained buffer may be taken by another thread
 * before we get to it, so we retry once per CPU and then report empty.
 */
static CBM_NOINLINE void *
alloc_uncached(struct cbm_pool *pool)
{
	for (unsigned round = 0;; round++) {
		void *buf = cbm_global_alloc_one(pool);

		CBM_YIELD_POINT();
		if (buf != NULL) {
			cbm_fetch_add_relaxed_u64(&pool->uncached_allocs, 1);
			return buf;
		}
		if (round > pool->ncaches || CBM_PLANTED(CBM_PLANT_NO_STEAL) ||
		    cbm_caches_drain(pool, true) == 0) {
			/* Dry: have retired buffers come back soon. */
			if (cbm_reclaim_pending(pool) > 0)
				cbm_reclaim_kick(true);
			return NULL;
		}
		cbm_fetch_add_relaxed_u64(&pool->steals, 1);
	}
}

/* Take one buffer without the sanitizer and debug bookkeeping. */
static inline void *
take_one(struct cbm_pool *pool)
{
	struct cbm_cpu_cache *c = cbm_cache_lock_current(pool);
	void *buf = NULL;

	if (cbm_likely(c != NULL)) {
		/* Stress builds: as if preempted while holding the cache. */
		CBM_YIELD_POINT();
		buf = cbm_cache_pop_locked(c);
		if (cbm_unlikely(buf == NULL) &&
		    cbm_cache_refill_locked(pool, c))
			buf = cbm_cache_pop_locked(c);
		if (cbm_likely(buf != NULL))
			cbm_counter_add_owned(&c->allocs, 1);
		cbm_cache_unlock(c);
		if (cbm_likely(buf != NULL))
			return buf;
	} else {
		cbm_fetch_add_relaxed_u64(&pool->busy_fallbacks, 1);
	}
	return alloc_uncached(pool);
}

/* The buffer leaves the pool for the application. false: a debug pool
 * found it already handed out (reported); the caller must not use it. */
static inline bool
hand_out(struct cbm_pool *pool, void *buf)
{
	cbm_san_leave_pool(pool, buf);
	if (cbm_unlikely(cbm_pool_is_debug(pool)))
		return cbm_debug_on_alloc(pool,
					  cbm_block_index_trusted(pool, buf));
	return true;
}

/*
 * Put buffers the caller owns and has checked back into the calling CPU's
 * cache, or onto the freelist when the cache is busy.
 */
static void
put_back(struct cbm_pool *pool, void *const *bufs, size_t n)
{
	struct cbm_cpu_cache *c = cbm_cache_lock_current(pool);

	if (cbm_likely(c != NULL)) {
		CBM_YIELD_POINT();
		for (size_t i = 0; i < n; i++) {
			if (cbm_unlikely(!cbm_cache_push_locked(
				    c, pool->mag_size, bufs[i]))) {
				cbm_cache_make_room_locked(pool, c);
				cbm_cache_push_locked(c, pool->mag_size,
						      bufs[i]);
			}
		}
		cbm_counter_add_owned(&c->frees, n);
		cbm_cache_unlock(c);
		return;
	}
	cbm_fetch_add_relaxed_u64(&pool->busy_fallbacks, 1);
	for (size_t i = 0; i < n; i++)
		cbm_global_free_one(pool,
				    cbm_block_index_trusted(pool, bufs[i]));
	cbm_fetch_add_relaxed_u64(&pool->uncached_frees, n);
}

/*
 * A debug pool found the buffer it was about to hand out already held
 * (reported, CBM_ERR_CORRUPT) and dropped it: take others. A pool in that
 * state may hold a cycle, so give up after as many tries as it has buffers
 * rather than loop forever.
 */
static CBM_COLD void *
replace_dropped(struct cbm_pool *pool)
{
	for (uint32_t tries = 0; tries < pool->capacity; tries++) {
		void *buf = take_one(pool);

		if (buf == NULL || hand_out(pool, buf))
			return buf;
	}
	return NULL;
}

void *
cbm_alloc(cbm_pool *pool)
{
	void *buf;

	if (cbm_unlikely(pool == NULL)) {
		report_bad_pool("cbm_alloc");
		errno = EINVAL;
		return NULL;
	}
	buf = take_one(pool);
	if (cbm_likely(buf != NULL) && cbm_likely(hand_out(pool, buf)))
		return buf;
	if (buf != NULL)
		buf = replace_dropped(pool);
	if (buf == NULL) {
		cbm_fetch_add_relaxed_u64(&pool->alloc_failures, 1);
		errno = ENOMEM;
	}
	return buf;
}

/* Check a buffer the application gives back; false if it must not go
 * back into the pool (reported). */
static inline bool
take_back(struct cbm_pool *pool, void *buf, const char *op)
{
	uint32_t idx = cbm_block_index_checked(pool, buf, op);

	if (cbm_unlikely(idx == CBM_NIL))
		return false;
	if (cbm_unlikely(cbm_pool_is_debug(pool)) &&
	    !cbm_debug_on_release(pool, idx, CBM_BLOCK_POOLED, op))
		return false;
	cbm_san_enter_pool(pool, buf);
	return true;
}

void
cbm_free(cbm_pool *pool, void *buf)
{
	if (cbm_unlikely(buf == NULL))
		return;
	if (cbm_unlikely(pool == NULL)) {
		report_bad_pool("cbm_free");
		return;
	}
	if (cbm_likely(take_back(pool, buf, "cbm_free")))
		put_back(pool, &buf, 1);
}

int
cbm_alloc_bulk(cbm_pool *pool, void **bufs, size_t n)
{
	struct cbm_cpu_cache *c;
	size_t got = 0;

	if (cbm_unlikely(pool == NULL || (bufs == NULL && n > 0))) {
		cbm_report(pool, CBM_ERR_BAD_ARG, NULL,
			   "cbm_alloc_bulk: NULL %s",
			   pool == NULL ? "pool" : "array");
		return -EINVAL;
	}
	c = n > 0 ? cbm_cache_lock_current(pool) : NULL;
	if (c != NULL) {
		/* Copy whole runs of the loaded magazine, refilling it as
		 * the single-buffer path would. */
		while (got < n) {
			struct cbm_mag *m = cbm_cache_loaded(c);
			uint32_t have = cbm_mag_count(m);
			size_t k = n - got < have ? n - got : have;

			memcpy(&bufs[got], &m->slots[have - k],
			       k * sizeof(void *));
			cbm_mag_set_count(m, have - (uint32_t)k);
			got += k;
			if (got < n && !cbm_cache_refill_locked(pool, c))
				break;
		}
		cbm_counter_add_owned(&c->allocs, got);
		cbm_cache_unlock(c);
	}
	while (got < n) {
		void *buf = alloc_uncached(pool);

		if (buf == NULL)
			break;
		bufs[got++] = buf;
	}
	if (got < n) {
		/* All or nothing: what was taken goes back untouched. */
		put_back(pool, bufs, got);
		cbm_fetch_add_relaxed_u64(&pool->alloc_failures, 1);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (cbm_unlikely(!hand_out(pool, bufs[i]))) {
			bufs[i] = replace_dropped(pool);
			if (bufs[i] == NULL) {
				/* Those before i were handed out, those after
				 * were not yet. */
				cbm_free_bulk(pool, bufs, i);
				put_back(pool, &bufs[i + 1], n - i - 1);
				cbm_fetch_add_relaxed_u64(&pool->alloc_failures,
							  1);
				return -ENOMEM;
			}
		}
	}
	return 0;
}

void
cbm_free_bulk(cbm_pool *pool, void *const *bufs, size_t n)
{
	if (cbm_unlikely(pool == NULL || (bufs == NULL && n > 0))) {
		cbm_report(pool, CBM_ERR_BAD_ARG, NULL,
			   "cbm_free_bulk: NULL %s",
			   pool == NULL ? "pool" : "array");
		return;
	}
	/* Check a batch outside the cache lock (the error handler must never
	 * run under it, percpu.h P4), then put the good ones back at once. */
	for (size_t done = 0; done < n;) {
		void *good[FREE_BATCH];
		size_t k = 0;

		for (; done < n && k < FREE_BATCH; done++) {
			if (bufs[done] != NULL &&
			    take_back(pool, bufs[done], "cbm_free_bulk"))
				good[k++] = bufs[done];
		}
		if (k > 0)
			put_back(pool, good, k);
	}
}

/* ---- small queries ----------------------------------------------------- */

size_t
cbm_block_size(const cbm_pool *pool)
{
	return pool ? pool->block_size : 0;
}

size_t
cbm_capacity(const cbm_pool *pool)
{
	return pool ? pool->capacity : 0;
}

const char *
cbm_pool_name(const cbm_pool *pool)
{
	return pool ? pool->name : "(none)";
}

int
cbm_pool_trim(cbm_pool *pool)
{
	size_t moved;

	if (pool == NULL)
		return -EINVAL;
	moved = cbm_caches_drain(pool, false);
	cbm_fetch_add_relaxed_u64(&pool->trims, moved);
	return moved > INT32_MAX ? INT32_MAX : (int)moved;
}
