/*
 * Per-CPU caches: the slow paths that run with a cache held, and taking a
 * cache from elsewhere (invariants P1-P5 in percpu.h).
 */
#include "percpu.h"

#include <sched.h>
#include <string.h>

#include <ck_pr.h>

#include "depot.h"
#include "global.h"
#include "plant.h"
#include "pool.h"
#include "rseq.h"

void
cbm_cache_fold_held(struct cbm_cpu_cache *c, uint64_t *w)
{
	cbm_counter_add_owned(&c->pops_folded, cbm_word_pops(*w));
	*w &= 0xffffffffu;
}

bool
cbm_cache_refill_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
		      uint64_t *w)
{
	uint32_t n = cbm_word_count(*w), m = pool->mag_size, got;
	struct cbm_mag *full;

	cbm_cache_fold_held(c, w);
	full = cbm_depot_take_full(&pool->depot);
	if (full != NULL) {
		memcpy(&c->slots[n], full->slots, m * sizeof(void *));
		cbm_mag_set_count(full, 0);
		cbm_depot_give_empty(&pool->depot, full);
		got = m;
		cbm_counter_add_owned(&c->depot_exchanges, 1);
	} else {
		got = cbm_global_fill_slots(pool, &c->slots[n], m);
		if (got == 0)
			return false;
		cbm_counter_add_owned(&c->global_pops, 1);
	}
	*w += got;
	cbm_counter_add_owned(&c->moved_in, got);
	return true;
}

/* Move the top k buffers of the cache out to the global tier. */
static void
move_out(struct cbm_pool *pool, struct cbm_cpu_cache *c, uint64_t *w,
	 uint32_t k)
{
	uint32_t n = cbm_word_count(*w);
	struct cbm_mag *empty = NULL;

	if (k == pool->mag_size)
		empty = cbm_depot_take_empty(&pool->depot);
	if (empty != NULL) {
		memcpy(empty->slots, &c->slots[n - k], k * sizeof(void *));
		cbm_mag_set_count(empty, k);
		cbm_depot_give_full(&pool->depot, empty);
		cbm_counter_add_owned(&c->depot_exchanges, 1);
	} else {
		cbm_global_spill_slots(pool, &c->slots[n - k], k);
		cbm_counter_add_owned(&c->global_pushes, 1);
	}
	*w -= k;
	cbm_counter_add_owned(&c->moved_out, k);
}

void
cbm_cache_make_room_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
			 uint64_t *w)
{
	cbm_cache_fold_held(c, w);
	move_out(pool, c, w, pool->mag_size);
}

size_t
cbm_cache_drain_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
		     uint64_t *w)
{
	size_t moved = cbm_word_count(*w);

	cbm_cache_fold_held(c, w);
	/* Whole magazines to the depot while they last, the rest spilled. */
	while (cbm_word_count(*w) > 0) {
		uint32_t n = cbm_word_count(*w);

		move_out(pool, c, w, n < pool->mag_size ? n : pool->mag_size);
	}
	return moved;
}

static void
pause_for(unsigned *spins)
{
	/* The holder may be preempted on the very CPU we spin on: spin
	 * briefly (ck_pr_stall is the pause instruction, it touches no
	 * memory), then give the CPU away so that it can finish. */
	if (++*spins < 64)
		ck_pr_stall();
	else
		sched_yield();
}

uint64_t
cbm_cache_take(struct cbm_pool *pool, unsigned i)
{
	struct cbm_cpu_cache *c = cbm_cache_at(pool, i);
	unsigned spins = 0;
	uint64_t w;

	if (pool->mode == CBM_MODE_PORTABLE) {
		while (!cbm_cache_trylock(c, &w))
			pause_for(&spins);
		return w;
	}
	/* rseq mode. Drainers take turns first: the REMOTE_LOCK bit does not
	 * say whose it is, so two drainers could otherwise each see "their"
	 * bit after their fence, one of them set by the other. */
	while (cbm_load_relaxed_u32(&c->drainer) != 0 ||
	       cbm_xchg_acquire_u32(&c->drainer, 1) != 0)
		pause_for(&spins);
	for (;;) {
		/* Set REMOTE_LOCK, fence the CPU, and check the bit survived
		 * (rseq.h). */
		w = cbm_load_relaxed_u64(&c->word);
		if ((w & CBM_CACHE_LOCKS) != 0 ||
		    !atomic_compare_exchange_strong_explicit(
			    &c->word, &w, w | CBM_CACHE_REMOTE_LOCK,
			    memory_order_acquire, memory_order_relaxed)) {
			pause_for(&spins);
			continue;
		}
		cbm_rseq_fence(i / pool->caches_per_cpu);
		/* The fence was a full barrier on that CPU: this load sees the
		 * last commit made there. */
		w = cbm_load_acquire_u64(&c->word);
		if (w & CBM_CACHE_REMOTE_LOCK)
			return w & ~(uint64_t)CBM_CACHE_REMOTE_LOCK;
	}
}

void
cbm_cache_give_back(struct cbm_pool *pool, unsigned i, uint64_t w)
{
	struct cbm_cpu_cache *c = cbm_cache_at(pool, i);

	cbm_cache_fold_held(c, &w);
	cbm_cache_release(c, w);
	if (pool->mode == CBM_MODE_RSEQ)
		/* Release: pairs with the next drainer's acquire. */
		cbm_store_release_u32(&c->drainer, 0);
}

uint64_t
cbm_cache_allocs(const struct cbm_cpu_cache *c)
{
	/* The word first, with acquire (pairs with the release that ends a
	 * fold): if the fold's cleared word is seen, so is its new total, and
	 * a race can only overcount, transiently. */
	uint64_t w = cbm_load_acquire_u64(&c->word);

	return cbm_load_relaxed_u64(&c->pops_folded) + cbm_word_pops(w);
}

uint64_t
cbm_cache_frees(const struct cbm_cpu_cache *c)
{
	/* P5: pushes = count - moved_in + moved_out + pops. The terms are
	 * read at different moments; while busy they may cross. */
	int64_t n = (int64_t)cbm_cache_count(c) +
		    (int64_t)cbm_load_relaxed_u64(&c->moved_out) +
		    (int64_t)cbm_cache_allocs(c) -
		    (int64_t)cbm_load_relaxed_u64(&c->moved_in);

	return n > 0 ? (uint64_t)n : 0;
}

size_t
cbm_caches_drain(struct cbm_pool *pool, bool stop_early)
{
	size_t moved = 0;

	for (unsigned i = 0; i < pool->ncaches; i++) {
		struct cbm_cpu_cache *c = cbm_cache_at(pool, i);
		uint64_t w;

		/* Skip a cache that is visibly empty without taking it (a
		 * racy read: at worst one drain too few under load). */
		if (cbm_cache_count(c) == 0)
			continue;
		if (CBM_PLANTED(CBM_PLANT_TRIM_NO_LOCK)) {
			w = cbm_load_relaxed_u64(&c->word);
			moved += cbm_cache_drain_held(pool, c, &w);
			cbm_store_relaxed_u64(&c->word, w);
		} else {
			w = cbm_cache_take(pool, i);
			moved += cbm_cache_drain_held(pool, c, &w);
			cbm_cache_give_back(pool, i, w);
		}
		if (stop_early && moved > 0)
			break;
	}
	return moved;
}
