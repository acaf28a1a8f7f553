/* SPDX-License-Identifier: MIT */
/*
 * The allocation paths: cbm_alloc, cbm_free and their bulk forms.
 *
 * An allocation walks down only as far as it must (docs/design.md, "Tiers"):
 * the calling CPU's cache; the depot; the freelist; then, only when the
 * whole global tier is empty, the other CPUs' caches (so that capacity means
 * capacity). A free walks the same way down as far as it needs room, and
 * never past the freelist, which always takes a buffer.
 *
 * Where a buffer is, at every moment, exactly one of: in a cache or a depot
 * magazine, on the freelist, retired, held by the application, or held by
 * one library call in transit between those. The counters record
 * transitions in and out of "held by the application": a cache's pops and
 * pushes (percpu.h, P5), or the pool's uncached_allocs and uncached_frees
 * (atomic adds) for calls that bypassed the caches.
 *
 * Shape: cbm_alloc and cbm_free inline the one fast path the pool's mode
 * has (an rseq sequence, or a portable try-lock), guarded by one compare of
 * the pool's fast word, and leave everything else (aborted sequences, held
 * caches, refills, debug and sanitizer bookkeeping, errors) to out-of-line
 * functions, so the fast path needs no stack frame.
 */
#include <errno.h>

#include "check.h"
#include "dry.h"
#include "fastpath.h"
#include "global.h"
#include "plant.h"
#include "pool.h"
#include "reclaim.h"
#include "report.h"
#include "rseq.h"

/* Buffers handed to the free path in one held batch by cbm_free_bulk. */
#define FREE_BATCH 64

static CBM_COLD void
report_bad_pool(const char *op)
{
	cbm_report(NULL, CBM_ERR_BAD_ARG, NULL, "%s: NULL pool", op);
}

/*
 * No buffer in the calling CPU's cache, or the cache is busy: take one from
 * the global tier, and when that is empty, drain other CPUs' caches into it
 * and try again. Give up only when the pool was seen dry (dry.c): a drain
 * that lost its race, a magazine in transit, a refill not yet published
 * all send it round again, so that capacity means capacity. It waits only
 * for moves in flight (a preempted mover delays it, as a preempted cache
 * holder delays a drain); every other round that finds nothing but is not
 * dry follows another thread's progress (a buffer that moved, or a move
 * that ended).
 *
 * own: what the caller's own move in flight adds to the transit word (a
 * bulk allocation gathering, dry.c D3), or 0. A caller with a move of its
 * own is never made to wait for another application call's (D4): it gets
 * NULL with *rival set, and must give back what it holds and start over.
 */
static CBM_NOINLINE void *
take_global(struct cbm_pool *pool, uint32_t own, bool *rival)
{
	unsigned spins = 0;

	for (;;) {
		void *buf = cbm_global_alloc_one(&pool->global);
		enum cbm_seen seen;

		CBM_YIELD_POINT();
		if (buf != NULL) {
			cbm_fetch_add_relaxed_u64(&pool->uncached_allocs, 1);
			return buf;
		}
		if (CBM_PLANTED(CBM_PLANT_NO_STEAL))
			break;
		if (cbm_caches_drain(&pool->caches, true, &pool->steals) > 0)
			continue;
		seen = CBM_PLANTED(CBM_PLANT_NO_STABLE_VIEW)
			       ? CBM_SEEN_DRY
			       : cbm_pool_look_dry(pool, own);
		if (seen == CBM_SEEN_DRY)
			break;
		if (seen == CBM_SEEN_RIVAL) {
			*rival = true;
			return NULL;
		}
		if (seen == CBM_SEEN_MOVING)
			cbm_spin_wait(&spins); /* let the mover finish */
	}
	/* Dry: have retired buffers come back soon. */
	if (cbm_reclaim_pending(pool) > 0)
		cbm_reclaim_kick(true);
	return NULL;
}

static CBM_COLD void
count_abort(struct cbm_pool *pool)
{
	cbm_fetch_add_relaxed_u64(&pool->caches.rseq_aborts, 1);
}

/* Take one buffer through a held cache of the calling CPU: the portable
 * fast path's slow half, and rseq mode's slow path. No sanitizer or debug
 * bookkeeping. */
static inline void *
take_via_held_cache(struct cbm_pool *pool)
{
	struct cbm_held h;
	void *buf;

	if (cbm_reclaim_thread_missing())
		cbm_reclaim_restart();
	if (cbm_unlikely(!cbm_caches_hold_current(&pool->caches, &h)))
		return take_global(pool, 0, NULL);
	/* Stress builds: as if preempted while holding the cache. */
	CBM_YIELD_POINT();
	buf = cbm_held_pop(&pool->caches, &h);
	cbm_caches_unhold(&pool->caches, &h);
	return cbm_likely(buf != NULL) ? buf : take_global(pool, 0, NULL);
}

/* Take one buffer without the sanitizer and debug bookkeeping. */
static inline void *
take_any(struct cbm_pool *pool)
{
#ifdef CBM_HAVE_RSEQ
	if (cbm_likely(pool->caches.mode == CBM_MODE_RSEQ)) {
		enum cbm_rseq_result r;
		void *buf;

		while ((r = cbm_rseq_pop(&pool->map, &buf)) == CBM_RSEQ_ABORTED)
			count_abort(pool);
		if (cbm_likely(r == CBM_RSEQ_DONE))
			return buf;
	}
#endif
	return take_via_held_cache(pool);
}

/* The buffer leaves the pool for the application's call made from caller
 * (its return address, which a debug pool keeps). false: a debug pool
 * found it already handed out (reported); the caller must not use it. */
static inline bool
hand_out(struct cbm_pool *pool, void *buf, void *caller)
{
	cbm_san_leave_pool(&pool->blocks, buf);
	if (cbm_unlikely(cbm_pool_is_debug(pool)))
		return cbm_debug_on_alloc(&pool->debug,
					  cbm_block_index_trusted(pool, buf),
					  caller);
	return true;
}

/*
 * Put buffers the caller owns and has checked back into a held cache of
 * the calling CPU, or onto the freelist when none can be had.
 */
static void
put_via_held_cache(struct cbm_pool *pool, void *const *bufs, size_t n)
{
	struct cbm_held h;

	if (cbm_reclaim_thread_missing())
		cbm_reclaim_restart();
	if (cbm_likely(cbm_caches_hold_current(&pool->caches, &h))) {
		CBM_YIELD_POINT();
		cbm_held_put_run(&pool->caches, &h, bufs, n);
		cbm_caches_unhold(&pool->caches, &h);
		return;
	}
	for (size_t i = 0; i < n; i++)
		cbm_global_free_one(&pool->global,
				    cbm_block_index_trusted(pool, bufs[i]));
	cbm_fetch_add_relaxed_u64(&pool->uncached_frees, n);
}

static inline void
put_any(struct cbm_pool *pool, void *const *bufs, size_t n)
{
#ifdef CBM_HAVE_RSEQ
	if (cbm_likely(pool->caches.mode == CBM_MODE_RSEQ) && n == 1) {
		enum cbm_rseq_result r;

		while ((r = cbm_rseq_push(&pool->map, bufs[0])) ==
		       CBM_RSEQ_ABORTED)
			count_abort(pool);
		if (cbm_likely(r == CBM_RSEQ_DONE))
			return;
	}
#endif
	put_via_held_cache(pool, bufs, n);
}

/*
 * A debug pool found the buffer it was about to hand out already held
 * (reported, CBM_ERR_CORRUPT) and dropped it: take others. A pool in that
 * state may hold a cycle, so give up after as many tries as it has buffers
 * rather than loop forever.
 */
static CBM_COLD void *
replace_dropped(struct cbm_pool *pool, void *caller)
{
	for (uint64_t tries = 0; tries < pool->blocks.max; tries++) {
		void *buf = take_any(pool);

		if (buf == NULL || hand_out(pool, buf, caller))
			return buf;
	}
	return NULL;
}

/* Check a buffer the application gives back; false if it must not go
 * back into the pool (reported). */
static inline bool
check_given_back(struct cbm_pool *pool, void *buf, const char *op)
{
	uint32_t idx = cbm_block_index_checked(pool, buf, op);

	if (cbm_unlikely(idx == CBM_NIL))
		return false;
	if (cbm_unlikely(cbm_pool_is_debug(pool)) &&
	    !cbm_debug_on_release(&pool->debug, idx, CBM_BLOCK_POOLED, op))
		return false;
	cbm_san_enter_pool(&pool->blocks, buf);
	return true;
}

/*
 * Everything cbm_alloc's inline path does not do: retries after aborted
 * sequences, held caches, refills, steals, debug and sanitizer bookkeeping,
 * and failure.
 */
/* A pool with a ceiling hook (pool.h, cbm_pool_place) found dry: one
 * more try if the hook may have made room. */
static CBM_COLD void *
take_at_ceiling(struct cbm_pool *pool)
{
	void *buf = NULL;

	for (unsigned attempt = 0;
	     buf == NULL && pool->at_ceiling != NULL &&
	     pool->at_ceiling(pool->ceiling_arg, pool, attempt);
	     attempt++)
		buf = take_any(pool);
	return buf;
}

static CBM_NOINLINE void *
alloc_general(struct cbm_pool *pool, int inline_result, void *caller)
{
	void *buf;

	if (inline_result == CBM_RSEQ_ABORTED)
		count_abort(pool);
	buf = take_any(pool);
	if (cbm_unlikely(buf == NULL))
		buf = take_at_ceiling(pool);

	if (cbm_likely(buf != NULL) && cbm_likely(hand_out(pool, buf, caller)))
		return buf;
	if (buf != NULL)
		buf = replace_dropped(pool, caller);
	if (buf == NULL) {
		cbm_fetch_add_relaxed_u64(&pool->alloc_failures, 1);
		errno = ENOMEM;
	}
	return buf;
}

static CBM_COLD void *
alloc_null_pool(void)
{
	report_bad_pool("cbm_alloc");
	errno = EINVAL;
	return NULL;
}

/* Portable mode's path when the CPU's own cache is not to be had at once:
 * sched_getcpu, the spare, a busy cache. */
static CBM_NOINLINE void *
alloc_portable_other(struct cbm_pool *pool)
{
	uint64_t w;
	struct cbm_cpu_cache *c =
		cbm_cache_lock_current(&pool->map, pool->caches.cpu_bytes,
				       pool->caches.cache_bytes, &w);
	void *buf;

	if (cbm_likely(c != NULL)) {
		buf = cbm_cache_pop_held(c, &w);
		cbm_cache_release(c, w);
		if (cbm_likely(buf != NULL))
			return buf;
	}
	/* Not a debug pool (its fast word would not be PORTABLE): no caller
	 * to keep. */
	return alloc_general(pool, 0, NULL);
}

/* Portable mode's fast path: the CPU's own cache, pop. Everything else
 * (another cache, an empty one, pops about to wrap) out of line, so that
 * this needs no stack frame. Inlined into the one entry that runs it
 * (cbm_alloc or cbm_alloc_slow). */
static inline void *
alloc_portable(struct cbm_pool *pool)
{
	struct cbm_cpu_cache *c;
	uint64_t w, next;
	uint32_t n;
	void *buf;

	if (cbm_unlikely(!cbm_cache_lock_own(&pool->map, pool->caches.cpu_bytes,
					     &c, &w)))
		return alloc_portable_other(pool);
	n = cbm_word_count(w);
	/* count - 1, pops + 1 (a carry: they would wrap, a fold's work) */
	if (cbm_unlikely(n == 0 ||
			 __builtin_add_overflow(w, CBM_CACHE_POP - 1, &next))) {
		cbm_cache_release(c, w);
		return alloc_general(pool, 0, NULL);
	}
	buf = c->slots[n - 1]; /* before the release: P1 */
	cbm_cache_release(c, next);
	return buf;
}

/* Not rseq mode's fast path: portable's, or the general path. caller:
 * the application's return address, what a debug pool keeps as the
 * buffer's allocation site. */
static inline void *
alloc_not_rseq(struct cbm_pool *pool, int inline_result, void *caller)
{
	if (pool->fast == CBM_FAST_PORTABLE)
		return alloc_portable(pool);
	return alloc_general(pool, inline_result, caller);
}

#ifdef CBM_HAVE_RSEQ
/* What fastpath_x86_64.c reads, where it reads it. */
_Static_assert(
	offsetof(struct cbm_pool, base) == CBM_OFF_POOL_BASE &&
		offsetof(struct cbm_pool, stride_inv) ==
			CBM_OFF_POOL_STRIDE_INV &&
		offsetof(struct cbm_pool, map.fast) == CBM_OFF_POOL_FAST &&
		offsetof(struct cbm_pool, map.rseq_offset) ==
			CBM_OFF_POOL_RSEQ_OFFSET &&
		offsetof(struct cbm_pool, map.slots) == CBM_OFF_POOL_SLOTS &&
		offsetof(struct cbm_pool, capacity) == CBM_OFF_POOL_CAPACITY &&
		offsetof(struct cbm_pool, stride_shift) ==
			CBM_OFF_POOL_STRIDE_SHIFT,
	"fastpath.h's offsets are the pool's");
_Static_assert(sizeof(((struct cbm_pool *)0)->base) == 8 &&
		       sizeof(((struct cbm_pool *)0)->stride_inv) == 8 &&
		       sizeof(((struct cbm_pool *)0)->map.fast) == 8 &&
		       sizeof(((struct cbm_pool *)0)->map.rseq_offset) == 8 &&
		       sizeof(((struct cbm_pool *)0)->map.slots) == 4 &&
		       sizeof(((struct cbm_pool *)0)->capacity) == 8 &&
		       sizeof(((struct cbm_pool *)0)->stride_shift) == 1,
	       "the fields are the sizes fastpath_x86_64.c reads");
_Static_assert(CBM_OFF_POOL_TABLE ==
		       CBM_POOL_FAST_AT + CBM_FAST_BEFORE * sizeof(void *),
	       "fastpath.h's fast table is pool.h's");
_Static_assert(offsetof(struct rseq, cpu_id) == CBM_OFF_RSEQ_CPU_ID &&
		       offsetof(struct rseq, rseq_cs) == CBM_OFF_RSEQ_CS &&
		       RSEQ_SIG == CBM_FAST_RSEQ_SIG,
	       "fastpath.h's rseq ABI is the kernel's");
_Static_assert(CBM_FAST_COUNT_MAX == CBM_CACHE_COUNT_MASK - 1 &&
		       CBM_FAST_SLOTS == CBM_CACHE_SLOTS_OFFSET &&
		       CBM_CACHE_POP - 1 == 0xffffffffu,
	       "fastpath.h's word is percpu.h's");

/* cbm/inline.h's layout 1 is this one. */
_Static_assert(CBM_INLINE_LAYOUT == 1 &&
		       CBM_INLINE_OFF_BASE == CBM_OFF_POOL_BASE &&
		       CBM_INLINE_OFF_STRIDE_INV == CBM_OFF_POOL_STRIDE_INV &&
		       CBM_INLINE_OFF_TABLE == CBM_OFF_POOL_TABLE &&
		       CBM_INLINE_OFF_RSEQ == CBM_OFF_POOL_RSEQ_OFFSET &&
		       CBM_INLINE_OFF_SLOTS == CBM_OFF_POOL_SLOTS &&
		       CBM_INLINE_OFF_CAPACITY == CBM_OFF_POOL_CAPACITY &&
		       CBM_INLINE_OFF_SHIFT == CBM_OFF_POOL_STRIDE_SHIFT &&
		       CBM_INLINE_OFF_KEY ==
			       offsetof(struct cbm_pool, inline_key) &&
		       sizeof(((struct cbm_pool *)0)->inline_key) == 1 &&
		       CBM_INLINE_CACHE_SLOTS == CBM_CACHE_SLOTS_OFFSET &&
		       CBM_INLINE_COUNT_MAX == CBM_FAST_COUNT_MAX,
	       "cbm/inline.h describes the pool");

/* cbm_alloc is fastpath_x86_64.c; these are where it goes when its
 * sequence cannot serve the call (fastpath.h). */
void *
cbm_alloc_slow(cbm_pool *pool)
{
	if (cbm_unlikely(pool == NULL))
		return alloc_null_pool();
	/* Reached by a jump from cbm_alloc: the return address is the
	 * application's. */
	return alloc_not_rseq(pool, CBM_RSEQ_SLOW, __builtin_return_address(0));
}

void *
cbm_alloc_aborted(cbm_pool *pool)
{
	return alloc_not_rseq(pool, CBM_RSEQ_ABORTED,
			      __builtin_return_address(0));
}
#else
void *
cbm_alloc(cbm_pool *pool)
{
	if (cbm_unlikely(pool == NULL))
		return alloc_null_pool();
	return alloc_not_rseq(pool, 0, __builtin_return_address(0));
}

/* pool.h: the same function, bound inside the library. */
extern __typeof__(cbm_alloc) cbm_alloc_local
	__attribute__((alias("cbm_alloc"), visibility("hidden"), malloc));
#endif

/* Everything cbm_free's inline path does not do (see alloc_general). */
static CBM_NOINLINE void
free_general(struct cbm_pool *pool, void *buf, int inline_result)
{
	if (inline_result == CBM_RSEQ_ABORTED)
		count_abort(pool);
	if (buf == NULL)
		return;
	if (cbm_likely(check_given_back(pool, buf, "cbm_free")))
		put_any(pool, &buf, 1);
}

static CBM_COLD void
free_null_pool(void *buf)
{
	if (buf != NULL)
		report_bad_pool("cbm_free");
}

/* Portable mode's free when the CPU's own cache is not to be had at once
 * (see alloc_portable_other). buf is checked. */
static CBM_NOINLINE void
free_portable_other(struct cbm_pool *pool, void *buf)
{
	uint64_t w;
	struct cbm_cpu_cache *c;
	bool done;

	c = cbm_cache_lock_current(&pool->map, pool->caches.cpu_bytes,
				   pool->caches.cache_bytes, &w);
	if (cbm_likely(c != NULL)) {
		done = cbm_cache_push_held(c, &w, pool->map.slots, buf);
		cbm_cache_release(c, w);
		if (cbm_likely(done))
			return;
	}
	free_general(pool, buf, 0);
}

/* Portable mode's fast path: check, the CPU's own cache, push (inlined
 * as alloc_portable is). */
static inline void
free_portable(struct cbm_pool *pool, void *buf)
{
	struct cbm_cpu_cache *c;
	uint32_t n;
	uint64_t w;

	if (cbm_unlikely(!cbm_block_valid(pool, buf))) {
		free_general(pool, buf, 0);
		return;
	}
	if (cbm_unlikely(!cbm_cache_lock_own(&pool->map, pool->caches.cpu_bytes,
					     &c, &w))) {
		free_portable_other(pool, buf);
		return;
	}
	n = cbm_word_count(w);
	if (cbm_unlikely(n == pool->map.slots)) {
		cbm_cache_release(c, w);
		free_general(pool, buf, 0);
		return;
	}
	c->slots[n] = buf;
	cbm_cache_release(c, w + 1);
}

/* Not rseq mode's fast path: portable's, or the general path. */
static inline void
free_not_rseq(struct cbm_pool *pool, void *buf, int inline_result)
{
	if (pool->fast == CBM_FAST_PORTABLE)
		free_portable(pool, buf);
	else
		free_general(pool, buf, inline_result);
}

#ifdef CBM_HAVE_RSEQ
/* cbm_free is fastpath_x86_64.c (see cbm_alloc_slow). A NULL buf fails
 * its check and comes here, a no-op. */
void
cbm_free_slow(cbm_pool *pool, void *buf)
{
	if (cbm_unlikely(pool == NULL))
		free_null_pool(buf);
	else
		free_not_rseq(pool, buf, CBM_RSEQ_SLOW);
}

void
cbm_free_aborted(cbm_pool *pool, void *buf)
{
	free_not_rseq(pool, buf, CBM_RSEQ_ABORTED);
}
#else
void
cbm_free(cbm_pool *pool, void *buf)
{
	if (cbm_unlikely(pool == NULL)) {
		free_null_pool(buf);
		return;
	}
	free_not_rseq(pool, buf, 0);
}

/* pool.h: the same function, bound inside the library. */
extern __typeof__(cbm_free) cbm_free_local
	__attribute__((alias("cbm_free"), visibility("hidden")));
#endif

/*
 * Take n buffers, all or nothing: 0, -ENOMEM, or -EAGAIN when another
 * application call was gathering too (dry.c, D4) and everything taken has
 * gone back. Served from the CPU's cache alone when it holds n; otherwise
 * what it holds while it looks for the rest is in a move of its own (D3),
 * which ends when all n are the caller's or all went back.
 */
static int
take_bulk(struct cbm_pool *pool, void **bufs, size_t n)
{
	struct cbm_transit *transit = &pool->global.transit;
	bool held, gathering, rival = false;
	struct cbm_held h;
	size_t got = 0;

	held = cbm_caches_hold_current(&pool->caches, &h);
	gathering = !held || cbm_held_count(&h) < n;
	if (gathering)
		cbm_transit_begin(transit); /* D3 */
	if (held) {
		got = cbm_held_take_run(&pool->caches, &h, bufs, n);
		cbm_caches_unhold(&pool->caches, &h);
	}
	if (got > 0 && got < n)
		CBM_YIELD_AT(CBM_SITE_BULK_GATHERING);
	while (got < n) {
		void *buf = take_global(pool, CBM_MOVER_APPLICATION, &rival);

		if (buf == NULL)
			break;
		bufs[got++] = buf;
	}
	if (got < n) {
		/* All or nothing: what was taken goes back untouched. */
		CBM_YIELD_AT(CBM_SITE_BULK_GIVING_BACK);
		put_any(pool, bufs, got);
	}
	if (gathering)
		cbm_transit_end(transit, got > 0);
	if (got == n)
		return 0;
	return rival ? -EAGAIN : -ENOMEM;
}

/* Everything cbm_alloc_bulk's one-sequence path does not do. caller: the
 * application's return address (a debug pool's allocation site). */
static CBM_NOINLINE int
alloc_bulk_general(struct cbm_pool *pool, void **bufs, size_t n, void *caller)
{
	unsigned spins = 0;
	int rc;

	if (cbm_unlikely(pool == NULL || (bufs == NULL && n > 0))) {
		cbm_report(pool, CBM_ERR_BAD_ARG, NULL,
			   "cbm_alloc_bulk: NULL %s",
			   pool == NULL ? "pool" : "array");
		return -EINVAL;
	}
	if (n == 0)
		return 0;
	/* Two gatherers that saw each other both gave back: start over, one
	 * after the other as backing off spreads them. */
	while ((rc = take_bulk(pool, bufs, n)) == -EAGAIN)
		cbm_spin_wait(&spins);
	/* Dry: more tries while a ceiling hook may have made room (pool.h). */
	for (unsigned attempt = 0;
	     rc == -ENOMEM && pool->at_ceiling != NULL &&
	     pool->at_ceiling(pool->ceiling_arg, pool, attempt);
	     attempt++)
		while ((rc = take_bulk(pool, bufs, n)) == -EAGAIN)
			cbm_spin_wait(&spins);
	if (rc != 0) {
		cbm_fetch_add_relaxed_u64(&pool->alloc_failures, 1);
		return rc;
	}
	if (cbm_likely(!(pool->fast & CBM_FAST_BOOKKEEPING)))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (cbm_unlikely(!hand_out(pool, bufs[i], caller))) {
			bufs[i] = replace_dropped(pool, caller);
			if (bufs[i] == NULL) {
				/* Those before i were handed out, those after
				 * were not yet. */
				cbm_free_bulk(pool, bufs, i);
				put_any(pool, &bufs[i + 1], n - i - 1);
				cbm_fetch_add_relaxed_u64(&pool->alloc_failures,
							  1);
				return -ENOMEM;
			}
		}
	}
	return 0;
}

int
cbm_alloc_bulk(cbm_pool *pool, void **bufs, size_t n)
{
#ifdef CBM_HAVE_RSEQ
	/* All n from the CPU's cache, one sequence, one commit (a NULL pool
	 * or array, or n == 0, goes the general way). */
	if (cbm_likely(pool != NULL && pool->fast == CBM_FAST_RSEQ) &&
	    n - 1 < pool->map.slots && bufs != NULL) {
		enum cbm_rseq_result r;

		while ((r = cbm_rseq_pop_bulk(&pool->map, bufs, n)) ==
		       CBM_RSEQ_ABORTED)
			count_abort(pool);
		if (cbm_likely(r == CBM_RSEQ_DONE))
			return 0;
	}
#endif
	return alloc_bulk_general(pool, bufs, n, __builtin_return_address(0));
}

/* Everything cbm_free_bulk's one-sequence path does not do. */
static CBM_NOINLINE void
free_bulk_general(struct cbm_pool *pool, void *const *bufs, size_t n)
{
	if (cbm_unlikely(pool == NULL || (bufs == NULL && n > 0))) {
		cbm_report(pool, CBM_ERR_BAD_ARG, NULL,
			   "cbm_free_bulk: NULL %s",
			   pool == NULL ? "pool" : "array");
		return;
	}
	/* Without bookkeeping, the common case: every pointer is good. Check
	 * them all first (no report: a bad one sends the call the long way),
	 * then move them in runs. */
	if (cbm_likely(!(pool->fast & CBM_FAST_BOOKKEEPING))) {
		size_t good = 0;

		while (good < n && cbm_block_valid(pool, bufs[good]))
			good++;
		if (cbm_likely(good == n)) {
			put_any(pool, bufs, n);
			return;
		}
	}
	/* Check a batch outside the cache lock (the error handler must never
	 * run under it, percpu.h P4), then put the good ones back at once. */
	for (size_t done = 0; done < n;) {
		void *good[FREE_BATCH];
		size_t k = 0;

		for (; done < n && k < FREE_BATCH; done++) {
			if (bufs[done] != NULL &&
			    check_given_back(pool, bufs[done], "cbm_free_bulk"))
				good[k++] = bufs[done];
		}
		if (k > 0)
			put_any(pool, good, k);
	}
}

#ifdef CBM_HAVE_RSEQ
/* One try of cbm_free_bulk's one sequence: each pointer checked on the
 * way, unless the pool trusts its bulk frees (cbm.h). */
static inline enum cbm_rseq_result
push_run(const struct cbm_pool *pool, void *const *bufs, size_t n)
{
	if (pool->trust_bulk_frees)
		return cbm_rseq_push_bulk_trusted(&pool->map, bufs, n);

	const struct cbm_rseq_check chk = {
		.base = pool->base,
		.stride_inv = pool->stride_inv,
		.capacity = cbm_pool_capacity(pool),
		.stride_shift = pool->stride_shift,
	};

	return cbm_rseq_push_bulk(&pool->map, &chk, bufs, n);
}
#endif

void
cbm_free_bulk(cbm_pool *pool, void *const *bufs, size_t n)
{
#ifdef CBM_HAVE_RSEQ
	/* All n onto the CPU's cache, one sequence, one commit; a bad
	 * pointer among them takes the long way below, which reports it, as
	 * it does a NULL pool or array). */
	if (cbm_likely(pool != NULL && pool->fast == CBM_FAST_RSEQ) &&
	    n - 1 < pool->map.slots && bufs != NULL) {
		enum cbm_rseq_result r;

		while ((r = push_run(pool, bufs, n)) == CBM_RSEQ_ABORTED)
			count_abort(pool);
		if (cbm_likely(r == CBM_RSEQ_DONE))
			return;
	}
#endif
	free_bulk_general(pool, bufs, n);
}
