/* SPDX-License-Identifier: MIT */
/*
 * cbm_pool_verify: an audit of a quiescent pool, independent of the
 * counters it checks.
 *
 * It walks every place a pooled buffer can be (the freelist, the depot's
 * full magazines, each cache's slots, the retired list) and marks
 * each buffer found in a bitmap; a buffer found twice, a link or slot that names no buffer, a
 * magazine in two places or in none, a magazine whose count breaks the
 * depot's invariant, a stack whose count disagrees with its length: each is
 * a violation. The buffers not found are the held ones, and their number
 * must equal what the counters say is held; in a debug pool each buffer's
 * state must agree with where it was found.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "plant.h"
#include "pool.h"
#include "report.h"
#include "reclaim.h"
#include "stats.h"
#include "verify.h"

/*
 * What the walk found. capacity and nmags are read, and the scratch arrays
 * sized, inside the quiescence (cbm_reclaim_quiesce): the reclamation
 * thread's idle trim mints magazines and the caller's application calls
 * are the only other movers, so a count read before it could miss a
 * magazine minted meanwhile and report its buffers nowhere.
 */
struct audit {
	const struct cbm_pool *pool;
	uint64_t capacity; /* buffers that exist (read once: quiescent) */
	uint32_t nmags;	   /* magazines minted */
	bool accounting;
	uint8_t *seen;	   /* one byte per buffer: where it was first found */
	uint8_t *mag_seen; /* one byte per magazine */
	uint64_t found;
	unsigned problems;
	int err; /* -ENOMEM: no scratch arrays, no walk */
};

static void problem(struct audit *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
problem(struct audit *a, const char *fmt, ...)
{
	va_list ap;

	/* Enough lines to diagnose; a broken pool can have millions. */
	if (a->problems++ >= 20)
		return;
	fprintf(stderr, "cbm_pool_verify: pool '%s': ", a->pool->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Mark buffer idx as found in place `where`, whose debug state should be
 * expect. false when idx cannot be followed further (a bad index, or a
 * buffer seen before: a chain through it would loop). */
static bool
mark(struct audit *a, uint32_t idx, const char *where, uint8_t expect)
{
	const struct cbm_pool *pool = a->pool;

	if (idx >= a->capacity) {
		problem(a, "%s names buffer %" PRIu32 " of %" PRIu64, where,
			idx, a->capacity);
		return false;
	}
	if (a->seen[idx]) {
		problem(a, "buffer %" PRIu32 " found twice (again in %s)", idx,
			where);
		return false;
	}
	a->seen[idx] = 1;
	a->found++;
	if (pool->debug.state != NULL &&
	    cbm_load_relaxed_u8(&pool->debug.state[idx]) != expect)
		problem(a, "buffer %" PRIu32 " in %s has debug state %u", idx,
			where, cbm_load_relaxed_u8(&pool->debug.state[idx]));
	return true;
}

static void
mark_pointer(struct audit *a, const void *buf, const char *where)
{
	const struct cbm_pool *pool = a->pool;
	uintptr_t off = (uintptr_t)buf - (uintptr_t)pool->base;

	if (off >= a->capacity * pool->blocks.stride ||
	    off % pool->blocks.stride != 0) {
		problem(a, "%s holds %p, not a buffer", where, buf);
		return;
	}
	mark(a, (uint32_t)(off / pool->blocks.stride), where, CBM_BLOCK_POOLED);
}

static void
walk_freelist(struct audit *a)
{
	const struct cbm_pool *pool = a->pool;
	uint32_t idx = cbm_istack_top_quiescent(&pool->global.freelist);
	uint64_t len = 0;

	while (idx != CBM_NIL) {
		if (!mark(a, idx, "the freelist", CBM_BLOCK_POOLED))
			return;
		idx = cbm_load_relaxed_u32(&pool->links[idx]);
		len++;
	}
	if (a->accounting && len != cbm_istack_count(&pool->global.freelist))
		problem(a, "freelist holds %" PRIu64 " but counts %" PRIu64,
			len, cbm_istack_count(&pool->global.freelist));
}

static void
mark_magazine(struct audit *a, const struct cbm_mag *m, const char *where)
{
	const struct cbm_depot *d = &a->pool->global.depot;
	uint32_t n = cbm_mag_count(m);

	if (m->id >= a->nmags || cbm_depot_mag(d, m->id) != m) {
		problem(a, "%s holds a magazine that is not the pool's", where);
		return;
	}
	if (a->mag_seen[m->id]++) {
		problem(a, "magazine %" PRIu32 " found twice (again in %s)",
			m->id, where);
		return;
	}
	if (n > a->pool->caches.mag_size) {
		problem(a, "magazine %" PRIu32 " in %s counts %" PRIu32, m->id,
			where, n);
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		mark_pointer(a, m->slots[i], where);
}

static void
walk_depot_stack(struct audit *a, const struct cbm_istack *s, bool full)
{
	const struct cbm_depot *d = &a->pool->global.depot;
	const char *where =
		full ? "the depot's full stack" : "the depot's empty stack";
	uint32_t id = cbm_istack_top_quiescent(s);
	uint64_t len = 0;

	while (id != CBM_NIL && len <= a->nmags) {
		const struct cbm_mag *m;

		if (id >= a->nmags) {
			problem(a, "%s links to magazine %" PRIu32, where, id);
			return;
		}
		m = cbm_depot_mag(d, id);
		if (cbm_mag_count(m) != (full ? a->pool->caches.mag_size : 0))
			problem(a, "magazine %" PRIu32 " in %s counts %" PRIu32,
				id, where, cbm_mag_count(m));
		mark_magazine(a, m, where);
		id = cbm_load_relaxed_u32(&d->links[id]);
		len++;
	}
	if (a->accounting && len != cbm_istack_count(s))
		problem(a, "%s holds %" PRIu64 " but counts %" PRIu64, where,
			len, cbm_istack_count(s));
}

static void
walk_caches(struct audit *a)
{
	const struct cbm_pool *pool = a->pool;

	for (unsigned i = 0; i < pool->caches.ncaches; i++) {
		const struct cbm_cpu_cache *c = cbm_cache_at(&pool->caches, i);
		uint32_t n;
		void *const *slots = cbm_cache_slots_quiescent(c, &n);
		char where[32];

		snprintf(where, sizeof(where), "cache %u", i);
		if (cbm_cache_is_held(c))
			problem(a, "%s is held", where);
		if (n > pool->map.slots) {
			problem(a, "%s counts %u of %u slots", where, n,
				pool->map.slots);
			continue;
		}
		for (uint32_t k = 0; k < n; k++)
			mark_pointer(a, slots[k], where);
	}
}

static void
walk_retired(struct audit *a)
{
	const struct cbm_pool *pool = a->pool;
	uint32_t idx = cbm_ilist_first_quiescent(&pool->reclaim.retired);
	uint64_t len = 0;

	while (idx != CBM_NIL) {
		if (!mark(a, idx, "the retired list", CBM_BLOCK_RETIRED))
			return;
		idx = cbm_load_relaxed_u32(&pool->links[idx]);
		len++;
	}
	if (a->accounting && len != cbm_ilist_count(&pool->reclaim.retired))
		problem(a, "retired list holds %" PRIu64 " but counts %" PRIu32,
			len, cbm_ilist_count(&pool->reclaim.retired));
}

/* Released groups: each named by its first buffer, all of it free. */
static void
walk_released(struct audit *a)
{
	const struct cbm_pool *pool = a->pool;
	const struct cbm_istack *s = &pool->global.released;
	uint32_t group = pool->blocks.group;
	uint32_t idx = cbm_istack_top_quiescent(s);
	uint64_t len = 0, bytes = 0;

	while (idx != CBM_NIL) {
		char *lo, *hi;

		if (idx % group != 0 || idx >= a->capacity) {
			problem(a,
				"the released list names buffer %" PRIu32
				", not a group's first",
				idx);
			return;
		}
		for (uint32_t k = 0;
		     k < cbm_blocks_group_size(&pool->blocks, idx / group); k++)
			if (!mark(a, idx + k, "the released list",
				  CBM_BLOCK_POOLED))
				return;
		cbm_blocks_group_pages(&pool->blocks, idx / group, &lo, &hi);
		bytes += (uint64_t)(hi - lo);
		idx = cbm_load_relaxed_u32(&pool->links[idx]);
		len++;
	}
	if (a->accounting && len != cbm_istack_count(s))
		problem(a,
			"released list holds %" PRIu64 " but counts %" PRIu64,
			len, cbm_istack_count(s));
	if (a->accounting &&
	    bytes != cbm_load_relaxed_u64(&pool->global.released_bytes))
		problem(a,
			"released groups hold %" PRIu64 " bytes but %" PRIu64
			" are counted",
			bytes,
			cbm_load_relaxed_u64(&pool->global.released_bytes));
}

/* The frontier's never-used buffers (frontier.h, F2). */
static void
walk_frontier(struct audit *a)
{
	uint64_t taken = cbm_frontier_taken(&a->pool->global.frontier);

	if (taken > a->capacity) {
		problem(a, "the frontier handed out %" PRIu64 " of %" PRIu64,
			taken, a->capacity);
		return;
	}
	if (a->capacity > a->pool->blocks.max)
		problem(a,
			"%" PRIu64 " buffers exist, above the ceiling %" PRIu64,
			a->capacity, a->pool->blocks.max);
	for (uint64_t i = taken; i < a->capacity; i++)
		if (!mark(a, (uint32_t)i, "the frontier", CBM_BLOCK_POOLED))
			return;
}

static void
check_held(struct audit *a)
{
	const struct cbm_pool *pool = a->pool;
	uint64_t held = a->capacity - a->found;
	uint64_t counted = cbm_stats_held(pool);

	if (held != counted)
		problem(a,
			"%" PRIu64 " buffers are nowhere in the pool but the "
			"counters say %" PRIu64 " are held",
			held, counted);
	for (uint32_t id = 0; id < a->nmags; id++)
		if (!a->mag_seen[id])
			problem(a, "magazine %" PRIu32 " is nowhere", id);
	if (pool->debug.state == NULL)
		return;
	for (uint32_t i = 0; i < a->capacity; i++) {
		uint8_t s = cbm_load_relaxed_u8(&pool->debug.state[i]);

		if (!a->seen[i] && s != CBM_BLOCK_HELD &&
		    s != CBM_BLOCK_DROPPED)
			problem(a,
				"buffer %" PRIu32 " is nowhere in the pool "
				"but has debug state %u",
				i, s);
	}
}

static void
audit(void *arg)
{
	struct audit *a = arg;

	a->nmags = cbm_depot_minted(&a->pool->global.depot);
	a->mag_seen = calloc(a->nmags + 1, 1);
	if (a->seen == NULL) {
		a->capacity = cbm_pool_capacity(a->pool);
		a->seen = calloc(a->capacity + 1, 1); /* cbm_verify's */
	}
	if (a->seen == NULL || a->mag_seen == NULL) {
		a->err = -ENOMEM;
		return;
	}
	walk_freelist(a);
	walk_depot_stack(a, &a->pool->global.depot.full, true);
	walk_depot_stack(a, &a->pool->global.depot.empty, false);
	walk_caches(a);
	walk_retired(a);
	walk_released(a);
	walk_frontier(a);
	if (a->accounting)
		check_held(a);
}

int
cbm_pool_verify(const cbm_pool *pool)
{
	if (pool == NULL) {
		cbm_report(NULL, CBM_ERR_BAD_ARG, NULL,
			   "cbm_pool_verify: NULL pool");
		return -EINVAL;
	}
	return cbm_verify(pool, true);
}

int
cbm_verify(const struct cbm_pool *pool, bool accounting)
{
	struct audit a = {.pool = pool, .accounting = accounting};

	if (pool == NULL)
		return -EINVAL;
	/* The caller's other calls are over (cbm.h); this one's yield site
	 * is where a count read too early would go stale. */
	CBM_YIELD_AT(CBM_SITE_VERIFY_QUIESCING);
	/* With no pass in flight, every retired buffer is on the list or
	 * back in the pool (reclaim.c, R1). */
	cbm_reclaim_quiesce(audit, &a);
	free(a.seen);
	free(a.mag_seen);
	if (a.err != 0)
		return a.err;
	if (a.problems > 20)
		fprintf(stderr, "cbm_pool_verify: pool '%s': %u problems\n",
			pool->name, a.problems);
	return a.problems ? -EUCLEAN : 0;
}

int
cbm_verify_places(const struct cbm_pool *pool, uint8_t *seen)
{
	/* seen is the caller's, sized by the capacity it read: the pool is
	 * being destroyed, and grows no more. */
	struct audit a = {.pool = pool, .seen = seen};

	a.capacity = cbm_pool_capacity(pool);
	cbm_reclaim_quiesce(audit, &a);
	free(a.mag_seen);
	if (a.err != 0)
		return a.err;
	return a.problems ? -EUCLEAN : 0;
}
