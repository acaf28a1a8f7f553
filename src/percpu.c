/*
 * Per-CPU caches: the slow paths that run with a cache held, and taking a
 * cache from elsewhere (invariants P1-P5 in percpu.h).
 */
#include "percpu.h"

#include <sched.h>
#include <string.h>
#include <time.h>

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

/* Begin the held cache's move if it has not begun (transit.h, T1). */
static void
begin_moving(struct cbm_pool *pool, bool *moving)
{
	if (!*moving) {
		cbm_transit_begin(&pool->transit);
		*moving = true;
	}
}

bool
cbm_cache_refill_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
		      uint64_t *w, bool *moving)
{
	uint32_t n = cbm_word_count(*w), m = pool->mag_size, got;
	bool began = !*moving;
	struct cbm_mag *full;

	/* Look before beginning a move (T3): on a dry pool, refills that
	 * cannot succeed disturb nobody's view, and fold nothing (a fold
	 * without a move would let the word repeat a value, dry.c). */
	if (cbm_depot_full_count(&pool->depot) == 0 &&
	    cbm_istack_count(&pool->freelist) == 0)
		return false;
	begin_moving(pool, moving);
	full = cbm_depot_take_full(&pool->depot);
	if (full != NULL) {
		memcpy(&c->slots[n], full->slots, m * sizeof(void *));
		cbm_mag_set_count(full, 0);
		cbm_depot_give_empty(&pool->depot, full);
		got = m;
		cbm_counter_add_owned(&c->depot_exchanges, 1);
	} else {
		got = cbm_global_fill_slots(pool, &c->slots[n], m);
		if (got == 0) {
			if (began) {
				/* Lost the race for what we saw: nothing
				 * moved (T3). */
				cbm_transit_end(&pool->transit, false);
				*moving = false;
			}
			return false;
		}
		cbm_counter_add_owned(&c->global_pops, 1);
	}
	cbm_cache_fold_held(c, w);
	*w += got;
	cbm_counter_add_owned(&c->moved_in, got);
	/* Stress builds: the buffers are in this cache's slots while its
	 * word, until released, still says what it said before. */
	CBM_YIELD_AT(CBM_SITE_REFILL_UNCOMMITTED);
	return true;
}

/* Move the top k buffers of the cache out to the global tier. The caller
 * has begun the move. */
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
			 uint64_t *w, bool *moving)
{
	begin_moving(pool, moving);
	cbm_cache_fold_held(c, w);
	move_out(pool, c, w, pool->mag_size);
}

size_t
cbm_cache_drain_held(struct cbm_pool *pool, struct cbm_cpu_cache *c,
		     uint64_t *w, bool *moving)
{
	size_t moved = cbm_word_count(*w);

	if (moved == 0)
		return 0;
	begin_moving(pool, moving);
	cbm_cache_fold_held(c, w);
	/* Whole magazines to the depot while they last, the rest spilled. */
	while (cbm_word_count(*w) > 0) {
		uint32_t n = cbm_word_count(*w);

		move_out(pool, c, w, n < pool->mag_size ? n : pool->mag_size);
	}
	return moved;
}

/* cbm_spin_wait: pauses, then yields, then sleeps. */
#define SPINS_PAUSE 64
#define SPINS_YIELD 128

void
cbm_spin_wait(unsigned *spins)
{
	unsigned n = ++*spins;

	/* The thread waited for may be preempted on the very CPU we spin on:
	 * spin briefly (ck_pr_stall is the pause instruction, it touches no
	 * memory), then give the CPU away so that it can finish; and if it
	 * still has not, sleep, doubling up to a millisecond: sched_yield
	 * never hands the CPU to a thread of a lower scheduling class, which
	 * a real-time waiter would otherwise starve. */
	if (n < SPINS_PAUSE) {
		ck_pr_stall();
	} else if (n < SPINS_YIELD) {
		sched_yield();
	} else {
		unsigned k = n - SPINS_YIELD;
		struct timespec ts = {
			.tv_nsec = 1000L << (k < 10 ? k : 10),
		};

		nanosleep(&ts, NULL);
	}
}

uint64_t
cbm_cache_take(struct cbm_pool *pool, unsigned i)
{
	struct cbm_cpu_cache *c = cbm_cache_at(pool, i);
	unsigned spins = 0;
	uint64_t w;

	if (pool->mode == CBM_MODE_PORTABLE) {
		while (!cbm_cache_trylock(c, &w))
			cbm_spin_wait(&spins);
		return w;
	}
	/* rseq mode. Drainers take turns first: the REMOTE_LOCK bit does not
	 * say whose it is, so two drainers could otherwise each see "their"
	 * bit after their fence, one of them set by the other. */
	while (cbm_load_relaxed_u32(&c->drainer) != 0 ||
	       cbm_xchg_acquire_u32(&c->drainer, 1) != 0)
		cbm_spin_wait(&spins);
	for (;;) {
		/* Set REMOTE_LOCK, fence the CPU, and check the bit survived
		 * (rseq.h). */
		w = cbm_load_relaxed_u64(&c->word);
		if ((w & CBM_CACHE_LOCKS) != 0 ||
		    !atomic_compare_exchange_strong_explicit(
			    &c->word, &w, w | CBM_CACHE_REMOTE_LOCK,
			    memory_order_acquire, memory_order_relaxed)) {
			cbm_spin_wait(&spins);
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
cbm_cache_give_back(struct cbm_pool *pool, unsigned i, uint64_t w, bool moving)
{
	struct cbm_cpu_cache *c = cbm_cache_at(pool, i);

	cbm_cache_release(c, w);
	if (pool->mode == CBM_MODE_RSEQ)
		/* Release: pairs with the next drainer's acquire. */
		cbm_store_release_u32(&c->drainer, 0);
	if (moving)
		cbm_transit_end(&pool->transit, true); /* T1 */
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

void
cbm_cache_fold(struct cbm_pool *pool, unsigned i)
{
	uint64_t w = cbm_cache_take(pool, i);

	/* A fold lowers the word's pop field: a move (dry.c, D2). */
	cbm_transit_begin(&pool->transit);
	cbm_cache_fold_held(cbm_cache_at(pool, i), &w);
	cbm_cache_give_back(pool, i, w, true);
}

size_t
cbm_cache_drain(struct cbm_pool *pool, unsigned i, cbm_atomic_u64 *counter)
{
	struct cbm_cpu_cache *c = cbm_cache_at(pool, i);
	bool moving = false;
	size_t moved;
	uint64_t w;

	if (CBM_PLANTED(CBM_PLANT_TRIM_NO_LOCK)) {
		w = cbm_load_relaxed_u64(&c->word);
		moved = cbm_cache_drain_held(pool, c, &w, &moving);
		cbm_fetch_add_relaxed_u64(counter, moved);
		cbm_store_relaxed_u64(&c->word, w);
		if (moving)
			cbm_transit_end(&pool->transit, true);
		return moved;
	}
	w = cbm_cache_take(pool, i);
	moved = cbm_cache_drain_held(pool, c, &w, &moving);
	/* Within the move, so that stats see the drain and its count
	 * together (transit.h). */
	cbm_fetch_add_relaxed_u64(counter, moved);
	CBM_YIELD_AT(CBM_SITE_DRAIN_UNRELEASED);
	cbm_cache_give_back(pool, i, w, moving);
	return moved;
}

size_t
cbm_caches_drain(struct cbm_pool *pool, bool stop_early,
		 cbm_atomic_u64 *counter)
{
	size_t moved = 0;

	for (unsigned i = 0; i < pool->ncaches; i++) {
		/* Skip a cache that is visibly empty without taking it: a
		 * buffer on its way in is in transit, and the dry path waits
		 * for it (dry.c). */
		if (cbm_cache_count(cbm_cache_at(pool, i)) == 0)
			continue;
		CBM_YIELD_AT(CBM_SITE_DRAIN_BEFORE_TAKE);
		moved += cbm_cache_drain(pool, i, counter);
		if (stop_early && moved > 0)
			break;
	}
	return moved;
}
